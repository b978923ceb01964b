// A kafkajs group member in its own process, so that a test can kill it (kill -9, alone or together with the
// broker) without a half-dead client lingering in the test process. Reports are JSON lines on stdout.
//
//   node --import tsx integration/helpers/group-member.ts commit BOOTSTRAP GROUP TOPIC COUNT OFFSETS_JSON
//     Joins GROUP, reads TOPIC until COUNT records arrived, then commits OFFSETS_JSON ([offset of partition 0,
//     ...]) as that member (its generation and member id) and prints {"committed": ...} once the broker has
//     acknowledged the commit. Then it waits.
//   node --import tsx integration/helpers/group-member.ts stream BOOTSTRAP GROUP TOPIC SESSION_TIMEOUT_MS
//     Joins GROUP and consumes TOPIC with auto-commit, printing {"join": [partitions]} on every join,
//     {"r": [partition, offset, value]} for every record (before its offset can be committed) and
//     {"c": [generation, [[partition, offset], ...]]} for every acknowledged commit.
//
// In both modes a line "leave" on stdin makes it leave the group and exit 0; a signal ends it as the signal
// does. Any failure prints {"error": ...} and exits 1.
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Consumer } from 'kafkajs';
import { kafkaClient, waitUntil, withTimeout } from './groups.ts';

const [mode, bootstrap, group, topic, ...rest] = process.argv.slice(2);
if (topic === undefined || (mode !== 'commit' && mode !== 'stream')) {
  process.stderr.write('usage: group-member.ts commit|stream BOOTSTRAP GROUP TOPIC ...\n');
  process.exit(2);
}

/**
 * Written synchronously: process.stdout to a pipe buffers in the process, and a kill -9 would lose the tail
 * (records this member received and committed would look never delivered).
 */
function report(line: object): void {
  const bytes = Buffer.from(`${JSON.stringify(line)}\n`);
  let written = 0;
  while (written < bytes.length) {
    try {
      written += writeSync(1, bytes, written);
    } catch (err) {
      // The pipe is non-blocking: wait for the reader rather than drop a report.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

function member(sessionTimeoutMs: number): Consumer {
  return kafkaClient(bootstrap!, `cg-member-${mode}`).consumer({
    groupId: group!, sessionTimeout: sessionTimeoutMs, heartbeatInterval: 300, maxWaitTimeInMs: 200,
  });
}

async function commitMode(count: number, offsets: number[]): Promise<Consumer> {
  const consumer = member(6_000);
  let received = 0;
  let generationId = -1;
  consumer.on(consumer.events.COMMIT_OFFSETS, (e) => (generationId = e.payload.groupGenerationId));
  await consumer.connect();
  await consumer.subscribe({ topic: topic!, fromBeginning: true });
  await consumer.run({ autoCommit: false, eachMessage: async () => void received++ });
  await waitUntil(`${count} records`, () => received >= count);
  await withTimeout(consumer.commitOffsets(offsets.map((offset, partition) => ({ topic: topic!, partition, offset: String(offset) }))),
    15_000, 'commitOffsets');
  report({ committed: offsets, generationId, received });
  return consumer;
}

async function streamMode(sessionTimeoutMs: number): Promise<Consumer> {
  const consumer = member(sessionTimeoutMs);
  consumer.on(consumer.events.GROUP_JOIN, (e) => report({ join: e.payload.memberAssignment[topic!] ?? [] }));
  consumer.on(consumer.events.COMMIT_OFFSETS, (e) => {
    const partitions = e.payload.topics.filter((t) => t.topic === topic)
      .flatMap((t) => t.partitions.map((p) => [Number(p.partition), Number(p.offset)]));
    report({ c: [e.payload.groupGenerationId, partitions] });
  });
  await consumer.connect();
  await consumer.subscribe({ topic: topic!, fromBeginning: true });
  await consumer.run({
    autoCommitInterval: 200,
    eachMessage: async ({ partition, message }) => report({ r: [partition, Number(message.offset), message.value?.toString() ?? ''] }),
  });
  return consumer;
}

async function main(): Promise<void> {
  const consumer = mode === 'commit'
    ? await commitMode(Number(rest[0]), JSON.parse(rest[1]!) as number[])
    : await streamMode(Number(rest[0]));
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === 'leave') break;
  }
  await withTimeout(consumer.disconnect(), 15_000, 'leaving the group');
  process.exit(0);
}

main().catch((err: unknown) => {
  report({ error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
