// InitProducerId (API 22): a producer id and epoch for an idempotent producer (transactional_id null) or a
// transactional one. v3+ may pass the current id and epoch to bump the epoch instead of getting a new id
// (KIP-360); both must then be set, or neither.
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { InitProducerIdRequest, InitProducerIdResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { errorCodeFor } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

/** PRODUCER_FENCED exists from v4 (KIP-588); older clients understand it as INVALID_PRODUCER_EPOCH. */
const PRODUCER_FENCED_MIN_VERSION = 4;

export const initProducerIdHandler: ApiHandler<InitProducerIdRequest, InitProducerIdResponse> = {
  apiKey: ApiKey.InitProducerId,
  // v5 only allows the TRANSACTION_ABORTABLE error code.
  minVersion: 0,
  maxVersion: 5,
  handle: handleInitProducerId,
};

async function handleInitProducerId(request: InitProducerIdRequest, ctx: RequestContext): Promise<InitProducerIdResponse> {
  try {
    const producerId = ctx.apiVersion >= 3 ? Number(request.producerId) : -1;
    const producerEpoch = ctx.apiVersion >= 3 ? request.producerEpoch : -1;
    if ((producerId === -1) !== (producerEpoch === -1)) {
      throw new KafkaError(ErrorCode.INVALID_REQUEST, 'producer_id and producer_epoch must both be set or both be -1');
    }
    const result = await ctx.backend.initProducerId(request.transactionalId, request.transactionTimeoutMs, producerId, producerEpoch);
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, producerId: BigInt(result.producerId), producerEpoch: result.producerEpoch };
  } catch (err) {
    let code = errorCodeFor(ctx, err, `producer ${request.transactionalId ?? '(idempotent)'}`);
    if (code === ErrorCode.PRODUCER_FENCED && ctx.apiVersion < PRODUCER_FENCED_MIN_VERSION) code = ErrorCode.INVALID_PRODUCER_EPOCH;
    return { throttleTimeMs: 0, errorCode: code, producerId: -1n, producerEpoch: -1 };
  }
}
