// The idempotent producer end to end: librdkafka (Debian's python3-confluent-kafka) with enable.idempotence
// produces 100,000 records through a proxy that repeatedly drops every connection at the worst moment (the
// broker has appended a Produce request, its response is lost). librdkafka retries the lost requests with the
// same producer id, epoch and sequences; the broker must recognise them and answer with the original offsets.
// Afterwards the partition holds every record exactly once, in order (read back with kcat), and every delivery
// report carries the offset the record really has.
import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT, freePort, sleep, startBroker, type BrokerProcess } from './helpers/broker.ts';
import { ChaosProxy } from './helpers/chaos-proxy.ts';

/** Debian's interpreter: the python3 first on PATH may be a separate build without Debian's modules. */
const PYTHON = '/usr/bin/python3';
const TOPIC = 'idempotent-drops';
const RECORDS = 100_000;
/** Records handed to librdkafka per chunk, and the pause after each chunk (ms): ~5 s of producing. */
const CHUNK = 1000;
const CHUNK_PAUSE_MS = 50;
/** How often the proxy arms a drop (ms), and how many drops it makes at most (the first part of the run). */
const DROP_INTERVAL_MS = 300;
const DROPS_MAX = 12;
/** The fewest drops that must have hit a Produce response for the test to mean anything. */
const DROPS_MIN = 5;
const PRODUCER_TIMEOUT_MS = 60_000;

let broker: BrokerProcess | undefined;
let proxy: ChaosProxy | undefined;

test.after.always(async () => {
  await proxy?.close();
  if (broker) {
    await broker.stop();
    broker.cleanup();
  }
});

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((ok, fail) =>
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? fail(new Error(`${cmd} failed: ${err.message}\n${stderr.slice(-4000)}\nbroker:\n${broker?.output().slice(-4000)}`)) : ok(stdout)));
}

interface ProduceSummary {
  delivered: number;
  errors: string[];
  error_count: number;
  offsets: number[];
  remaining: number;
  logs: string[];
}

test('librdkafka idempotent producer through dropped connections: every record exactly once, in order', async (t) => {
  t.timeout(90_000);
  const proxyPort = await freePort();
  // Clients must come back through the proxy: the broker advertises the proxy's address in Metadata.
  broker = await startBroker({
    args: ['--advertised-host', '127.0.0.1', '--advertised-port', String(proxyPort)],
    env: { TAKHIN_LOG_LEVEL: 'debug' }, // the log counts duplicates ('duplicate batch' lines)
  });
  proxy = await ChaosProxy.start(proxyPort, broker.port);
  const chaos = proxy;

  const started = Date.now();
  const producing = run(PYTHON, [join(REPO_ROOT, 'integration/helpers/idempotent_produce.py'), `127.0.0.1:${proxyPort}`, TOPIC,
    String(RECORDS), String(CHUNK), String(CHUNK_PAUSE_MS)], PRODUCER_TIMEOUT_MS);
  let done = false;
  void producing.finally(() => (done = true)).catch(() => {});
  // Arm a drop every interval; it fires on the next Produce response, wherever the producer is.
  while (!done && chaos.stats.dropsOnProduceResponse < DROPS_MAX) {
    chaos.armDropOnProduceResponse();
    await sleep(DROP_INTERVAL_MS);
  }
  chaos.disarm();
  const dropsWhileProducing = chaos.stats.dropsOnProduceResponse;
  const summary = JSON.parse(await producing) as ProduceSummary;
  const produceMs = Date.now() - started;

  t.deepEqual(summary.errors, [], `librdkafka log: ${summary.logs.join('\n')}`);
  t.is(summary.remaining, 0);
  t.is(summary.delivered, RECORDS);
  t.true(dropsWhileProducing >= DROPS_MIN, `only ${dropsWhileProducing} drops hit a Produce response`);

  // Every delivery report names the offset of its record: record i at offset i (nothing lost, nothing twice).
  const wrongOffset = summary.offsets.findIndex((o, i) => o !== i);
  t.is(wrongOffset, -1, `record ${wrongOffset} reported at offset ${summary.offsets[wrongOffset]}`);

  const consumed = await run('kcat', ['-C', '-b', `127.0.0.1:${proxyPort}`, '-t', TOPIC, '-p', '0', '-o', 'beginning', '-e', '-q',
    '-f', '%o %s\n'], 60_000);
  const lines = consumed.split('\n').filter((l) => l !== '');
  t.is(lines.length, RECORDS, 'the partition holds exactly the produced records');
  const firstBad = lines.findIndex((l, i) => l !== `${i} rec-${String(i).padStart(6, '0')}`);
  t.is(firstBad, -1, `line ${firstBad}: ${lines[firstBad]}`);

  const duplicates = (broker.output().match(/duplicate batch: answering with the original offsets/g) ?? []).length;
  // Each drop swallowed the response to an appended batch, so librdkafka's retry of it must have been recognised.
  t.true(duplicates >= DROPS_MIN, `only ${duplicates} retried batches were recognised as duplicates`);
  t.log(`records ${RECORDS}, produced in ${produceMs} ms; connections ${chaos.stats.connections}; drops ${chaos.stats.drops} ` +
    `(${dropsWhileProducing} on a Produce response); Produce requests forwarded ${chaos.stats.produceRequestsForwarded}, ` +
    `responses lost ${chaos.stats.produceRequestsLost}; duplicates detected by the broker ${duplicates}`);
});
