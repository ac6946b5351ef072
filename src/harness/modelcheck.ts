/**
 * Exhaustive small-scope model checking of thread programs (`mmcheck check`), as loom and CHESS do:
 *
 *  - stateless: generators cannot be cloned, so every schedule prefix is replayed from the booted
 *    machine (restored from a snapshot, src/kernel/snapshot.ts, instead of booting again);
 *  - depth-first over the scheduler's choices at each step boundary (the choice semantics of
 *    src/kernel/sched.ts, so a found schedule replays with `mmcheck run` / `mmcheck replay`);
 *  - preemption bounding (switching away from a runnable thread costs one preemption; a thread that
 *    finishes or blocks on a mutex hands over for free);
 *  - state fingerprints (a hash of the memmap typed arrays, pageblock bits, zone counters, the
 *    allocation registry, every mechanism's k.fingerprintParts, and each thread's position = steps
 *    it has executed plus its last yield label; allocation handles and content tokens relabelled
 *    by first appearance, since only their identity matters) prune a state already explored with
 *    a preemption budget that covers this visit (see Explorer.seen);
 *  - shortest counterexamples: once a violation of length L is found, the exploration is repeated
 *    with the step bound L-1 (deepening from above) until none is found, then with fewer
 *    preemptions at that length; the last one found is a shortest (in steps, then preemptions);
 *  - thread symmetry: threads running the same program on the same cpu (thread id mod cpus: the
 *    pcp lists are per cpu) are interchangeable; of those not yet started, only the lowest-numbered
 *    may start (every schedule starting another one is a renaming of one that does).
 *
 * Approximations (stated, not hidden): a thread's position does not capture the local variables of
 * its op generators beyond what the kernel state shows, and per-run checker state (snapshots some
 * properties take at op start) is not in the fingerprint; `k.events` (a log) is not either.
 * Not done: sleep sets / DPOR (no per-step footprint is recorded), node symmetry (no tiny config
 * has two nodes of equal geometry).
 */
import { createKernel } from '../kernel/index.js';
import { ConfigError } from '../kernel/types.js';
import type { Kernel } from '../kernel/machine.js';
import { snapshotKernel, type KernelSnapshot } from '../kernel/snapshot.js';
import { Scheduler, type KGen, type Thread } from '../kernel/sched.js';
import type { CheckContext, Checker, OpEvent, Property } from '../../properties/index.js';
import { CE_FORMAT, type Counterexample } from './corpus.js';
import { runProgram } from './executor.js';
import { OPS, type Op, type OpResult } from './ops/index.js';
import type { ParsedProgram } from './program.js';

export interface CheckOptions {
  properties: Property[];
  /** preemption bound (default 2) */
  preemptions?: number;
  /** step bound (default 400): schedules longer than this are cut off and counted */
  maxDepth?: number;
  /** thread symmetry reduction (default on) */
  symmetry?: boolean;
  /** state fingerprints (default on; off explores the full schedule tree) */
  fingerprints?: boolean;
  /** search for a shortest violation once one is found (default on) */
  shortest?: boolean;
  /** restore a snapshot instead of booting for every schedule (default on) */
  snapshot?: boolean;
}

export interface CheckStats {
  /** schedules executed (each one replayed from the booted state) */
  schedules: number;
  /** distinct states (fingerprints) */
  states: number;
  /** atomic sections executed, replays included */
  steps: number;
  /** schedules stopped at an already explored state */
  pruned: number;
  /** schedules cut off by the step bound */
  cutoff: number;
  ms: number;
}

export interface FoundViolation {
  property: string;
  message: string;
  /** index of the step that broke it (as runProgram reports it) */
  step: number;
  /** the choice list for the scheduler (trailing zeros trimmed) */
  schedule: number[];
  /** thread that ran each step */
  threadsRun: number[];
  labels: string[];
  steps: number;
  preemptions: number;
  /** ops started by the violating step */
  ops: number;
  /** the program, with ops not started by the violation dropped */
  threads: Op[][];
  /** runProgram on (threads, schedule) reproduced the same property at the same step */
  replayed: boolean;
}

export interface CheckResult {
  stats: CheckStats;
  /** when the first violation was met, before the search for a shortest one */
  first: { ms: number; schedules: number } | null;
  violation: FoundViolation | null;
  /** no schedule was cut off by the step bound: the scope was explored completely */
  complete: boolean;
  /** the snapshot was verified and used (false: every schedule booted a fresh machine) */
  snapshot: boolean;
}

// ---------------------------------------------------------------------------------------------
// One execution: the machine, the scheduler and the property checkers, stepped by the explorer.

/** Must match executor.ts's thread program: yield 'op:<name>' before each op. */
function* threadProgram(k: Kernel, tid: number, ops: Op[], ev: { started: CheckContext['started']; finished: OpEvent[] }): KGen<void> {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    yield `op:${op.op}`;
    ev.started.push({ thread: tid, index: i, op });
    const r: OpResult = yield* OPS[op.op].run(k, op);
    ev.finished.push({ thread: tid, index: i, op, result: r });
  }
}

interface StepOutcome {
  property: string;
  message: string;
}

class Execution {
  readonly sched: Scheduler;
  readonly checkers: [Property, Checker][];
  readonly ev = { started: [] as CheckContext['started'], finished: [] as OpEvent[] };
  cur = 0;
  steps = 0;
  preemptions = 0;
  opsStarted = 0;
  readonly pos: Int32Array;
  readonly label: string[];
  readonly threadsRun: number[] = [];
  readonly labels: string[] = [];

  constructor(readonly k: Kernel, threads: Op[][], props: Property[]) {
    this.sched = new Scheduler(k, Number.MAX_SAFE_INTEGER);
    this.sched.recordTrace = false;
    threads.forEach((ops, tid) => this.sched.spawn(threadProgram(k, tid, ops, this.ev)));
    this.checkers = props.map((p) => [p, p.create(k)]);
    this.pos = new Int32Array(threads.length);
    this.label = threads.map(() => '');
  }

  get threads(): Thread[] {
    return this.sched.threads;
  }

  runnable(t: Thread): boolean {
    return !t.done && !(t.waiting && t.waiting.owner !== -1 && t.waiting.owner !== t.id);
  }

  allDone(): boolean {
    return this.threads.every((t) => t.done);
  }

  /** Runs one atomic section of `tid`; returns the violation it caused, if any (runProgram's rules). */
  step(tid: number): StepOutcome | null {
    const ts = this.threads;
    if (tid !== this.cur && this.cur < ts.length && this.runnable(ts[this.cur])) this.preemptions++;
    this.cur = tid;
    let at: string;
    try {
      at = this.sched.step(tid);
    } catch (e) {
      // An exception inside the simulated kernel is itself a finding (executor.ts does the same);
      // the failing step is recorded so that its schedule choice is part of the counterexample.
      this.opsStarted += this.ev.started.length;
      this.threadsRun.push(tid);
      this.labels.push('kernel-bug');
      this.steps++;
      return { property: 'kernel-bug', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
    }
    this.opsStarted += this.ev.started.length;
    this.pos[tid]++;
    this.label[tid] = at;
    this.threadsRun.push(tid);
    this.labels.push(at);
    const quiescent = this.allDone();
    const ctx: CheckContext = { k: this.k, step: this.steps, started: this.ev.started, finished: this.ev.finished, quiescent };
    this.steps++;
    let out: StepOutcome | null = null;
    for (const [p, c] of this.checkers) {
      if (p.when === 'quiescence' && !quiescent) continue;
      const msg = c.check(ctx);
      if (msg) {
        out = { property: p.name, message: msg };
        break;
      }
    }
    this.ev.started = [];
    this.ev.finished = [];
    return out;
  }

  /** The scheduler choice (sched.ts semantics) that picks thread `tid` at the current boundary. */
  choiceFor(tid: number): number {
    const ts = this.threads;
    const run: number[] = [];
    for (const t of ts) if (this.runnable(t)) run.push(t.id);
    const curOk = this.cur < ts.length && this.runnable(ts[this.cur]);
    if (curOk) return tid === this.cur ? 0 : (run.indexOf(tid) - run.indexOf(this.cur) + run.length) % run.length;
    const i = run.indexOf(tid);
    return i === 0 ? 0 : i + 1;
  }
}

// ---------------------------------------------------------------------------------------------
// State fingerprints: a 53-bit hash of the machine plus the threads' positions.

const LABEL_HASH = new Map<string, number>();
function strHash(s: string): number {
  let h = LABEL_HASH.get(s);
  if (h !== undefined) return h;
  h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h >>>= 0;
  if (LABEL_HASH.size < 100_000) LABEL_HASH.set(s, h);
  return h;
}

/** The typed arrays whose contents are machine state, as 32-bit views (made once per memmap). */
const WORDS = new WeakMap<object, Uint32Array[]>();

function kernelWords(k: Kernel): Uint32Array[] {
  let w = WORDS.get(k.mm);
  if (w) return w;
  const mm = k.mm;
  // prev, listTail and listLen follow from listHead and next: not hashed.
  // owner and token are hashed canonically (relabelled), see canonicalIds().
  const arrays: ArrayBufferView[] = [mm.flags, mm.order, mm.refcount, mm.next, mm.onList, mm.listHead, k.pb.mt, k.pb.isolate];
  for (const z of k.zones) arrays.push(z.nrFree, z.pcpCount);
  w = [];
  for (const a of arrays) {
    // Typed arrays of 1 or 2 bytes per entry are padded to 4 bytes at the end by a copy view.
    if (a.byteLength & 3) {
      const pad = new Uint8Array((a.byteLength + 3) & ~3);
      const src = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      w.push(new Uint32Array(pad.buffer));
      PADDED.set(w[w.length - 1], { src, pad });
    } else w.push(new Uint32Array(a.buffer, a.byteOffset, a.byteLength >>> 2));
  }
  WORDS.set(k.mm, w);
  return w;
}
const PADDED = new WeakMap<Uint32Array, { src: Uint8Array; pad: Uint8Array }>();

/** A 53-bit hash: two 32-bit lanes (a multiplicative and an additive one). */
export class Hasher {
  a = 0x9747b28c | 0;
  b = 0x1b873593 | 0;

  add(x: number): void {
    this.a = Math.imul(this.a ^ x, 0x5bd1e995);
    this.a ^= this.a >>> 15;
    this.b = (Math.imul(this.b, 31) + (x ^ (this.a >>> 7))) | 0;
  }

  addWords(w: Uint32Array): void {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < w.length; i++) {
      const x = w[i];
      a = Math.imul(a ^ x, 0x5bd1e995);
      a ^= a >>> 15;
      b = (Math.imul(b, 31) + (x ^ (a >>> 7))) | 0;
    }
    this.a = a;
    this.b = b;
  }

  addString(s: string): void {
    let a = this.a;
    for (let i = 0; i < s.length; i++) a = Math.imul(a ^ s.charCodeAt(i), 0x01000193);
    this.a = a;
    this.add(s.length);
  }

  /** 53 bits, exact as a JS number (a Map key). */
  value(): number {
    return (this.a >>> 0) * 0x200000 + ((this.b >>> 0) >>> 11);
  }
}

/** The machine part of a fingerprint (what a property or a later step can observe). */
/**
 * Allocation handles and content tokens are numbered in the order things happened, so two
 * interleavings that reach the same machine would differ only by those numbers. They are opaque
 * names (compared for equality, never ordered), so the fingerprint relabels them by first
 * appearance in pfn order: states equal up to renaming hash equal.
 */
class Relabel {
  private gen = new Int32Array(1024);
  private lab = new Int32Array(1024);
  private cur = 0;
  readonly out: Uint32Array;

  constructor(n: number) {
    this.out = new Uint32Array(n);
  }

  run(a: Int32Array): Uint32Array {
    const g = ++this.cur;
    let next = 1;
    const out = this.out;
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (v <= 0) out[i] = v;
      else {
        if (v >= this.gen.length) this.grow(v);
        if (this.gen[v] !== g) {
          this.gen[v] = g;
          this.lab[v] = next++;
        }
        out[i] = this.lab[v];
      }
    }
    return out;
  }

  /** The canonical label of `v` in the last run (0: it did not appear). */
  label(v: number): number {
    return v > 0 && v < this.gen.length && this.gen[v] === this.cur ? this.lab[v] : 0;
  }

  private grow(v: number): void {
    const n = Math.max(v + 1, this.gen.length * 2);
    const g = new Int32Array(n);
    g.set(this.gen);
    const l = new Int32Array(n);
    l.set(this.lab);
    this.gen = g;
    this.lab = l;
  }
}

const RELABEL = new WeakMap<object, [Relabel, Relabel]>();

export function kernelFingerprint(k: Kernel, h = new Hasher()): Hasher {
  for (const w of kernelWords(k)) {
    const pad = PADDED.get(w);
    if (pad) pad.pad.set(pad.src);
    h.addWords(w);
  }
  let rl = RELABEL.get(k.mm);
  if (!rl) RELABEL.set(k.mm, (rl = [new Relabel(k.nrPfns), new Relabel(k.nrPfns)]));
  const [owners, tokens] = rl;
  h.addWords(owners.run(k.mm.owner));
  h.addWords(tokens.run(k.mm.token));
  for (const z of k.zones) {
    h.add(z.freePages);
    h.add(z.freeCma);
    h.add(z.nrIsolatePageblock);
    h.add(z.pcpDisabled);
    h.add(z.managedPages);
    h.add(z.presentPages);
  }
  h.add(k.lastRmqueueMt);
  h.add(k.maxContigDepth);
  for (let t = 0; t < k.contigDepth.length; t++) h.add(k.contigDepth[t] ?? 0);
  // The allocation registry: insertion order differs between interleavings, so combine
  // order-independently (a sum of per-entry hashes).
  let sum = 0;
  for (const a of k.allocs.values()) {
    let e = strHash(a.id);
    e = Math.imul(e ^ owners.label(a.handle), 0x01000193) ^ a.pfn;
    e = Math.imul(e ^ a.nrPages, 0x01000193) ^ (a.order << 8) ^ (a.migratetype << 16) ^ (a.pinned ? 1 << 24 : 0);
    e = Math.imul(e ^ strHash(a.kind), 0x5bd1e995);
    sum = (sum + e) | 0;
  }
  h.add(sum);
  for (const part of k.fingerprintParts) h.addString(part());
  return h;
}

function stateFingerprint(x: Execution): number {
  const h = kernelFingerprint(x.k);
  const ts = x.threads;
  for (let t = 0; t < ts.length; t++) {
    h.add(x.pos[t]);
    h.add(strHash(x.label[t]));
  }
  return h.value();
}

// ---------------------------------------------------------------------------------------------
// The explorer.

/** One booted machine and its snapshot per (config, profile), shared by the programs of a set. */
const TEMPLATES = new Map<string, KernelSnapshot>();

function templateSnapshot(prog: ParsedProgram): KernelSnapshot {
  const key = `${JSON.stringify(prog.configSpec)}|${prog.profile.name}|${JSON.stringify(prog.profile.switches)}`;
  let s = TEMPLATES.get(key);
  if (!s) {
    if (TEMPLATES.size > 16) TEMPLATES.clear();
    s = snapshotKernel(createKernel(prog.config, prog.profile));
    TEMPLATES.set(key, s);
  }
  return s;
}

interface Frame {
  options: number[];
  idx: number;
}

/** Threads that are interchangeable: same program, same cpu. */
function symmetryClasses(threads: Op[][], cpus: number): number[] {
  const keys = threads.map((ops, t) => `${t % cpus}|${JSON.stringify(ops)}`);
  return keys.map((key) => keys.indexOf(key));
}

class Explorer {
  readonly stats: CheckStats = { schedules: 0, states: 0, steps: 0, pruned: 0, cutoff: 0, ms: 0 };
  private readonly visited = new Map<number, number[]>();
  private readonly cls: number[];
  private snap: KernelSnapshot | null = null;

  constructor(readonly prog: ParsedProgram, readonly props: Property[], readonly opts: Required<Omit<CheckOptions, 'properties'>>, useSnapshot: boolean) {
    this.cls = opts.symmetry ? symmetryClasses(prog.threads, prog.config.cpus) : prog.threads.map((_, t) => t);
    if (useSnapshot) this.snap = templateSnapshot(prog);
  }

  newExecution(threads = this.prog.threads): Execution {
    let k: Kernel;
    if (this.snap) k = this.snap.instance();
    else k = createKernel(this.prog.config, this.prog.profile);
    return new Execution(k, threads, this.props);
  }

  /** Threads that may run next: the current one first (no preemption), then the others. */
  private options(x: Execution, maxPre: number): number[] {
    const ts = x.threads;
    const curOk = x.cur < ts.length && x.runnable(ts[x.cur]);
    const out: number[] = [];
    if (curOk) out.push(x.cur);
    if (curOk && x.preemptions >= maxPre) return out;
    const started = new Set<number>();
    for (const t of ts) {
      if (t.id === x.cur && curOk) continue;
      if (!x.runnable(t)) continue;
      if (x.pos[t.id] === 0) {
        // Symmetry: of the unstarted threads of one class only the lowest-numbered may start.
        const c = this.cls[t.id];
        if (started.has(c)) continue;
        started.add(c);
        if (curOk && this.cls[x.cur] === c && x.pos[x.cur] === 0) continue;
      }
      out.push(t.id);
    }
    return out;
  }

  /**
   * True when the state was already explored with a budget that covers this visit. The running
   * thread is not in the fingerprint: a visit with running thread c and p preemptions used covers
   * a later one with c' and p' when p <= p' and (c == c', or c had finished or blocked, so any
   * first choice was free), or when p + 1 <= p' (any schedule from here costs at most one more
   * preemption from there). The step count is part of the fingerprint (the threads' positions).
   */
  private seen(fp: number, pre: number, cur: number): boolean {
    const key = pre * 64 + (cur + 1);
    const list = this.visited.get(fp);
    if (!list) {
      this.visited.set(fp, [key]);
      return false;
    }
    const covers = (e: number, p2: number, c2: number): boolean => {
      const p = Math.floor(e / 64);
      const c = (e % 64) - 1;
      return c === -1 || c === c2 ? p <= p2 : p + 1 <= p2;
    };
    for (const e of list) if (covers(e, pre, cur)) return true;
    const keep = list.filter((e) => !covers(key, Math.floor(e / 64), (e % 64) - 1));
    keep.push(key);
    this.visited.set(fp, keep);
    return false;
  }

  get distinctStates(): number {
    return this.visited.size;
  }

  /** One depth-first exploration with the given bounds; returns the first violation met. */
  explore(maxDepth: number, maxPre: number): FoundViolation | null {
    this.visited.clear();
    const frames: Frame[] = [];
    for (;;) {
      this.stats.schedules++;
      const x = this.newExecution();
      // Replay the prefix; only the last frame's (new) choice can meet a violation.
      let last: StepOutcome | null = null;
      for (const f of frames) last = x.step(f.options[f.idx]);
      const v = last ? this.found(x, last, x.steps - 1) : this.extend(x, frames, maxDepth, maxPre);
      this.stats.steps += x.steps;
      if (v) return v;
      while (frames.length > 0 && frames[frames.length - 1].idx >= frames[frames.length - 1].options.length - 1) frames.pop();
      if (frames.length === 0) return null;
      frames[frames.length - 1].idx++;
    }
  }

  /** Extends the current schedule until it ends, is cut off, meets an explored state or a violation. */
  private extend(x: Execution, frames: Frame[], maxDepth: number, maxPre: number): FoundViolation | null {
    for (;;) {
      const fp = stateFingerprint(x);
      if (!this.opts.fingerprints) this.visited.set(fp, [0]);
      else if (this.seen(fp, x.preemptions, x.cur < x.threads.length && x.runnable(x.threads[x.cur]) ? x.cur : -1)) {
        this.stats.pruned++;
        return null;
      }
      if (x.allDone()) return null;
      const opts = this.options(x, maxPre);
      if (opts.length === 0) return this.found(x, { property: 'bounded-progress', message: 'deadlock: every unfinished thread waits for a lock' }, x.steps);
      if (x.steps >= maxDepth) {
        this.stats.cutoff++;
        return null;
      }
      frames.push({ options: opts, idx: 0 });
      const v = x.step(opts[0]);
      if (v) return this.found(x, v, x.steps - 1);
    }
  }

  private found(x: Execution, v: StepOutcome, step: number): FoundViolation {
    return {
      property: v.property,
      message: v.message,
      step,
      schedule: [],
      threadsRun: x.threadsRun.slice(),
      labels: x.labels.slice(),
      steps: x.threadsRun.length,
      preemptions: x.preemptions,
      ops: x.opsStarted,
      threads: this.prog.threads,
      replayed: false,
    };
  }
}

/** Choice list (sched.ts semantics) that makes `threads` run `run`, trailing zeros trimmed. */
function encodeSchedule(ex: Explorer, threads: Op[][], run: number[]): number[] {
  const x = ex.newExecution(threads);
  const out: number[] = [];
  for (const tid of run) {
    out.push(x.choiceFor(tid));
    if (x.step(tid)) break;
  }
  while (out.length > 0 && out[out.length - 1] === 0) out.pop();
  return out;
}

/** Fills in the schedule, trims the program and confirms the violation with runProgram. */
function finish(ex: Explorer, v: FoundViolation): FoundViolation {
  const schedule = encodeSchedule(ex, v.threads, v.threadsRun);
  const full = { ...v, schedule, replayed: replays(ex, v.threads, schedule, v) };
  const trimmed = trimmedThreads(v);
  if (!trimmed) return full;
  const s2 = encodeSchedule(ex, trimmed, v.threadsRun);
  if (!replays(ex, trimmed, s2, v)) return full;
  return { ...full, threads: trimmed, schedule: s2, replayed: true };
}

/** The ops each thread had started by the violation, or null when nothing can be dropped. */
function trimmedThreads(v: FoundViolation): Op[][] | null {
  const nThreads = v.threads.length;
  const started = new Array<number>(nThreads).fill(0);
  const prevLabel = new Array<string>(nThreads).fill('');
  const run = v.threadsRun;
  // A step of thread t starts an op when the thread's previous step ended at 'op:<name>' (its
  // first step only reaches 'op:<first op>').
  for (let i = 0; i < run.length; i++) {
    const t = run[i];
    if (prevLabel[t].startsWith('op:')) started[t]++;
    prevLabel[t] = v.labels[i];
  }
  let dropped = false;
  const out = v.threads.map((ops, t) => {
    const keep = Math.min(ops.length, started[t]);
    if (keep < ops.length) dropped = true;
    return ops.slice(0, keep);
  });
  // Trailing threads with nothing left are removed; inner empty ones stay (thread ids map to cpus).
  while (out.length > 1 && out[out.length - 1].length === 0) out.pop();
  if (out.length !== nThreads) dropped = true;
  return dropped ? out : null;
}

function replays(ex: Explorer, threads: Op[][], schedule: number[], v: FoundViolation): boolean {
  const prog: ParsedProgram = { ...ex.prog, threads, schedule };
  const o = runProgram(prog, { properties: ex.props, stopAtFirst: true, trace: true });
  return o.violations.some((w) => w.property === v.property && w.step === v.step);
}

/** Checks one program exhaustively within the bounds. */
export function checkProgram(prog: ParsedProgram, options: CheckOptions): CheckResult {
  const opts = {
    preemptions: options.preemptions ?? 2,
    maxDepth: options.maxDepth ?? 400,
    symmetry: options.symmetry ?? true,
    fingerprints: options.fingerprints ?? true,
    shortest: options.shortest ?? true,
    snapshot: options.snapshot ?? true,
  };
  // The visited table packs the running thread into 6 bits.
  if (prog.threads.length > 62) throw new ConfigError(`check: at most 62 threads (got ${prog.threads.length})`);
  const t0 = performance.now();
  const useSnap = opts.snapshot && snapshotVerified(prog, options.properties);
  const ex = new Explorer(prog, options.properties, opts, useSnap);
  let v = ex.explore(opts.maxDepth, opts.preemptions);
  const first = v ? { ms: performance.now() - t0, schedules: ex.stats.schedules } : null;
  let states = ex.distinctStates;
  let complete = ex.stats.cutoff === 0;
  if (v && opts.shortest) {
    // Deepening from above: a violation of L steps makes the bound L-1 until none is found.
    for (;;) {
      const shorter = ex.explore(v.steps - 1, opts.preemptions);
      states = Math.max(states, ex.distinctStates);
      if (!shorter) break;
      v = shorter;
    }
    for (let p = v.preemptions - 1; p >= 0; p--) {
      const fewer = ex.explore(v.steps, p);
      states = Math.max(states, ex.distinctStates);
      if (!fewer) break;
      v = fewer;
    }
    complete = true;
  }
  ex.stats.states = states;
  ex.stats.ms = performance.now() - t0;
  return { stats: ex.stats, first, violation: v ? finish(ex, v) : null, complete, snapshot: useSnap };
}

/** snapshotWorks, once per (machine, profile, op names, properties): programs of a set share it. */
const VERIFIED = new Map<string, boolean>();

function snapshotVerified(prog: ParsedProgram, props: Property[]): boolean {
  const ops = [...new Set(prog.threads.flat().map((o) => o.op))].sort().join(',');
  const key = `${JSON.stringify(prog.configSpec)}|${prog.profile.name}|${JSON.stringify(prog.profile.switches)}|${ops}|${props.map((p) => p.name).join(',')}`;
  let ok = VERIFIED.get(key);
  if (ok === undefined) {
    if (VERIFIED.size > 4096) VERIFIED.clear();
    ok = snapshotWorks(prog, props);
    VERIFIED.set(key, ok);
  }
  return ok;
}

/**
 * The snapshot must give the same machine as a fresh boot: run the default schedule on a fresh
 * kernel and twice on a restored one and compare the trace and the final fingerprint. A mechanism
 * keeping state outside the kernel object would fail this; every schedule then boots afresh.
 */
function snapshotWorks(prog: ParsedProgram, props: Property[]): boolean {
  const opts = { preemptions: 0, maxDepth: 0, symmetry: false, fingerprints: false, shortest: false, snapshot: true };
  const fresh = new Explorer(prog, props, opts, false);
  const snap = new Explorer(prog, props, opts, true);
  // Two policies: run to completion, and round robin (a switch at every step boundary).
  const sig = (ex: Explorer, roundRobin: boolean): string => {
    const x = ex.newExecution();
    const out: string[] = [];
    for (let i = 0; i < 10_000 && !x.allDone(); i++) {
      const run = x.threads.filter((t) => x.runnable(t)).map((t) => t.id);
      if (run.length === 0) break;
      const next = roundRobin ? (run.find((t) => t > x.cur) ?? run[0]) : run.includes(x.cur) ? x.cur : run[0];
      const v = x.step(next);
      out.push(`${next}:${x.labels[x.labels.length - 1]}${v ? `!${v.property}` : ''}`);
      if (v) break;
    }
    return `${out.join(',')}|${kernelFingerprint(x.k).value()}`;
  };
  for (const rr of [false, true]) if (sig(snap, rr) !== sig(fresh, rr)) return false;
  return true;
}

/** The counterexample file for a violation (format of corpus.ts, source 'check'). */
export function toCounterexample(prog: ParsedProgram, v: FoundViolation): Counterexample {
  return {
    format: CE_FORMAT,
    property: v.property,
    profile: prog.profile.name,
    fixedProfile: prog.profile.fixedBy ?? null,
    config: prog.configSpec,
    threads: v.threads,
    schedule: v.schedule,
    violation: { message: v.message, step: v.step },
    fastcheck: null,
    source: 'check',
    stats: { ops: v.ops, preemptions: v.preemptions, steps: v.steps },
    trace: v.threadsRun.map((t, i) => `t${t} ${v.labels[i]}`),
  };
}

export interface SetResult {
  programs: number;
  stats: CheckStats;
  complete: boolean;
  /** per program with a violation, in the order given */
  violations: { index: number; name?: string; prog: ParsedProgram; violation: FoundViolation }[];
  /** the shortest of them (steps, then preemptions, then ops) */
  shortest: { index: number; name?: string; prog: ParsedProgram; violation: FoundViolation } | null;
  /** time and schedules (all programs before included) until the first violation was met */
  first: { ms: number; schedules: number } | null;
}

/** Checks a set of programs (one after the other) and sums the statistics. */
export function checkPrograms(progs: { prog: ParsedProgram; name?: string }[], options: CheckOptions & { stopAtFirst?: boolean }): SetResult {
  const stats: CheckStats = { schedules: 0, states: 0, steps: 0, pruned: 0, cutoff: 0, ms: 0 };
  const violations: SetResult['violations'] = [];
  let complete = true;
  let n = 0;
  let first: SetResult['first'] = null;
  for (let i = 0; i < progs.length; i++) {
    const r = checkProgram(progs[i].prog, options);
    n++;
    if (r.first && !first) first = { ms: stats.ms + r.first.ms, schedules: stats.schedules + r.first.schedules };
    for (const key of Object.keys(stats) as (keyof CheckStats)[]) stats[key] += r.stats[key];
    complete &&= r.complete;
    if (r.violation) {
      violations.push({ index: i, name: progs[i].name, prog: progs[i].prog, violation: r.violation });
      if (options.stopAtFirst) break;
    }
  }
  const rank = (v: FoundViolation) => [v.steps, v.preemptions, v.ops];
  let shortest: SetResult['shortest'] = null;
  for (const v of violations) {
    if (!shortest) shortest = v;
    else {
      const a = rank(v.violation);
      const b = rank(shortest.violation);
      if (a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] < b[2])))) shortest = v;
    }
  }
  return { programs: n, stats, complete, violations, shortest, first };
}
