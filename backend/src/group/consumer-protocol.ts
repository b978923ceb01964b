// The part of the consumer protocol (protocol type "consumer") the coordinator itself reads: the topics in a
// member's subscription metadata, so that OffsetDelete can refuse to delete offsets of a topic the group is
// consuming. Every version of ConsumerProtocolSubscription starts with the version-0 layout (int16 version,
// array of topic names), so reading that prefix serves all versions, including future ones.

/** The protocol type of Kafka consumers (kafkajs, librdkafka, the Java client). */
export const CONSUMER_PROTOCOL_TYPE = 'consumer';

/** Subscribed topic names, or null when the metadata is not a well-formed consumer subscription. */
export function decodeSubscriptionTopics(metadata: Buffer): string[] | null {
  if (metadata.length < 6) return null;
  const version = metadata.readInt16BE(0);
  if (version < 0) return null;
  const count = metadata.readInt32BE(2);
  // Each name takes at least its 2-byte length, which bounds a hostile count by the buffer size.
  if (count < 0 || count > (metadata.length - 6) / 2) return null;
  const topics: string[] = [];
  let pos = 6;
  for (let i = 0; i < count; i++) {
    if (pos + 2 > metadata.length) return null;
    const len = metadata.readInt16BE(pos);
    pos += 2;
    if (len < 0 || pos + len > metadata.length) return null;
    topics.push(metadata.toString('utf8', pos, pos + len));
    pos += len;
  }
  return topics;
}

/** Encodes a version-0 subscription (topics, no user data): what the coordinator's tests and tools send. */
export function encodeSubscription(topics: string[], userData: Buffer | null = null): Buffer {
  const names = topics.map((t) => Buffer.from(t, 'utf8'));
  const size = 2 + 4 + names.reduce((n, b) => n + 2 + b.length, 0) + 4 + (userData?.length ?? 0);
  const out = Buffer.alloc(size);
  let pos = out.writeInt16BE(0, 0);
  pos = out.writeInt32BE(names.length, pos);
  for (const name of names) {
    pos = out.writeInt16BE(name.length, pos);
    pos += name.copy(out, pos);
  }
  pos = out.writeInt32BE(userData === null ? -1 : userData.length, pos);
  if (userData !== null) userData.copy(out, pos);
  return out;
}
