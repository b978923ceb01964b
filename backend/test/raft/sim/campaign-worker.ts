// Entry point of a campaign worker thread (see campaign.ts): runs the chunks of seeds it is sent.

import { parentPort, workerData } from 'node:worker_threads';
import { runChunk, type FromWorker, type ToWorker, type WorkerSetup } from './campaign.ts';

const port = parentPort!;
const setup = workerData as WorkerSetup;

port.on('message', (m: ToWorker) => {
  if (m.type === 'exit') {
    port.close();
    return;
  }
  runChunk(setup, m.firstSeed, m.count).then(
    (r) => port.postMessage({ type: 'chunk', totals: r.totals, failures: r.failures } satisfies FromWorker),
    (err: unknown) => port.postMessage({ type: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) } satisfies FromWorker),
  );
});
port.postMessage({ type: 'ready' } satisfies FromWorker);
