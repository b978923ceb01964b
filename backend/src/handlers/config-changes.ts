// What AlterConfigs and IncrementalAlterConfigs share: per-resource dispatch, duplicate resources, errors.
import type { ConfigOp } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import { describeError, duplicates, requireTopic, ResourceType } from './common.ts';
import type { RequestContext } from './types.ts';

export interface AlterTarget {
  resourceType: number;
  resourceName: string;
  /** Builds the operations; throws KafkaError for a malformed resource (duplicate keys, bad op). */
  ops: () => ConfigOp[];
}

export interface AlterResult {
  errorCode: number;
  errorMessage: string | null;
  resourceType: number;
  resourceName: string;
}

export function alterResources(
  ctx: RequestContext,
  targets: AlterTarget[],
  mode: 'replace' | 'incremental',
  validateOnly: boolean,
): Promise<AlterResult[]> {
  const dup = duplicates(targets.map((t) => `${t.resourceType}:${t.resourceName}`));
  return Promise.all(
    targets.map((t) =>
      dup.has(`${t.resourceType}:${t.resourceName}`)
        ? Promise.resolve(result(t, ErrorCode.INVALID_REQUEST, 'Resource is listed more than once'))
        : alterOne(ctx, t, mode, validateOnly),
    ),
  );
}

async function alterOne(ctx: RequestContext, target: AlterTarget, mode: 'replace' | 'incremental', validateOnly: boolean): Promise<AlterResult> {
  try {
    switch (target.resourceType) {
      case ResourceType.TOPIC: {
        const ops = target.ops();
        const name = requireTopic(ctx, target.resourceName).name;
        await ctx.backend.alterTopicConfigs(name, ops, mode, validateOnly);
        return result(target, ErrorCode.NONE, null);
      }
      case ResourceType.BROKER:
      case ResourceType.BROKER_LOGGER:
        throw new KafkaError(ErrorCode.INVALID_REQUEST, 'Broker configs are static: set them in the broker configuration and restart');
      default:
        throw new KafkaError(ErrorCode.INVALID_REQUEST, `Unsupported resource type ${target.resourceType}`);
    }
  } catch (err) {
    const { code, message } = describeError(ctx, err, `configs of ${target.resourceName}`);
    return result(target, code, message);
  }
}

function result(target: AlterTarget, errorCode: number, errorMessage: string | null): AlterResult {
  return { errorCode, errorMessage, resourceType: target.resourceType, resourceName: target.resourceName };
}
