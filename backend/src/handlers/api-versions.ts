// ApiVersions (key 18): the versions of every API this broker serves, derived from the handler registry so the
// answer can never disagree with what the server accepts. v3+ requests name the client software; Kafka refuses
// names outside [a-zA-Z0-9] with inner '-' and '.', with INVALID_REQUEST.
import { ErrorCode } from '../protocol/errors.ts';
import { ApiKey, defaultApiVersionsResponse } from '../protocol/generated/index.ts';
import type { ApiVersionsRequest, ApiVersionsResponse } from '../protocol/generated/index.ts';
import type { ApiHandler } from './types.ts';

export interface ApiRange {
  apiKey: number;
  minVersion: number;
  maxVersion: number;
}

/** The versions this broker serves. v4 (Kafka 3.9+) is not advertised yet; newer clients fall back to v3. */
export const API_VERSIONS_MIN = 0;
export const API_VERSIONS_MAX = 3;
/** The first version whose request names the client software. */
const CLIENT_SOFTWARE_VERSION = 3;

const SOFTWARE_NAME = /^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?$/;

/** Kafka's rule for ClientSoftwareName and ClientSoftwareVersion. */
export function isValidClientSoftware(value: string): boolean {
  return SOFTWARE_NAME.test(value);
}

/** A successful answer listing `ranges`. */
export function apiVersionsResponse(errorCode: number, ranges: readonly ApiRange[]): ApiVersionsResponse {
  const response = defaultApiVersionsResponse();
  response.errorCode = errorCode;
  response.apiKeys = ranges.map((r) => ({ apiKey: r.apiKey, minVersion: r.minVersion, maxVersion: r.maxVersion }));
  return response;
}

/** @param ranges the registry's API ranges, sorted by api key; read at each request. */
export function createApiVersionsHandler(
  ranges: () => readonly ApiRange[],
): ApiHandler<ApiVersionsRequest, ApiVersionsResponse> {
  return {
    apiKey: ApiKey.ApiVersions,
    minVersion: API_VERSIONS_MIN,
    maxVersion: API_VERSIONS_MAX,
    handle(request, ctx) {
      if (
        ctx.apiVersion >= CLIENT_SOFTWARE_VERSION &&
        !(isValidClientSoftware(request.clientSoftwareName) && isValidClientSoftware(request.clientSoftwareVersion))
      ) {
        ctx.log.info(
          { clientSoftwareName: request.clientSoftwareName, clientSoftwareVersion: request.clientSoftwareVersion },
          'ApiVersions with an invalid client software name or version',
        );
        return apiVersionsResponse(ErrorCode.INVALID_REQUEST, []);
      }
      return apiVersionsResponse(ErrorCode.NONE, ranges());
    },
  };
}
