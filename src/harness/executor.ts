/**
 * Runs a program on a fresh machine: one generator per thread running its ops in order, the
 * scheduler interleaving them, the properties checked after every step (or at quiescence).
 * A run is a pure function of (config, profile, threads, schedule).
 */
import { createKernel } from '../kernel/index.js';
import type { Kernel } from '../kernel/machine.js';
import { meminfo, pagetypeinfo, type Meminfo, type Pagetypeinfo } from '../kernel/meminfo.js';
import { hugetlbPages, type HugePageView } from '../kernel/hugetlb.js';
import type { Profile } from '../kernel/profiles.js';
import { Scheduler, type KGen, type RunEnd, type StepRecord, type Thread } from '../kernel/sched.js';
import { OPS, type Op, type OpResult } from './ops/index.js';
import type { ParsedProgram } from './program.js';
import type { CheckContext, Checker, OpEvent, Property } from '../../properties/index.js';
import { OpTracker } from '../../properties/op-tracking.js';
import { HugetlbWatch } from '../../properties/hugetlb-watch.js';
import { WAKE_ALWAYS, WAKE_DIRTY, WAKE_HUGETLB, WAKE_WATCHING, stepWakes, wakeMask } from '../../properties/property.js';
import { dirtyTracker } from '../../properties/dirty.js';

export interface Violation {
  property: string;
  message: string;
  step: number;
}

export interface RunOutcome {
  results: (OpEvent & { opName: string })[];
  violations: Violation[];
  steps: number;
  preemptions: number;
  end: RunEnd;
  trace: StepRecord[];
  kernel: Kernel;
}

export interface RunOptions {
  properties?: Property[];
  /** stop at the first violation (campaigns); `mmcheck run` reports all */
  stopAtFirst?: boolean;
  maxSteps?: number;
  /** record the step trace */
  trace?: boolean;
  /** run against another profile than the program's */
  profile?: Profile;
  /** a freshly booted (or snapshot-restored) machine of the program's config and profile to run on */
  kernel?: Kernel;
  /** called after every step with the kernel (for --trace views); without `trace` the record is reused: read it during the call only */
  onStep?: (rec: StepRecord, k: Kernel, ctx: CheckContext) => void;
}

const NO_PROPERTIES: Property[] = [];

/** What runs of one list of properties share: which checkers each set of WAKE_* bits wakes. */
interface WakePlan {
  props: readonly Property[];
  /** per property, the steps its checker is called on (wakeMask) */
  wakes: number[];
  /** some checker wakes on dirty pfns: the run needs the dirty-pfn tracker */
  dirty: boolean;
  /** some checker wakes on hugetlb pool moves: the run needs the hugetlb watch */
  hugetlb: boolean;
  /**
   * Per set of WAKE_* bits, the checkers it wakes in catalogue order, made when a step first has
   * it: most steps have WAKE_ALWAYS alone, which wakes the few properties without `wakes`. The
   * checkers that wake on WAKE_WATCHING are in every list: called while their `watching` is set.
   */
  woken: (number[] | undefined)[];
}

/** By the array a campaign passes for every case (checked element by element: it may be changed in place). */
const PLANS = new WeakMap<readonly Property[], WakePlan>();

function wakePlan(props: readonly Property[]): WakePlan {
  const plan = PLANS.get(props);
  if (plan !== undefined && plan.props.length === props.length && plan.props.every((p, i) => p === props[i])) return plan;
  const wakes = props.map(wakeMask);
  const made = { props: props.slice(), wakes, dirty: wakes.some((w) => (w & WAKE_DIRTY) !== 0), hugetlb: wakes.some((w) => (w & WAKE_HUGETLB) !== 0), woken: new Array<number[] | undefined>(2 * WAKE_ALWAYS) };
  PLANS.set(props, made);
  return made;
}

function wokenBy(plan: WakePlan, now: number): number[] {
  const list: number[] = [];
  for (let i = 0; i < plan.wakes.length; i++) if ((plan.wakes[i] & (now | WAKE_WATCHING)) !== 0) list.push(i);
  plan.woken[now] = list;
  return list;
}

function allDone(threads: readonly Thread[]): boolean {
  for (let i = 0; i < threads.length; i++) if (!threads[i].done) return false;
  return true;
}

/** The label of the yield point that opens an op: 'op:<name>'. */
function* threadProgram(k: Kernel, tid: number, ops: Op[], ev: { started: CheckContext['started']; finished: OpEvent[] }, results: RunOutcome['results']): KGen<void> {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    yield `op:${op.op}`;
    ev.started.push({ thread: tid, index: i, op });
    const r: OpResult = yield* OPS[op.op].run(k, op);
    const e = { thread: tid, index: i, op, result: r, opName: op.op };
    results.push(e);
    ev.finished.push(e);
  }
}

export function runProgram(prog: ParsedProgram, opts: RunOptions = {}): RunOutcome {
  const k = opts.kernel ?? createKernel(prog.config, opts.profile ?? prog.profile);
  const props = opts.properties ?? NO_PROPERTIES;
  const checkers: [Property, Checker][] = props.map((p) => [p, p.create(k)]);
  const checks = checkers.map(([, c]) => c);
  const sched = new Scheduler(k, opts.maxSteps ?? 200_000);
  sched.recordTrace = opts.trace ?? true;
  // Per thread, its ops' events in op order (each thread finishes its ops in order).
  const byThread: RunOutcome['results'][] = prog.threads.map(() => []);
  const ev = { started: [] as CheckContext['started'], finished: [] as OpEvent[] };
  prog.threads.forEach((ops, tid) => sched.spawn(threadProgram(k, tid, ops, ev, byThread[tid])));
  const violations: Violation[] = [];
  // Per checker: its property already reported a violation (checked no more).
  const done = checkers.map(() => false);
  // The ops in flight, one tracker for every checker (properties/op-tracking.ts OpView).
  const ops = new OpTracker();
  // The steps each checker is called on (Property.wakes): most steps touch no pfn and end no op.
  const plan = wakePlan(props);
  const tracker = plan.dirty ? dirtyTracker(k) : null;
  // The hugetlb pool counters, read once per step for the checkers that compare them.
  const hugetlb = plan.hugetlb ? new HugetlbWatch(k) : undefined;
  // One context for every step, its fields set anew (as the model checker does: a checker reads
  // it during its check and keeps nothing of it).
  const ctx: CheckContext = { k, step: 0, started: ev.started, finished: ev.finished, quiescent: false, ops, hugetlb };
  const check = (step: number, quiescent: boolean): string | null => {
    ctx.step = step;
    ctx.started = ev.started;
    ctx.finished = ev.finished;
    ctx.quiescent = quiescent;
    ops.update(ctx);
    if (hugetlb !== undefined) hugetlb.update();
    const now = stepWakes(tracker !== null && tracker.touched(step), ev.finished.length > 0, quiescent, ops.longOp(), hugetlb !== undefined && hugetlb.moved, ev.started.length > 0);
    try {
      const list = plan.woken[now] ?? wokenBy(plan, now);
      for (let j = 0; j < list.length; j++) {
        const i = list[j];
        if (done[i]) continue;
        const c = checks[i];
        // (in the list for WAKE_WATCHING alone: called while watching)
        if ((plan.wakes[i] & now) === 0 && !c.watching) continue;
        const msg = c.check(ctx);
        if (msg) {
          const p = checkers[i][0];
          for (let x = 0; x < checkers.length; x++) if (checkers[x][0].name === p.name) done[x] = true;
          violations.push({ property: p.name, message: msg, step });
          if (opts.stopAtFirst) return p.name;
        }
      }
      return null;
    } finally {
      ops.retire(ctx);
    }
  };
  const threads = sched.threads;
  const onStep = opts.onStep;
  let res;
  try {
    res = sched.run(prog.schedule, {
      afterStep: (rec) => {
        // (all threads done implies the step's own thread is: one test on most steps)
        const quiescent = threads[rec.thread].done && allDone(threads);
        const stop = check(rec.step, quiescent);
        if (onStep) onStep(rec, k, { k, step: rec.step, started: ev.started, finished: ev.finished, quiescent, ops, hugetlb });
        // Fresh arrays for the next step (an empty one can be kept: nobody holds on to it to read).
        if (ev.started.length) ev.started = [];
        if (ev.finished.length) ev.finished = [];
        return stop;
      },
    });
  } catch (e) {
    // An exception inside the simulated kernel is itself a finding, not a crash of the harness.
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    violations.push({ property: 'kernel-bug', message: msg, step: sched.steps });
    res = { end: 'done' as RunEnd, steps: sched.steps, preemptions: sched.preemptions, trace: sched.trace };
  }
  for (const [, c] of checkers) c.dispose?.();
  if (res.end !== 'done') {
    violations.push({ property: 'bounded-progress', message: res.end === 'deadlock' ? 'deadlock: every unfinished thread waits for a lock' : `livelock: no quiescence after ${res.steps} steps`, step: res.steps });
  }
  // By thread, then op index (the events were made with their opName: no copies).
  const results: RunOutcome['results'] = [];
  for (const events of byThread) for (let i = 0; i < events.length; i++) results.push(events[i]);
  return { results, violations, steps: res.steps, preemptions: res.preemptions, end: res.end, trace: res.trace, kernel: k };
}

/** The JSON that `mmcheck run --json` prints. */
export function outcomeJson(o: RunOutcome): { results: unknown[]; meminfo: Meminfo; pagetypeinfo: Pagetypeinfo; hugepages: HugePageView[]; violations: Violation[]; steps: number; preemptions: number } {
  return {
    results: o.results.map((r) => ({ thread: r.thread, index: r.index, op: r.op.op, ...r.result })),
    meminfo: meminfo(o.kernel),
    pagetypeinfo: pagetypeinfo(o.kernel),
    hugepages: hugetlbPages(o.kernel),
    violations: o.violations,
    steps: o.steps,
    preemptions: o.preemptions,
  };
}

/** FNV-1a over the trace: the same program and schedule give the same hash, byte for byte. */
export function traceHash(trace: StepRecord[]): string {
  let h = 0x811c9dc5;
  for (const r of trace) {
    const s = `${r.thread}:${r.at};`;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
