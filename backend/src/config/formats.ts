// Strict convict formats. convict's built-in 'int' parses '19092abc' as 19092 and its boolean treats anything but
// 'false' as true; a broker setting must either mean exactly what was typed or refuse to start.
import net from 'node:net';
import convict from 'convict';
import { parseClusterMembers } from './cluster-members.ts';

const INTEGER = /^[+-]?\d+$/;
// RFC 1123 host names: labels of letters, digits and inner hyphens, at most 253 characters.
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const INT32_MAX = 2147483647;

/** Integer settings carry their bounds in the schema: { format: INT, min, max }. */
export const INT = 'takhin-int';
export const BOOL = 'takhin-bool';
/** A host name or IP address; '' allowed only when the setting says allowEmpty. */
export const HOST = 'takhin-host';
/** A non-empty list of distinct hosts; from env or flags as a comma-separated string. */
export const HOST_LIST = 'takhin-host-list';
export const NON_EMPTY = 'takhin-non-empty-string';
export const STRING = 'takhin-string';
/** Cluster members ("id@raftHost:raftPort@kafkaHost:kafkaPort", see cluster-members.ts); comma-separated in env/flags. */
export const MEMBER_LIST = 'takhin-member-list';
/** host:port ('' allowed): an address to listen on. */
export const HOST_PORT = 'takhin-host-port';

export function isHost(value: string): boolean {
  return net.isIP(value) !== 0 || HOST_NAME.test(value);
}

function fail(message: string): never {
  throw new Error(message);
}

convict.addFormat({
  name: INT,
  coerce: (v: unknown) => (typeof v === 'string' && INTEGER.test(v.trim()) ? Number(v.trim()) : v),
  validate(v: unknown, schema: convict.SchemaObj) {
    const min = schema.min as number;
    const max = schema.max as number;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      fail(`must be an integer from ${min} to ${max}`);
    }
    if (Array.isArray(schema.excluded) && schema.excluded.includes(v)) fail(`must not be ${v}`);
  },
});

convict.addFormat({
  name: BOOL,
  coerce: (v: unknown) => {
    if (typeof v !== 'string') return v;
    const s = v.trim().toLowerCase();
    return s === 'true' ? true : s === 'false' ? false : v;
  },
  validate(v: unknown) {
    if (typeof v !== 'boolean') fail('must be true or false');
  },
});

convict.addFormat({
  name: HOST,
  validate(v: unknown, schema: convict.SchemaObj) {
    if (typeof v !== 'string') fail('must be a string');
    if (v === '' && schema.allowEmpty === true) return;
    if (!isHost(v)) fail('must be a host name or an IP address');
  },
});

convict.addFormat({
  name: HOST_LIST,
  coerce: (v: unknown) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : v,
  validate(v: unknown) {
    if (!Array.isArray(v) || v.length === 0) fail('must be a non-empty list of hosts');
    for (const host of v) {
      if (typeof host !== 'string' || !isHost(host)) fail(`${JSON.stringify(host)} is not a host name or an IP address`);
    }
    if (new Set(v).size !== v.length) fail('lists a host twice');
  },
});

convict.addFormat({
  name: NON_EMPTY,
  validate(v: unknown) {
    if (typeof v !== 'string' || v === '') fail('must be a non-empty string');
  },
});

convict.addFormat({
  name: STRING,
  validate(v: unknown) {
    if (typeof v !== 'string') fail('must be a string');
  },
});

convict.addFormat({
  name: MEMBER_LIST,
  coerce: (v: unknown) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : v,
  validate(v: unknown) {
    if (!Array.isArray(v) || v.some((m) => typeof m !== 'string')) fail('must be a list of "id@raftHost:raftPort@kafkaHost:kafkaPort" strings');
    if (v.length === 0) return; // only raft mode needs members; main checks that
    try {
      parseClusterMembers(v as string[]);
    } catch (err) {
      fail((err as Error).message);
    }
  },
});

/** Parses "host:port" or "[v6]:port"; null when malformed. */
export function parseHostPort(value: string): { host: string; port: number } | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+):(\d{1,5})$/.exec(value);
  if (m === null) return null;
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  const port = Number(m[2]);
  if (!isHost(host) || port > 65535) return null;
  return { host, port };
}

convict.addFormat({
  name: HOST_PORT,
  validate(v: unknown) {
    if (typeof v !== 'string') fail('must be a string');
    if (v !== '' && parseHostPort(v) === null) fail('must be host:port (IPv6 as [addr]:port), or empty');
  },
});
