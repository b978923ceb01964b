// Property: random sequences of appends, clock jumps (time rolls), reopens, torn tails and DeleteRecords keep
// the partition log consistent with a simple in-memory model of its batches.
import test from 'ava';
import fc from 'fast-check';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, KafkaError } from '../../src/protocol/errors.ts';
import { PartitionLog } from '../../src/log/partition-log.ts';
import { batch, captureLogger, Clock, config, segmentFiles, tempDir } from './_helpers.ts';

type Command =
  | { kind: 'append'; batches: Array<{ records: number; pad: number }> }
  | { kind: 'tick'; ms: number }
  | { kind: 'reopen' }
  | { kind: 'tear'; pick: number }
  | { kind: 'deleteRecords'; pick: number }
  | { kind: 'retention' };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('append' as const), batches: fc.array(fc.record({ records: fc.integer({ min: 1, max: 6 }), pad: fc.integer({ min: 0, max: 400 }) }), { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tear' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteRecords' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retention' as const) }) },
);

interface ModelBatch {
  base: number;
  last: number;
  bytes: Buffer;
}

class Model {
  /** Visible batches: at or above the log start offset. */
  batches: ModelBatch[] = [];
  /** Every batch still on disk, including those below the log start offset (DeleteRecords does not rewrite
   *  the active segment, so a torn write's file positions count them). */
  all: ModelBatch[] = [];
  start = 0;
  end = 0;

  containing(offset: number): number {
    return this.batches.findIndex((b) => b.last >= offset);
  }
}

const cfg = config({ segmentBytes: 4000, segmentMs: 2000, indexIntervalBytes: 900, fileDeleteDelayMs: 0, retentionBytes: 8000 });

async function run(commands: Command[], probes: number[]): Promise<void> {
  const dir = tempDir();
  const clock = new Clock();
  const open = (): Promise<PartitionLog> => PartitionLog.open(dir, cfg, { logger: captureLogger().logger, nowMs: clock.nowMs });
  let log = await open();
  const model = new Model();
  let tag = 0;
  for (const cmd of commands) {
    switch (cmd.kind) {
      case 'append': {
        const payload = Buffer.concat(cmd.batches.map((b) => batch(`m${tag++}`, b.records, b.pad)));
        const r = await log.append(payload);
        assert(r.baseOffset === model.end, `append at ${r.baseOffset}, model end ${model.end}`);
        let pos = 0;
        let next = r.baseOffset;
        for (const b of cmd.batches) {
          const size = payload.readInt32BE(pos + 8) + 12;
          const mb = { base: next, last: next + b.records - 1, bytes: Buffer.from(payload.subarray(pos, pos + size)) };
          model.batches.push(mb);
          model.all.push(mb);
          pos += size;
          next += b.records;
        }
        model.end = next;
        break;
      }
      case 'tick':
        clock.now += cmd.ms;
        break;
      case 'reopen':
        await log.close();
        log = await open();
        break;
      case 'tear': {
        // A power loss tears the unsynced tail of the active segment only (sealed segments were fsynced).
        await log.close();
        const files = segmentFiles(dir);
        const active = path.join(dir, files[files.length - 1]!);
        const activeBase = Number(files[files.length - 1]!.slice(0, 20));
        const size = fs.statSync(active).size;
        const keep = cmd.pick % (size + 1);
        fs.truncateSync(active, keep);
        let pos = 0;
        model.all = model.all.filter((b) => {
          if (b.base < activeBase) return true;
          pos += b.bytes.length;
          return pos <= keep;
        });
        model.batches = model.all.filter((b) => b.last >= model.start);
        model.end = model.all.length ? model.all[model.all.length - 1]!.last + 1 : activeBase;
        if (model.end < model.start) {
          model.batches = [];
          model.end = model.start;
        }
        log = await open();
        break;
      }
      case 'deleteRecords': {
        const target = model.start + (cmd.pick % (model.end - model.start + 1));
        const got = await log.deleteRecordsBefore(target);
        model.start = Math.max(model.start, target);
        assert(got === model.start, `deleteRecords returned ${got}, model ${model.start}`);
        break;
      }
      case 'retention': {
        const r = log.applyRetention();
        assert(r.logStartOffset >= model.start, 'retention moved the start backwards');
        model.start = r.logStartOffset;
        break;
      }
    }
    model.batches = model.batches.filter((b) => b.last >= model.start);
    check(log, model, probes);
  }
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

function check(log: PartitionLog, model: Model, probes: number[]): void {
  assert(log.logEndOffset === model.end, `log end ${log.logEndOffset}, model ${model.end}`);
  assert(log.logStartOffset === model.start, `log start ${log.logStartOffset}, model ${model.start}`);
  assert(log.highWatermark === model.end, 'high watermark == log end without flush.messages=1');
  if (model.start > 0) {
    try {
      log.read(model.start - 1, 100);
      assert(false, 'read below the start must fail');
    } catch (err) {
      assert(err instanceof KafkaError && err.code === ErrorCode.OFFSET_OUT_OF_RANGE, String(err));
    }
  }
  for (const p of probes) {
    const offset = model.start + (p % (model.end - model.start + 1));
    const maxBytes = 1 + (p % 3000);
    const r = log.read(offset, maxBytes);
    if (offset >= model.end) {
      assert(r.records.length === 0, `read at the end (${offset}) returned batches`);
      continue;
    }
    const i = model.containing(offset);
    assert(r.records.length >= 1, `read at ${offset} returned nothing`);
    assert(r.records.length === 1 || r.bytes <= maxBytes, 'maxBytes exceeded by more than one batch');
    r.records.forEach((b, k) => assert(b.equals(model.batches[i + k]!.bytes), `batch ${k} of read at ${offset} differs from the model`));
    const next = model.batches[i + r.records.length];
    assert(next === undefined || r.bytes + next.bytes.length > maxBytes, `read at ${offset} stopped early (segments are read through)`);
  }
}

function assert(cond: boolean, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

test('partition log matches an in-memory model under appends, rolls, reopens, torn tails and deletions', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 30 }), fc.array(fc.nat(), { minLength: 4, maxLength: 8 }), run),
    { numRuns: 60, verbose: true, ...(process.env.MODEL_SEED ? { seed: Number(process.env.MODEL_SEED) } : {}) },
  );
  t.pass();
});
