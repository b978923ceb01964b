// Child process of the crash and fsync-order tests: appends entries to an LmdbLogStore and reports each
// acknowledged one on stdout ("ACK <index>"), announcing it first ("BEGIN <index>"). The parent kills it
// with SIGKILL at an ACK, or traces its syscalls, then checks what is on disk.
//
// Usage: tsx persist-child.ts <dir> <count> <inFlight>
//   count     entries to append (entry i carries payloadOf(i); hard state commit = i)
//   inFlight  persist() calls kept outstanding at once (1 = strictly one after the other)

import fs from 'node:fs';
import { LmdbLogStore } from '../../../src/raft/storage/lmdb-log-store.ts';
import { EntryType } from '../../../src/raft/core/types.ts';
import { payloadOf } from './_helpers.ts';

const [dir, countArg, inFlightArg] = process.argv.slice(2);
const count = Number(countArg);
const inFlight = Number(inFlightArg);

function say(line: string): void {
  // writeSync: the line is in the pipe before the next statement runs (the parent may kill us right after).
  // The pipe is non-blocking: retry while it is full (the parent test process may be busy).
  const bytes = Buffer.from(`${line}\n`);
  let done = 0;
  while (done < bytes.length) {
    try {
      done += fs.writeSync(1, bytes, done);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
  }
}

const store = await LmdbLogStore.open(dir!);
let next = store.lastIndex() + 1;
const last = next + count - 1;

async function worker(): Promise<void> {
  while (next <= last) {
    const i = next++;
    say(`BEGIN ${i}`);
    await store.persist({
      entries: [{ index: i, term: 1, type: EntryType.Normal, data: payloadOf(i) }],
      hardState: { term: 1, vote: 1, commit: i },
    });
    say(`ACK ${i}`);
  }
}

// Calls are issued in index order and persist() settles them in order, so the log never has a gap.
await Promise.all(Array.from({ length: inFlight }, () => worker()));
say('DONE');
await store.close();
