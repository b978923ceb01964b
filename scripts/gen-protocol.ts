// Generates backend/src/protocol/generated/ from Apache Kafka's JSON message schemas.
//
//   npm run gen:protocol [-- <schemaDir> [<outputDir>]]
//
// Defaults: <repo>/../shared/kafka-protocol/messages -> <repo>/backend/src/protocol/generated. Output is
// deterministic (files and APIs sorted, fields in schema order) so a regeneration is byte-identical; the test
// backend/test/protocol/generated.test.ts regenerates into a temporary folder and compares.
//
// Every version rule is resolved here, at generation time: the generated code is straight-line per field with
// `version >= N` checks, never an interpretation of the schema at run time. The schemas' "about" texts are not
// copied into the output.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// ---------------------------------------------------------------------------------------------------------------
// Schema model

interface RawField {
  name: string;
  type: string;
  versions?: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number;
  default?: string | number | boolean;
  flexibleVersions?: string;
  fields?: RawField[];
}

interface RawSchema {
  apiKey?: number;
  type: 'request' | 'response' | 'header' | 'data';
  name: string;
  validVersions: string;
  flexibleVersions: string;
  latestVersionUnstable?: boolean;
  listeners?: string[];
  fields: RawField[];
  commonStructs?: { name: string; fields: RawField[] }[];
}

/** Inclusive version interval; hi = Infinity for "N+". */
interface Range {
  lo: number;
  hi: number;
}

const PRIMITIVES = new Set(['bool', 'int8', 'int16', 'uint16', 'int32', 'int64', 'float64', 'string', 'bytes', 'uuid', 'records']);

interface Field {
  name: string;
  /** camelCase property name. */
  prop: string;
  /** Local variable name in generated functions (prop, renamed when it clashes with a keyword or internal name). */
  local: string;
  /** Element or value type: a primitive name or a struct's full type name. */
  base: string;
  isArray: boolean;
  isStruct: boolean;
  versions: Range | null;
  nullable: Range | null;
  tagged: Range | null;
  tag: number | undefined;
  /** Versions in which strings/bytes use the compact form (the field's own flexibleVersions, else the message's). */
  flexible: Range | null;
  rawDefault: string | undefined;
}

interface Struct {
  /** Full TypeScript type name: <MessageName><StructName>, or the message name for the top level. */
  typeName: string;
  fields: Field[];
  /** Hull of the versions in which this struct can appear. */
  ctx: Range | null;
  isTop: boolean;
  /** Needs an isDefault<T>() function (used as a tagged field or nested in such a struct). */
  needsIsDefault: boolean;
}

interface Message {
  schema: RawSchema;
  file: string;
  valid: Range;
  flexible: Range | null;
  structs: Map<string, Struct>;
  top: Struct;
}

export function parseRange(s: string | undefined, what: string): Range | null {
  if (s === undefined || s === 'none') return null;
  let m = /^(\d+)\+$/.exec(s);
  if (m) return { lo: Number(m[1]), hi: Infinity };
  m = /^(\d+)-(\d+)$/.exec(s);
  if (m) return { lo: Number(m[1]), hi: Number(m[2]) };
  m = /^(\d+)$/.exec(s);
  if (m) return { lo: Number(m[1]), hi: Number(m[1]) };
  throw new Error(`${what}: invalid version range "${s}"`);
}

function intersect(a: Range | null, b: Range | null): Range | null {
  if (a === null || b === null) return null;
  const lo = Math.max(a.lo, b.lo);
  const hi = Math.min(a.hi, b.hi);
  return lo <= hi ? { lo, hi } : null;
}

function hull(a: Range | null, b: Range | null): Range | null {
  if (a === null) return b;
  if (b === null) return a;
  return { lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi) };
}

function contains(outer: Range | null, inner: Range | null): boolean {
  if (inner === null) return true;
  if (outer === null) return false;
  return outer.lo <= inner.lo && outer.hi >= inner.hi;
}

function sameRange(a: Range | null, b: Range | null): boolean {
  return a === b || (a !== null && b !== null && a.lo === b.lo && a.hi === b.hi);
}

/**
 * A JS condition for "version in range", given that version is known to lie in ctx: 'true', 'false' or an
 * expression with only the bounds that ctx does not already imply.
 */
export function cond(range: Range | null, ctx: Range | null): string {
  const inter = intersect(range, ctx);
  if (inter === null || ctx === null || range === null) return 'false';
  if (contains(range, ctx)) return 'true';
  const parts: string[] = [];
  if (range.lo > ctx.lo) parts.push(`version >= ${range.lo}`);
  if (range.hi < ctx.hi) parts.push(`version <= ${range.hi}`);
  return parts.join(' && ');
}

/** Removes // and /* comments outside string literals. */
export function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function camel(name: string): string {
  return name[0]!.toLowerCase() + name.slice(1);
}

function kebab(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();
}

// Locals in generated functions may not be keywords nor shadow the generator's own names.
const RESERVED_LOCALS = new Set([
  'r', 'w', 'm', 's', 'n', 'i', 'a', 'x', 't', 'version', 'flexible', 'tag', 'end', 'count', 'tagCount',
  'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else', 'enum',
  'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof', 'new', 'null',
  'return', 'super', 'switch', 'this', 'throw', 'true', 'try', 'typeof', 'var', 'void', 'while', 'with', 'yield',
  'let', 'static', 'implements', 'interface', 'package', 'private', 'protected', 'public', 'await', 'arguments',
  'eval', 'undefined', 'NaN', 'Infinity', 'Buffer',
]);

function loadMessage(file: string, schema: RawSchema): Message {
  const valid = parseRange(schema.validVersions, `${file} validVersions`);
  if (valid === null || valid.hi === Infinity) throw new Error(`${file}: validVersions must be a closed range`);
  const flexible = parseRange(schema.flexibleVersions, `${file} flexibleVersions`);
  const commons = new Map<string, RawField[]>();
  for (const c of schema.commonStructs ?? []) commons.set(c.name, c.fields);
  const msg: Message = { schema, file, valid, flexible, structs: new Map(), top: undefined as unknown as Struct };
  const rawByStruct = new Map<string, RawField[]>();

  const register = (shortName: string, fields: RawField[], ctx: Range | null, isTop: boolean): Struct => {
    const typeName = isTop ? schema.name : schema.name + shortName;
    let st = msg.structs.get(shortName);
    if (st === undefined) {
      st = { typeName, fields: [], ctx, isTop, needsIsDefault: false };
      msg.structs.set(shortName, st);
      rawByStruct.set(shortName, fields);
      st.fields = fields.map((f) => makeField(f, shortName));
    } else {
      if (rawByStruct.get(shortName) !== fields) throw new Error(`${file}: struct ${shortName} is defined twice`);
      const merged = hull(st.ctx, ctx);
      if (sameRange(merged, st.ctx)) return st;
      st.ctx = merged;
    }
    // Propagate the (possibly widened) version context to the nested structs.
    for (let i = 0; i < fields.length; i++) {
      const raw = fields[i]!;
      const f = st.fields[i]!;
      if (!f.isStruct) continue;
      const short = raw.type.replace(/^\[\]/, '');
      const nested = raw.fields ?? commons.get(short);
      if (nested === undefined) throw new Error(`${file}: unknown struct type ${short}`);
      register(short, nested, intersect(st.ctx, f.versions), false);
    }
    return st;
  };

  const makeField = (raw: RawField, structName: string): Field => {
    const what = `${file} ${structName}.${raw.name}`;
    const isArray = raw.type.startsWith('[]');
    const elem = isArray ? raw.type.slice(2) : raw.type;
    const isStruct = !PRIMITIVES.has(elem);
    if (isStruct && !/^[A-Z]/.test(elem)) throw new Error(`${what}: unknown type ${raw.type}`);
    if (isArray && elem === 'records') throw new Error(`${what}: arrays of records are not supported`);
    if (raw.fields !== undefined && !isStruct) throw new Error(`${what}: primitive type with nested fields`);
    const versions = parseRange(raw.versions, `${what} versions`);
    const tagged = parseRange(raw.taggedVersions, `${what} taggedVersions`);
    if ((raw.tag === undefined) !== (tagged === null)) throw new Error(`${what}: tag and taggedVersions go together`);
    if (tagged !== null && !contains(flexible, intersect(tagged, versions))) {
      throw new Error(`${what}: tagged outside the flexible versions`);
    }
    if (raw.flexibleVersions !== undefined && !['string', 'bytes', 'records'].includes(elem)) {
      throw new Error(`${what}: field-level flexibleVersions only applies to strings and bytes`);
    }
    const prop = camel(raw.name);
    return {
      name: raw.name,
      prop,
      local: RESERVED_LOCALS.has(prop) ? `${prop}_` : prop,
      base: isStruct ? schema.name + elem : elem,
      isArray,
      isStruct,
      versions,
      nullable: parseRange(raw.nullableVersions, `${what} nullableVersions`),
      tagged,
      tag: raw.tag,
      flexible: raw.flexibleVersions !== undefined ? parseRange(raw.flexibleVersions, `${what} flexibleVersions`) : flexible,
      rawDefault: raw.default === undefined ? undefined : String(raw.default),
    };
  };

  msg.top = register(schema.name, schema.fields, valid, true);
  for (const st of msg.structs.values()) {
    const tags = new Set<number>();
    for (const f of st.fields) {
      if (f.tag === undefined) continue;
      if (tags.has(f.tag)) throw new Error(`${file}: tag ${f.tag} used twice in ${st.typeName}`);
      tags.add(f.tag);
    }
  }
  markIsDefault(msg);
  return msg;
}

/** Tagged struct fields are written only when they differ from their default: those structs need isDefault(). */
function markIsDefault(msg: Message): void {
  const byType = new Map([...msg.structs.values()].map((s) => [s.typeName, s]));
  const mark = (st: Struct): void => {
    if (st.needsIsDefault) return;
    st.needsIsDefault = true;
    for (const f of st.fields) if (f.isStruct && !f.isArray) mark(byType.get(f.base)!);
  };
  for (const st of msg.structs.values()) {
    for (const f of st.fields) if (f.tagged !== null && f.isStruct && !f.isArray) mark(byType.get(f.base)!);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Types and defaults

const TS_TYPES: Record<string, string> = {
  bool: 'boolean', int8: 'number', int16: 'number', uint16: 'number', int32: 'number', float64: 'number',
  int64: 'bigint', string: 'string', bytes: 'Buffer', uuid: 'Buffer', records: 'Buffer | Buffer[]',
};

function isNullable(f: Field): boolean {
  return intersect(f.nullable, f.versions) !== null;
}

function tsType(f: Field): string {
  const t = f.isStruct ? f.base : TS_TYPES[f.base]!;
  const core = f.isArray ? `${t.includes('|') ? `(${t})` : t}[]` : t;
  return isNullable(f) ? `${core} | null` : core;
}

const INT_BOUNDS: Record<string, [number, number]> = {
  int8: [-128, 127], int16: [-32768, 32767], uint16: [0, 65535], int32: [-2147483648, 2147483647],
};

function parseInteger(text: string, what: string): bigint {
  const m = /^(-?)(0x[0-9a-f]+|\d+)$/i.exec(text.trim());
  if (m === null) throw new Error(`${what}: invalid integer default "${text}"`);
  const v = BigInt(m[2]!);
  return m[1] === '-' ? -v : v;
}

/** The default value of a field as a JS expression (a fresh value for mutable types). */
function defaultExpr(f: Field, owner: string): string {
  const what = `${owner}.${f.name}`;
  const d = f.rawDefault;
  if (d === 'null') {
    if (!isNullable(f)) throw new Error(`${what}: default null on a non-nullable field`);
    return 'null';
  }
  if (f.isArray) {
    if (d !== undefined && d !== '') throw new Error(`${what}: unsupported array default "${d}"`);
    return '[]';
  }
  if (f.isStruct) {
    if (d !== undefined) throw new Error(`${what}: unsupported struct default "${d}"`);
    return `default${f.base}()`;
  }
  switch (f.base) {
    case 'bool':
      if (d === undefined || d === 'false') return 'false';
      if (d === 'true') return 'true';
      throw new Error(`${what}: invalid bool default "${d}"`);
    case 'int8': case 'int16': case 'uint16': case 'int32': {
      if (d === undefined) return '0';
      const v = parseInteger(d, what);
      const [lo, hi] = INT_BOUNDS[f.base]!;
      if (v < BigInt(lo) || v > BigInt(hi)) throw new Error(`${what}: default ${d} out of range for ${f.base}`);
      return v.toString();
    }
    case 'int64': {
      if (d === undefined) return '0n';
      const v = parseInteger(d, what);
      if (v < -(2n ** 63n) || v >= 2n ** 63n) throw new Error(`${what}: default ${d} out of range for int64`);
      return `${v}n`;
    }
    case 'float64': {
      if (d === undefined) return '0';
      const v = Number(d);
      if (Number.isNaN(v) && d.trim() !== 'NaN') throw new Error(`${what}: invalid float64 default "${d}"`);
      return String(v);
    }
    case 'string':
      return JSON.stringify(d ?? '');
    case 'bytes':
      if (d !== undefined && d !== '') throw new Error(`${what}: unsupported bytes default "${d}"`);
      return 'EMPTY_BUFFER';
    case 'records':
      if (d !== undefined && d !== '') throw new Error(`${what}: unsupported records default "${d}"`);
      return isNullable(f) ? 'null' : 'EMPTY_BUFFER';
    case 'uuid':
      if (d !== undefined && d !== '' && !/^0*$/.test(d.replace(/-/g, ''))) {
        throw new Error(`${what}: unsupported uuid default "${d}"`);
      }
      return 'Buffer.alloc(16)';
  }
  throw new Error(`${what}: no default for ${f.base}`);
}

/** Negates a differsExpr, turning a lone `a !== b` into `a === b` for readability. */
function sameAsDefault(differs: string): string {
  const m = /^([\w.]+) !== ([^&|]+)$/.exec(differs);
  return m ? `${m[1]} === ${m[2]}` : `!(${differs})`;
}

/** Defaults that cost nothing to evaluate eagerly (no allocation). */
function isCheapDefault(expr: string): boolean {
  return !(expr === '[]' || expr.endsWith('()') || expr.startsWith('Buffer.alloc'));
}

/** A condition that is true when the value differs from the default (decides whether a tagged field is written). */
function differsExpr(f: Field, v: string, owner: string): string {
  const d = defaultExpr(f, owner);
  if (d === 'null') return `${v} !== null`;
  if (f.isArray) return isNullable(f) ? `(${v} === null || ${v}.length !== 0)` : `${v}.length !== 0`;
  if (f.isStruct) return `!isDefault${f.base}(${v})`;
  switch (f.base) {
    case 'bytes': case 'records':
      return isNullable(f) ? `(${v} === null || recordsLength(${v}) !== 0)` : `recordsLength(${v}) !== 0`;
    case 'uuid':
      return `!isZeroUuid(${v})`;
    case 'float64':
      return `!Object.is(${v}, ${d})`;
    default:
      return `${v} !== ${d}`;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Minimum wire sizes (bound array counts before allocating)

const FIXED_SIZES: Record<string, number> = {
  bool: 1, int8: 1, int16: 2, uint16: 2, int32: 4, int64: 8, float64: 8, uuid: 16,
};

function inRange(r: Range | null, v: number): boolean {
  return r !== null && v >= r.lo && v <= r.hi;
}

function minValueSize(msg: Message, f: Field, version: number): number {
  if (f.isArray) return inRange(f.flexible, version) ? 1 : 4;
  if (f.isStruct) return inRange(f.nullable, version) ? 1 : minStructSize(msg, f.base, version);
  const fixed = FIXED_SIZES[f.base];
  if (fixed !== undefined) return fixed;
  const compact = inRange(f.flexible, version);
  if (f.base === 'string') return compact ? 1 : 2;
  return compact ? 1 : 4;
}

function minElementSize(msg: Message, f: Field, version: number): number {
  if (f.isStruct) return minStructSize(msg, f.base, version);
  const fixed = FIXED_SIZES[f.base];
  if (fixed !== undefined) return fixed;
  return inRange(f.flexible, version) ? 1 : 2;
}

function minStructSize(msg: Message, typeName: string, version: number): number {
  const st = [...msg.structs.values()].find((s) => s.typeName === typeName)!;
  let size = inRange(msg.flexible, version) ? 1 : 0;
  for (const f of st.fields) {
    if (inRange(f.versions, version) && !inRange(f.tagged, version)) size += minValueSize(msg, f, version);
  }
  return size;
}

/** The smallest element of an array field over the versions where it appears, at least 1 (as Kafka bounds it). */
function arrayMinBytes(msg: Message, f: Field, ctx: Range): number {
  let min = Infinity;
  for (let v = ctx.lo; v <= ctx.hi; v++) min = Math.min(min, minElementSize(msg, f, v));
  return Math.max(1, min);
}

// ---------------------------------------------------------------------------------------------------------------
// Code emission

const READERS: Record<string, string> = {
  bool: 'bool', int8: 'int8', int16: 'int16', uint16: 'uint16', int32: 'int32', int64: 'int64', float64: 'float64',
  uuid: 'uuid',
};
const WRITERS = READERS;

/** Picks between two expressions on a condition that may be constant. */
function pick(c: string, yes: string, no: string): string {
  if (c === 'true') return yes;
  if (c === 'false') return no;
  return `${c} ? ${yes} : ${no}`;
}

class Emitter {
  readonly lines: string[] = [];
  constructor(private depth = 0) {}
  indent(): void {
    this.depth++;
  }
  dedent(): void {
    this.depth--;
  }
  line(text: string): void {
    this.lines.push(text === '' ? '' : '  '.repeat(this.depth) + text);
  }
  open(text: string): void {
    this.line(text);
    this.depth++;
  }
  close(text = '}'): void {
    this.depth--;
    this.line(text);
  }
  /** if (c) { body } with constant conditions folded; body learns whether it runs in a fresh block. */
  when(c: string, body: (inBlock: boolean) => void): void {
    if (c === 'false') return;
    if (c === 'true') return body(false);
    this.open(`if (${c}) {`);
    body(true);
    this.close();
  }
}

interface StructCtx {
  msg: Message;
  st: Struct;
  ctx: Range;
  /** The struct-level flexible condition ('true', 'false' or an expression held in the `flexible` local). */
  flex: string;
}

/** The compact-form condition for a field, as 'true', 'false' or an expression, within versions fctx. */
function compactCond(sc: StructCtx, f: Field, fctx: Range): string {
  const c = cond(f.flexible, fctx);
  if (c === 'true' || c === 'false') return c;
  return sameRange(f.flexible, sc.msg.flexible) ? 'flexible' : c;
}

function whatOf(sc: StructCtx, f: Field): string {
  return `'${sc.st.typeName}.${f.prop}'`;
}

/** Expression reading one scalar (or one array element / struct) of field f. */
function readScalar(sc: StructCtx, f: Field, fctx: Range, what: string, asElement: boolean): string {
  const nullable = asElement ? 'false' : cond(f.nullable, fctx);
  if (f.isStruct) {
    const dec = `decode${f.base}(r, version)`;
    return pick(nullable, `(r.int8(${what}) < 0 ? null : ${dec})`, dec);
  }
  const compact = compactCond(sc, f, fctx);
  switch (f.base) {
    case 'string':
      return pick(compact,
        pick(nullable, `r.compactNullableString(${what})`, `r.compactString(${what})`),
        pick(nullable, `r.nullableString(${what})`, `r.string(${what})`));
    case 'bytes': case 'records':
      return pick(compact,
        pick(nullable, `r.compactNullableBytes(${what})`, `r.compactBytes(${what})`),
        pick(nullable, `r.nullableBytes(${what})`, `r.bytes(${what})`));
    default:
      return `r.${READERS[f.base]}(${what})`;
  }
}

/** Statements assigning the decoded value of f to `target` (declared by the caller). */
function emitRead(
  e: Emitter, sc: StructCtx, f: Field, fctx: Range, target: string, tagged: boolean, inBlock: boolean,
): void {
  const what = whatOf(sc, f);
  if (!f.isArray) {
    e.line(`${target} = ${readScalar(sc, f, fctx, what, false)};`);
    return;
  }
  const min = arrayMinBytes(sc.msg, f, fctx);
  const compact = tagged ? 'true' : compactCond(sc, f, fctx);
  if (!inBlock) e.open('{');
  e.line(`const n = ${pick(compact, `r.compactArrayLength(${min}, ${what})`, `r.arrayLength(${min}, ${what})`)};`);
  const nullable = cond(f.nullable, fctx);
  const elemType = f.isStruct ? f.base : TS_TYPES[f.base]!;
  const fill = (): void => {
    e.line(`const a: ${elemType}[] = [];`);
    e.line(`for (let i = 0; i < n; i++) a.push(${readScalar(sc, f, fctx, what, true)});`);
    e.line(`${target} = a;`);
  };
  if (nullable === 'false') {
    e.line(`if (n < 0) throw nullError(${what});`);
    fill();
  } else {
    e.open('if (n < 0) {');
    if (nullable === 'true') e.line(`${target} = null;`);
    else e.line(`if (${nullable}) ${target} = null; else throw nullError(${what});`);
    e.close('} else {');
    e.indent();
    fill();
    e.close();
  }
  if (!inBlock) e.close();
}

/** Statements writing value expression v of field f with writer `wv`. */
function emitWrite(
  e: Emitter, sc: StructCtx, f: Field, fctx: Range, v: string, wv: string, tagged: boolean, inBlock: boolean,
): void {
  const what = whatOf(sc, f);
  const nullable = cond(f.nullable, fctx);
  const typeNullable = isNullable(f);
  const compact = tagged ? 'true' : compactCond(sc, f, fctx);
  // A null in a version where the field is not nullable is a programmer error: name the field.
  if (typeNullable && nullable !== 'true') {
    const check = nullable === 'false' ? `${v} === null` : `${v} === null && !(${nullable})`;
    e.line(`if (${check}) throw nullFieldError(${what}, version);`);
  }
  if (f.isArray) {
    if (!inBlock) e.open('{');
    e.line(`const a = ${v};`);
    const writeElems = (): void => {
      e.line(pickStmt(compact, `${wv}.compactArrayLength(a.length);`, `${wv}.arrayLength(a.length);`));
      const elem = writeScalarStmt(sc, f, fctx, 'x', wv, compact, true);
      e.line(`for (const x of a) ${elem}`);
    };
    if (typeNullable) {
      e.open('if (a === null) {');
      e.line(pickStmt(compact, `${wv}.compactArrayLength(-1);`, `${wv}.arrayLength(-1);`));
      e.close('} else {');
      e.indent();
      writeElems();
      e.close();
    } else {
      writeElems();
    }
    if (!inBlock) e.close();
    return;
  }
  e.line(writeScalarStmt(sc, f, fctx, v, wv, compact, false));
}

function pickStmt(c: string, yes: string, no: string): string {
  if (c === 'true') return yes;
  if (c === 'false') return no;
  return `if (${c}) ${yes} else ${no}`;
}

/** One statement writing a scalar value (a struct element, string, int...) of field f. */
function writeScalarStmt(
  sc: StructCtx, f: Field, fctx: Range, v: string, wv: string, compact: string, asElement: boolean,
): string {
  const nullable = !asElement && isNullable(f);
  if (f.isStruct) {
    const enc = `encode${f.base}(${wv}, version, ${v});`;
    if (!nullable) return enc;
    return `if (${v} === null) ${wv}.int8(-1); else { ${wv}.int8(1); ${enc} }`;
  }
  switch (f.base) {
    case 'string':
      return pickStmt(compact,
        `${wv}.${nullable ? 'compactNullableString' : 'compactString'}(${v});`,
        `${wv}.${nullable ? 'nullableString' : 'string'}(${v});`);
    case 'bytes':
      return pickStmt(compact,
        `${wv}.${nullable ? 'compactNullableBytes' : 'compactBytes'}(${v});`,
        `${wv}.${nullable ? 'nullableBytes' : 'bytes'}(${v});`);
    case 'records':
      return `${wv}.records(${v}, ${compact});`;
    default:
      return `${wv}.${WRITERS[f.base]}(${v});`;
  }
}

function positional(f: Field): Range | null {
  // Versions where the field is on the wire in order: present and not tagged. Tagged ranges are open-ended or
  // equal to versions in every schema, so "versions minus tagged" is one interval.
  const v = f.versions;
  if (v === null) return null;
  const t = intersect(f.tagged, v);
  if (t === null) return v;
  if (t.lo <= v.lo && t.hi >= v.hi) return null;
  if (t.hi >= v.hi) return { lo: v.lo, hi: t.lo - 1 };
  if (t.lo <= v.lo) return { lo: t.hi + 1, hi: v.hi };
  throw new Error(`field ${f.name}: tagged versions split its positional versions in two`);
}

function emitStruct(out: string[], msg: Message, st: Struct): void {
  const ctx = st.ctx;
  if (ctx === null) return; // present in no valid version: nothing to generate
  const flexCond = cond(msg.flexible, ctx);
  const sc: StructCtx = { msg, st, ctx, flex: flexCond };
  const T = st.typeName;
  const owner = T;

  // Interface
  out.push(`export interface ${T} {`);
  for (const f of st.fields) out.push(`  ${f.prop}: ${tsType(f)};`);
  out.push('}', '');

  // Default constructor
  out.push(`/** A ${T} with every field at its schema default. */`);
  out.push(`export function default${T}(): ${T} {`);
  if (st.fields.length === 0) out.push(`  return {};`);
  else {
    out.push('  return {');
    for (const f of st.fields) out.push(`    ${f.prop}: ${defaultExpr(f, owner)},`);
    out.push('  };');
  }
  out.push('}', '');

  if (st.needsIsDefault) {
    out.push(`export function isDefault${T}(m: ${T}): boolean {`);
    const terms = st.fields.map((f) => sameAsDefault(differsExpr(f, `m.${f.prop}`, owner)));
    out.push(`  return ${terms.length === 0 ? 'true' : terms.join(' &&\n    ')};`);
    out.push('}', '');
  }

  emitDecode(out, sc);
  emitEncode(out, sc);
}

function versionGuard(e: Emitter, sc: StructCtx): void {
  if (!sc.st.isTop) return;
  const { lo, hi } = sc.msg.valid;
  const outside = lo === hi ? `version !== ${lo}` : `version < ${lo} || version > ${hi}`;
  e.line(`if (${outside}) throw new RangeError(\`${sc.st.typeName}: unsupported version \${version}\`);`);
}

function emitDecode(out: string[], sc: StructCtx): void {
  const { st, ctx } = sc;
  const T = st.typeName;
  const e = new Emitter();
  e.open(`export function decode${T}(r: Reader, version: number): ${T} {`);
  versionGuard(e, sc);
  const body = new Emitter(1);
  const lateDefaults = new Map<Field, string>();
  const taggedFields: Field[] = [];
  for (const f of st.fields) {
    const pos = intersect(positional(f), ctx);
    const tagged = intersect(intersect(f.tagged, f.versions), ctx);
    if (tagged !== null) taggedFields.push(f);
    const type = tsType(f);
    const def = defaultExpr(f, T);
    if (pos !== null && tagged === null && contains(pos, ctx)) {
      if (!f.isArray) {
        body.line(`const ${f.local} = ${readScalar(sc, f, pos, whatOf(sc, f), false)};`);
      } else {
        body.line(`let ${f.local}: ${type};`);
        emitRead(body, sc, f, pos, f.local, false, false);
      }
      continue;
    }
    if (isCheapDefault(def)) body.line(`let ${f.local}: ${type} = ${def};`);
    else {
      body.line(`let ${f.local}: ${type} | undefined;`);
      lateDefaults.set(f, def);
    }
    if (pos !== null) body.when(cond(pos, ctx), (inBlock) => emitRead(body, sc, f, pos, f.local, false, inBlock));
  }
  emitDecodeTagged(body, sc, taggedFields);
  const uses = body.lines.some((l) => /\bflexible\b/.test(l));
  if (uses) e.line(`const flexible = ${sc.flex};`);
  e.lines.push(...body.lines);
  if (st.fields.length === 0) e.line('return {};');
  else {
    e.open('return {');
    for (const f of st.fields) {
      const late = lateDefaults.get(f);
      if (late !== undefined) e.line(`${f.prop}: ${f.local} === undefined ? ${late} : ${f.local},`);
      else e.line(f.local === f.prop ? `${f.prop},` : `${f.prop}: ${f.local},`);
    }
    e.close('};');
  }
  e.close();
  out.push(...e.lines, '');
}

function emitDecodeTagged(e: Emitter, sc: StructCtx, tagged: Field[]): void {
  if (sc.flex === 'false') return;
  const label = `'${sc.st.typeName} tagged fields'`;
  const run = (): void => {
    if (tagged.length === 0) {
      e.line(`r.skipTaggedFields(${label});`);
      return;
    }
    e.line(`const count = r.uvarint(${label});`);
    e.open('for (let t = 0; t < count; t++) {');
    e.line(`const tag = r.uvarint(${label});`);
    e.line(`const end = r.taggedFieldEnd(${label});`);
    e.open('switch (tag) {');
    const flexCtx = intersect(sc.ctx, sc.msg.flexible);
    for (const f of [...tagged].sort((a, b) => a.tag! - b.tag!)) {
      const tctx = intersect(intersect(f.tagged, f.versions), sc.ctx)!;
      e.open(`case ${f.tag}:`);
      const c = cond(tctx, flexCtx);
      if (c === 'true') emitRead(e, sc, f, tctx, f.local, true, false);
      else {
        e.open(`if (${c}) {`);
        emitRead(e, sc, f, tctx, f.local, true, true);
        e.close('} else r.offset = end;');
      }
      e.line('break;');
      e.dedent();
    }
    e.open('default:');
    e.line('r.offset = end;');
    e.dedent();
    e.close();
    e.line(`r.expectOffset(end, ${label});`);
    e.close();
  };
  e.when(flexLocal(sc), run);
}

/** The struct-level flexible condition, naming the `flexible` local when it is not constant. */
function flexLocal(sc: StructCtx): string {
  return sc.flex === 'true' || sc.flex === 'false' ? sc.flex : 'flexible';
}

function emitEncode(out: string[], sc: StructCtx): void {
  const { st, ctx } = sc;
  const T = st.typeName;
  const e = new Emitter();
  e.open(`export function encode${T}(w: Writer, version: number, m: ${T}): void {`);
  versionGuard(e, sc);
  const body = new Emitter(1);
  const taggedFields: Field[] = [];
  for (const f of st.fields) {
    const pos = intersect(positional(f), ctx);
    const tagged = intersect(intersect(f.tagged, f.versions), ctx);
    if (tagged !== null) taggedFields.push(f);
    if (pos !== null) {
      body.when(cond(pos, ctx), (inBlock) => emitWrite(body, sc, f, pos, `m.${f.prop}`, 'w', false, inBlock));
    }
  }
  emitEncodeTagged(body, sc, taggedFields);
  const uses = body.lines.some((l) => /\bflexible\b/.test(l));
  if (uses) e.line(`const flexible = ${sc.flex};`);
  e.lines.push(...body.lines);
  e.close();
  out.push(...e.lines, '');
}

/** Fixed wire size of a tagged value, when its type has one (so no sub-writer is needed to learn it). */
function fixedTaggedSize(f: Field): number | undefined {
  if (f.isArray || f.isStruct) return undefined;
  return FIXED_SIZES[f.base];
}

function emitEncodeTagged(e: Emitter, sc: StructCtx, tagged: Field[]): void {
  if (sc.flex === 'false') return;
  e.when(flexLocal(sc), () => {
    if (tagged.length === 0) {
      e.line('w.uvarint(0);');
      return;
    }
    const sorted = [...tagged].sort((a, b) => a.tag! - b.tag!);
    e.line('let tagCount = 0;');
    const flexCtx = intersect(sc.ctx, sc.msg.flexible);
    for (const f of sorted) {
      const tctx = intersect(intersect(f.tagged, f.versions), sc.ctx)!;
      const c = cond(tctx, flexCtx);
      const differs = differsExpr(f, `m.${f.prop}`, sc.st.typeName);
      const guard = c === 'true' ? differs : `(${c}) && ${differs}`;
      e.line(`const t${f.tag} = ${guard};`);
      e.line(`if (t${f.tag}) tagCount++;`);
    }
    e.line('w.uvarint(tagCount);');
    for (const f of sorted) {
      const tctx = intersect(intersect(f.tagged, f.versions), sc.ctx)!;
      e.open(`if (t${f.tag}) {`);
      e.line(`w.uvarint(${f.tag});`);
      const fixed = fixedTaggedSize(f);
      if (fixed !== undefined) {
        e.line(`w.uvarint(${fixed});`);
        emitWrite(e, sc, f, tctx, `m.${f.prop}`, 'w', true, true);
      } else {
        e.line('const s = new Writer();');
        emitWrite(e, sc, f, tctx, `m.${f.prop}`, 's', true, true);
        e.line('w.uvarint(s.length);');
        e.line('w.append(s);');
      }
      e.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Files

const HEADER = [
  '// Generated by scripts/gen-protocol.ts from Apache Kafka\'s message schemas (Apache License 2.0; see NOTICE).',
  '// Do not edit by hand: change the generator and run `npm run gen:protocol`.',
];

function imports(body: string, extra: string[]): string[] {
  const names = ['EMPTY_BUFFER', 'isZeroUuid', 'nullError', 'nullFieldError', 'recordsLength'];
  const valueImports = names.filter((n) => new RegExp(`\\b${n}\\b`).test(body));
  // Writer is a value import only where a tagged field needs a sub-writer; elsewhere it is just a type.
  if (/new Writer\(/.test(body)) valueImports.push('Writer');
  const typeImports = ['Reader', ...(valueImports.includes('Writer') ? [] : ['Writer'])];
  if (valueImports.length === 0) return [`import type { ${typeImports.join(', ')} } from '../codec.ts';`, ...extra];
  // Case-insensitive by code unit, not localeCompare: output must not depend on the machine's locale.
  const key = (spec: string): string => spec.replace(/^type /, '').toLowerCase();
  const spec = [...valueImports, ...typeImports.map((t) => `type ${t}`)].sort((a, b) => (key(a) < key(b) ? -1 : 1));
  return [`import { ${spec.join(', ')} } from '../codec.ts';`, ...extra];
}

function renderMessages(msgs: Message[], sources: string[], extraBody: string[], extraImports: string[]): string {
  const body: string[] = [];
  for (const msg of msgs) {
    const structs = [...msg.structs.values()];
    // Top-level type first, nested ones after, in first-seen (schema) order.
    for (const st of structs) emitStruct(body, msg, st);
  }
  body.push(...extraBody);
  const text = body.join('\n');
  const head = [...HEADER, `// Source: ${sources.join(', ')}.`, ...imports(text, extraImports), ''];
  return [...head, ...body].join('\n').replace(/\n+$/, '\n');
}

interface ApiPair {
  apiKey: number;
  name: string;
  request: Message;
  response: Message;
  file: string;
}

function apiCodecConst(p: ApiPair): string[] {
  const req = p.request.schema;
  const flex = p.request.flexible;
  if (!sameRange(p.request.valid, p.response.valid)) {
    throw new Error(`${p.name}: request and response validVersions differ`);
  }
  if (!sameRange(flex, p.response.flexible)) throw new Error(`${p.name}: request and response flexibleVersions differ`);
  const listeners = [...(req.listeners ?? [])].sort().map((l) => `'${l}'`).join(', ');
  return [
    `export const ${p.name}Codec: ApiCodec<${p.name}Request, ${p.name}Response> = {`,
    `  apiKey: ${p.apiKey},`,
    `  name: '${p.name}',`,
    `  minVersion: ${p.request.valid.lo},`,
    `  maxVersion: ${p.request.valid.hi},`,
    `  firstFlexibleVersion: ${flex === null ? 'Infinity' : flex.lo},`,
    `  latestVersionUnstable: ${req.latestVersionUnstable === true},`,
    `  listeners: [${listeners}],`,
    `  decodeRequest: decode${p.name}Request,`,
    `  encodeRequest: encode${p.name}Request,`,
    `  decodeResponse: decode${p.name}Response,`,
    `  encodeResponse: encode${p.name}Response,`,
    '};',
    '',
  ];
}

function renderIndex(pairs: ApiPair[], others: { name: string; file: string }[]): string {
  const lines = [...HEADER, ''];
  lines.push(`import type { ApiCodec } from '../api-codec.ts';`);
  for (const p of pairs) lines.push(`import { ${p.name}Codec } from './${p.file}.ts';`);
  lines.push('');
  const files = [...pairs.map((p) => p.file), ...others.map((o) => o.file)].sort();
  for (const f of files) lines.push(`export * from './${f}.ts';`);
  lines.push('');
  lines.push('/** API keys by name, from the request schemas. */');
  lines.push('export const ApiKey = {');
  for (const p of pairs) lines.push(`  ${p.name}: ${p.apiKey},`);
  lines.push('} as const;', '');
  lines.push('export type ApiKeyValue = (typeof ApiKey)[keyof typeof ApiKey];', '');
  lines.push('/** Every API of the schemas, by apiKey: version range, flexible versions and the four codecs. */');
  lines.push('export const API_CODECS: ReadonlyMap<number, ApiCodec> = new Map<number, ApiCodec>([');
  for (const p of pairs) lines.push(`  [${p.apiKey}, ${p.name}Codec],`);
  lines.push(']);', '');
  return lines.join('\n');
}

export interface GenerateResult {
  files: string[];
}

/** Generates every file into outDir (cleared first) from the schemas in schemaDir. */
export function generate(schemaDir: string, outDir: string): GenerateResult {
  const files = readdirSync(schemaDir).filter((f) => f.endsWith('.json')).sort();
  const byName = new Map<string, Message>();
  for (const file of files) {
    const schema = JSON.parse(stripComments(readFileSync(join(schemaDir, file), 'utf8'))) as RawSchema;
    if (!['request', 'response', 'header', 'data'].includes(schema.type)) {
      throw new Error(`${file}: unknown message type ${schema.type}`);
    }
    if (byName.has(schema.name)) throw new Error(`${file}: message ${schema.name} defined twice`);
    byName.set(schema.name, loadMessage(file, schema));
  }
  checkUniqueTypeNames([...byName.values()]);

  const pairs: ApiPair[] = [];
  const others: { name: string; file: string; msg: Message }[] = [];
  for (const msg of byName.values()) {
    const { type, name } = msg.schema;
    if (type === 'request') {
      if (!name.endsWith('Request')) throw new Error(`${msg.file}: request name must end with Request`);
      const base = name.slice(0, -'Request'.length);
      const response = byName.get(`${base}Response`);
      if (response === undefined || response.schema.type !== 'response') throw new Error(`${msg.file}: no response`);
      if (response.schema.apiKey !== msg.schema.apiKey) throw new Error(`${base}: apiKey differs`);
      pairs.push({ apiKey: msg.schema.apiKey!, name: base, request: msg, response, file: kebab(base) });
    } else if (type === 'response') {
      const req = byName.get(name.replace(/Response$/, 'Request'));
      if (req === undefined || req.schema.type !== 'request') throw new Error(`${msg.file}: no request`);
    } else {
      others.push({ name, file: kebab(name), msg });
    }
  }
  pairs.sort((a, b) => a.apiKey - b.apiKey);
  const keys = new Set<number>();
  for (const p of pairs) {
    if (keys.has(p.apiKey)) throw new Error(`apiKey ${p.apiKey} used twice`);
    keys.add(p.apiKey);
  }

  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  const write = (file: string, text: string): void => {
    writeFileSync(join(outDir, file), text);
    written.push(file);
  };
  for (const p of pairs) {
    const sources = [p.request.file, p.response.file];
    write(`${p.file}.ts`, renderMessages([p.request, p.response], sources, apiCodecConst(p),
      [`import type { ApiCodec } from '../api-codec.ts';`]));
  }
  for (const o of others) write(`${o.file}.ts`, renderMessages([o.msg], [o.msg.file], [], []));
  write('index.ts', renderIndex(pairs, others));
  return { files: written.sort() };
}

function checkUniqueTypeNames(msgs: Message[]): void {
  const seen = new Map<string, string>();
  for (const m of msgs) {
    for (const st of m.structs.values()) {
      const prev = seen.get(st.typeName);
      if (prev !== undefined) throw new Error(`type name ${st.typeName} generated twice (${prev}, ${m.file})`);
      seen.set(st.typeName, m.file);
    }
  }
}

function main(): void {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const schemaDir = resolve(process.argv[2] ?? join(repo, '..', 'shared', 'kafka-protocol', 'messages'));
  const outDir = resolve(process.argv[3] ?? join(repo, 'backend', 'src', 'protocol', 'generated'));
  const { files } = generate(schemaDir, outDir);
  console.log(`gen-protocol: wrote ${files.length} files to ${outDir}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
