import net from 'node:net';
import test from 'ava';
import type { Message } from '../../../src/raft/core/types.ts';
import { MessageType } from '../../../src/raft/core/types.ts';
import { newMessage } from '../../../src/raft/core/util.ts';
import { encodeMessage } from '../../../src/raft/transport/codec.ts';
import { FRAME_OVERHEAD_BYTES, FrameKind, clusterTagOf, sealFrame } from '../../../src/raft/transport/frame.ts';
import {
  CLUSTER,
  RawPeer,
  TEST_LIMITS,
  WARN,
  app,
  eventually,
  freePort,
  heartbeat,
  logsAt,
  sleep,
  startCluster,
  startNode,
  stopAll,
  tick,
} from './harness.ts';

const HOST = '127.0.0.1';
const TEST_FRAME_BYTES_MAX = TEST_LIMITS.frameBytesMax!;

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function frameOf(m: Message, sender = m.from, clusterId = CLUSTER): Buffer {
  return sealFrame(encodeMessage(m), FrameKind.Message, clusterTagOf(clusterId), sender);
}

function listen(server: net.Server, port = 0): Promise<number> {
  return new Promise((resolve) => server.listen(port, HOST, () => resolve((server.address() as net.AddressInfo).port)));
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

test('three transports exchange messages, in order per peer', async (t) => {
  const nodes = await startCluster(3);
  try {
    const N = 400;
    for (let i = 1; i <= N; i++) {
      for (const a of nodes) {
        for (const b of nodes) if (a !== b) a.transport.send(app(a.id, b.id, i, Buffer.from(`${a.id}->${b.id}#${i}`)));
      }
      // Several ticks: the first messages wait for the handshake, later ones leave in per-tick batches.
      if (i % 37 === 0) await tick();
    }
    t.true(await eventually(() => nodes.every((n) => n.received.length === 2 * N)));
    for (const b of nodes) {
      for (const a of nodes) {
        if (a === b) continue;
        const fromA = b.received.filter((m) => m.from === a.id);
        t.deepEqual(fromA.map((m) => m.index), range(1, N));
        t.true(fromA.every((m) => m.to === b.id && m.type === MessageType.App));
        t.is(Buffer.from(fromA[7]!.entries[0]!.data).toString(), `${a.id}->${b.id}#8`);
      }
      const m = b.transport.metrics();
      t.is(m.messagesSent, 2 * N);
      t.is(m.messagesReceived, 2 * N);
      t.is(m.messagesDropped, 0);
      t.true(m.bytesSent > 2 * N * 30 && m.bytesReceived >= m.bytesSent * 0.5);
      t.true(Object.values(m.peers).every((p) => p.connected && p.queuedMessages === 0));
    }
    t.true(nodes.every((n) => n.unreachable.length === 0));
  } finally {
    await stopAll(nodes);
  }
});

test('messages to this node are delivered locally, not over TCP', async (t) => {
  const [a] = await startCluster(1);
  try {
    a!.transport.send(heartbeat(1, 1, 5));
    a!.transport.send(heartbeat(1, 1, 6));
    t.is(a!.received.length, 0, 'delivered in a later tick, never inside send()');
    t.true(await eventually(() => a!.received.length === 2));
    t.deepEqual(a!.received.map((m) => m.commit), [5, 6]);
    const m = a!.transport.metrics();
    t.is(m.messagesLocal, 2);
    t.is(m.bytesSent, 0);
    t.is(m.connectAttempts, 0);
  } finally {
    await a!.transport.stop();
  }
});

test('local message types throw; messages to unknown nodes are dropped and counted', async (t) => {
  const [a] = await startCluster(1);
  try {
    t.throws(() => a!.transport.send(newMessage({ type: MessageType.Hup, to: 2 })), { instanceOf: RangeError });
    a!.transport.send(heartbeat(1, 42, 1));
    t.is(a!.transport.metrics().messagesDropped, 1);
  } finally {
    await a!.transport.stop();
  }
});

test('a message larger than frameBytesMax is dropped with a warning; a forwarded TransferLeader keeps its from', async (t) => {
  const nodes = await startCluster(2);
  const [one, two] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  try {
    two.transport.send(app(2, 1, 1, Buffer.alloc(TEST_FRAME_BYTES_MAX)));
    const m = two.transport.metrics();
    t.is(m.messagesTooLarge, 1);
    t.is(m.messagesDropped, 1);
    t.is(logsAt(two.logs, WARN, /larger than frameBytesMax/).length, 1);
    // A follower forwards a transfer request naming the transferee (node 3) in `from`.
    two.transport.send(newMessage({ type: MessageType.TransferLeader, from: 3, to: 1, term: 1 }));
    two.transport.send(app(2, 1, 2, Buffer.alloc(TEST_FRAME_BYTES_MAX - 100)));
    t.true(await eventually(() => one.received.length === 2));
    t.deepEqual(one.received.map((x) => [x.type, x.from]), [[MessageType.TransferLeader, 3], [MessageType.App, 2]]);
  } finally {
    await stopAll(nodes);
  }
});

test('a peer that is down: bounded queue, drops counted, unreachable reported, redials with backoff until it is up', async (t) => {
  // A listener that accepts and closes at once: every dial fails fast, and the accept times show the backoff.
  const accepts: number[] = [];
  const fake = net.createServer((s) => {
    accepts.push(performance.now());
    s.destroy();
  });
  const port = await listen(fake);
  const a = await startNode(1, {
    random: () => 0.9999, // no jitter: delays are the base 20, 40, 80, 160, 160 ms
    limits: { peerQueueMessagesMax: 50, reconnectBackoffMinMs: 20, reconnectBackoffMaxMs: 160 },
  });
  try {
    a.transport.addPeer(2, { host: HOST, port });
    for (let i = 1; i <= 500; i++) a.transport.send(app(1, 2, i));
    let m = a.transport.metrics();
    t.is(m.peers['2']!.queuedMessages, 50);
    t.is(m.peers['2']!.dropped, 450);
    t.is(m.messagesDropped, 450);
    t.true(await eventually(() => a.unreachable.length > 0));
    await sleep(800);
    await close(fake);
    const gaps = accepts.slice(1).map((at, i) => at - accepts[i]!);
    // Timers never fire early, so the backoff shows as lower bounds on the gaps (a loaded machine only adds).
    // Without backoff there would be hundreds of dials; with it at most 20+40+80+160+160+160+160 fit in 800 ms.
    t.true(accepts.length >= 3 && accepts.length <= 8, `dials in 800 ms: ${accepts.length}`);
    const expected = [20, 40, 80, 160, 160, 160, 160];
    t.true(gaps.every((g, i) => g >= expected[i]! - 2), `gaps ${gaps.map(Math.round).join(',')}`);
    t.true(a.unreachable.every((p) => p === 2));
    // One report per tick however many drops: the 450 drops of one tick made one report.
    t.true(a.unreachable.length <= accepts.length + 2, `reports ${a.unreachable.length}`);
    m = a.transport.metrics();
    t.true(m.connectFailures >= accepts.length);
    t.is(m.peers['2']!.queuedMessages, 50, 'the queue holds its 50 messages while the peer is down');

    // The peer comes up on that port: the queued messages arrive, in order.
    const b = await startNode(2, { listenPort: port, peers: new Map([[1, { host: HOST, port: a.port }]]) });
    try {
      t.true(await eventually(() => b.received.length === 50));
      t.deepEqual(b.received.map((msg) => msg.index), range(1, 50));
      m = a.transport.metrics();
      t.is(m.reconnects, 1);
      t.true(m.peers['2']!.connected);
      t.is(m.peers['2']!.failures, 0);
    } finally {
      await b.transport.stop();
    }
  } finally {
    await a.transport.stop();
  }
});

test('a peer that stops reading: held bytes stay under peerQueueBytesMax, then the stalled connection is closed', async (t) => {
  const peerQueueBytesMax = 1024 * 1024;
  // Answers the handshake as node 2, then never reads again.
  const fake = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => {
      s.write(sealFrame(Buffer.alloc(FRAME_OVERHEAD_BYTES), FrameKind.HelloAck, clusterTagOf(CLUSTER), 2));
      s.pause();
    });
  });
  const port = await listen(fake);
  const a = await startNode(1, { limits: { peerQueueBytesMax, writeStallTimeoutMs: 400 } });
  try {
    a.transport.addPeer(2, { host: HOST, port });
    t.true(await eventually(() => a.transport.metrics().peers['2']!.connected));
    const data = Buffer.alloc(64 * 1024, 7);
    let heldMax = 0;
    // Half the queue per tick: drops start only once the kernel buffers are full and the socket holds bytes.
    for (let round = 0; round < 400 && a.transport.metrics().messagesDropped === 0; round++) {
      for (let i = 0; i < 8; i++) a.transport.send(app(1, 2, round * 8 + i, data));
      heldMax = Math.max(heldMax, a.transport.metrics().peers['2']!.queuedBytes);
      await tick();
      heldMax = Math.max(heldMax, a.transport.metrics().peers['2']!.queuedBytes);
    }
    t.true(a.transport.metrics().messagesDropped > 0, 'the kernel buffers filled and messages were dropped');
    t.true(heldMax <= peerQueueBytesMax, `held ${heldMax} bytes`);
    t.true(heldMax > peerQueueBytesMax / 2, `held ${heldMax} bytes`);
    t.true(await eventually(() => logsAt(a.logs, WARN, /stopped reading/).length > 0, 3000));
    t.true(await eventually(() => a.transport.metrics().disconnects >= 1));
    t.true(a.unreachable.includes(2));
  } finally {
    await a.transport.stop();
    fake.close();
  }
});

interface BadCase {
  name: string;
  reason: RegExp;
  act(raw: RawPeer): Promise<void>;
}

const GOOD = (commit: number): Buffer => frameOf(heartbeat(4, 1, commit));

const BAD_CASES: BadCase[] = [
  { name: 'wrong cluster id', reason: /wrong cluster id "other"/, act: async (raw) => void (await raw.hello({ nodeId: 4, targetId: 1, clusterId: 'other' })) },
  { name: 'unknown node', reason: /node 9 is not a member/, act: async (raw) => void (await raw.hello({ nodeId: 9, targetId: 1 })) },
  { name: 'wrong target', reason: /node 4 meant to reach node 5/, act: async (raw) => void (await raw.hello({ nodeId: 4, targetId: 5 })) },
  { name: 'message before the handshake', reason: /not a handshake/, act: async (raw) => raw.write(GOOD(1)) },
  { name: 'bytes that are not frames', reason: /outside 18\.\./, act: async (raw) => raw.write(Buffer.from('GET / HTTP/1.1\r\n\r\n')) },
  {
    name: 'corrupt frame (bad CRC) between good ones',
    reason: /CRC mismatch/,
    act: async (raw) => {
      await raw.hello({ nodeId: 4, targetId: 1 });
      const bad = GOOD(2);
      bad[bad.length - 1]! ^= 0x40;
      raw.write(Buffer.concat([GOOD(1), bad, GOOD(3)]));
    },
  },
  {
    name: 'message addressed to another node',
    reason: /Heartbeat addressed to node 3/,
    act: async (raw) => {
      await raw.hello({ nodeId: 4, targetId: 1 });
      raw.write(frameOf(heartbeat(4, 3, 1)));
    },
  },
  {
    name: 'message claiming another sender',
    reason: /Heartbeat claims to come from node 2/,
    act: async (raw) => {
      await raw.hello({ nodeId: 4, targetId: 1 });
      raw.write(frameOf(heartbeat(2, 1, 1), 4));
    },
  },
  {
    name: 'frame of another cluster after the handshake',
    reason: /cluster tag/,
    act: async (raw) => {
      await raw.hello({ nodeId: 4, targetId: 1 });
      raw.write(frameOf(heartbeat(4, 1, 1), 4, 'other'));
    },
  },
  {
    name: 'Snap message on the messages channel',
    reason: /Snap message on the messages channel/,
    act: async (raw) => {
      await raw.hello({ nodeId: 4, targetId: 1 });
      const conf = { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
      raw.write(frameOf(newMessage({ type: MessageType.Snap, from: 4, to: 1, snapshot: { metadata: { index: 1, term: 1, conf }, data: new Uint8Array(1) } })));
    },
  },
];

test('bad handshakes and bad frames are rejected: warned, closed, nothing delivered, other peers unaffected', async (t) => {
  const nodes = await startCluster(3);
  const [one, two] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  // Node 4 is a member that is not running: the raw sockets speak for it.
  one.transport.addPeer(4, { host: HOST, port: await freePort() });
  try {
    for (const [i, bad] of BAD_CASES.entries()) {
      const warnsBefore = logsAt(one.logs, WARN, /rejected raft connection/).length;
      const raw = await RawPeer.connect(one.port);
      await bad.act(raw);
      t.true(await raw.closedWithin(2000), `${bad.name}: connection closed`);
      const warns = logsAt(one.logs, WARN, /rejected raft connection/).slice(warnsBefore);
      t.is(warns.length, 1, bad.name);
      t.regex(String(warns[0]?.reason), bad.reason, bad.name);
      t.regex(String(warns[0]?.remote), /^127\.0\.0\.1:\d+$/);
      // Node 2's connection keeps working.
      two.transport.send(heartbeat(2, 1, 100 + i));
      t.true(await eventually(() => one.received.some((m) => m.from === 2 && m.commit === 100 + i)), bad.name);
    }
    // Only the good heartbeat in front of the corrupt frame was delivered; the one behind it never was.
    t.deepEqual(one.received.filter((m) => m.from !== 2 && m.from !== 3).map((m) => m.commit), [1]);
    t.is(one.transport.metrics().inboundRejected, BAD_CASES.length);
    t.true(one.unreachable.every((p) => p === 4), 'only the member that is not running is unreachable');
    t.true(nodes.slice(1).every((n) => n.unreachable.length === 0));
  } finally {
    await stopAll(nodes);
  }
});

test('an inbound connection that sends no handshake is closed after handshakeTimeoutMs', async (t) => {
  const a = await startNode(1, { limits: { handshakeTimeoutMs: 150 } });
  try {
    const raw = await RawPeer.connect(a.port);
    t.false(await raw.closedWithin(50));
    t.true(await raw.closedWithin(1000));
    t.regex(String(logsAt(a.logs, WARN, /rejected raft connection/)[0]?.reason), /no handshake within 150 ms \(handshakeTimeoutMs\)/);
  } finally {
    await a.transport.stop();
  }
});

test('inbound connections beyond inboundConnectionsMax are closed at once', async (t) => {
  const a = await startNode(1, { limits: { inboundConnectionsMax: 2 } });
  const raws: RawPeer[] = [];
  try {
    for (let i = 0; i < 3; i++) raws.push(await RawPeer.connect(a.port));
    t.true(await raws[2]!.closedWithin(1000));
    t.false(await raws[0]!.closedWithin(50));
    t.is(logsAt(a.logs, WARN, /too many inbound raft connections/).length, 1);
  } finally {
    for (const r of raws) r.destroy();
    await a.transport.stop();
  }
});

test('a transport of another cluster cannot reach us; it reports the peer unreachable', async (t) => {
  const a = await startNode(1);
  const stranger = await startNode(2, { clusterId: 'other-cluster', peers: new Map([[1, { host: HOST, port: a.port }]]) });
  a.transport.addPeer(2, { host: HOST, port: stranger.port });
  try {
    stranger.transport.send(heartbeat(2, 1, 1));
    t.true(await eventually(() => stranger.unreachable.includes(1)));
    t.true(await eventually(() => logsAt(a.logs, WARN, /rejected raft connection/).some((l) => /wrong cluster id "other-cluster"/.test(String(l.reason)))));
    await sleep(50);
    t.is(a.received.length, 0);
    t.is(stranger.received.length, 0);
    t.false(a.transport.metrics().peers['2']!.connected, 'our own dial to it is refused too');
  } finally {
    await stopAll([a, stranger]);
  }
});

test('removePeer closes both directions and refuses the node; addPeer lets it back', async (t) => {
  const nodes = await startCluster(2);
  const [one, two] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  try {
    two.transport.send(heartbeat(2, 1, 1));
    t.true(await eventually(() => one.received.length === 1));
    one.transport.removePeer(2);
    t.false('2' in one.transport.metrics().peers);
    one.transport.send(heartbeat(1, 2, 1));
    t.is(one.transport.metrics().messagesDropped, 1);
    // Node 2 loses its connection, redials, and is refused as a non-member.
    t.true(await eventually(() => two.unreachable.includes(1)));
    t.true(await eventually(() => logsAt(one.logs, WARN, /rejected raft connection/).some((l) => /node 2 is not a member/.test(String(l.reason)))));
    two.transport.send(heartbeat(2, 1, 2));
    await sleep(100);
    t.is(one.received.length, 1);

    one.transport.addPeer(2, { host: HOST, port: two.port });
    two.transport.send(heartbeat(2, 1, 3));
    one.transport.send(heartbeat(1, 2, 3));
    t.true(await eventually(() => one.received.some((m) => m.commit === 3) && two.received.some((m) => m.commit === 3)));
  } finally {
    await stopAll(nodes);
  }
});

function handles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) {
    if (r === 'TCPSocketWrap' || r === 'TCPServerWrap' || r === 'Timeout' || r === 'Immediate') counts[r] = (counts[r] ?? 0) + 1;
  }
  return counts;
}

// Serial: runs before the concurrent tests of this file, so no other test's sockets or timers are counted.
test.serial('stop() closes every socket and clears every timer; nothing is sent or called afterwards', async (t) => {
  const before = handles();
  // Timers longer than the wait below: one left armed by stop() would still be counted at the end.
  const nodes = await startCluster(3, { limits: { reconnectBackoffMinMs: 5000, reconnectBackoffMaxMs: 5000 } });
  // A member that is down keeps a backoff timer armed; a stopped transport must clear it.
  nodes[0]!.transport.addPeer(4, { host: HOST, port: await freePort() });
  for (const a of nodes) for (const b of nodes) if (a !== b) a.transport.send(heartbeat(a.id, b.id, 1));
  t.true(await eventually(() => nodes.every((n) => n.received.length === 2)));
  t.true(await eventually(() => nodes[0]!.unreachable.includes(4)));
  const during = handles();
  t.true((during.TCPSocketWrap ?? 0) >= 12 && (during.Timeout ?? 0) > (before.Timeout ?? 0), JSON.stringify(during));
  const reports = nodes[0]!.unreachable.length;

  await stopAll(nodes);
  t.true(await eventually(() => JSON.stringify(handles()) === JSON.stringify(before), 2000), JSON.stringify({ before, after: handles() }));
  nodes[0]!.transport.send(heartbeat(1, 2, 2));
  await sleep(100);
  t.is(nodes[1]!.received.length, 2);
  t.is(nodes[0]!.unreachable.length, reports);
  t.is(nodes[0]!.transport.metrics().messagesDropped, 1);
  await nodes[0]!.transport.stop(); // idempotent
});
