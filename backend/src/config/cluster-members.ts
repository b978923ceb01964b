// The members of a Raft cluster as the configuration names them: one string per node,
//   "<nodeId>@<raftHost>:<raftPort>@<kafkaHost>:<kafkaPort>[@rack=<rack>]"
//   e.g. "1@127.0.0.1:8001@127.0.0.1:9092" or "1@10.0.0.1:8001@kafka-1.example:9092@rack=eu-west-1a"
// (IPv6 hosts in brackets: "2@[::1]:8002@[::1]:9093"). The Raft address is where peers reach the node; the
// Kafka address is what Metadata advertises to clients for it; the rack (broker.rack) is what Metadata reports
// and what the leader matches a consumer's client.rack against to let it fetch from a nearby follower (KIP-392).
// One string per node keeps a node's id, addresses and rack together, so a list can never pair an id with
// another node's address, and every node knows every node's rack.
import { createHash } from 'node:crypto';
import net from 'node:net';

export interface ClusterMember {
  nodeId: number;
  raftHost: string;
  raftPort: number;
  kafkaHost: string;
  kafkaPort: number;
  /** broker.rack of that node; null: none. */
  rack: string | null;
}

const HOST = String.raw`(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)`;
// Kafka puts no rule on rack names; these characters keep the member string unambiguous and log-safe.
const RACK = String.raw`([A-Za-z0-9._:/-]{1,255})`;
const MEMBER = new RegExp(String.raw`^(\d{1,10})@${HOST}:(\d{1,5})@${HOST}:(\d{1,5})(?:@rack=${RACK})?$`);
const INT32_MAX = 2147483647;

function host(text: string): string {
  if (!text.startsWith('[')) return text;
  const inner = text.slice(1, -1);
  if (net.isIPv6(inner)) return inner;
  throw new Error(`${text} is not an IPv6 address`);
}

function port(text: string, what: string): number {
  const p = Number(text);
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`${what} port ${text} is not in 1..65535`);
  return p;
}

/** Parses one member string; throws an Error that says what is wrong. */
export function parseClusterMember(spec: string): ClusterMember {
  const m = MEMBER.exec(spec.trim());
  if (m === null) throw new Error(`${JSON.stringify(spec)} is not "<nodeId>@<raftHost>:<raftPort>@<kafkaHost>:<kafkaPort>[@rack=<rack>]"`);
  const nodeId = Number(m[1]);
  if (nodeId > INT32_MAX) throw new Error(`node id ${m[1]} is above ${INT32_MAX}`);
  return { nodeId, raftHost: host(m[2]!), raftPort: port(m[3]!, 'raft'), kafkaHost: host(m[4]!), kafkaPort: port(m[5]!, 'kafka'), rack: m[6] ?? null };
}

/** Parses and checks a whole member list: at least one member, distinct ids, distinct Raft addresses. */
export function parseClusterMembers(specs: readonly string[]): ClusterMember[] {
  const members = specs.map(parseClusterMember);
  if (members.length === 0) throw new Error('at least one member is needed');
  const ids = new Set<number>();
  const raft = new Set<string>();
  for (const m of members) {
    if (ids.has(m.nodeId)) throw new Error(`node id ${m.nodeId} is listed twice`);
    const address = `${m.raftHost}:${m.raftPort}`;
    if (raft.has(address)) throw new Error(`raft address ${address} is listed twice`);
    ids.add(m.nodeId);
    raft.add(address);
  }
  return members.sort((a, b) => a.nodeId - b.nodeId);
}

/** host:port, with IPv6 hosts in brackets. */
export function formatHostPort(hostName: string, portNumber: number): string {
  return net.isIPv6(hostName) ? `[${hostName}]:${portNumber}` : `${hostName}:${portNumber}`;
}

/**
 * The cluster id when none is configured: derived from the member ids, so every node of the cluster computes the
 * same one (Kafka's 22-character base64url UUID form, version 4 bits set, never starting with '-').
 */
export function deriveClusterId(members: readonly ClusterMember[]): string {
  const ids = members.map((m) => m.nodeId).sort((a, b) => a - b).join(',');
  for (let salt = 0; ; salt++) {
    const id = createHash('sha256').update(`takhin-cluster:${ids}:${salt}`).digest().subarray(0, 16);
    id[6] = (id[6]! & 0x0f) | 0x40;
    id[8] = (id[8]! & 0x3f) | 0x80;
    const text = id.toString('base64url');
    if (!text.startsWith('-')) return text;
  }
}
