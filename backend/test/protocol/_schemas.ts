// Test helper (not a test file): reads Kafka's JSON schemas from ../shared and builds sample messages for any
// version by walking the schema. Its version logic is written independently of scripts/gen-protocol.ts, so a
// generator mistake about which fields exist, their defaults or nullability shows up as a round-trip mismatch.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SCHEMA_DIR = resolve(REPO_ROOT, '..', 'shared', 'kafka-protocol', 'messages');
export const GENERATED_DIR = join(REPO_ROOT, 'backend', 'src', 'protocol', 'generated');

export function schemasAvailable(): boolean {
  return existsSync(SCHEMA_DIR);
}

export interface SchemaField {
  name: string;
  type: string;
  versions?: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number;
  default?: string | number | boolean;
  fields?: SchemaField[];
}

export interface Schema {
  apiKey?: number;
  type: string;
  name: string;
  validVersions: string;
  flexibleVersions: string;
  fields: SchemaField[];
  commonStructs?: { name: string; fields: SchemaField[] }[];
}

/** Drops // line comments outside strings (the schema files have no block comments). */
function dropComments(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      let inString = false;
      for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if (c === '\\' && inString) i++;
        else if (c === '"') inString = !inString;
        else if (!inString && c === '/' && line[i + 1] === '/') return line.slice(0, i);
      }
      return line;
    })
    .join('\n');
}

export function loadSchemas(): Map<string, Schema> {
  const out = new Map<string, Schema>();
  for (const f of readdirSync(SCHEMA_DIR).filter((n) => n.endsWith('.json')).sort()) {
    const s = JSON.parse(dropComments(readFileSync(join(SCHEMA_DIR, f), 'utf8'))) as Schema;
    out.set(s.name, s);
  }
  return out;
}

/** Is version v inside "N+", "N-M", "N" ("none" and undefined contain nothing)? */
export function inVersions(spec: string | undefined, v: number): boolean {
  if (spec === undefined || spec === 'none') return false;
  if (spec.endsWith('+')) return v >= Number(spec.slice(0, -1));
  const [lo, hi] = spec.split('-');
  return v >= Number(lo) && v <= Number(hi ?? lo);
}

export function versionBounds(spec: string): [number, number] {
  const [lo, hi] = spec.split('-');
  return [Number(lo), Number(hi ?? lo)];
}

/** A deterministic PRNG (mulberry32), so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Mode = 'full' | 'nulls';

export class SampleBuilder {
  private readonly commons: Map<string, SchemaField[]>;
  private readonly random: () => number;

  constructor(private readonly schema: Schema, seed: number) {
    this.commons = new Map((schema.commonStructs ?? []).map((c) => [c.name, c.fields]));
    this.random = rng(seed);
  }

  /**
   * A message for `version`. 'full': every field present at this version holds a non-default, non-null value
   * (so every tagged field is written). 'nulls': nullable fields are null, the others hold their defaults.
   * Fields absent at this version hold their schema default, which is what a decoder must produce.
   */
  build(version: number, mode: Mode): Record<string, unknown> {
    return this.struct(this.schema.fields, version, mode);
  }

  private structFields(f: SchemaField): SchemaField[] {
    const name = f.type.replace(/^\[\]/, '');
    const fields = f.fields ?? this.commons.get(name);
    if (fields === undefined) throw new Error(`${this.schema.name}: no struct ${name}`);
    return fields;
  }

  private struct(fields: SchemaField[], version: number, mode: Mode): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of fields) {
      const key = f.name[0]!.toLowerCase() + f.name.slice(1);
      if (!inVersions(f.versions, version)) out[key] = this.defaultOf(f);
      else if (mode === 'nulls') out[key] = inVersions(f.nullableVersions, version) ? null : this.defaultOf(f);
      else out[key] = this.value(f, version);
    }
    return out;
  }

  private isStruct(f: SchemaField): boolean {
    return /^[A-Z]/.test(f.type.replace(/^\[\]/, ''));
  }

  defaultOf(f: SchemaField): unknown {
    // A few schemas write numeric defaults as JSON numbers rather than strings.
    const d = f.default === undefined ? undefined : String(f.default);
    if (d === 'null') return null;
    if (f.type.startsWith('[]')) return [];
    if (this.isStruct(f)) return this.struct(this.structFields(f), -1, 'nulls');
    switch (f.type) {
      case 'bool': return d === 'true';
      case 'int8': case 'int16': case 'uint16': case 'int32': return d === undefined ? 0 : intOf(d);
      case 'int64': return d === undefined ? 0n : BigInt(intOf(d));
      case 'float64': return d === undefined ? 0 : Number(d);
      case 'string': return d ?? '';
      case 'bytes': return Buffer.alloc(0);
      case 'records': return f.nullableVersions !== undefined ? null : Buffer.alloc(0);
      case 'uuid': return Buffer.alloc(16);
    }
    throw new Error(`no default for ${f.type}`);
  }

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  private bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }

  /** A value of the element type that differs from the field default. */
  private scalar(f: SchemaField, type: string, version: number): unknown {
    const def = type === f.type ? this.defaultOf(f) : undefined;
    const differ = <T>(make: () => T): T => {
      for (;;) {
        const v = make();
        if (v !== def) return v;
      }
    };
    switch (type) {
      case 'bool': return def === undefined ? this.random() < 0.5 : !def;
      case 'int8': return differ(() => this.int(-128, 127));
      case 'int16': return differ(() => this.int(-32768, 32767));
      case 'uint16': return differ(() => this.int(0, 65535));
      case 'int32': return differ(() => this.int(-2147483648, 2147483647));
      case 'int64': return differ(() => BigInt(this.int(-2147483648, 2147483647)) * 4294967296n + BigInt(this.int(0, 4294967295)));
      case 'float64': return differ(() => (this.random() - 0.5) * 1e9);
      case 'string': return ['tópic-€', 'a', 'group-1', 'x'.repeat(this.int(1, 60)), 'ü'.repeat(50)][this.int(0, 4)]!;
      case 'bytes': return this.bytes(this.int(1, 40));
      case 'records': return this.bytes(this.int(1, 100));
      case 'uuid': {
        const u = this.bytes(16);
        u[0] = 1;
        return u;
      }
    }
    // a struct element
    return this.struct(this.structFields(f), version, 'full');
  }

  private value(f: SchemaField, version: number): unknown {
    if (f.type.startsWith('[]')) {
      const elem = f.type.slice(2);
      const n = this.int(1, 3);
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) out.push(this.scalar(f, elem, version));
      return out;
    }
    if (this.isStruct(f)) return this.struct(this.structFields(f), version, 'full');
    return this.scalar(f, f.type, version);
  }
}

function intOf(text: string): number {
  const neg = text.startsWith('-');
  const body = neg ? text.slice(1) : text;
  const v = body.toLowerCase().startsWith('0x') ? parseInt(body.slice(2), 16) : Number(body);
  return neg ? -v : v;
}
