// Hand-computed wire bytes of a few frames: proves the bytes, not only that encode and decode agree.
import test from 'ava';
import { DecodeError, Reader, Writer } from '../../src/protocol/codec.ts';
import { decodeRequestFrame, decodeResponseFrame, encodeRequestFrame, encodeResponseFrame } from '../../src/protocol/frame.ts';
import {
  ApiKey,
  decodeApiVersionsRequest,
  decodeProduceRequest,
  defaultFetchResponse,
  defaultFetchResponseFetchableTopicResponse,
  defaultFetchResponsePartitionData,
  encodeApiVersionsRequest,
  encodeProduceRequest,
  type ApiVersionsResponse,
  type FetchResponse,
  type MetadataRequest,
  type ProduceRequest,
  type ProduceResponse,
} from '../../src/protocol/generated/index.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('ApiVersions v3 request with client software name and version', (t) => {
  const frame = encodeRequestFrame(ApiKey.ApiVersions, 3, 1, 'ab', { clientSoftwareName: 'sw', clientSoftwareVersion: '1.0' });
  const expected = hex(`
    00000015
    0012 0003 00000001 0002 6162 00
    03 7377 04 312e30 00`);
  t.is(frame.toString('hex'), expected.toString('hex'));
  const { header, body } = decodeRequestFrame(frame);
  t.deepEqual(header, { apiKey: 18, apiVersion: 3, correlationId: 1, clientId: 'ab', headerVersion: 2 });
  t.deepEqual(body, { clientSoftwareName: 'sw', clientSoftwareVersion: '1.0' });
});

test('Metadata v0 request (header v1, int32 array, int16 string) and v1 "all topics" null array', (t) => {
  const v0: MetadataRequest = {
    topics: [{ topicId: Buffer.alloc(16), name: 'foo' }],
    allowAutoTopicCreation: true,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  };
  const frame = encodeRequestFrame(ApiKey.Metadata, 0, 7, 'c', v0);
  t.is(frame.toString('hex'), hex('00000014 0003 0000 00000007 0001 63 00000001 0003 666f6f').toString('hex'));
  t.deepEqual(decodeRequestFrame(frame).body, v0);
  const all = encodeRequestFrame(ApiKey.Metadata, 1, 8, null, { ...v0, topics: null });
  t.is(all.toString('hex'), hex('0000000e 0003 0001 00000008 ffff ffffffff').toString('hex'));
  // v0 has no null array ("all topics" is an empty list there): encoding null must name the field.
  t.throws(() => encodeRequestFrame(ApiKey.Metadata, 0, 9, null, { ...v0, topics: null }), { message: /MetadataRequest\.topics/ });
});

test('ApiVersions v3 response: header v0 and one tagged field', (t) => {
  const body: ApiVersionsResponse = {
    errorCode: 0,
    apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 4 }],
    throttleTimeMs: 0,
    supportedFeatures: [],
    finalizedFeaturesEpoch: 5n,
    finalizedFeatures: [],
    zkMigrationReady: false,
  };
  const frame = Buffer.concat(encodeResponseFrame(ApiKey.ApiVersions, 3, 1, body));
  const expected = hex(`
    0000001d
    00000001
    0000 02 0012 0000 0004 00 00000000
    01 01 08 0000000000000005`);
  t.is(frame.toString('hex'), expected.toString('hex'));
  t.deepEqual(decodeResponseFrame(frame, ApiKey.ApiVersions, 3), { correlationId: 1, body });
});

test('Produce v10 response: header v1 and a tagged struct (CurrentLeader) in a partition', (t) => {
  const body: ProduceResponse = {
    responses: [{
      name: 't',
      partitionResponses: [{
        index: 0, errorCode: 0, baseOffset: 5n, logAppendTimeMs: -1n, logStartOffset: 0n, recordErrors: [],
        errorMessage: null, currentLeader: { leaderId: 2, leaderEpoch: 3 },
      }],
    }],
    throttleTimeMs: 0,
    nodeEndpoints: [],
  };
  const frame = Buffer.concat(encodeResponseFrame(ApiKey.Produce, 10, 9, body));
  const expected = hex(`
    0000003b
    00000009 00
    02 02 74
      02 00000000 0000 0000000000000005 ffffffffffffffff 0000000000000000 01 00
        01 00 09 00000002 00000003 00
      00
    00000000
    00`);
  t.is(frame.toString('hex'), expected.toString('hex'));
  t.deepEqual(decodeResponseFrame(frame, ApiKey.Produce, 10).body, body);
  // At its default the tagged struct is not written at all: 9 + 2 bytes fewer.
  const p = body.responses[0]!.partitionResponses[0]!;
  p.currentLeader = { leaderId: -1, leaderEpoch: -1 };
  t.is(Buffer.concat(encodeResponseFrame(ApiKey.Produce, 10, 9, body)).length, frame.length - 11);
});

test('unknown tagged fields in a body are skipped', (t) => {
  // ApiVersions v3 request body with an extra tag 7 of 3 bytes.
  const r = new Reader(hex('03 7377 04 312e30 01 07 03 aabbcc'));
  t.deepEqual(decodeApiVersionsRequest(r, 3), { clientSoftwareName: 'sw', clientSoftwareVersion: '1.0' });
  t.is(r.remaining, 0);
  const w = new Writer();
  encodeApiVersionsRequest(w, 3, { clientSoftwareName: 'sw', clientSoftwareVersion: '1.0' });
  t.is(w.length, 8);
});

test('records given as a Buffer list are one field, sent zero-copy, decoded as one view', (t) => {
  const a = Buffer.alloc(9000, 1);
  const b = Buffer.alloc(20000, 2);
  const req: ProduceRequest = {
    transactionalId: null, acks: -1, timeoutMs: 30000,
    topicData: [{ name: 'topic', partitionData: [{ index: 3, records: [a, b] }] }],
  };
  const w = new Writer();
  encodeProduceRequest(w, 9, req);
  const chunks = w.toChunks();
  t.true(chunks.includes(a) && chunks.includes(b), 'record chunks are referenced, not copied');
  const buf = w.toBuffer();
  const decoded = decodeProduceRequest(new Reader(buf), 9);
  const records = decoded.topicData[0]!.partitionData[0]!.records as Buffer;
  t.true(Buffer.isBuffer(records));
  t.is(records.length, 29000);
  t.true(records.equals(Buffer.concat([a, b])));
  t.is(records.buffer, buf.buffer, 'decoded records are a view into the frame');
});

test('a Fetch response keeps each batch by reference', (t) => {
  const batches: Buffer[] = Array.from({ length: 5 }, (_, i) => Buffer.alloc(16384, i));
  const res: FetchResponse = {
    ...defaultFetchResponse(),
    responses: [{
      ...defaultFetchResponseFetchableTopicResponse(),
      topic: 't',
      partitions: batches.map((records, i) => ({ ...defaultFetchResponsePartitionData(), partitionIndex: i, records })),
    }],
  };
  const chunks = encodeResponseFrame(ApiKey.Fetch, 11, 1, res);
  for (const b of batches) t.true(chunks.includes(b));
  const total = chunks.reduce((n, c) => n + c.length, 0);
  t.true(total < 5 * 16384 + 1000);
  const copied = chunks.filter((c) => !batches.includes(c)).reduce((n, c) => n + c.length, 0);
  t.true(copied < 1000, `only headers are copied (${copied} bytes)`);
  const back = decodeResponseFrame<FetchResponse>(Buffer.concat(chunks), ApiKey.Fetch, 11).body;
  t.is(back.responses[0]!.partitions.length, 5);
  t.true((back.responses[0]!.partitions[4]!.records as Buffer).equals(batches[4]!));
});

test('frame size mismatches, trailing bytes and unsupported versions are DecodeErrors', (t) => {
  const frame = encodeRequestFrame(ApiKey.ApiVersions, 3, 1, 'ab', { clientSoftwareName: 'sw', clientSoftwareVersion: '1.0' });
  t.throws(() => decodeRequestFrame(frame.subarray(0, frame.length - 1)), { instanceOf: DecodeError, message: /size field/ });
  const padded = Buffer.concat([frame, Buffer.from([0])]);
  padded.writeInt32BE(padded.length - 4, 0);
  t.throws(() => decodeRequestFrame(padded), { instanceOf: DecodeError, message: /unexpected bytes/ });
  const future = Buffer.from(frame);
  future.writeInt16BE(99, 6);
  t.throws(() => decodeRequestFrame(future), { instanceOf: DecodeError, message: /unsupported version 99/ });
  t.throws(() => encodeRequestFrame(999, 0, 1, null, {}), { instanceOf: RangeError });
});
