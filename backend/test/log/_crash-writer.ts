// Child process for the kill -9 test: appends batches (flush.messages unset: no fsync before the ack),
// prints every acknowledged offset, and SIGKILLs itself while more appends are in flight.
import { pino } from 'pino';
import { PartitionLog } from '../../src/log/partition-log.ts';
import { DEFAULT_LOG_CONFIG } from '../../src/log/log-config.ts';
import { buildRecordBatch } from '../../src/protocol/records/builder.ts';

const dir = process.argv[2]!;
const log = await PartitionLog.open(dir, { ...DEFAULT_LOG_CONFIG, segmentBytes: 20_000 }, { logger: pino({ level: 'silent' }), nowMs: Date.now });
let acked = 0;
for (let round = 0; ; round++) {
  const inFlight = Array.from({ length: 10 }, (_, i) =>
    log.append(buildRecordBatch([{ key: `k${round}.${i}`, value: 'v'.repeat(100 + i) }])).then((r) => {
      process.stdout.write(`acked ${r.lastOffset}\n`);
      acked++;
    }),
  );
  if (acked >= 60) {
    process.kill(process.pid, 'SIGKILL');
  }
  await Promise.all(inFlight);
}
