// Debian's python3-confluent-kafka (librdkafka) produces and consumes by assign against a real broker.
import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT, startBroker, type BrokerProcess } from './helpers/broker.ts';

/** Debian's interpreter: the python3 first on PATH may be a separate build without Debian's modules. */
const PYTHON = '/usr/bin/python3';
const COUNT = 5000;

let broker: BrokerProcess;

test.before(async () => {
  broker = await startBroker();
});

test.after.always(async () => {
  if (broker) {
    await broker.stop();
    broker.cleanup();
  }
});

test('confluent-kafka produces and consumes by assign', async (t) => {
  const out = await new Promise<string>((ok, fail) =>
    execFile(PYTHON, [join(REPO_ROOT, 'integration/python/produce_consume.py'), broker.bootstrap, 'py-topic', String(COUNT)],
      { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
        err ? fail(new Error(`${err.message}\n${stderr}\nbroker:\n${broker.output()}`)) : ok(stdout)));
  const r = JSON.parse(out) as { remaining: number; errors: string[]; delivered: [number, number, string][]; consumed: [number, number, string][]; eof: boolean };
  t.is(r.remaining, 0);
  t.deepEqual(r.errors, []);
  t.is(r.delivered.length, COUNT);
  t.true(r.eof);
  t.is(r.consumed.length, COUNT);
  for (let i = 0; i < COUNT; i++) {
    const [partition, offset, value] = r.consumed[i]!;
    if (partition !== 0 || offset !== i || value !== `py-${i}`) {
      t.fail(`record ${i}: ${JSON.stringify(r.consumed[i])}`);
      return;
    }
  }
  // Delivery reports carry the offsets the broker assigned: the same ones the consumer sees.
  t.deepEqual(r.delivered.map((d) => d[1]).sort((a, b) => a - b), r.consumed.map((c) => c[1]));
});
