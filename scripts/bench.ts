// Benchmark: drives a broker with librdkafka (kcat, python3-confluent-kafka) and kafkajs and prints produce and
// consume throughput and produce latency for 100 B and 1 KiB records. When ../shared/bench is present the same
// librdkafka produce load also runs against librdkafka's in-memory mock broker (reference-broker.c), alternating
// with ours, and the ratio ours/reference is printed. With --soak-seconds N it then produces for N seconds and
// samples the broker's RSS to show whether memory stays flat.
//
//   npm run bench                                  start a broker in a temp dir and measure it
//   npm run bench -- --bootstrap 127.0.0.1:9092    measure a running broker (no RSS figures)
//   npm run bench -- --rounds 5 --soak-seconds 300
//   npm run bench -- --bootstrap 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094 --acks all --no-reference
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { REPO_ROOT, startBroker, type BrokerProcess } from '../integration/helpers/broker.ts';

const { values: opts } = parseArgs({
  options: {
    bootstrap: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    'soak-seconds': { type: 'string', default: '0' },
    'records-100': { type: 'string', default: '200000' },
    'records-1k': { type: 'string', default: '100000' },
    'kafkajs-records': { type: 'string', default: '50000' },
    'latency-sends': { type: 'string', default: '2000' },
    'no-reference': { type: 'boolean', default: false },
    acks: { type: 'string', default: '1' },
  },
});

const ROUNDS = Number(opts.rounds);
/** acks for every produce: 1 (default) or -1/all (cluster figures). */
const ACKS = opts.acks === 'all' ? -1 : Number(opts.acks);
const SOAK_SECONDS = Number(opts['soak-seconds']);
const SIZES = [
  { label: '100 B', bytes: 100, records: Number(opts['records-100']) },
  { label: '1 KiB', bytes: 1024, records: Number(opts['records-1k']) },
];
const SHARED_BENCH = resolve(REPO_ROOT, '..', 'shared', 'bench');
/** One kcat run may take at most this long (ms). */
const KCAT_TIMEOUT_MS = 120_000;

const isTty = process.stderr.isTTY;
function progress(msg: string): void {
  if (isTty) process.stderr.write(`\r\x1b[2K${msg}`);
  else process.stderr.write(`${msg}\n`);
}
function progressDone(): void {
  if (isTty) process.stderr.write('\r\x1b[2K');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
function fmtRate(records: number, bytes: number, seconds: number): string {
  return `${Math.round(records / seconds).toLocaleString('en-US')} rec/s, ${(bytes / seconds / 1e6).toFixed(1)} MB/s`;
}

function run(cmd: string, args: string[], input?: string): Promise<{ seconds: number; stdout: string }> {
  return new Promise((ok, fail) => {
    const t0 = process.hrtime.bigint();
    const child = execFile(cmd, args, { timeout: KCAT_TIMEOUT_MS, maxBuffer: 1024 * 1024 * 1024 }, (err, stdout, stderr) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (err) fail(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else ok({ seconds, stdout });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

function recordFile(dir: string, bytes: number, count: number): string {
  const path = join(dir, `records-${bytes}-${count}.txt`);
  if (!existsSync(path)) {
    const line = 'x'.repeat(bytes - 1) + '\n';
    writeFileSync(path, line.repeat(count));
  }
  return path;
}

/** librdkafka produce of a whole file with acks=1 to partition 0: the load compared with the reference. */
async function kcatProduce(bootstrap: string, topic: string, file: string): Promise<number> {
  const r = await run('kcat', ['-b', bootstrap, '-P', '-t', topic, '-p', '0', '-l', '-X', `acks=${ACKS}`, file]);
  return r.seconds;
}

function startReference(dir: string): { child: ChildProcess; bootstrap: Promise<string> } | null {
  const src = join(SHARED_BENCH, 'reference-broker.c');
  if (opts['no-reference'] || !existsSync(src)) return null;
  const bin = join(dir, 'reference-broker');
  try {
    execFileSync('cc', ['-O2', '-o', bin, src, '-lrdkafka'], { stdio: 'pipe' });
  } catch (err) {
    console.error(`reference broker not built (needs cc and librdkafka-dev): ${(err as Error).message.split('\n')[0]}`);
    return null;
  }
  const child = spawn(bin, ['1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const bootstrap = new Promise<string>((ok) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n')[0];
      if (buf.includes('\n') && line) ok(line.trim());
    });
  });
  return { child, bootstrap };
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

async function kafkajsProduce(bootstrap: string, topic: string, bytes: number, records: number): Promise<{ seconds: number }> {
  const kafka = new Kafka({ clientId: 'bench', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const value = Buffer.alloc(bytes, 120);
  const batch = Array.from({ length: 1000 }, () => ({ value, partition: 0 }));
  const t0 = process.hrtime.bigint();
  // Several sends in flight, like an application producing from many places at once.
  const inFlight = 8;
  let sent = 0;
  async function worker(): Promise<void> {
    while (sent < records) {
      const n = Math.min(batch.length, records - sent);
      sent += n;
      await producer.send({ topic, acks: ACKS, messages: n === batch.length ? batch : batch.slice(0, n) });
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await producer.disconnect();
  return { seconds };
}

/** Latency of one produce request carrying one record, acks=1, one at a time (no queueing in the client). */
async function kafkajsLatency(bootstrap: string, topic: string, bytes: number, sends: number): Promise<number[]> {
  const kafka = new Kafka({ clientId: 'bench-lat', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const value = Buffer.alloc(bytes, 121);
  const lat: number[] = [];
  for (let i = 0; i < sends; i++) {
    const t0 = process.hrtime.bigint();
    await producer.send({ topic, acks: ACKS, messages: [{ value, partition: 0 }] });
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (i % 200 === 0) progress(`kafkajs latency ${bytes} B: ${i}/${sends}`);
  }
  await producer.disconnect();
  return lat;
}

async function kcatConsume(bootstrap: string, topic: string): Promise<{ seconds: number; records: number }> {
  const r = await run('kcat', ['-b', bootstrap, '-C', '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%o\n']);
  return { seconds: r.seconds, records: r.stdout.split('\n').length - 1 };
}

async function kafkajsConsume(bootstrap: string, topic: string, records: number): Promise<{ seconds: number }> {
  const kafka = new Kafka({ clientId: 'bench-consume', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `bench-${topic}-${Date.now()}`, maxBytesPerPartition: 4 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const t0 = process.hrtime.bigint();
  let seen = 0;
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`kafkajs consumed only ${seen}/${records} in 120 s`)), 120_000);
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          seen += batch.messages.length;
          if (seen >= records) {
            clearTimeout(timer);
            ok();
          }
        },
      })
      .catch(fail);
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await consumer.disconnect();
  return { seconds };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'takhin-bench-'));
  let broker: BrokerProcess | null = null;
  let bootstrap = opts.bootstrap;
  if (!bootstrap) {
    progress('starting broker');
    // Retention is checked often so the soak topic (retention.bytes below) keeps the disk bounded.
    broker = await startBroker({ env: { TAKHIN_LOG_LEVEL: 'warn' }, args: ['--log-retention-check-interval-ms', '5000'] });
    bootstrap = broker.bootstrap;
  }
  const reference = startReference(work);
  const refBootstrap = reference ? await reference.bootstrap : null;
  const lines: string[] = [];
  const say = (s: string) => {
    progressDone();
    console.log(s);
    lines.push(s);
  };
  say(`takhin-ts benchmark, ${new Date().toISOString()}, broker ${bootstrap}${refBootstrap ? `, reference ${refBootstrap}` : ''}, ${ROUNDS} rounds`);

  try {
    for (const size of SIZES) {
      const file = recordFile(work, size.bytes, size.records);
      const ours: number[] = [];
      const ref: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        progress(`kcat produce ${size.label}: round ${round + 1}/${ROUNDS} (ours)`);
        ours.push(await kcatProduce(bootstrap, `bench-kcat-${size.bytes}`, file));
        if (refBootstrap) {
          progress(`kcat produce ${size.label}: round ${round + 1}/${ROUNDS} (reference)`);
          ref.push(await kcatProduce(refBootstrap, `bench-kcat-${size.bytes}`, file));
        }
      }
      const total = size.records * size.bytes;
      const o = median(ours);
      say(`librdkafka (kcat -P) produce ${size.label} x ${size.records}, acks=${ACKS}: ours ${fmtRate(size.records, total, o)} (median ${o.toFixed(3)} s)`);
      if (refBootstrap) {
        const r = median(ref);
        say(`  reference ${fmtRate(size.records, total, r)} (median ${r.toFixed(3)} s); ratio ours/reference = ${(r / o).toFixed(2)}`);
      }

      progress(`kcat consume ${size.label}`);
      const c = await kcatConsume(bootstrap, `bench-kcat-${size.bytes}`);
      say(`librdkafka (kcat -C) consume ${size.label}: ${fmtRate(c.records, c.records * size.bytes, c.seconds)} (${c.records} records)`);

      const kjsRecords = Number(opts['kafkajs-records']);
      progress(`kafkajs produce ${size.label}`);
      const kp = await kafkajsProduce(bootstrap, `bench-kjs-${size.bytes}`, size.bytes, kjsRecords);
      say(`kafkajs produce ${size.label} x ${kjsRecords}, 1000 per send, 8 in flight, acks=${ACKS}: ${fmtRate(kjsRecords, kjsRecords * size.bytes, kp.seconds)}`);
      progress(`kafkajs consume ${size.label}`);
      try {
        const kc = await kafkajsConsume(bootstrap, `bench-kjs-${size.bytes}`, kjsRecords);
        say(`kafkajs consume ${size.label}: ${fmtRate(kjsRecords, kjsRecords * size.bytes, kc.seconds)}`);
      } catch (err) {
        say(`kafkajs consume ${size.label}: failed (${(err as Error).message})`);
      }
      const lat = await kafkajsLatency(bootstrap, `bench-lat-${size.bytes}`, size.bytes, Number(opts['latency-sends']));
      say(`kafkajs produce latency ${size.label}, 1 record per request, acks=${ACKS}: p50 ${percentile(lat, 50).toFixed(2)} ms, p99 ${percentile(lat, 99).toFixed(2)} ms`);
    }

    if (broker) say(`broker RSS after the runs: ${rssMiB(broker.child.pid!).toFixed(0)} MiB`);

    if (SOAK_SECONDS > 0 && broker) {
      // Produce 1 KiB records for SOAK_SECONDS to a topic whose retention keeps the disk bounded, sampling RSS.
      const file = recordFile(work, 1024, 100_000);
      const admin = new Kafka({ clientId: 'bench-admin', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      await admin.createTopics({
        topics: [{ topic: 'bench-soak', numPartitions: 1, configEntries: [
          { name: 'retention.bytes', value: String(256 * 1024 * 1024) },
          { name: 'segment.bytes', value: String(64 * 1024 * 1024) },
        ] }],
      });
      await admin.disconnect();
      const samples: number[] = [];
      const t0 = Date.now();
      let produced = 0;
      while (Date.now() - t0 < SOAK_SECONDS * 1000) {
        await kcatProduce(bootstrap, 'bench-soak', file);
        produced += 100_000;
        samples.push(rssMiB(broker.child.pid!));
        progress(`soak: ${Math.round((Date.now() - t0) / 1000)}/${SOAK_SECONDS} s, ${produced} records, RSS ${samples.at(-1)!.toFixed(0)} MiB`);
      }
      const q = Math.max(1, Math.floor(samples.length / 4));
      const first = median(samples.slice(0, q));
      const last = median(samples.slice(-q));
      say(`soak ${SOAK_SECONDS} s, ${produced} x 1 KiB: RSS first quarter median ${first.toFixed(0)} MiB, last quarter ${last.toFixed(0)} MiB, max ${Math.max(...samples).toFixed(0)} MiB`);
    }
  } finally {
    progressDone();
    reference?.child.kill('SIGKILL');
    if (broker) {
      await broker.stop();
      broker.cleanup();
    }
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  progressDone();
  console.error(err);
  process.exit(1);
});
