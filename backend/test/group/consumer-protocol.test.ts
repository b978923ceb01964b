import test from 'ava';
import fc from 'fast-check';
import { decodeSubscriptionTopics, encodeSubscription } from '../../src/group/consumer-protocol.ts';

test('topics round-trip through a version-0 subscription', (t) => {
  t.deepEqual(decodeSubscriptionTopics(encodeSubscription(['a', 'tópico', ''])), ['a', 'tópico', '']);
  t.deepEqual(decodeSubscriptionTopics(encodeSubscription([], Buffer.from('user'))), []);
});

test('later versions are read by their version-0 prefix', (t) => {
  // Version 3 as the Java client writes it: topics, user data, owned partitions, generation, rack.
  const v0 = encodeSubscription(['orders', 'payments'], Buffer.from([1, 2]));
  const tail = Buffer.from([0, 0, 0, 1, 0, 6, ...Buffer.from('orders'), 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 7, 0, 2, ...Buffer.from('r1')]);
  const v3 = Buffer.concat([v0, tail]);
  v3.writeInt16BE(3, 0);
  t.deepEqual(decodeSubscriptionTopics(v3), ['orders', 'payments']);
});

test('malformed subscriptions decode to null, never throw', (t) => {
  t.is(decodeSubscriptionTopics(Buffer.alloc(0)), null);
  t.is(decodeSubscriptionTopics(Buffer.from([0xff, 0xff, 0, 0, 0, 0])), null);
  t.is(decodeSubscriptionTopics(Buffer.from([0, 0, 0x7f, 0xff, 0xff, 0xff])), null);
  const truncated = encodeSubscription(['abcdef']).subarray(0, 9);
  t.is(decodeSubscriptionTopics(truncated), null);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
    const r = decodeSubscriptionTopics(Buffer.from(bytes));
    return r === null || Array.isArray(r);
  }));
});
