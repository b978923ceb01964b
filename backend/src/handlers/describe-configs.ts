// DescribeConfigs (API 32): topic configs (resource type 2) and this broker's configs (type 4).
//
// A broker resource named "" means the cluster-wide dynamic defaults (Kafka: only those set dynamically);
// a broker id other than this node's is INVALID_REQUEST, as in Kafka (clients ask each broker itself).
import { ConfigSource, type ConfigEntry } from '../backends/backend.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import type { DescribeConfigsRequest, DescribeConfigsResponse } from '../protocol/generated/index.ts';
import { ApiKey } from '../protocol/generated/index.ts';
import { describeError, requireTopic, ResourceType } from './common.ts';
import type { ApiHandler, RequestContext } from './types.ts';

type Result = DescribeConfigsResponse['results'][number];
type ConfigResult = Result['configs'][number];
type Resource = DescribeConfigsRequest['resources'][number];

interface DescribeOptions {
  synonyms: boolean;
  documentation: boolean;
}

export const describeConfigsHandler: ApiHandler<DescribeConfigsRequest, DescribeConfigsResponse> = {
  apiKey: ApiKey.DescribeConfigs,
  minVersion: 0,
  maxVersion: 4,
  handle: handleDescribeConfigs,
};

function handleDescribeConfigs(request: DescribeConfigsRequest, ctx: RequestContext): DescribeConfigsResponse {
  const options: DescribeOptions = {
    synonyms: ctx.apiVersion >= 1 && request.includeSynonyms,
    documentation: ctx.apiVersion >= 3 && request.includeDocumentation,
  };
  return { throttleTimeMs: 0, results: request.resources.map((r) => describeResource(ctx, r, options)) };
}

function describeResource(ctx: RequestContext, resource: Resource, options: DescribeOptions): Result {
  const result: Result = {
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    resourceType: resource.resourceType,
    resourceName: resource.resourceName,
    configs: [],
  };
  try {
    // Null or empty: every config (as Kafka answers both).
    const keys = resource.configurationKeys === null || resource.configurationKeys.length === 0 ? null : new Set(resource.configurationKeys);
    const entries = entriesOf(ctx, resource).filter((e) => keys === null || keys.has(e.name));
    result.configs = entries.map((e) => configResult(e, options));
  } catch (err) {
    const { code, message } = describeError(ctx, err, `configs of ${resource.resourceName}`);
    result.errorCode = code;
    result.errorMessage = message;
  }
  return result;
}

function entriesOf(ctx: RequestContext, resource: Resource): ConfigEntry[] {
  switch (resource.resourceType) {
    case ResourceType.TOPIC:
      return ctx.backend.describeTopicConfigs(requireTopic(ctx, resource.resourceName).name);
    case ResourceType.BROKER:
      return brokerEntries(ctx, resource.resourceName);
    default:
      throw new KafkaError(ErrorCode.INVALID_REQUEST, `Unsupported resource type ${resource.resourceType} for DescribeConfigs`);
  }
}

function brokerEntries(ctx: RequestContext, name: string): ConfigEntry[] {
  const nodeId = ctx.backend.cluster().nodeId;
  if (name === '') return ctx.backend.describeBrokerConfigs(nodeId).filter((e) => e.source === ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG);
  if (!/^-?\d+$/.test(name)) throw new KafkaError(ErrorCode.INVALID_REQUEST, `Broker id must be an integer, not '${name}'`);
  if (Number(name) !== nodeId) throw new KafkaError(ErrorCode.INVALID_REQUEST, `Unexpected broker id, expected ${nodeId} or empty string, but received ${name}`);
  return ctx.backend.describeBrokerConfigs(nodeId);
}

function configResult(e: ConfigEntry, options: DescribeOptions): ConfigResult {
  // Sensitive values (passwords) are never sent, as in Kafka.
  const value = e.sensitive ? null : e.value;
  return {
    name: e.name,
    value,
    readOnly: e.readOnly,
    isDefault: e.isDefault,
    configSource: e.source,
    isSensitive: e.sensitive,
    // The Backend reports each config's effective source only, so the synonym list is that one entry.
    synonyms: options.synonyms ? [{ name: e.name, value, source: e.source }] : [],
    configType: e.type,
    documentation: options.documentation ? e.documentation : null,
  };
}
