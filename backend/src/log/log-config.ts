// Per-topic log settings, named after Kafka's topic configs (the comment gives the config name and unit).
// The topic manager turns a topic's config map into a LogConfig; the partition log obeys it.

export interface LogConfig {
  /** segment.bytes: roll the active segment when it would grow past this many bytes. */
  segmentBytes: number;
  /** segment.ms: roll the active segment when its first batch is older than this (ms). */
  segmentMs: number;
  /** retention.ms: delete closed segments whose newest record is older than this (ms); -1 keeps forever. */
  retentionMs: number;
  /** retention.bytes: delete the oldest closed segments while the partition is larger (bytes); -1 unlimited. */
  retentionBytes: number;
  /** max.message.bytes: the largest record batch accepted (bytes, whole batch including its header). */
  maxMessageBytes: number;
  /** index.interval.bytes: add a sparse offset/time index entry at most every this many log bytes. */
  indexIntervalBytes: number;
  /** segment.index.bytes: the largest offset index file; the segment rolls when it is full (bytes). */
  segmentIndexBytes: number;
  /** flush.messages: fsync after this many messages were appended; 1 = every append is synced before it is
   *  acknowledged (group-committed). Larger values leave the page cache to the OS between syncs. */
  flushMessages: number;
  /** flush.ms: fsync at least this often (ms) while there is unsynced data; -1 = only by flushMessages. */
  flushMs: number;
  /** message.timestamp.type: CreateTime keeps the producer's timestamps; LogAppendTime stamps the broker's. */
  messageTimestampType: 'CreateTime' | 'LogAppendTime';
  /** file.delete.delay.ms: how long a deleted segment's files stay (renamed .deleted) before removal (ms). */
  fileDeleteDelayMs: number;
}

/** Kafka's defaults, except flush.ms: we sync once a second so a power loss costs at most ~1 s of data. */
export const DEFAULT_LOG_CONFIG: Readonly<LogConfig> = Object.freeze({
  segmentBytes: 1024 * 1024 * 1024,
  segmentMs: 7 * 24 * 3600 * 1000,
  retentionMs: 7 * 24 * 3600 * 1000,
  retentionBytes: -1,
  maxMessageBytes: 1048588,
  indexIntervalBytes: 4096,
  segmentIndexBytes: 10 * 1024 * 1024,
  flushMessages: Number.MAX_SAFE_INTEGER,
  flushMs: 1000,
  messageTimestampType: 'CreateTime',
  fileDeleteDelayMs: 60_000,
});
