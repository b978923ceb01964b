import test from 'ava';
import { DecodeError, Reader, Writer } from '../../src/protocol/codec.ts';
import { ApiKey } from '../../src/protocol/generated/index.ts';
import {
  decodeRequestHeader,
  decodeResponseHeader,
  encodeRequestHeader,
  encodeResponseHeader,
  requestHeaderVersion,
  responseHeaderVersion,
} from '../../src/protocol/headers.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('request header versions: v2 when flexible, v1 otherwise, v0 for ControlledShutdown v0', (t) => {
  t.is(requestHeaderVersion(ApiKey.Produce, 8), 1);
  t.is(requestHeaderVersion(ApiKey.Produce, 9), 2);
  t.is(requestHeaderVersion(ApiKey.Fetch, 11), 1);
  t.is(requestHeaderVersion(ApiKey.Fetch, 12), 2);
  t.is(requestHeaderVersion(ApiKey.ApiVersions, 2), 1);
  t.is(requestHeaderVersion(ApiKey.ApiVersions, 3), 2);
  t.is(requestHeaderVersion(ApiKey.ControlledShutdown, 0), 0);
  t.is(requestHeaderVersion(ApiKey.ControlledShutdown, 1), 1);
  t.is(requestHeaderVersion(ApiKey.OffsetDelete, 0), 1); // never flexible
  t.throws(() => requestHeaderVersion(999, 0), { instanceOf: RangeError });
});

test('response header versions: v1 when flexible, but ApiVersions always v0 (KIP-511)', (t) => {
  for (let v = 0; v <= 4; v++) t.is(responseHeaderVersion(ApiKey.ApiVersions, v), 0, `ApiVersions v${v}`);
  t.is(responseHeaderVersion(ApiKey.ApiVersions, 9), 0);
  t.is(responseHeaderVersion(ApiKey.Metadata, 8), 0);
  t.is(responseHeaderVersion(ApiKey.Metadata, 9), 1);
  t.is(responseHeaderVersion(ApiKey.SaslHandshake, 1), 0);
  const w = new Writer();
  encodeResponseHeader(w, ApiKey.ApiVersions, 3, 0x01020304);
  t.is(w.toBuffer().toString('hex'), '01020304');
  const w2 = new Writer();
  encodeResponseHeader(w2, ApiKey.Metadata, 12, 7);
  t.is(w2.toBuffer().toString('hex'), '0000000700');
  t.is(decodeResponseHeader(new Reader(hex('01020304')), ApiKey.ApiVersions, 4), 0x01020304);
});

test('request header v2: client id stays a non-compact string, header tags are skipped', (t) => {
  // ApiVersions v3, correlation 1, client id "ab" (int16 length), one unknown header tag (tag 3, 2 bytes), then body.
  const r = new Reader(hex('0012 0003 00000001 0002 6162 01 03 02 aaaa | ff'.replace('|', '')));
  const h = decodeRequestHeader(r);
  t.deepEqual(h, { apiKey: 18, apiVersion: 3, correlationId: 1, clientId: 'ab', headerVersion: 2 });
  t.is(r.remaining, 1);
  const w = new Writer();
  encodeRequestHeader(w, ApiKey.ApiVersions, 3, 1, 'ab');
  t.is(w.toBuffer().toString('hex'), '00120003000000010002616200');
});

test('request header v1 with a null client id, and v0 for ControlledShutdown v0', (t) => {
  t.deepEqual(decodeRequestHeader(new Reader(hex('0003 0000 00000005 ffff'))), {
    apiKey: 3, apiVersion: 0, correlationId: 5, clientId: null, headerVersion: 1,
  });
  const r = new Reader(hex('0007 0000 00000009 00000001'));
  t.deepEqual(decodeRequestHeader(r), { apiKey: 7, apiVersion: 0, correlationId: 9, clientId: null, headerVersion: 0 });
  t.is(r.remaining, 4, 'v0 header has no client id: the body starts right after the correlation id');
});

test('a newer ApiVersions version than the broker knows is still read with header v2', (t) => {
  const h = decodeRequestHeader(new Reader(hex('0012 0063 0000000a 0001 63 00')));
  t.is(h.apiVersion, 99);
  t.is(h.headerVersion, 2);
  t.is(h.clientId, 'c');
});

test('an unknown api key still yields key, version and correlation id', (t) => {
  const r = new Reader(hex('03e7 0002 0000002a 0003 616263'));
  const h = decodeRequestHeader(r);
  t.deepEqual(h, { apiKey: 999, apiVersion: 2, correlationId: 42, clientId: null, headerVersion: 0 });
});

test('truncated headers are a DecodeError', (t) => {
  for (const b of ['', '0012', '001200', '0012 0003 000000', '0012 0003 00000001 0005 61', '0012 0003 00000001 0001 61']) {
    t.throws(() => decodeRequestHeader(new Reader(hex(b))), { instanceOf: DecodeError }, b);
  }
});
