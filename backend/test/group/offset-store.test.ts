import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import pino from 'pino';
import { GROUP_ID_BYTES_MAX, OffsetStore, type OffsetStoreOptions } from '../../src/group/offset-store.ts';
import { MetadataStore } from '../../src/log/metadata-store.ts';
import { ErrorCode, KafkaError } from '../../src/protocol/errors.ts';

const logger = pino({ level: 'silent' });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'takhin-offsets-'));
test.after.always(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(root, `d${dirs++}`);

interface Opened {
  meta: MetadataStore;
  store: OffsetStore;
  clock: { now: number };
  close(): Promise<void>;
}

async function openStore(dir: string, options: Partial<OffsetStoreOptions> = {}, clock = { now: 1_000_000 }): Promise<Opened> {
  const meta = await MetadataStore.open(dir, logger);
  const store = OffsetStore.open(meta.root, {
    offsetsRetentionMs: 60_000,
    offsetsRetentionCheckIntervalMs: 0,
    offsetMetadataBytesMax: 16,
    logger,
    nowMs: () => clock.now,
    ...options,
  });
  return {
    meta,
    store,
    clock,
    async close() {
      store.close();
      await meta.close();
    },
  };
}

const entry = (topic: string, partition: number, offset: number, metadata: string | null = null) => ({
  topic,
  partition,
  offset,
  leaderEpoch: 0,
  metadata,
});

test('commit then fetch all or selected partitions; metadata and null round-trip', async (t) => {
  const s = await openStore(freshDir());
  await s.store.commit('g1', [entry('a', 0, 10, 'hello'), entry('a', 1, 11, ''), entry('b', 0, 5, null)]);
  await s.store.commit('g2', [entry('a', 0, 99)]);
  const all = s.store.fetch('g1', null);
  t.deepEqual(
    all.map((o) => [o.topic, o.partition, o.offset, o.metadata, o.commitTimestampMs]),
    [['a', 0, 10, 'hello', 1_000_000], ['a', 1, 11, '', 1_000_000], ['b', 0, 5, null, 1_000_000]],
  );
  const some = s.store.fetch('g1', [{ topic: 'a', partition: 1 }, { topic: 'zz', partition: 0 }]);
  t.deepEqual(some.map((o) => [o.topic, o.partition, o.offset]), [['a', 1, 11]]);
  t.deepEqual(s.store.fetch('g', null), []);
  t.deepEqual(s.store.groups().sort(), ['g1', 'g2']);
  // A later commit overwrites.
  await s.store.commit('g1', [entry('a', 0, 20, 'x')]);
  t.is(s.store.fetch('g1', [{ topic: 'a', partition: 0 }])[0]!.offset, 20);
  await s.close();
});

test('offsets and metadata survive a restart', async (t) => {
  const dir = freshDir();
  const a = await openStore(dir);
  await a.store.commit('grp', [entry('t', 3, 12345, 'meta-ü')]);
  await a.close();
  const b = await openStore(dir);
  const [o] = b.store.fetch('grp', null);
  t.is(o!.offset, 12345);
  t.is(o!.metadata, 'meta-ü');
  t.deepEqual(b.store.groups(), ['grp']);
  await b.close();
});

test('metadata longer than offsetMetadataBytesMax fails the whole commit with OFFSET_METADATA_TOO_LARGE', async (t) => {
  const s = await openStore(freshDir());
  const err = await t.throwsAsync(s.store.commit('g', [entry('a', 0, 1, 'ok'), entry('a', 1, 1, 'x'.repeat(17))]), { instanceOf: KafkaError });
  t.is(err!.code, ErrorCode.OFFSET_METADATA_TOO_LARGE);
  t.deepEqual(s.store.fetch('g', null), []);
  // Counted in UTF-8 bytes: 8 two-byte characters = 16 bytes fit, 9 = 18 do not.
  await s.store.commit('g', [entry('a', 0, 1, 'é'.repeat(8))]);
  await t.throwsAsync(s.store.commit('g', [entry('a', 0, 1, 'é'.repeat(9))]), { instanceOf: KafkaError });
  await s.close();
});

test('bad group ids are INVALID_GROUP_ID', async (t) => {
  const s = await openStore(freshDir());
  for (const group of ['', 'g'.repeat(GROUP_ID_BYTES_MAX + 1)]) {
    const err = await t.throwsAsync(s.store.commit(group, [entry('a', 0, 1)]), { instanceOf: KafkaError });
    t.is(err!.code, ErrorCode.INVALID_GROUP_ID);
  }
  t.deepEqual(s.store.fetch('g'.repeat(5000), null), []);
  await s.close();
});

test('delete partitions, a group, and a topic across groups', async (t) => {
  const s = await openStore(freshDir());
  await s.store.commit('g1', [entry('a', 0, 1), entry('a', 1, 2), entry('b', 0, 3)]);
  await s.store.commit('g2', [entry('b', 0, 4)]);
  await s.store.commit('g3', [entry('c', 0, 4)]);
  await s.store.deletePartitions('g1', [{ topic: 'a', partition: 1 }]);
  t.deepEqual(s.store.fetch('g1', null).map((o) => `${o.topic}-${o.partition}`), ['a-0', 'b-0']);
  await s.store.deleteTopic('b');
  t.deepEqual(s.store.fetch('g1', null).map((o) => `${o.topic}-${o.partition}`), ['a-0']);
  t.deepEqual(s.store.groups().sort(), ['g1', 'g3'], 'g2 had only topic b');
  await s.store.deletePartitions('g1', [{ topic: 'a', partition: 0 }]);
  t.deepEqual(s.store.groups(), ['g3']);
  await s.store.deleteGroup('g3');
  t.deepEqual(s.store.groups(), []);
  t.deepEqual(s.store.fetch('g3', null), []);
  await s.close();
});

test('expiry drops inactive groups whose last commit and activity are older than the retention', async (t) => {
  const s = await openStore(freshDir());
  const active = new Set(['busy']);
  s.store.setActiveGroupProbe((g) => active.has(g));
  await s.store.commit('old', [entry('a', 0, 1)]);
  await s.store.commit('busy', [entry('a', 0, 1)]);
  s.clock.now += 30_000;
  await s.store.commit('recent', [entry('a', 0, 1)]);
  s.clock.now += 30_000; // 'old' and 'busy' committed 60 s ago, 'recent' 30 s ago
  t.deepEqual(await s.store.expireOffsets(), ['old']);
  t.deepEqual(s.store.groups().sort(), ['busy', 'recent']);

  // 'busy' loses its members now: it was seen active at this pass, so it gets a full retention from here.
  active.clear();
  s.clock.now += 59_999;
  t.deepEqual(await s.store.expireOffsets(), ['recent']);
  s.clock.now += 1;
  t.deepEqual(await s.store.expireOffsets(), ['busy']);
  t.deepEqual(s.store.groups(), []);
  await s.close();
});

test('after a restart every group counts as active at open time; -1 retention never expires', async (t) => {
  const dir = freshDir();
  const clock = { now: 1_000_000 };
  const a = await openStore(dir, {}, clock);
  await a.store.commit('g', [entry('a', 0, 1)]);
  await a.close();
  clock.now += 120_000; // the last commit is two retentions old when the broker restarts
  const b = await openStore(dir, {}, clock);
  t.deepEqual(await b.store.expireOffsets(), []);
  clock.now += 60_000;
  t.deepEqual(await b.store.expireOffsets(), ['g']);
  await b.close();

  const c = await openStore(freshDir(), { offsetsRetentionMs: -1 });
  await c.store.commit('g', [entry('a', 0, 1)]);
  c.clock.now += 1e12;
  t.deepEqual(await c.store.expireOffsets(), []);
  await c.close();
});

test('the expiry timer runs by itself', async (t) => {
  const s = await openStore(freshDir(), { offsetsRetentionCheckIntervalMs: 20, offsetsRetentionMs: 0 });
  await s.store.commit('g', [entry('a', 0, 1)]);
  const deadline = Date.now() + 5000;
  while (s.store.groups().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(s.store.groups(), []);
  await s.close();
});

// A child process commits, reports the acknowledgement, and is killed with SIGKILL at once: every
// acknowledged commit must be there after reopening.
test('acknowledged commits survive kill -9', async (t) => {
  const dir = freshDir();
  const script = `
    import pino from 'pino';
    import { MetadataStore } from ${JSON.stringify(path.resolve('backend/src/log/metadata-store.ts'))};
    import { OffsetStore } from ${JSON.stringify(path.resolve('backend/src/group/offset-store.ts'))};
    const meta = await MetadataStore.open(${JSON.stringify(dir)}, pino({ level: 'silent' }));
    const store = OffsetStore.open(meta.root, { offsetsRetentionMs: -1, offsetsRetentionCheckIntervalMs: 0, offsetMetadataBytesMax: 100, logger: pino({ level: 'silent' }) });
    for (let i = 1; ; i++) {
      await store.commit('g', [{ topic: 't', partition: 0, offset: i, leaderEpoch: 0, metadata: null }]);
      process.stdout.write(i + '\\n');
    }
  `;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let acked = 0;
  await new Promise<void>((resolve) => {
    let buf = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) acked = Math.max(acked, Number(line));
      if (acked >= 50) {
        child.kill('SIGKILL');
        resolve();
      }
    });
  });
  await new Promise((r) => child.once('exit', r));
  const s = await openStore(dir);
  const [o] = s.store.fetch('g', null);
  t.true(o!.offset >= acked, `committed ${o!.offset}, acknowledged ${acked}`);
  await s.close();
});
