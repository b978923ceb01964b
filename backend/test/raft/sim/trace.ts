// What happened during a run, for the failure report and --verbose. Records are kept raw in a ring and
// formatted only when printed, so tracing costs little in campaigns.

import { MessageType, type Message } from '../../../src/raft/core/types.ts';

interface TraceRecord {
  timeUs: number;
  node: number;
  what: string;
  detail: unknown;
}

export function formatMessage(m: Message): string {
  let s = `${MessageType[m.type]} ${m.from}->${m.to} t${m.term}`;
  if (m.logTerm !== 0 || m.index !== 0) s += ` log ${m.index}/${m.logTerm}`;
  if (m.entries.length > 0) {
    s += ` ents ${m.entries[0]!.index}..${m.entries[m.entries.length - 1]!.index}`;
  }
  if (m.commit !== 0) s += ` commit ${m.commit}`;
  if (m.reject) s += ` REJECT hint ${m.rejectHint}`;
  if (m.snapshot) s += ` snap ${m.snapshot.metadata.index}/${m.snapshot.metadata.term}`;
  return s;
}

function formatDetail(detail: unknown): string {
  if (detail === undefined) return '';
  if (typeof detail === 'string') return detail;
  if (typeof detail === 'object' && detail !== null && 'type' in detail && 'entries' in detail) {
    return formatMessage(detail as Message);
  }
  return JSON.stringify(detail);
}

export function formatTime(us: number): string {
  return `${(us / 1000).toFixed(3).padStart(10)}ms`;
}

export class Trace {
  private readonly ring: (TraceRecord | undefined)[];
  private next = 0;
  private count = 0;

  /**
   * capacity: records kept for the failure report (0 = none).
   * echo: also print every record as it happens (--verbose).
   */
  constructor(
    capacity: number,
    private readonly echo?: (line: string) => void,
  ) {
    this.ring = new Array<TraceRecord | undefined>(capacity);
  }

  add(timeUs: number, node: number, what: string, detail?: unknown): void {
    const record = { timeUs, node, what, detail };
    if (this.echo) this.echo(format(record));
    if (this.ring.length === 0) return;
    this.ring[this.next] = record;
    this.next = (this.next + 1) % this.ring.length;
    this.count++;
  }

  /** The last `n` records, oldest first, formatted. */
  tail(n: number): string[] {
    const kept = Math.min(this.count, this.ring.length, n);
    const out: string[] = [];
    for (let i = kept; i > 0; i--) {
      const at = (this.next - i + this.ring.length) % this.ring.length;
      out.push(format(this.ring[at]!));
    }
    return out;
  }
}

function format(r: TraceRecord): string {
  const who = r.node > 0 ? `n${r.node}` : '--';
  return `${formatTime(r.timeUs)} ${who.padEnd(3)} ${r.what.padEnd(14)} ${formatDetail(r.detail)}`;
}
