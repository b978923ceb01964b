// kcat (librdkafka 2.x) against a real broker process started like `npm start`: metadata, produce 10,000
// lines, consume them back in order with their offsets, with every compression codec librdkafka has.
import test from 'ava';
import { execFile } from 'node:child_process';
import { startBroker, type BrokerProcess } from './helpers/broker.ts';

const LINES = 10_000;
/** Per kcat invocation (ms): generous for a 2-core CI machine. */
const KCAT_TIMEOUT_MS = 60_000;

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

function kcat(args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((ok, fail) => {
    const child = execFile('kcat', args, { timeout: KCAT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) fail(new Error(`kcat ${args.join(' ')} failed: ${err.message}\n${stderr}\nbroker:\n${broker.output()}`));
      else ok({ stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

test('kcat -L lists the broker', async (t) => {
  const { stdout } = await kcat(['-b', broker.bootstrap, '-L']);
  t.regex(stdout, /1 brokers:/);
  t.regex(stdout, new RegExp(`broker \\d+ at (127\\.0\\.0\\.1|localhost):${broker.port}`));
});

for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) {
  test(`kcat produces and consumes ${LINES} lines (compression ${codec})`, async (t) => {
    const topic = `kcat-${codec}`;
    const lines = Array.from({ length: LINES }, (_, i) => `line-${i}-${'x'.repeat(i % 50)}`);
    await kcat(['-b', broker.bootstrap, '-P', '-t', topic, '-z', codec, '-X', 'linger.ms=5'], lines.join('\n') + '\n');

    const { stdout } = await kcat(['-b', broker.bootstrap, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%p %o %s\n']);
    const got = stdout.split('\n').filter((l) => l.length > 0);
    t.is(got.length, LINES);
    for (let i = 0; i < LINES; i++) {
      const expected = `0 ${i} ${lines[i]}`;
      if (got[i] !== expected) {
        t.fail(`record ${i}: expected "${expected}", got "${got[i]}"`);
        return;
      }
    }
    t.pass();
  });
}

test('kcat -C from an offset in the middle returns the rest', async (t) => {
  const topic = 'kcat-middle';
  const lines = Array.from({ length: 1000 }, (_, i) => `m${i}`);
  await kcat(['-b', broker.bootstrap, '-P', '-t', topic], lines.join('\n') + '\n');
  const { stdout } = await kcat(['-b', broker.bootstrap, '-C', '-t', topic, '-p', '0', '-o', '637', '-e', '-q', '-f', '%o %s\n']);
  const got = stdout.split('\n').filter((l) => l.length > 0);
  t.is(got.length, 1000 - 637);
  t.is(got[0], '637 m637');
  t.is(got.at(-1), '999 m999');
});
