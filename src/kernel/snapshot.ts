/**
 * Cheap snapshot / restore of a booted machine, for the stateless model checker: every schedule
 * prefix is replayed from the booted state, and booting (memmap_init + memblock_free_all) again
 * for each of them would dominate the cost. Not a kernel mechanism; it models no kernel function.
 *
 * The snapshot walks the Kernel object graph once (typed arrays, arrays, Maps, Sets, plain and
 * class objects, including every mechanism's state under `k.ext`) and compiles a restore plan:
 * restoring puts every object that existed at snapshot time back to its recorded contents *in
 * place*, so references held elsewhere (hooks, closures of install functions, Mutex objects
 * shared between mechanisms) stay valid. Objects created during a run are simply dropped.
 * Functions and the immutable parts (config, profile, switches, hooks) are kept by identity.
 * A restore compares before it writes (a Map or Set as recorded is not rebuilt) and each object
 * is restored by code compiled for its keys, so that it costs about what the run changed.
 *
 * What it cannot see: state kept in closures or module variables instead of on the kernel
 * (mechanisms must keep their state under k.ext, which the design already asks for), and
 * closures made at install time that read scalar fields of the kernel they captured (instance()
 * copies those scalars). The model checker verifies a snapshot against a fresh boot before use.
 */
import type { Kernel } from './machine.js';

type TypedArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float64Array | Float32Array;
type Step = () => void;
type Same = () => boolean;

/** What the snapshot knows of one object: how to test it against its recorded contents, and what it referenced. */
interface Recorded {
  same: Same;
  children: unknown[];
}

export interface KernelSnapshot {
  /** puts the kernel back into the state it had when the snapshot was taken */
  restore(): void;
  /**
   * restore(), then a new Kernel object sharing the restored state objects (memmap, zones,
   * registry, ext). Code that keys per-run state by the kernel object (WeakMap<Kernel, ...>, e.g. a
   * checker's dirty-pfn tracker) sees a new machine, while its own fields added to shared objects
   * are removed again by the next restore. Scalars of the kernel itself are copied.
   */
  instance(): Kernel;
  /**
   * True when every object reachable from `root` at snapshot time still holds what it held then
   * (so the graph under `root` is the recorded one: references are compared by identity). The model
   * checker uses it to keep the fingerprint of untouched mechanism state (k.ext) instead of
   * rebuilding it. False for an object the snapshot did not record.
   */
  unchanged(root: object): boolean;
  /** objects recorded (for tests and stats) */
  readonly objects: number;
}

function isTyped(v: object): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

class PlanBuilder {
  readonly steps: Step[] = [];
  readonly recorded = new Map<object, Recorded>();
  private readonly seen = new Set<object>();

  constructor(private readonly atoms: Set<object>) {}

  /** Records `v` (if it is an object not yet seen) and everything reachable from it. */
  visit(v: unknown): void {
    if (v === null || typeof v !== 'object' || this.atoms.has(v) || this.seen.has(v)) return;
    this.seen.add(v);
    if (isTyped(v)) return this.typed(v);
    if (Array.isArray(v)) return this.array(v);
    if (v instanceof Map) return this.map(v);
    if (v instanceof Set) return this.set(v);
    this.object(v as Record<string, unknown>);
  }

  get count(): number {
    return this.seen.size;
  }

  private typed(a: TypedArray): void {
    const copy = a.slice();
    this.steps.push(() => a.set(copy as never));
    const n = a.length;
    this.recorded.set(a, {
      same: () => {
        for (let i = 0; i < n; i++) if (differ(a[i], copy[i])) return false;
        return true;
      },
      children: [],
    });
  }

  private array(a: unknown[]): void {
    const items = a.slice();
    this.steps.push(() => {
      if (a.length !== items.length) a.length = items.length;
      for (let i = 0; i < items.length; i++) a[i] = items[i];
    });
    this.recorded.set(a, { same: () => a.length === items.length && items.every((x, i) => !differ(a[i], x)), children: items });
    for (const x of items) this.visit(x);
  }

  private map(m: Map<unknown, unknown>): void {
    const entries = [...m.entries()];
    const keys = entries.map(([key]) => key);
    const vals = entries.map(([, val]) => val);
    const same = (): boolean => {
      if (m.size !== keys.length) return false;
      if (keys.length === 0) return true; // no iterator: most maps are empty, and iterating is slow until hot
      let i = 0;
      // (keys and get: an entries loop allocates a pair per entry, on every restore)
      for (const key of m.keys()) {
        if (differ(key, keys[i]) || differ(m.get(key), vals[i])) return false;
        i++;
      }
      return true;
    };
    this.recorded.set(m, { same, children: [...keys, ...vals] });
    this.steps.push(() => {
      // Most maps are as recorded (a run touches a few): clear() would allocate a new table.
      if (same()) return;
      m.clear();
      for (let i = 0; i < keys.length; i++) m.set(keys[i], vals[i]);
    });
    for (const [key, val] of entries) {
      this.visit(key);
      this.visit(val);
    }
  }

  private set(s: Set<unknown>): void {
    const items = [...s];
    const same = (): boolean => {
      if (s.size !== items.length) return false;
      if (items.length === 0) return true;
      let i = 0;
      for (const x of s) if (differ(x, items[i++])) return false;
      return true;
    };
    this.recorded.set(s, { same, children: items });
    this.steps.push(() => {
      if (same()) return;
      s.clear();
      for (const x of items) s.add(x);
    });
    for (const x of items) this.visit(x);
  }

  private object(o: Record<string, unknown>): void {
    const keys = Object.keys(o);
    const vals = keys.map((key) => o[key]);
    const { restore, same } = objectCode(keys);
    this.steps.push(() => restore(o, vals));
    this.recorded.set(o, { same: () => same(o, vals), children: vals });
    for (const x of vals) this.visit(x);
  }
}

interface ObjectCode {
  restore: (o: Record<string, unknown>, vals: unknown[]) => void;
  same: (o: Record<string, unknown>, vals: unknown[]) => boolean;
}
const OBJECT_CODE = new Map<string, ObjectCode>();

/**
 * Not the same value (SameValue, as Object.is): a -0 recorded as 0 (or the reverse) is a change,
 * a NaN recorded as NaN is not. Written out because Object.is is a call until the code is hot, and
 * most restores run before that.
 */
function differ(a: unknown, b: unknown): boolean {
  return a === b ? a === 0 && 1 / (a as number) !== 1 / (b as number) : a === a || b === b;
}
const DIFFER = '(a === b ? a === 0 && 1 / a !== 1 / b : a === a || b === b)';

/**
 * The restore and compare functions of an object with these keys, compiled once per key list: one
 * shared loop reading and writing `o[keys[i]]` for objects of every shape makes each property
 * access megamorphic (most of the cost of a restore), while the compiled ones have an inline cache
 * per property. A field added during the run (rare: a checker's instrumentation) is a change, and
 * restore removes it again.
 */
function objectCode(keys: string[]): ObjectCode {
  const id = JSON.stringify(keys);
  let c = OBJECT_CODE.get(id);
  if (c) return c;
  const field = (i: number) => `o[${JSON.stringify(keys[i])}]`;
  const count = `let c = 0;\nfor (const _ in o) c++;\n`;
  const restore = `${keys.map((_, i) => `${field(i)} = v[${i}];`).join('\n')}
${count}if (c !== ${keys.length}) for (const key of Object.keys(o)) if (!keys.includes(key)) delete o[key];`;
  const same = `let a, b;
${keys.map((_, i) => `a = ${field(i)}; b = v[${i}]; if ${DIFFER} return false;`).join('\n')}
${count}return c === ${keys.length};`;
  const make = (body: string) => new Function('keys', `return (o, v) => {\n${body}\n};`)(keys);
  c = { restore: make(restore), same: make(same) };
  OBJECT_CODE.set(id, c);
  return c;
}

/** The compare functions of every recorded object reachable from `root` (through recorded references). */
function reachable(recorded: Map<object, Recorded>, root: object): Same[] {
  const out: Same[] = [];
  const seen = new Set<unknown>([root]);
  const todo: unknown[] = [root];
  while (todo.length) {
    const r = recorded.get(todo.pop() as object);
    if (!r) continue;
    out.push(r.same);
    for (const c of r.children) {
      if (c === null || typeof c !== 'object' || seen.has(c)) continue;
      seen.add(c);
      todo.push(c);
    }
  }
  return out;
}

/** Snapshots a kernel (normally right after createKernel). */
export function snapshotKernel(k: Kernel): KernelSnapshot {
  // Immutable after construction: kept by identity, never walked.
  const atoms = new Set<object>([k.cfg, k.profile, k.sw, k.hooks, k.fingerprintParts]);
  const b = new PlanBuilder(atoms);
  b.visit(k);
  const steps = b.steps;
  const restore = (): void => {
    for (let i = 0; i < steps.length; i++) steps[i]();
  };
  const checks = new Map<object, Same[]>();
  return {
    objects: b.count,
    restore,
    unchanged(root) {
      if (!b.recorded.has(root)) return false;
      let list = checks.get(root);
      if (!list) checks.set(root, (list = reachable(b.recorded, root)));
      for (let i = 0; i < list.length; i++) {
        if (list[i]()) continue;
        // The object that differed is likely to differ next time too: test it first then.
        if (i > 0) [list[0], list[i]] = [list[i], list[0]];
        return false;
      }
      return true;
    },
    instance() {
      restore();
      return Object.assign(Object.create(Object.getPrototypeOf(k)) as Kernel, k);
    },
  };
}
