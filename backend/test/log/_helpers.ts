// Shared helpers for the partition log tests: temp dirs, a captured pino logger, batches with known content.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { buildRecordBatch } from '../../src/protocol/records/builder.ts';
import type { BuildBatchOptions } from '../../src/protocol/records/builder.ts';
import { DEFAULT_LOG_CONFIG } from '../../src/log/log-config.ts';
import type { LogConfig } from '../../src/log/log-config.ts';
import { PartitionLog } from '../../src/log/partition-log.ts';

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'takhin-log-'));
}

export interface CapturedLogger {
  logger: Logger;
  lines: Array<Record<string, unknown>>;
}

/** A real pino logger writing JSON lines into memory, so tests can assert what was logged. */
export function captureLogger(): CapturedLogger {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

export class Clock {
  now = 1_700_000_000_000;
  readonly nowMs = (): number => this.now;
}

export function config(overrides: Partial<LogConfig> = {}): LogConfig {
  return { ...DEFAULT_LOG_CONFIG, ...overrides };
}

export async function openLog(dir: string, cfg: LogConfig, clock = new Clock(), captured = captureLogger()): Promise<PartitionLog> {
  return PartitionLog.open(dir, cfg, { logger: captured.logger, nowMs: clock.nowMs });
}

/** A batch of `count` records whose values name the batch tag and record index, with a payload of `pad` bytes. */
export function batch(tag: string, count = 1, pad = 0, options: BuildBatchOptions = {}): Buffer {
  return buildRecordBatch(
    Array.from({ length: count }, (_, i) => ({ key: `${tag}-${i}`, value: `${tag}-${i}:${'x'.repeat(pad)}` })),
    { timestamp: 1_700_000_000_000, ...options },
  );
}

export interface StoredBatch {
  baseOffset: number;
  lastOffset: number;
  bytes: Buffer;
}

/** Appends and remembers the stored bytes (the log patches offsets into the payload in place). */
export async function appendAll(log: PartitionLog, payloads: Buffer[]): Promise<StoredBatch[]> {
  const stored: StoredBatch[] = [];
  for (const p of payloads) {
    const r = await log.append(p);
    stored.push({ baseOffset: r.baseOffset, lastOffset: r.lastOffset, bytes: Buffer.from(p) });
  }
  return stored;
}

/** Every batch from `from` to the high watermark, by repeated reads. */
export function readAll(log: PartitionLog, from = log.logStartOffset, maxBytes = 64 * 1024): Buffer[] {
  const out: Buffer[] = [];
  let offset = from;
  while (offset < log.highWatermark) {
    const r = log.read(offset, maxBytes);
    if (r.records.length === 0) throw new Error(`read at ${offset} returned nothing below the high watermark`);
    out.push(...r.records);
    const last = r.records[r.records.length - 1]!;
    offset = Number(last.readBigInt64BE(0)) + last.readInt32BE(23) + 1;
  }
  return out;
}

export function segmentFiles(dir: string, suffix = '.log'): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith(suffix)).sort();
}
