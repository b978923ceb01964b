// Producer id allocation for single-node mode. Ids are reserved in blocks whose end is written durably to the
// metadata store before any id of the block is handed out, so after a crash allocation resumes past the block
// and no producer id is ever given to two producers (the broker's idempotence bookkeeping keys on it).
import type { MetadataStore } from '../../log/metadata-store.ts';

/** Ids reserved per durable write; a restart skips what is left of the block (ids are plentiful: 2^53). */
export const PRODUCER_ID_BLOCK_SIZE = 1000;

export class ProducerIdAllocator {
  private readonly meta: MetadataStore;
  private readonly blockSize: number;
  private next = 0;
  private end = 0;
  /** Serializes allocations so that concurrent callers never reserve two blocks for one need. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(meta: MetadataStore, blockSize = PRODUCER_ID_BLOCK_SIZE) {
    this.meta = meta;
    this.blockSize = blockSize;
  }

  allocate(): Promise<number> {
    const run = this.chain.then(async () => {
      if (this.next >= this.end) {
        const block = await this.meta.reserveProducerIds(this.blockSize);
        this.next = block.start;
        this.end = block.end;
      }
      return this.next++;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}
