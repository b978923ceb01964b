// kill -9 of the broker after acknowledged produces loses none of them; a torn tail segment is truncated at
// restart, not fatal, and appends continue at the right offset.
import test from 'ava';
import { execFile } from 'node:child_process';
import { appendFileSync, readdirSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { startBroker } from './helpers/broker.ts';

function consumeAll(bootstrap: string, topic: string): Promise<string[]> {
  return new Promise((ok, fail) =>
    execFile('kcat', ['-b', bootstrap, '-C', '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%o %s\n'],
      { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
        err ? fail(new Error(`${err.message}\n${stderr}`)) : ok(stdout.split('\n').filter((l) => l.length > 0))));
}

async function produce(bootstrap: string, topic: string, from: number, count: number, batch: number): Promise<void> {
  const kafka = new Kafka({ clientId: 'it-crash', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  for (let i = from; i < from + count; i += batch) {
    const n = Math.min(batch, from + count - i);
    await producer.send({ topic, acks: -1, messages: Array.from({ length: n }, (_, j) => ({ value: `r${i + j}`, partition: 0 })) });
  }
  await producer.disconnect();
}

function tailSegment(dataDir: string, topic: string): string {
  // The partition directory is <topic>-0 somewhere under the data dir; segments are named by base offset.
  const stack = [dataDir];
  while (stack.length) {
    const dir = stack.pop()!;
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (name === `${topic}-0`) {
          const logs = readdirSync(p).filter((f) => f.endsWith('.log')).sort();
          return join(p, logs.at(-1)!);
        }
        stack.push(p);
      }
    }
  }
  throw new Error(`no partition directory for ${topic} under ${dataDir}`);
}

for (const flush of ['default', 'every-append'] as const) {
  test(`kill -9 after acknowledged produces loses nothing (flush ${flush})`, async (t) => {
    const args = flush === 'every-append' ? ['--log-flush-interval-messages', '1'] : [];
    const b1 = await startBroker({ args });
    try {
      await produce(b1.bootstrap, 'crash', 0, 3000, 100);
      await b1.kill();
      const b2 = await startBroker({ dataDir: b1.dataDir, port: b1.port, args });
      try {
        const got = await consumeAll(b2.bootstrap, 'crash');
        t.is(got.length, 3000);
        t.is(got[0], '0 r0');
        t.is(got[2999], '2999 r2999');
        t.true(got.every((l, i) => l === `${i} r${i}`));
      } finally {
        await b2.stop();
      }
    } finally {
      await b1.kill();
      b1.cleanup();
    }
  });
}

test('a torn or corrupt tail is truncated at restart and appends continue', async (t) => {
  const b1 = await startBroker();
  try {
    await produce(b1.bootstrap, 'torn', 0, 500, 50); // 10 batches of 50
    t.is(await b1.stop(), 0);
    const seg = tailSegment(b1.dataDir, 'torn');
    const size = statSync(seg).size;
    truncateSync(seg, size - 7); // tear the last batch
    appendFileSync(seg, Buffer.from('garbage after a torn write'));

    const b2 = await startBroker({ dataDir: b1.dataDir, port: b1.port });
    try {
      const got = await consumeAll(b2.bootstrap, 'torn');
      t.is(got.length, 450, 'the torn last batch of 50 is dropped, the 9 before it survive');
      t.true(got.every((l, i) => l === `${i} r${i}`));
      await produce(b2.bootstrap, 'torn', 450, 50, 50);
      const again = await consumeAll(b2.bootstrap, 'torn');
      t.is(again.length, 500);
      t.is(again[499], '499 r499');
    } finally {
      await b2.stop();
    }
  } finally {
    await b1.kill();
    b1.cleanup();
  }
});

test('one broker per data directory: a second is refused while the first runs, and a kill -9 leaves no lasting lock', async (t) => {
  const first = await startBroker();
  t.teardown(() => first.cleanup());
  const refused = await t.throwsAsync(startBroker({ dataDir: first.dataDir }));
  t.regex(refused!.message, /exited with 1 before listening/);
  t.regex(refused!.message, new RegExp(`in use by process ${first.child.pid}`));
  await first.kill();
  const second = await startBroker({ dataDir: first.dataDir });
  t.is(await second.stop(), 0);
  t.false(readdirSync(first.dataDir).includes('.lock'), 'a clean stop removes the lock');
});
