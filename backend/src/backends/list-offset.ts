// ListOffsets over one local partition log, shared by both backends: the special timestamps (Kafka's
// OffsetSpec) and the by-time lookup. Only the leader epoch reported differs (0 single node, the Raft term).
import type { PartitionLog } from '../log/partition-log.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';
import { OffsetSpec, type ListOffsetResult } from './backend.ts';

export function listLogOffset(log: PartitionLog, timestamp: number, leaderEpoch: number): ListOffsetResult {
  switch (timestamp) {
    case OffsetSpec.LATEST:
      // READ_COMMITTED would stop at the last stable offset, which equals the high watermark without transactions.
      return { offset: log.highWatermark, timestamp: -1, leaderEpoch };
    case OffsetSpec.EARLIEST:
    case OffsetSpec.EARLIEST_LOCAL:
      return { offset: log.logStartOffset, timestamp: -1, leaderEpoch };
    case OffsetSpec.LATEST_TIERED:
      // Nothing is tiered: Kafka answers "no offset" when remote storage is off.
      return { offset: -1, timestamp: -1, leaderEpoch: -1 };
  }
  if (timestamp < 0 && timestamp !== OffsetSpec.MAX_TIMESTAMP) {
    throw new KafkaError(ErrorCode.INVALID_REQUEST, `invalid ListOffsets timestamp ${timestamp}`);
  }
  // A timestamp, or MAX_TIMESTAMP: the log finds the record (offset -1 when there is none).
  return log.offsetForTimestamp(timestamp);
}
