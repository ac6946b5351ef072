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
 *
 * What it cannot see: state kept in closures or module variables instead of on the kernel
 * (mechanisms must keep their state under k.ext, which the design already asks for), and
 * closures made at install time that read scalar fields of the kernel they captured (instance()
 * copies those scalars). The model checker verifies a snapshot against a fresh boot before use.
 */
import type { Kernel } from './machine.js';

type TypedArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float64Array | Float32Array;
type Step = () => void;

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
  /** objects recorded (for tests and stats) */
  readonly objects: number;
}

function isTyped(v: object): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

class PlanBuilder {
  readonly steps: Step[] = [];
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
  }

  private array(a: unknown[]): void {
    const items = a.slice();
    this.steps.push(() => {
      a.length = items.length;
      for (let i = 0; i < items.length; i++) a[i] = items[i];
    });
    for (const x of items) this.visit(x);
  }

  private map(m: Map<unknown, unknown>): void {
    const entries = [...m.entries()];
    this.steps.push(() => {
      m.clear();
      for (const [key, val] of entries) m.set(key, val);
    });
    for (const [key, val] of entries) {
      this.visit(key);
      this.visit(val);
    }
  }

  private set(s: Set<unknown>): void {
    const items = [...s];
    this.steps.push(() => {
      s.clear();
      for (const x of items) s.add(x);
    });
    for (const x of items) this.visit(x);
  }

  private object(o: Record<string, unknown>): void {
    const keys = Object.keys(o);
    const vals = keys.map((key) => o[key]);
    const n = keys.length;
    this.steps.push(() => {
      for (let i = 0; i < n; i++) o[keys[i]] = vals[i];
      // A field added during the run (rare: a checker's instrumentation) is removed again.
      let c = 0;
      for (const _ in o) c++;
      if (c !== n) for (const key of Object.keys(o)) if (!keys.includes(key)) delete o[key];
    });
    for (const x of vals) this.visit(x);
  }
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
  return {
    objects: b.count,
    restore,
    instance() {
      restore();
      return Object.assign(Object.create(Object.getPrototypeOf(k)) as Kernel, k);
    },
  };
}
