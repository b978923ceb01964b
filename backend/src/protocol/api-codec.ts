// The uniform interface of every generated API codec (generated/index.ts builds API_CODECS from these).
import type { Reader, Writer } from './codec.ts';

export interface ApiCodec<Req = unknown, Res = unknown> {
  readonly apiKey: number;
  /** The API's name without the Request/Response suffix ('Produce'). */
  readonly name: string;
  /** The schema's validVersions: every version these codecs can encode and decode. */
  readonly minVersion: number;
  readonly maxVersion: number;
  /** First version using compact encodings and tagged fields; Infinity when the API has none. */
  readonly firstFlexibleVersion: number;
  /** The schema marks its latest version as unstable (still being designed; not to be advertised). */
  readonly latestVersionUnstable: boolean;
  /** Which Kafka listeners serve the API in Apache Kafka ('broker', 'controller', 'zkBroker'). */
  readonly listeners: readonly string[];
  decodeRequest(r: Reader, version: number): Req;
  encodeRequest(w: Writer, version: number, msg: Req): void;
  decodeResponse(r: Reader, version: number): Res;
  encodeResponse(w: Writer, version: number, msg: Res): void;
}
