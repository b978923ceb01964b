// AlterConfigs (API 33): replace a topic's dynamic configs (unlisted ones return to their defaults).
// Broker configs are static here (the configuration file), so broker resources are INVALID_REQUEST.
import type { ConfigOp } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { AlterConfigsRequest, AlterConfigsResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { alterResources, type AlterTarget } from './config-changes.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type Resource = AlterConfigsRequest['resources'][number];

export const alterConfigsHandler: ApiHandler<AlterConfigsRequest, AlterConfigsResponse> = {
  apiKey: ApiKey.AlterConfigs,
  minVersion: 0,
  maxVersion: 2,
  handle: handleAlterConfigs,
};

async function handleAlterConfigs(request: AlterConfigsRequest, ctx: RequestContext): Promise<AlterConfigsResponse> {
  const targets = request.resources.map((r): AlterTarget => ({ resourceType: r.resourceType, resourceName: r.resourceName, ops: () => replaceOps(r) }));
  return { throttleTimeMs: 0, responses: await alterResources(ctx, targets, 'replace', request.validateOnly) };
}

/** Replace semantics: every listed config is set; a null value (Kafka ignores it) leaves it unlisted, i.e. reset. */
function replaceOps(resource: Resource): ConfigOp[] {
  const names = new Set<string>();
  const ops: ConfigOp[] = [];
  for (const c of resource.configs) {
    if (names.has(c.name)) throw new KafkaError(ErrorCode.INVALID_REQUEST, `Config ${c.name} is listed more than once`);
    names.add(c.name);
    if (c.value !== null) ops.push({ name: c.name, op: 0, value: c.value });
  }
  return ops;
}
