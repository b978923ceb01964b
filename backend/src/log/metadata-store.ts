// Durable cluster and topic metadata: one LMDB environment at <dataDir>/meta holding the cluster id, every
// topic (name, id, partition count, dynamic configs), topic deletions still in progress, and the high mark of
// the producer id blocks handed out. The consumer-group offset store lives in the same environment (its own
// named databases), so one fsync policy covers all broker metadata.
//
// Durability: the environment is opened with overlappingSync off. LMDB then commits the classic way: the
// transaction's data pages are written and fdatasync'ed, then the meta page is written through a descriptor
// opened with O_DSYNC, and only then does lmdb-js resolve the write promise. (Verified with strace on this
// machine: fdatasync(data.mdb) and the O_DSYNC meta pwrite both happen before the awaiting code runs.) With the
// default overlappingSync a write promise resolves at commit, before the flush, so we would have to await
// `db.flushed` as well; `commitDurably` still awaits `flushed` after the commit as a second guard (with
// overlappingSync off it resolves at once), so the guarantee does not silently depend on the open options.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { Logger } from 'pino';

/** Bumped when the stored layout changes incompatibly; a newer store is refused instead of misread. */
const FORMAT_VERSION = 1;

/** LMDB named databases of this environment (the offset store adds its own). */
const MAX_NAMED_DBS = 16;

export interface TopicRecord {
  name: string;
  /** 16 bytes, never all zero. */
  topicId: Buffer;
  partitionCount: number;
  /** As requested at creation (1 in single-node mode); kept for cluster mode. */
  replicationFactor: number;
  /** Dynamic topic configs only (name -> normalized value); defaults are not stored. */
  configs: Record<string, string>;
  createdMs: number;
}

/** A topic removed from the metadata whose partition directories may still exist. */
export interface PendingTopicDeletion {
  name: string;
  topicId: Buffer;
  partitionCount: number;
}

interface StoredTopic {
  name: string;
  topicId: string;
  partitionCount: number;
  replicationFactor: number;
  configs: Record<string, string>;
  createdMs: number;
}

interface StoredDeletion {
  name: string;
  topicId: string;
  partitionCount: number;
}

/**
 * A random Kafka-style UUID (version 4 bits set). Kafka renders UUIDs as 22-char unpadded base64url and never
 * hands out one whose text starts with '-' (it would read as a command-line flag); neither do we. The version
 * bits make the reserved ids (all zero, and 0...01 for the metadata topic) impossible.
 */
export function randomKafkaUuid(): Buffer {
  for (;;) {
    const id = randomBytes(16);
    id[6] = (id[6]! & 0x0f) | 0x40;
    id[8] = (id[8]! & 0x3f) | 0x80;
    if (!kafkaUuidToString(id).startsWith('-')) return id;
  }
}

export function kafkaUuidToString(id: Buffer): string {
  return id.toString('base64url');
}

export class MetadataStore {
  /** The LMDB environment, shared with the offset store (one env, several named databases). */
  readonly root: RootDatabase;
  readonly clusterId: string;
  private readonly cluster: Database<unknown, string>;
  private readonly topicsDb: Database<StoredTopic, string>;
  private readonly deletionsDb: Database<StoredDeletion, string>;
  private closed = false;

  private constructor(root: RootDatabase, clusterId: string) {
    this.root = root;
    this.clusterId = clusterId;
    this.cluster = root.openDB<unknown, string>('cluster', {});
    this.topicsDb = root.openDB<StoredTopic, string>('topics', {});
    this.deletionsDb = root.openDB<StoredDeletion, string>('topic-deletions', {});
  }

  /** Opens (creating on first use) <dataDir>/meta; generates and persists the cluster id once. */
  static async open(dataDir: string, logger: Logger): Promise<MetadataStore> {
    const dir = path.join(dataDir, 'meta');
    await fs.mkdir(dir, { recursive: true });
    const root = open({ path: dir, overlappingSync: false, maxDbs: MAX_NAMED_DBS });
    try {
      const cluster = root.openDB<unknown, string>('cluster', {});
      const format = cluster.get('formatVersion');
      if (format !== undefined && format !== FORMAT_VERSION) {
        throw new Error(`metadata store ${dir} has format ${String(format)}; this broker reads format ${FORMAT_VERSION}`);
      }
      let clusterId = cluster.get('clusterId');
      if (typeof clusterId !== 'string') {
        clusterId = kafkaUuidToString(randomKafkaUuid());
        const id = clusterId;
        await commitDurably(root, () => {
          cluster.put('formatVersion', FORMAT_VERSION);
          cluster.put('clusterId', id);
        });
        logger.info({ clusterId, dir }, 'metadata store created');
      }
      return new MetadataStore(root, clusterId as string);
    } catch (err) {
      await root.close();
      throw err;
    }
  }

  topics(): TopicRecord[] {
    const out: TopicRecord[] = [];
    for (const { value } of this.topicsDb.getRange()) out.push(fromStoredTopic(value));
    return out;
  }

  topic(name: string): TopicRecord | undefined {
    const stored = this.topicsDb.get(name);
    return stored === undefined ? undefined : fromStoredTopic(stored);
  }

  /** Creates or replaces a topic record; resolves once durable. */
  async putTopic(topic: TopicRecord): Promise<void> {
    this.assertOpen();
    await commitDurably(this.root, () => this.topicsDb.put(topic.name, toStoredTopic(topic)));
  }

  /**
   * Removes a topic and records its pending deletion in one transaction, so a crash at any later step leaves
   * either the topic (nothing happened) or a deletion to finish at start, never a resurrected topic.
   */
  async removeTopic(topic: TopicRecord): Promise<void> {
    this.assertOpen();
    const key = topic.topicId.toString('hex');
    const deletion: StoredDeletion = { name: topic.name, topicId: key, partitionCount: topic.partitionCount };
    await commitDurably(this.root, () => {
      this.topicsDb.remove(topic.name);
      this.deletionsDb.put(key, deletion);
    });
  }

  pendingDeletions(): PendingTopicDeletion[] {
    const out: PendingTopicDeletion[] = [];
    for (const { value } of this.deletionsDb.getRange()) {
      out.push({ name: value.name, topicId: Buffer.from(value.topicId, 'hex'), partitionCount: value.partitionCount });
    }
    return out;
  }

  /** Called once a deleted topic's directories are renamed out of the way (their removal may still be pending). */
  async finishDeletion(topicId: Buffer): Promise<void> {
    this.assertOpen();
    await commitDurably(this.root, () => this.deletionsDb.remove(topicId.toString('hex')));
  }

  /** The first producer id not yet handed out in any block (0 on a fresh store). */
  producerIdBlockEnd(): number {
    const end = this.cluster.get('producerIdBlockEnd');
    return typeof end === 'number' ? end : 0;
  }

  /**
   * Reserves the next `count` producer ids, durably, before any of them is used: after a restart allocation
   * resumes past this block, so an id is never handed out twice. Returns [start, end).
   */
  async reserveProducerIds(count: number): Promise<{ start: number; end: number }> {
    this.assertOpen();
    const start = this.producerIdBlockEnd();
    const end = start + count;
    if (!Number.isSafeInteger(end)) throw new Error('producer id space exhausted');
    await commitDurably(this.root, () => this.cluster.put('producerIdBlockEnd', end));
    return { start, end };
  }

  /** Waits until every write so far is on disk. */
  async flush(): Promise<void> {
    if (!this.closed) await this.root.flushed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.root.flushed;
    await this.root.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('metadata store is closed');
  }
}

/** Runs `fn` as one LMDB write transaction and resolves once it is committed and on disk (see the file head). */
export async function commitDurably(root: RootDatabase, fn: () => void): Promise<void> {
  await root.transaction(fn);
  await root.flushed;
}

function toStoredTopic(t: TopicRecord): StoredTopic {
  return {
    name: t.name,
    topicId: t.topicId.toString('hex'),
    partitionCount: t.partitionCount,
    replicationFactor: t.replicationFactor,
    configs: { ...t.configs },
    createdMs: t.createdMs,
  };
}

function fromStoredTopic(s: StoredTopic): TopicRecord {
  return {
    name: s.name,
    topicId: Buffer.from(s.topicId, 'hex'),
    partitionCount: s.partitionCount,
    replicationFactor: s.replicationFactor,
    configs: { ...s.configs },
    createdMs: s.createdMs,
  };
}
