// The one list of API handlers (franz-go kfake style): each API is an ApiHandler object with its key and version
// range. The server looks handlers up here and refuses versions outside their range before a handler runs;
// ApiVersions answers from the same registry, so what is advertised is exactly what is served.
import type { ApiCodec } from '../protocol/api-codec.ts';
import { API_CODECS } from '../protocol/generated/index.ts';
import { createApiVersionsHandler } from './api-versions.ts';
import { createDataHandlers } from './data-handlers.ts';
import type { ApiRange } from './api-versions.ts';
import type { ApiHandler } from './types.ts';

/** Broker settings handlers need (handlers see no config otherwise). */
export interface HandlerSettings {
  /** Cap on a Fetch request's max_wait_ms (ms). */
  fetchWaitMaxMs: number;
}

/**
 * Every API this broker serves, one line per API in api key order. ApiVersions comes first: it needs the
 * registry it belongs to, which is handed to it once built.
 */
function handlerList(settings: HandlerSettings, ranges: () => readonly ApiRange[]): ApiHandler[] {
  return [
    createApiVersionsHandler(ranges),
    ...createDataHandlers({ fetchWaitMaxMs: settings.fetchWaitMaxMs }),
  ];
}

/** Why a set of handlers cannot be served with these codecs; empty when it can. */
export function registryProblems(
  handlers: readonly ApiHandler[],
  codecs: ReadonlyMap<number, ApiCodec> = API_CODECS,
): string[] {
  const problems: string[] = [];
  const seen = new Set<number>();
  for (const h of handlers) {
    const codec = codecs.get(h.apiKey);
    const name = codec?.name ?? `api key ${h.apiKey}`;
    if (seen.has(h.apiKey)) problems.push(`${name}: registered twice`);
    seen.add(h.apiKey);
    if (codec === undefined) {
      problems.push(`${name}: no generated codec`);
      continue;
    }
    if (!Number.isInteger(h.minVersion) || !Number.isInteger(h.maxVersion) || h.minVersion > h.maxVersion) {
      problems.push(`${name}: invalid version range ${h.minVersion}..${h.maxVersion}`);
    } else if (h.minVersion < codec.minVersion || h.maxVersion > codec.maxVersion) {
      problems.push(`${name}: versions ${h.minVersion}..${h.maxVersion} outside the codec's ${codec.minVersion}..${codec.maxVersion}`);
    } else if (h.maxVersion === codec.maxVersion && codec.latestVersionUnstable) {
      problems.push(`${name}: v${h.maxVersion} is unstable in the schema and must not be advertised`);
    }
  }
  return problems;
}

export class HandlerRegistry {
  private readonly byKey = new Map<number, ApiHandler>();
  private readonly sortedRanges: readonly ApiRange[];

  /** Throws when a handler is registered twice or its range is not within its codec's versions. */
  constructor(handlers: readonly ApiHandler[], codecs: ReadonlyMap<number, ApiCodec> = API_CODECS) {
    const problems = registryProblems(handlers, codecs);
    if (problems.length > 0) throw new Error(`invalid handler registry:\n  ${problems.join('\n  ')}`);
    for (const h of handlers) this.byKey.set(h.apiKey, h);
    this.sortedRanges = Object.freeze(
      [...handlers]
        .sort((a, b) => a.apiKey - b.apiKey)
        .map((h) => Object.freeze({ apiKey: h.apiKey, minVersion: h.minVersion, maxVersion: h.maxVersion })),
    );
  }

  get(apiKey: number): ApiHandler | undefined {
    return this.byKey.get(apiKey);
  }

  /** What ApiVersions advertises: one range per registered API, by api key. */
  ranges(): readonly ApiRange[] {
    return this.sortedRanges;
  }
}

/**
 * The broker's registry. `overrides` replace the handler of the same api key or add one (tests register slow or
 * failing handlers this way); ApiVersions always answers from the final registry.
 */
export function createRegistry(settings: HandlerSettings, overrides: readonly ApiHandler[] = []): HandlerRegistry {
  let registry: HandlerRegistry | undefined;
  const ranges = () => registry!.ranges();
  const handlers = handlerList(settings, ranges);
  for (const override of overrides) {
    const at = handlers.findIndex((h) => h.apiKey === override.apiKey);
    if (at >= 0) handlers[at] = override;
    else handlers.push(override);
  }
  registry = new HandlerRegistry(handlers);
  return registry;
}
