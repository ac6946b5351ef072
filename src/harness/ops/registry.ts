/**
 * The operations vocabulary: what a kernel user does, one entry per op name (snake_case, as the
 * kernel's entry points and sysfs knobs). Each op declares its fields so a malformed program is a
 * one-line error naming the op and the field, and runs as a generator over the simulated kernel.
 */
import type { Kernel } from '../../kernel/machine.js';
import type { KGen } from '../../kernel/sched.js';
import { ConfigError, MIGRATETYPE_ARG, type Errno } from '../../kernel/types.js';

export interface OpResult {
  result: Errno;
  pfn?: number;
  order?: number;
  nrPages?: number;
  [extra: string]: unknown;
}

export type FieldType = 'id' | 'int' | 'count' | 'migratetype' | 'hstate' | 'bool' | 'bytes' | 'zone' | 'string' | 'name-or-index';
export interface FieldSpec {
  type: FieldType;
  optional?: boolean;
  min?: number;
  max?: number;
}

export interface OpSpec {
  name: string;
  /** one line for `mmcheck ops` and errors */
  summary: string;
  fields: Record<string, FieldSpec>;
  run: (k: Kernel, args: Record<string, any>) => KGen<OpResult>;
  /** does the op take memory (it then reports the pfn it got) */
  takes?: boolean;
}

export const OPS: Record<string, OpSpec> = {};

export function defineOp(spec: OpSpec): void {
  OPS[spec.name] = spec;
}

export interface Op {
  op: string;
  [field: string]: unknown;
}

const SIZE_RE = /^(\d+)\s*([KMG]?)$/i;

/** "2M", "1G", "4096" or a number -> bytes */
export function parseBytes(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v !== 'string') return undefined;
  const m = SIZE_RE.exec(v.trim());
  if (!m) return undefined;
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * mult;
}

/** Validates and normalises one op; throws ConfigError naming the op and the field. */
export function validateOp(op: unknown, where: string, hstates: string[] = []): Op {
  if (!op || typeof op !== 'object' || Array.isArray(op)) throw new ConfigError(`${where}: an op must be an object with an "op" field`);
  const o = op as Record<string, unknown>;
  const spec = OPS[o.op as string];
  if (typeof o.op !== 'string' || !spec) throw new ConfigError(`${where}: unknown op '${String(o.op)}' (known: ${Object.keys(OPS).sort().join(', ')})`);
  const out: Op = { op: spec.name };
  for (const key of Object.keys(o)) {
    if (key !== 'op' && !(key in spec.fields)) throw new ConfigError(`${where}: op '${spec.name}' has no field '${key}'`);
  }
  for (const [name, f] of Object.entries(spec.fields)) {
    const v = o[name];
    const bad = (what: string) => new ConfigError(`${where}: op '${spec.name}' field '${name}' ${what}`);
    if (v === undefined) {
      if (!f.optional) throw bad('is missing');
      continue;
    }
    switch (f.type) {
      case 'id':
      case 'string':
        if (typeof v !== 'string' || v.length === 0) throw bad('must be a non-empty string');
        out[name] = v;
        break;
      case 'int':
      case 'count': {
        if (typeof v !== 'number' || !Number.isInteger(v)) throw bad('must be an integer');
        const min = f.min ?? 0;
        if (v < min || (f.max !== undefined && v > f.max)) throw bad(`must be in ${min}..${f.max ?? 'inf'}`);
        out[name] = v;
        break;
      }
      case 'bool':
        if (typeof v !== 'boolean') throw bad('must be true or false');
        out[name] = v;
        break;
      case 'migratetype':
        if (typeof v !== 'string' || !(v in MIGRATETYPE_ARG)) throw bad(`must be one of ${Object.keys(MIGRATETYPE_ARG).join(', ')}`);
        out[name] = v;
        break;
      case 'hstate':
        if (typeof v !== 'string' || (hstates.length > 0 && !hstates.includes(v))) throw bad(`must name an hstate (${hstates.join(', ')})`);
        out[name] = v;
        break;
      case 'zone':
        if (v !== 'Normal' && v !== 'Movable' && v !== 'normal' && v !== 'movable') throw bad('must be Normal or Movable');
        out[name] = v.charAt(0).toUpperCase() + v.slice(1).toLowerCase();
        break;
      case 'name-or-index':
        if (!((typeof v === 'string' && v.length > 0) || (typeof v === 'number' && Number.isInteger(v) && v >= 0))) throw bad('must be a name or a non-negative index');
        out[name] = v;
        break;
      case 'bytes': {
        const b = parseBytes(v);
        if (b === undefined) throw bad('must be a size in bytes ("2M", "1G" or an integer)');
        out[name] = b;
        break;
      }
    }
  }
  return out;
}
