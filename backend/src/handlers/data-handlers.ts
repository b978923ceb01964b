// The data and admin API handlers, for the registry. Fetch is built with its default limits here; a server
// that configures fetchWaitMaxMs / fetchResponseBytesMax builds its own with createFetchHandler().
import { alterConfigsHandler } from './alter-configs.ts';
import { createPartitionsHandler } from './create-partitions.ts';
import { createTopicsHandler } from './create-topics.ts';
import { deleteRecordsHandler } from './delete-records.ts';
import { deleteTopicsHandler } from './delete-topics.ts';
import { describeClusterHandler } from './describe-cluster.ts';
import { describeConfigsHandler } from './describe-configs.ts';
import { createFetchHandler, type FetchHandlerOptions } from './fetch.ts';
import { incrementalAlterConfigsHandler } from './incremental-alter-configs.ts';
import { initProducerIdHandler } from './init-producer-id.ts';
import { listOffsetsHandler } from './list-offsets.ts';
import { metadataHandler } from './metadata.ts';
import { produceHandler } from './produce.ts';
import type { ApiHandler } from './types.ts';

export function createDataHandlers(options: FetchHandlerOptions = {}): ApiHandler[] {
  return [
    produceHandler,
    createFetchHandler(options),
    listOffsetsHandler,
    metadataHandler,
    createTopicsHandler,
    deleteTopicsHandler,
    deleteRecordsHandler,
    initProducerIdHandler,
    describeConfigsHandler,
    alterConfigsHandler,
    createPartitionsHandler,
    incrementalAlterConfigsHandler,
    describeClusterHandler,
  ];
}

/** The handlers with default limits. */
export const dataHandlers: ApiHandler[] = createDataHandlers();
