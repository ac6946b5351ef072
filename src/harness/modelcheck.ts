/**
 * Exhaustive small-scope model checking of thread programs (`mmcheck check`), as loom and CHESS do:
 *
 *  - stateless: generators cannot be cloned, so every schedule prefix is replayed from the booted
 *    machine (one kernel per (config, profile), restored in place from a snapshot,
 *    src/kernel/snapshot.ts, instead of booting again);
 *  - depth-first over the scheduler's choices at each step boundary (the choice semantics of
 *    src/kernel/sched.ts, so a found schedule replays with `mmcheck run` / `mmcheck replay`);
 *  - preemption bounding (switching away from a runnable thread costs one preemption; a thread that
 *    finishes or blocks on a mutex hands over for free);
 *  - state fingerprints (64 bits: the machine's, src/harness/state-hash.ts, plus each thread's
 *    position = steps it has executed and its last yield label) prune a state already explored
 *    with a preemption budget that covers this visit (see Explorer.seen; the table of visited
 *    states is src/harness/visited.ts). `crossCheck` compares every fingerprint with an exact key
 *    of the state (debug, and the fingerprint tests);
 *  - shortest counterexamples: branch and bound; once a violation of length L is found, the same
 *    depth-first search goes on with the step bound L-1 (Explorer.explore), then searches are
 *    repeated with fewer preemptions at the shortest length; the last one found is a shortest (in
 *    steps, then preemptions);
 *  - thread symmetry: threads running the same program on the same cpu (thread id mod cpus: the
 *    pcp lists are per cpu) are interchangeable; of those not yet started, only the lowest-numbered
 *    may start (every schedule starting another one is a renaming of one that does).
 *
 * Approximations (stated, not hidden): a thread's position does not capture the local variables of
 * its op generators beyond what the kernel state shows, and per-run checker state (snapshots some
 * properties take at op start) is not in the fingerprint; `k.events` (a log) is not either.
 * No property checker runs on a replayed step (their verdicts are known): checkers that keep nothing
 * across steps (Property.stateless) skip them, and the others checkpoint what they keep before
 * every new step (Checker.checkpoint) and are restored to it instead (CheckerSet), one set of
 * checkers serving all the schedules of a search; the dirty-pfn tracker records no replay that
 * refines-model would drain anyway (Checker.drainsDirty).
 * Not done: sleep sets / DPOR (no per-step footprint is recorded: the kernel's reads are not
 * observed, only its writes could be, by diffing), node symmetry (no tiny config has two nodes of
 * equal geometry).
 */
import { createKernel } from '../kernel/index.js';
import { ConfigError } from '../kernel/types.js';
import type { Kernel } from '../kernel/machine.js';
import { snapshotKernel, type KernelSnapshot } from '../kernel/snapshot.js';
import { intern } from '../kernel/fingerprint.js';
import { dirtyTracker, muteDirtyTracking, prepareDirtyTracking, resetDirtyTracking, type DirtyTracker } from '../../properties/dirty.js';
import { WAKE_DIRTY, stepWakes, wakeMask, wakesFor } from '../../properties/property.js';
import { Scheduler, type KGen, type Thread } from '../kernel/sched.js';
import type { CheckContext, Checker, OpEvent, Property } from '../../properties/index.js';
import { OpTracker } from '../../properties/op-tracking.js';
import { HugetlbWatch } from '../../properties/hugetlb-watch.js';
import { CE_FORMAT, type Counterexample } from './corpus.js';
import { runProgram } from './executor.js';
import { OPS, type Op, type OpResult } from './ops/index.js';
import type { ParsedProgram } from './program.js';
import { exactMachineKey, Hasher, kernelFingerprint } from './state-hash.js';
import { VisitedTable } from './visited.js';

export { Hasher, kernelFingerprint };

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
  /**
   * debug: check every state's 64-bit fingerprint against an exact key of the state (SHA-256 of
   * its full contents, the mechanisms' strings included): throws on a collision, or on one state
   * hashed two ways (default off; slow)
   */
  crossCheck?: boolean;
  /**
   * skip stateless checkers (Property.stateless) on the prefix steps a schedule replays, whose
   * verdicts are known (default on; off for the test that both give the same results)
   */
  skipStatelessOnReplay?: boolean;
  /**
   * keep one set of checkers for all the schedules of a search, each checkpointed before every new
   * step and restored for the next schedule, so that no checker runs on replayed steps (default
   * on; needs skipStatelessOnReplay, the snapshot, and every checker stateless or checkpointing:
   * Checker.checkpoint)
   */
  checkpoints?: boolean;
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

/**
 * The property checkers of an execution. A `resumable` set (every checker stateless or
 * checkpointing its state) serves all the schedules of one search on the restored kernel: before
 * each new step its checkers take a checkpoint under the step's index, and a schedule that replays
 * a prefix of n steps restores checkpoint n - 1 before its new step instead of checking the
 * replayed ones again (the prefix of the depth-first search is the same up to there, see explore).
 */
class CheckerSet {
  readonly list: [Property, Checker][];
  readonly resumable: boolean;
  /** nothing the dirty-pfn tracker records during a replay is read (Checker.drainsDirty) */
  readonly muteReplay: boolean;
  /** per checker, the steps it is called on (Property.wakes, as runProgram calls them) */
  readonly wakes: number[];
  /** whether a step touched pfns, for the checkers that wake on it */
  readonly tracker: DirtyTracker | null;

  constructor(k: Kernel, props: Property[], resume: boolean) {
    this.list = props.map((p) => [p, p.create(k)]);
    this.wakes = props.map(wakeMask);
    this.tracker = this.wakes.some((w) => w & WAKE_DIRTY) ? dirtyTracker(k) : null;
    this.resumable = resume && this.list.every(([p, c]) => p.stateless || (c.checkpoint && c.restore));
    this.muteReplay = this.resumable && this.list.some(([, c]) => c.drainsDirty);
  }

  checkpoint(slot: number): void {
    for (const [, c] of this.list) c.checkpoint?.(slot);
  }

  restore(slot: number): void {
    for (const [, c] of this.list) c.restore?.(slot);
  }

  dispose(): void {
    for (const [, c] of this.list) c.dispose?.();
  }
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
  /** intern(label[t]) as of label labelOfId[t] (stateFingerprint) */
  readonly labelId: number[];
  readonly labelOfId: (string | null)[];
  readonly threadsRun: number[] = [];
  readonly labels: string[] = [];
  /** the ops in flight, one tracker for every checker (as runProgram keeps it: properties/op-tracking.ts) */
  readonly ops: OpTracker | null;
  /** the hugetlb pool counters, fed with the op tracker (runProgram's) */
  private readonly hugetlb: HugetlbWatch | null;
  /** the context handed to the checkers, one object refilled per step (no checker keeps it) */
  private readonly ctx: CheckContext | null;

  constructor(readonly k: Kernel, threads: Op[][], readonly set: CheckerSet, private readonly skipStateless = false) {
    this.sched = new Scheduler(k, Number.MAX_SAFE_INTEGER);
    this.sched.recordTrace = false;
    threads.forEach((ops, tid) => this.sched.spawn(threadProgram(k, tid, ops, this.ev)));
    this.checkers = set.list;
    this.ops = this.checkers.length > 0 ? new OpTracker() : null;
    this.hugetlb = this.ops && new HugetlbWatch(k);
    this.ctx = this.ops && { k, step: 0, started: [], finished: [], quiescent: false, ops: this.ops, hugetlb: this.hugetlb! };
    this.pos = new Int32Array(threads.length);
    this.label = threads.map(() => '');
    this.labelId = threads.map(() => 0);
    this.labelOfId = threads.map(() => null);
  }

  get threads(): Thread[] {
    return this.sched.threads;
  }

  runnable(t: Thread): boolean {
    return !t.done && !(t.waiting && t.waiting.owner !== -1 && t.waiting.owner !== t.id);
  }

  allDone(): boolean {
    for (const t of this.threads) if (!t.done) return false;
    return true;
  }

  /** The execution is over: checkers may hand their buffers back (the kernel is restored next). */
  dispose(): void {
    // (a resumable set lives on for the search's next schedule: explore disposes it)
    if (!this.set.resumable) this.set.dispose();
  }

  /**
   * Runs one atomic section of `tid`; returns the violation it caused, if any (runProgram's rules).
   * `replay`: a step of a prefix already explored (its verdict is known): stateless checkers skip it,
   * and with a resumable checker set no checker sees it.
   */
  step(tid: number, replay = false): StepOutcome | null {
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
    const out = this.checkers.length > 0 ? this.check(replay) : null;
    this.steps++;
    // Fresh arrays for the next step (an empty one can be kept: nobody holds on to it to read).
    if (this.ev.started.length) this.ev.started = [];
    if (this.ev.finished.length) this.ev.finished = [];
    return out;
  }

  /** The checkers on the step just run (runProgram's order: the first violated property wins). */
  private check(replay: boolean): StepOutcome | null {
    const ops = this.ops!;
    const ctx = this.ctx!;
    ctx.step = this.steps;
    ctx.started = this.ev.started;
    ctx.finished = this.ev.finished;
    const hugetlb = this.hugetlb!;
    if (replay && this.set.resumable) {
      // (the op tracker and the hugetlb watch are not checkpointed: they follow every step)
      ops.update(ctx);
      hugetlb.update();
      ops.retire(ctx);
      return null;
    }
    const quiescent = (ctx.quiescent = this.allDone());
    const { wakes, tracker } = this.set;
    ops.update(ctx);
    hugetlb.update();
    const now = stepWakes(tracker !== null && tracker.touched(ctx.step), ctx.finished.length > 0, quiescent, ops.longOp(), hugetlb.moved, ctx.started.length > 0);
    try {
      const list = this.checkers;
      for (let i = 0; i < list.length; i++) {
        const [p, c] = list[i];
        if (!wakesFor(wakes[i], now, c)) continue;
        if (replay && p.stateless && this.skipStateless) continue;
        const msg = c.check(ctx);
        if (msg) return { property: p.name, message: msg };
      }
      return null;
    } finally {
      ops.retire(ctx);
    }
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
const FP = new Hasher();

/** The machine's fingerprint plus each thread's position (steps run, last yield label). */
function stateFingerprint(x: Execution): Hasher {
  FP.reset();
  const h = kernelFingerprint(x.k, FP);
  for (let t = 0; t < x.pos.length; t++) {
    h.add(x.pos[t]);
    // (a thread that did not run since the last fingerprint keeps its label: no Map lookup)
    if (x.labelOfId[t] !== x.label[t]) {
      x.labelOfId[t] = x.label[t];
      x.labelId[t] = intern(x.label[t]);
    }
    h.add(x.labelId[t]);
  }
  return h;
}

/**
 * Cross-check mode (CheckOptions.crossCheck): the fingerprint and the exact key of every state
 * visited must correspond one to one. Two keys under one fingerprint are a collision (or a cheaper
 * part form that misses something its string has); one key under two fingerprints is a hash that
 * sees more than the strings do, or an incremental sum gone stale.
 */
export class CrossCheck {
  private readonly byFp = new Map<string, string>();
  private readonly byKey = new Map<string, string>();

  /** `key` is the state's exact key (exactStateKey), `fp` its fingerprint. */
  check(key: string, fp: Hasher): void {
    const f = `${fp.hi()}:${fp.lo()}`;
    const k0 = this.byFp.get(f);
    if (k0 !== undefined && k0 !== key) throw new Error(`fingerprint ${f}: two different states`);
    const f0 = this.byKey.get(key);
    if (f0 !== undefined && f0 !== f) throw new Error(`one state, two fingerprints (${f0}, ${f})`);
    this.byFp.set(f, key);
    this.byKey.set(key, f);
  }
}

function exactStateKey(x: Execution): string {
  return `${exactMachineKey(x.k)}|${Array.from(x.pos).join(',')}|${x.label.join(',')}`;
}

// ---------------------------------------------------------------------------------------------
// The explorer.

/**
 * One booted machine and its snapshot per (config, profile), shared by the programs of a set.
 * Every execution restores that one kernel in place (as fuzz.ts's caseRunner does) instead of
 * making a new Kernel object per schedule: the checkers' dirty-pfn tracker is installed before the
 * snapshot (prepareDirtyTracking) and only reset per execution, and checkers that pool buffers per
 * kernel (refines-model) get them back when the execution is disposed.
 */
interface Template {
  k: Kernel;
  snap: KernelSnapshot;
}
const TEMPLATES = new Map<string, Template>();

function template(prog: ParsedProgram, tracked: boolean): Template {
  const key = `${JSON.stringify(prog.configSpec)}|${prog.profile.name}|${JSON.stringify(prog.profile.switches)}|${tracked}`;
  let t = TEMPLATES.get(key);
  if (!t) {
    if (TEMPLATES.size > 16) TEMPLATES.clear();
    const k = createKernel(prog.config, prog.profile);
    // Without checkers nobody reads the tracker: kernel-bug-only runs do not pay for it.
    if (tracked) prepareDirtyTracking(k);
    t = { k, snap: snapshotKernel(k) };
    TEMPLATES.set(key, t);
  }
  return t;
}

/** The template machine, booted again (restored from its snapshot). */
function rebooted(t: Template): Kernel {
  t.snap.restore();
  resetDirtyTracking(t.k);
  return t.k;
}

interface Frame {
  options: number[];
  idx: number;
}

/** A visit recorded as `e` (Explorer.seen's key) covers one with p2 preemptions used, running c2. */
function covers(e: number, p2: number, c2: number): boolean {
  const p = Math.floor(e / 64);
  const c = (e % 64) - 1;
  return c === -1 || c === c2 ? p <= p2 : p + 1 <= p2;
}

/** Threads that are interchangeable: same program, same cpu. */
function symmetryClasses(threads: Op[][], cpus: number): number[] {
  const keys = threads.map((ops, t) => `${t % cpus}|${JSON.stringify(ops)}`);
  return keys.map((key) => keys.indexOf(key));
}

class Explorer {
  readonly stats: CheckStats = { schedules: 0, states: 0, steps: 0, pruned: 0, cutoff: 0, ms: 0 };
  /** fingerprint -> the visits' keys (see seen): one number, or a list when several are kept */
  private readonly visited = new VisitedTable();
  private readonly cross: CrossCheck | null;
  /** when (performance.now()) and after how many schedules the first violation was met */
  firstFound: { ms: number; schedules: number } | null = null;
  private readonly cls: number[];
  private tpl: Template | null = null;

  constructor(readonly prog: ParsedProgram, readonly props: Property[], readonly opts: Required<Omit<CheckOptions, 'properties'>>, useSnapshot: boolean) {
    this.cls = opts.symmetry ? symmetryClasses(prog.threads, prog.config.cpus) : prog.threads.map((_, t) => t);
    if (useSnapshot) this.tpl = template(prog, props.length > 0);
    this.cross = opts.crossCheck ? new CrossCheck() : null;
  }

  /**
   * A new execution of `threads` on the booted machine, with fresh checkers or `kept`, the
   * resumable set of the search's last execution. `resume`: the fresh set may be resumable.
   */
  newExecution(threads = this.prog.threads, kept: CheckerSet | null = null, resume = false): Execution {
    let k: Kernel;
    if (this.tpl) k = rebooted(this.tpl);
    else k = createKernel(this.prog.config, this.prog.profile);
    const canResume = resume && this.tpl !== null && this.opts.checkpoints && this.opts.skipStatelessOnReplay;
    return new Execution(k, threads, kept ?? new CheckerSet(k, this.props, canResume), this.opts.skipStatelessOnReplay);
  }

  /** Threads that may run next: the current one first (no preemption), then the others. */
  private options(x: Execution, maxPre: number): number[] {
    const ts = x.threads;
    const curOk = x.cur < ts.length && x.runnable(ts[x.cur]);
    const out: number[] = [];
    if (curOk) out.push(x.cur);
    if (curOk && x.preemptions >= maxPre) return out;
    const started: number[] = [];
    for (const t of ts) {
      if (t.id === x.cur && curOk) continue;
      if (!x.runnable(t)) continue;
      if (x.pos[t.id] === 0) {
        // Symmetry: of the unstarted threads of one class only the lowest-numbered may start.
        const c = this.cls[t.id];
        if (started.includes(c)) continue;
        started.push(c);
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
  private seen(hi: number, lo: number, pre: number, cur: number): boolean {
    const key = pre * 64 + (cur + 1);
    if (this.visited.addNew(hi, lo, key)) return false;
    const list = this.visited.records(hi, lo);
    for (const e of list) if (covers(e, pre, cur)) return true;
    const keep = list.filter((e) => !covers(key, Math.floor(e / 64), (e % 64) - 1));
    keep.push(key);
    this.visited.set(hi, lo, keep);
    return false;
  }

  get distinctStates(): number {
    return this.visited.size;
  }

  /**
   * One depth-first exploration with the given bounds. Returns the first violation met or, with
   * `shorten`, a shortest one: branch and bound, the search goes on below each violation found
   * with the step bound one less than its length. That finds what deepening from above (a fresh
   * search per bound) finds, with one search instead of one per length: the states explored before
   * a violation was met had their subtrees explored under a larger bound, which covers the smaller
   * one (the step count is part of a state's fingerprint).
   */
  explore(maxDepth: number, maxPre: number, shorten = false): FoundViolation | null {
    this.visited.clear();
    const frames: Frame[] = [];
    let best: FoundViolation | null = null;
    let kept: CheckerSet | null = null;
    try {
      for (;;) {
        this.stats.schedules++;
        const x = this.newExecution(this.prog.threads, kept, true);
        if (x.set.resumable) kept = x.set;
        const v = this.schedule(x, frames, maxDepth, maxPre);
        x.dispose();
        if (v) {
          this.firstFound ??= { ms: performance.now(), schedules: this.stats.schedules };
          if (!shorten) return v;
          best = v;
          // Choices past the new bound only lead to schedules at least as long as this one.
          maxDepth = v.steps - 1;
          if (frames.length > Math.max(0, maxDepth)) frames.length = Math.max(0, maxDepth);
        }
        while (frames.length > 0 && frames[frames.length - 1].idx >= frames[frames.length - 1].options.length - 1) frames.pop();
        if (frames.length === 0) return best;
        frames[frames.length - 1].idx++;
      }
    } finally {
      kept?.dispose();
    }
  }

  /**
   * One schedule: replays the prefix (only the last frame's choice is new, and only it can meet a
   * violation), then extends it. A resumable checker set sees no replayed step: it is restored to
   * its checkpoint from before the new step, taken when that frame was pushed (by a schedule with
   * the same prefix: the frames below the last are the same as long as it is on the stack).
   */
  private schedule(x: Execution, frames: Frame[], maxDepth: number, maxPre: number): FoundViolation | null {
    const n = frames.length;
    let last: StepOutcome | null = null;
    if (x.set.muteReplay) muteDirtyTracking(x.k, true);
    for (let i = 0; i < n - 1; i++) x.step(frames[i].options[frames[i].idx], true);
    if (x.set.muteReplay) muteDirtyTracking(x.k, false);
    if (n > 0) {
      if (x.set.resumable) x.set.restore(n - 1);
      last = x.step(frames[n - 1].options[frames[n - 1].idx]);
    }
    const v = last ? this.found(x, last, x.steps - 1) : this.extend(x, frames, maxDepth, maxPre);
    this.stats.steps += x.steps;
    return v;
  }

  /** Extends the current schedule until it ends, is cut off, meets an explored state or a violation. */
  private extend(x: Execution, frames: Frame[], maxDepth: number, maxPre: number): FoundViolation | null {
    for (;;) {
      const fp = stateFingerprint(x);
      const hi = fp.hi();
      const lo = fp.lo();
      this.cross?.check(exactStateKey(x), fp);
      if (!this.opts.fingerprints) this.visited.addNew(hi, lo, 0);
      else if (this.seen(hi, lo, x.preemptions, x.cur < x.threads.length && x.runnable(x.threads[x.cur]) ? x.cur : -1)) {
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
      // (x.steps === frames.length: the checkpoint of the state before this frame's step)
      if (x.set.resumable) x.set.checkpoint(x.steps);
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
  x.dispose();
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
    crossCheck: options.crossCheck ?? false,
    skipStatelessOnReplay: options.skipStatelessOnReplay ?? true,
    checkpoints: options.checkpoints ?? true,
  };
  // The visited table packs the running thread into 6 bits.
  if (prog.threads.length > 62) throw new ConfigError(`check: at most 62 threads (got ${prog.threads.length})`);
  const t0 = performance.now();
  const useSnap = opts.snapshot && snapshotVerified(prog, options.properties);
  const ex = new Explorer(prog, options.properties, opts, useSnap);
  let v = ex.explore(opts.maxDepth, opts.preemptions, opts.shortest);
  const first = ex.firstFound ? { ms: ex.firstFound.ms - t0, schedules: ex.firstFound.schedules } : null;
  let states = ex.distinctStates;
  let complete = ex.stats.cutoff === 0;
  if (v && opts.shortest) {
    // The shortest length is known (branch and bound above); now the fewest preemptions at it.
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
  const opts = { preemptions: 0, maxDepth: 0, symmetry: false, fingerprints: false, shortest: false, snapshot: true, crossCheck: false, skipStatelessOnReplay: false, checkpoints: false };
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
    x.dispose();
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
  return mergeResults(progs, (i) => checkProgram(progs[i].prog, options), options.stopAtFirst ?? false);
}

/**
 * The set's result from each program's, taken in program order (as checkPrograms runs them; the
 * parallel checker, modelcheck-parallel.ts, merges its workers' results the same way).
 */
export function mergeResults(progs: { prog: ParsedProgram; name?: string }[], result: (i: number) => CheckResult, stopAtFirst: boolean): SetResult {
  const stats: CheckStats = { schedules: 0, states: 0, steps: 0, pruned: 0, cutoff: 0, ms: 0 };
  const violations: SetResult['violations'] = [];
  let complete = true;
  let n = 0;
  let first: SetResult['first'] = null;
  for (let i = 0; i < progs.length; i++) {
    const r = result(i);
    n++;
    if (r.first && !first) first = { ms: stats.ms + r.first.ms, schedules: stats.schedules + r.first.schedules };
    for (const key of Object.keys(stats) as (keyof CheckStats)[]) stats[key] += r.stats[key];
    complete &&= r.complete;
    if (r.violation) {
      violations.push({ index: i, name: progs[i].name, prog: progs[i].prog, violation: r.violation });
      if (stopAtFirst) break;
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
