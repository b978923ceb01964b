// Committed consumer-group offsets, in the metadata LMDB environment (named databases 'offsets' and
// 'offset-groups'). A commit resolves only once it is on disk (commitDurably), so an acknowledged OffsetCommit
// survives kill -9 and power loss.
//
// Expiry (offsets.retention.minutes): a group's offsets are dropped together when the group has had no active
// members for offsetsRetentionMs and its last commit is at least that old as well. The store cannot see members,
// so the group coordinator registers a probe with setActiveGroupProbe(); each expiry pass asks it about every
// group and remembers when a group was last seen active (in memory). After a restart every group counts as
// active at open time, so a restart can delay expiry but never hasten it. Without a probe, no group is active
// (groups that only commit, without joining, expire by their last commit time, as in Kafka).
import type { Database, RootDatabase } from 'lmdb';
import type { Logger } from 'pino';
import type { CommittedOffset, OffsetCommitEntry } from '../backends/backend.ts';
import { commitDurably } from '../log/metadata-store.ts';
import { ErrorCode, KafkaError } from '../protocol/errors.ts';

/**
 * LMDB keys are limited to ~1.9 KB and a key holds the group id, the topic name (<= 249) and a partition, so
 * group ids are capped well below that; Kafka sets no limit but real group ids are short.
 */
export const GROUP_ID_BYTES_MAX = 1024;

/** Largest topic name accepted in a key (Kafka's topic name limit). */
const TOPIC_NAME_LENGTH_MAX = 249;

/** Sorts after any string in LMDB's ordered-binary key encoding: [group, HIGH] bounds every key of a group. */
const HIGH = Uint8Array.of(0xff);

export interface OffsetStoreOptions {
  /** offsets.retention.minutes in ms; -1 keeps offsets forever. */
  offsetsRetentionMs: number;
  /** How often the expiry pass runs (ms); 0 = never by timer (expireOffsets can still be called). */
  offsetsRetentionCheckIntervalMs: number;
  /** offset.metadata.max.bytes: the longest commit metadata string (UTF-8 bytes) accepted. */
  offsetMetadataBytesMax: number;
  logger: Logger;
  nowMs?: () => number;
}

interface StoredOffset {
  offset: number;
  leaderEpoch: number;
  metadata: string | null;
  commitTimestampMs: number;
}

interface StoredGroup {
  lastCommitMs: number;
}

type OffsetKey = [string, string, number];

export type ActiveGroupProbe = (group: string) => boolean;

export class OffsetStore {
  private readonly root: RootDatabase;
  private readonly offsets: Database<StoredOffset, OffsetKey | (string | Uint8Array)[]>;
  private readonly groupsDb: Database<StoredGroup, string>;
  private readonly opts: OffsetStoreOptions;
  private readonly nowMs: () => number;
  private readonly openedMs: number;
  /** group -> the last time the probe said it had active members (ms), in memory only. */
  private readonly lastActiveMs = new Map<string, number>();
  private probe: ActiveGroupProbe = () => false;
  private timer: NodeJS.Timeout | null = null;
  private expiring = false;
  private closed = false;

  private constructor(root: RootDatabase, opts: OffsetStoreOptions) {
    this.root = root;
    this.opts = opts;
    this.nowMs = opts.nowMs ?? Date.now;
    this.openedMs = this.nowMs();
    this.offsets = root.openDB<StoredOffset, OffsetKey>('offsets', {});
    this.groupsDb = root.openDB<StoredGroup, string>('offset-groups', {});
  }

  /** Opens the offset databases in `root` (the metadata environment) and starts the expiry timer. */
  static open(root: RootDatabase, opts: OffsetStoreOptions): OffsetStore {
    const store = new OffsetStore(root, opts);
    if (opts.offsetsRetentionCheckIntervalMs > 0 && opts.offsetsRetentionMs >= 0) {
      // setInterval cannot wait longer than 2^31-1 ms.
      store.timer = setInterval(() => void store.runExpiry(), Math.min(opts.offsetsRetentionCheckIntervalMs, 2147483647));
      store.timer.unref();
    }
    return store;
  }

  /** The coordinator's answer to "does this group have active members right now?" (see the file head). */
  setActiveGroupProbe(probe: ActiveGroupProbe): void {
    this.probe = probe;
  }

  /**
   * Stores the offsets of one commit atomically (all or none) and resolves once durable. Throws
   * OFFSET_METADATA_TOO_LARGE when any metadata string is too long, INVALID_GROUP_ID for an unusable group id.
   */
  async commit(group: string, entries: OffsetCommitEntry[]): Promise<void> {
    this.assertOpen();
    checkGroupId(group);
    for (const e of entries) this.checkEntry(e);
    if (entries.length === 0) return;
    const now = this.nowMs();
    await commitDurably(this.root, () => {
      for (const e of entries) {
        const value: StoredOffset = { offset: e.offset, leaderEpoch: e.leaderEpoch, metadata: e.metadata, commitTimestampMs: now };
        this.offsets.put([group, e.topic, e.partition], value);
      }
      this.groupsDb.put(group, { lastCommitMs: now });
    });
  }

  /** Committed offsets of a group: all of them (partitions null) or those of the listed partitions that exist. */
  fetch(group: string, partitions: { topic: string; partition: number }[] | null): CommittedOffset[] {
    const out: CommittedOffset[] = [];
    if (!isStorableGroupId(group)) return out;
    if (partitions === null) {
      for (const { key, value } of this.offsets.getRange({ start: [group], end: [group, HIGH] })) {
        const [, topic, partition] = key as OffsetKey;
        out.push(toCommitted(topic, partition, value));
      }
      return out;
    }
    for (const { topic, partition } of partitions) {
      if (topic.length > TOPIC_NAME_LENGTH_MAX) continue;
      const value = this.offsets.get([group, topic, partition]);
      if (value !== undefined) out.push(toCommitted(topic, partition, value));
    }
    return out;
  }

  /** Removes the listed partitions' offsets of a group (OffsetDelete); the group goes when nothing is left. */
  async deletePartitions(group: string, partitions: { topic: string; partition: number }[]): Promise<void> {
    this.assertOpen();
    if (!isStorableGroupId(group)) return;
    await commitDurably(this.root, () => {
      for (const { topic, partition } of partitions) {
        if (topic.length <= TOPIC_NAME_LENGTH_MAX) this.offsets.remove([group, topic, partition]);
      }
      if (!this.hasOffsets(group)) this.groupsDb.remove(group);
    });
  }

  /** Removes every offset of a group (DeleteGroups). */
  async deleteGroup(group: string): Promise<void> {
    this.assertOpen();
    if (!isStorableGroupId(group)) return;
    await commitDurably(this.root, () => this.removeGroupInTxn(group));
    this.lastActiveMs.delete(group);
  }

  /** Removes the offsets of a deleted topic from every group (as Kafka does on topic deletion). */
  async deleteTopic(topic: string): Promise<void> {
    this.assertOpen();
    await commitDurably(this.root, () => {
      const emptied = new Set<string>();
      for (const key of this.offsets.getKeys()) {
        const [group, t] = key as OffsetKey;
        if (t !== topic) continue;
        this.offsets.remove(key);
        emptied.add(group);
      }
      for (const group of emptied) if (!this.hasOffsets(group)) this.groupsDb.remove(group);
    });
  }

  /** Groups that have committed offsets. */
  groups(): string[] {
    return [...this.groupsDb.getKeys()] as string[];
  }

  /** The last commit time of a group (ms), or undefined when it has no offsets. */
  lastCommitMs(group: string): number | undefined {
    if (!isStorableGroupId(group)) return undefined;
    return this.groupsDb.get(group)?.lastCommitMs;
  }

  /**
   * One expiry pass (see the file head); returns the groups whose offsets were dropped. The decision is taken
   * again inside the write transaction, so a commit that lands meanwhile keeps its group.
   */
  async expireOffsets(): Promise<string[]> {
    this.assertOpen();
    const retentionMs = this.opts.offsetsRetentionMs;
    if (retentionMs < 0) return [];
    const now = this.nowMs();
    const candidates = this.groups().filter((g) => this.isExpired(g, now, retentionMs));
    if (candidates.length === 0) return [];
    const expired: string[] = [];
    await commitDurably(this.root, () => {
      for (const group of candidates) {
        if (!this.isExpired(group, now, retentionMs)) continue;
        this.removeGroupInTxn(group);
        expired.push(group);
      }
    });
    for (const group of expired) this.lastActiveMs.delete(group);
    if (expired.length > 0) this.opts.logger.info({ groups: expired }, 'expired committed offsets of inactive groups');
    return expired;
  }

  /** Stops the expiry timer. The LMDB environment belongs to the metadata store, which closes it. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private isExpired(group: string, now: number, retentionMs: number): boolean {
    if (this.probe(group)) {
      this.lastActiveMs.set(group, now);
      return false;
    }
    const lastCommit = this.groupsDb.get(group)?.lastCommitMs;
    if (lastCommit === undefined) return false;
    const lastActive = this.lastActiveMs.get(group) ?? this.openedMs;
    return now - Math.max(lastCommit, lastActive) >= retentionMs;
  }

  private async runExpiry(): Promise<void> {
    if (this.expiring || this.closed) return;
    this.expiring = true;
    try {
      await this.expireOffsets();
    } catch (err) {
      this.opts.logger.error({ err }, 'offset expiry failed');
    } finally {
      this.expiring = false;
    }
  }

  private removeGroupInTxn(group: string): void {
    for (const key of this.offsets.getKeys({ start: [group], end: [group, HIGH] })) this.offsets.remove(key);
    this.groupsDb.remove(group);
  }

  private hasOffsets(group: string): boolean {
    for (const _ of this.offsets.getKeys({ start: [group], end: [group, HIGH], limit: 1 })) return true;
    return false;
  }

  private checkEntry(e: OffsetCommitEntry): void {
    if (e.metadata !== null && Buffer.byteLength(e.metadata, 'utf8') > this.opts.offsetMetadataBytesMax) {
      throw new KafkaError(
        ErrorCode.OFFSET_METADATA_TOO_LARGE,
        `offset metadata for ${e.topic}-${e.partition} is longer than ${this.opts.offsetMetadataBytesMax} bytes`,
      );
    }
    if (e.topic.length === 0 || e.topic.length > TOPIC_NAME_LENGTH_MAX) {
      throw new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `no such topic: ${JSON.stringify(e.topic.slice(0, 64))}`);
    }
    if (!Number.isSafeInteger(e.offset) || !Number.isInteger(e.partition) || e.partition < 0) {
      throw new KafkaError(ErrorCode.INVALID_REQUEST, `invalid offset commit for ${e.topic}-${e.partition}: ${e.offset}`);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('offset store is closed');
  }
}

/** Whether a group id fits in a key; longer ones can have no stored offsets. */
function isStorableGroupId(group: string): boolean {
  return group.length > 0 && Buffer.byteLength(group, 'utf8') <= GROUP_ID_BYTES_MAX;
}

function checkGroupId(group: string): void {
  if (group.length === 0) throw new KafkaError(ErrorCode.INVALID_GROUP_ID, 'the group id is empty');
  if (!isStorableGroupId(group)) {
    throw new KafkaError(ErrorCode.INVALID_GROUP_ID, `group ids longer than ${GROUP_ID_BYTES_MAX} bytes are not supported`);
  }
}

function toCommitted(topic: string, partition: number, v: StoredOffset): CommittedOffset {
  return { topic, partition, offset: v.offset, leaderEpoch: v.leaderEpoch, metadata: v.metadata, commitTimestampMs: v.commitTimestampMs };
}
