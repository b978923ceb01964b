// Shared by tests: the Kafka error code a call fails with (ErrorCode.NONE when it succeeds). Not a test file.
import { ErrorCode, KafkaError } from '../src/protocol/errors.ts';

/** Awaits `work` (a promise, or a function called here); a KafkaError becomes its code, anything else is rethrown. */
export async function codeOf(work: Promise<unknown> | (() => unknown)): Promise<number> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (err) {
    if (err instanceof KafkaError) return err.code;
    throw err;
  }
  return ErrorCode.NONE;
}
