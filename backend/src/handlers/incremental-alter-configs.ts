// IncrementalAlterConfigs (API 44): SET / DELETE / APPEND / SUBTRACT single topic configs (KIP-339).
// Broker configs are static here (the configuration file), so broker resources are INVALID_REQUEST.
import type { ConfigOp } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { alterResources, type AlterTarget } from './config-changes.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type Resource = IncrementalAlterConfigsRequest['resources'][number];

const OpType = { SET: 0, DELETE: 1, APPEND: 2, SUBTRACT: 3 } as const;

export const incrementalAlterConfigsHandler: ApiHandler<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse> = {
  apiKey: ApiKey.IncrementalAlterConfigs,
  minVersion: 0,
  maxVersion: 1,
  handle: handleIncrementalAlterConfigs,
};

async function handleIncrementalAlterConfigs(request: IncrementalAlterConfigsRequest, ctx: RequestContext): Promise<IncrementalAlterConfigsResponse> {
  const targets = request.resources.map((r): AlterTarget => ({ resourceType: r.resourceType, resourceName: r.resourceName, ops: () => incrementalOps(r) }));
  return { throttleTimeMs: 0, responses: await alterResources(ctx, targets, 'incremental', request.validateOnly) };
}

function incrementalOps(resource: Resource): ConfigOp[] {
  const names = new Set<string>();
  return resource.configs.map((c): ConfigOp => {
    if (names.has(c.name)) throw new KafkaError(ErrorCode.INVALID_REQUEST, `Config ${c.name} is listed more than once`);
    names.add(c.name);
    const op = c.configOperation;
    if (!isOpType(op)) throw new KafkaError(ErrorCode.INVALID_REQUEST, `Unknown config operation ${op} for ${c.name}`);
    if (op !== OpType.DELETE && c.value === null) throw new KafkaError(ErrorCode.INVALID_REQUEST, `Null value not supported for : ${c.name}`);
    return { name: c.name, op, value: c.value };
  });
}

function isOpType(op: number): op is ConfigOp['op'] {
  return op === OpType.SET || op === OpType.DELETE || op === OpType.APPEND || op === OpType.SUBTRACT;
}
