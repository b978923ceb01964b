import test from 'ava';
import { DEFAULT_TRANSPORT_LIMITS, backoffDelayMs, resolveLimits } from '../../../src/raft/transport/limits.ts';

const limits = resolveLimits({ reconnectBackoffMinMs: 100, reconnectBackoffMaxMs: 1000 });

test('the backoff doubles per failure up to the maximum', (t) => {
  const top = (): number => 0.999999;
  t.deepEqual([1, 2, 3, 4, 5, 6, 50].map((f) => backoffDelayMs(f, limits, top)), [100, 200, 400, 800, 1000, 1000, 1000]);
});

test('jitter spreads the delay over [base / 2, base], never below the minimum', (t) => {
  const bottom = (): number => 0;
  t.deepEqual([1, 2, 3, 4, 5].map((f) => backoffDelayMs(f, limits, bottom)), [100, 100, 200, 400, 500]);
  const half = (): number => 0.5;
  t.is(backoffDelayMs(4, limits, half), 600);
});

test('limits: defaults fill the gaps, and bad settings are refused by name', (t) => {
  t.is(resolveLimits().frameBytesMax, DEFAULT_TRANSPORT_LIMITS.frameBytesMax);
  t.is(resolveLimits({ writeStallTimeoutMs: 0 }).writeStallTimeoutMs, 0);
  t.throws(() => resolveLimits({ connectTimeoutMs: 0 }), { instanceOf: RangeError, message: /connectTimeoutMs/ });
  t.throws(() => resolveLimits({ peerQueueMessagesMax: 1.5 }), { instanceOf: RangeError, message: /peerQueueMessagesMax/ });
  t.throws(() => resolveLimits({ reconnectBackoffMinMs: 10, reconnectBackoffMaxMs: 5 }), { message: /reconnectBackoffMaxMs/ });
  t.throws(() => resolveLimits({ frameBytesMax: 1024, snapshotChunkBytes: 1024 }), { message: /must hold a snapshot chunk/ });
  t.throws(() => resolveLimits({ frameBytesMax: 2048, peerQueueBytesMax: 1024, snapshotChunkBytes: 1000 }), { message: /peerQueueBytesMax/ });
});
