// One RaftNode in a child process, driven over IPC by node-crash.test.ts so that it can be killed with SIGKILL
// (no stop(), no flush, no close: whatever the process had not made durable is lost). Not a test file.
//
// argv[2]: JSON ChildConfig. Messages to the parent: { type: 'started' }, { type: 'leader', info },
// { type: 'result', id, ok, value | error }, { type: 'state', list, applied }.
import pino from 'pino';
import { RaftNode } from '../../src/raft/node.ts';
import type { NodeId } from '../../src/raft/node-types.ts';
import { CLUSTER_ID, ListStateMachine, TEST_TIMING } from './node-harness.ts';

export interface ChildConfig {
  id: NodeId;
  dataDir: string;
  smDir: string;
  ports: Record<NodeId, number>;
  entriesBetweenSnapshots: number;
}

export type ParentMessage = { type: 'propose'; id: number; value: string } | { type: 'state' } | { type: 'read'; id: number };

const cfg = JSON.parse(process.argv[2]!) as ChildConfig;
const send = (m: unknown): void => {
  process.send?.(m);
};

const sm = await ListStateMachine.open(cfg.smDir);
const peers = new Map(Object.entries(cfg.ports).map(([id, port]) => [Number(id), { host: '127.0.0.1', port }]));
const node = new RaftNode({
  nodeId: cfg.id,
  clusterId: CLUSTER_ID,
  dataDir: cfg.dataDir,
  peers,
  listen: { host: '127.0.0.1', port: cfg.ports[cfg.id]! },
  initialMembers: Object.keys(cfg.ports).map(Number),
  timing: TEST_TIMING,
  checkQuorum: true,
  preVote: true,
  limits: {
    proposalTimeoutMs: 3000,
    proposalsQueuedMax: 10_000,
    proposalBatchBytesMax: 1024 * 1024,
    maxSizePerMsgBytes: 256 * 1024,
    maxInflightMsgs: 64,
    maxUncommittedBytes: 64 * 1024 * 1024,
  },
  snapshot: { entriesBetweenSnapshots: cfg.entriesBetweenSnapshots, trailingEntriesKept: 10, snapshotsRetained: 2 },
  stateMachine: sm,
  logger: pino({ level: 'error' }, pino.destination(2)),
  transport: { reconnectBackoffMinMs: 10, reconnectBackoffMaxMs: 100, connectTimeoutMs: 1000 },
});
node.onLeaderChange((info) => send({ type: 'leader', info }));
node.onFatal((err) => send({ type: 'fatal', error: String(err) }));
await node.start();
send({ type: 'started', info: node.leader() });

process.on('message', (raw: ParentMessage) => {
  if (raw.type === 'propose') {
    node.propose(new TextEncoder().encode(raw.value)).then(
      (value) => send({ type: 'result', id: raw.id, ok: true, value }),
      (err: Error) => send({ type: 'result', id: raw.id, ok: false, error: `${err.name}: ${err.message}` }),
    );
  } else if (raw.type === 'read') {
    node.readBarrier().then(
      () => send({ type: 'result', id: raw.id, ok: true, value: sm.list() }),
      (err: Error) => send({ type: 'result', id: raw.id, ok: false, error: `${err.name}: ${err.message}` }),
    );
  } else if (raw.type === 'state') {
    send({ type: 'state', list: sm.list(), applied: sm.appliedIndex() });
  }
});
