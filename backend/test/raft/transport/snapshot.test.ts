import { randomBytes } from 'node:crypto';
import test from 'ava';
import type { Message, NodeId } from '../../../src/raft/core/types.ts';
import { MessageType } from '../../../src/raft/core/types.ts';
import { newMessage } from '../../../src/raft/core/util.ts';
import { MemorySnapshotSink } from '../../../src/raft/transport/snapshot.ts';
import type { SnapshotSinkFactory, SnapshotSource } from '../../../src/raft/transport/snapshot.ts';
import { TEST_LIMITS, WARN, eventually, heartbeat, logsAt, sleep, startCluster, stopAll } from './harness.ts';

const MiB = 1024 * 1024;
const CHUNK = TEST_LIMITS.snapshotChunkBytes!;

function snapMessage(from: NodeId, to: NodeId, data: Uint8Array, index = 1000): Message {
  const conf = { voters: [1, 2], learners: [3], votersOutgoing: [], learnersNext: [], autoLeave: false };
  return newMessage({ type: MessageType.Snap, from, to, term: 5, snapshot: { metadata: { index, term: 4, conf }, data } });
}

function snapsOf(messages: Message[]): Message[] {
  return messages.filter((m) => m.type === MessageType.Snap);
}

interface SlowSink {
  factory: SnapshotSinkFactory;
  chunkSizes: number[];
  aborted: Error[];
  /** Called at the first chunk and at finish. */
  onFirstChunk?: () => void;
  onFinish?: () => void;
}

/** A memory sink that is slow like a disk: every `pauseEvery`-th chunk waits `pauseMs`. */
function slowSink(pauseEvery: number, pauseMs: number): SlowSink {
  const s: SlowSink = { chunkSizes: [], aborted: [], factory: () => undefined as never };
  s.factory = (info) => {
    const mem = new MemorySnapshotSink(info);
    return {
      async write(chunk) {
        if (s.chunkSizes.length === 0) s.onFirstChunk?.();
        s.chunkSizes.push(chunk.length);
        mem.write(chunk);
        if (s.chunkSizes.length % pauseEvery === 0) await sleep(pauseMs);
      },
      finish() {
        s.onFinish?.();
        return mem.finish();
      },
      abort(reason) {
        s.aborted.push(reason);
        mem.abort();
      },
    };
  };
  return s;
}

test('a 20 MiB snapshot streams in chunks on its own connection while heartbeats keep flowing', async (t) => {
  const sink = slowSink(8, 10);
  const nodes = await startCluster(2, { snapshotSink: sink.factory });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  try {
    let receivedAtFirstChunk = -1;
    let receivedAtFinish = -1;
    sink.onFirstChunk = () => void (receivedAtFirstChunk = b.received.length);
    sink.onFinish = () => void (receivedAtFinish = b.received.length);
    const data = randomBytes(20 * MiB);
    a.transport.send(snapMessage(1, 2, data));
    let commit = 0;
    const deadline = Date.now() + 15_000;
    while (snapsOf(b.received).length === 0 && Date.now() < deadline) {
      a.transport.send(heartbeat(1, 2, ++commit));
      await sleep(5);
    }
    const [snap] = snapsOf(b.received);
    t.truthy(snap);
    t.true(Buffer.from(snap!.snapshot!.data).equals(data), 'the delivered snapshot holds every byte');
    t.deepEqual(snap!.snapshot!.metadata, snapMessage(1, 2, data).snapshot!.metadata);
    t.is(snap!.term, 5);
    t.true(sink.chunkSizes.every((n) => n <= CHUNK));
    t.is(sink.chunkSizes.length, (20 * MiB) / CHUNK);
    // Heartbeats were delivered while the chunks were still arriving: they do not wait behind the snapshot.
    t.true(receivedAtFinish - receivedAtFirstChunk >= 5, `heartbeats during the transfer: ${receivedAtFinish - receivedAtFirstChunk}`);
    const heartbeats = b.received.filter((m) => m.type === MessageType.Heartbeat).map((m) => m.commit);
    t.deepEqual(heartbeats, heartbeats.slice().sort((x, y) => x - y), 'heartbeats in order');
    t.true(await eventually(() => a.snapshotStatus.length === 1));
    t.deepEqual(a.snapshotStatus, [{ peer: 2, ok: true }]);
    t.is(a.transport.metrics().snapshotsSent, 1);
    t.is(b.transport.metrics().snapshotsReceived, 1);
    t.true(a.transport.metrics().bytesSent > 20 * MiB);
    t.false(a.transport.metrics().peers['2']!.snapshotInFlight);
  } finally {
    await stopAll(nodes);
  }
});

test('snapshot data can come from a streaming source instead of the message', async (t) => {
  const bytes = 3 * MiB + 12_345;
  const pattern = (i: number): number => (i * 31 + 7) & 0xff;
  let closed = 0;
  // Odd-sized pieces made on demand, as a file reader would yield them; the message carries no data.
  const source = (): SnapshotSource => ({
    bytes,
    async *chunks() {
      for (let at = 0; at < bytes; at += 77_777) {
        const piece = Buffer.allocUnsafe(Math.min(77_777, bytes - at));
        for (let i = 0; i < piece.length; i++) piece[i] = pattern(at + i);
        yield piece;
      }
    },
    close: () => void closed++,
  });
  const nodes = await startCluster(2, { snapshotSource: source });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  try {
    a.transport.send(snapMessage(1, 2, new Uint8Array(0)));
    t.true(await eventually(() => snapsOf(b.received).length === 1));
    const data = Buffer.from(snapsOf(b.received)[0]!.snapshot!.data);
    t.is(data.length, bytes);
    let mismatches = 0;
    for (let i = 0; i < bytes; i++) if (data[i] !== pattern(i)) mismatches++;
    t.is(mismatches, 0);
    t.true(await eventually(() => a.snapshotStatus.length === 1 && closed === 1));
    t.true(a.snapshotStatus[0]!.ok);
  } finally {
    await stopAll(nodes);
  }
});

test('an empty snapshot is delivered too', async (t) => {
  const nodes = await startCluster(2);
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  try {
    a.transport.send(snapMessage(1, 2, new Uint8Array(0), 7));
    t.true(await eventually(() => snapsOf(b.received).length === 1));
    t.is(snapsOf(b.received)[0]!.snapshot!.data.byteLength, 0);
    t.is(snapsOf(b.received)[0]!.snapshot!.metadata.index, 7);
    t.true(await eventually(() => a.snapshotStatus.length === 1));
    t.true(a.snapshotStatus[0]!.ok);
  } finally {
    await stopAll(nodes);
  }
});

test('a snapshot above snapshotBytesMax is refused before its data: the sender learns why, nothing is delivered', async (t) => {
  const nodes = await startCluster(2, { limits: { snapshotBytesMax: 1 * MiB } });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  try {
    a.transport.send(snapMessage(1, 2, randomBytes(2 * MiB)));
    t.true(await eventually(() => a.snapshotStatus.length === 1));
    t.deepEqual(a.snapshotStatus, [{ peer: 2, ok: false }]);
    const refused = logsAt(b.logs, WARN, /raft snapshot refused/);
    t.is(refused.length, 1);
    t.regex(String(refused[0]!.reason), /snapshot of 2097152 bytes exceeds snapshotBytesMax \(1048576 bytes\)/);
    t.regex(String(logsAt(a.logs, WARN, /sending raft snapshot failed/)[0]?.err), /receiver refused the snapshot: snapshot of 2097152 bytes exceeds/);
    t.is(b.transport.metrics().snapshotsReceiveFailed, 1);
    t.is(a.transport.metrics().snapshotsSendFailed, 1);
    // The messages channel is unaffected.
    a.transport.send(heartbeat(1, 2, 9));
    t.true(await eventually(() => b.received.some((m) => m.commit === 9)));
    t.is(snapsOf(b.received).length, 0);
    // An exactly-at-limit snapshot still goes through.
    a.transport.send(snapMessage(1, 2, randomBytes(1 * MiB)));
    t.true(await eventually(() => snapsOf(b.received).length === 1));
  } finally {
    await stopAll(nodes);
  }
});

test('a snapshot not received within snapshotReceiveTimeoutMs fails on both sides', async (t) => {
  const aborted: Error[] = [];
  const stuck: SnapshotSinkFactory = () => ({
    write: () => new Promise<void>(() => undefined), // a disk that never answers
    finish: () => new Uint8Array(0),
    abort: (reason) => void aborted.push(reason),
  });
  // Long enough that even a loaded machine has the SnapBegin and first chunk in hand before the deadline.
  const nodes = await startCluster(2, { snapshotSink: stuck, limits: { snapshotReceiveTimeoutMs: 1000 } });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  try {
    a.transport.send(snapMessage(1, 2, randomBytes(4 * MiB)));
    t.true(await eventually(() => a.snapshotStatus.length === 1));
    t.false(a.snapshotStatus[0]!.ok);
    t.regex(String(logsAt(b.logs, WARN, /raft snapshot refused/)[0]?.reason), /not received within 1000 ms \(snapshotReceiveTimeoutMs\)/);
    t.true(await eventually(() => aborted.length === 1), 'the sink that had started is aborted');
    t.is(snapsOf(b.received).length, 0);
    t.true(a.unreachable.includes(2), 'a failed snapshot also reports the peer unreachable');
  } finally {
    await stopAll(nodes);
  }
});

test('a sender that stops mid-stream: the receiver aborts its sink and delivers nothing', async (t) => {
  const sink = slowSink(1, 5);
  const nodes = await startCluster(2, { snapshotSink: sink.factory });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  try {
    a.transport.send(snapMessage(1, 2, randomBytes(8 * MiB)));
    t.true(await eventually(() => sink.chunkSizes.length >= 3));
    await a.transport.stop();
    t.true(await eventually(() => sink.aborted.length === 1));
    t.true(logsAt(b.logs, WARN, /snapshot stream ended early/).length === 1);
    t.is(b.transport.metrics().snapshotsReceiveFailed, 1);
    t.is(b.transport.metrics().snapshotsReceiving, 0, 'the receive slot is released');
    await sleep(50);
    t.is(snapsOf(b.received).length, 0);
    t.is(a.snapshotStatus.length, 0, 'no callback after stop()');
  } finally {
    await stopAll(nodes);
  }
});

test('one snapshot in flight per peer: a second one fails at once, the first completes', async (t) => {
  const nodes = await startCluster(2, { snapshotSink: slowSink(4, 5).factory });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  try {
    a.transport.send(snapMessage(1, 2, randomBytes(2 * MiB), 10));
    a.transport.send(snapMessage(1, 2, randomBytes(2 * MiB), 11));
    t.true(await eventually(() => a.snapshotStatus.length === 2));
    t.deepEqual(a.snapshotStatus, [{ peer: 2, ok: false }, { peer: 2, ok: true }]);
    t.deepEqual(snapsOf(b.received).map((m) => m.snapshot!.metadata.index), [10]);
  } finally {
    await stopAll(nodes);
  }
});
