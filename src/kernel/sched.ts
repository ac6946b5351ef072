/**
 * Threads, sleeping locks and the deterministic scheduler.
 *
 * A kernel entry point is a generator. It yields a string (the kernel function at a point where
 * the real code drops a spinlock, sleeps, retries or may be preempted) or a Mutex it is waiting
 * for. What runs between two yields is one atomic section: spinlocks (zone->lock, hugetlb_lock,
 * cma->lock) are never held across a yield, so they need no modelling; sleeping locks held across
 * sections (cma_mutex, resize_lock, the hotplug lock) are Mutex objects. A kernel function may
 * run a nested one with many yield points through flat() instead of plain `yield*`: the same
 * yield points, resumed without passing through every caller (see flat()).
 *
 * A schedule is a list of choices, one per step boundary: 0 keeps the current thread running,
 * c > 0 switches to the c-th next runnable thread (cyclically). When the schedule runs out the
 * current thread runs on until it finishes or blocks, then the lowest-numbered runnable thread.
 */
import { KernelBug } from './types.js';
export type YieldPoint = string | Lock | Call;

/**
 * An endless schedule (the fair schedule of campaigns, src/harness/fuzz.ts, a Proxy) may carry a
 * function under this key giving the same choice as `i < schedule.length ? schedule[i] :
 * undefined`, so that the run loop reads it without two Proxy traps per step.
 */
export const SCHEDULE_CHOICE = Symbol('mmcheck.scheduleChoice');
type ChoiceFn = (i: number) => number | undefined;
export type KGen<T = void> = Generator<YieldPoint, T, void>;

/**
 * A nested kernel function handed to the scheduler (flat()): not a yield point. The scheduler
 * runs `gen` and settles the Call with its return value or exception.
 */
export class Call {
  settled = false;
  threw = false;
  result: unknown = undefined;
  constructor(readonly gen: KGen<unknown>) {}
}

/** Set while Scheduler.step runs a thread: flat() may then hand its generator to the scheduler. */
let schedulerStack = false;

/**
 * `yield* flat(g)` is `yield* g`, for a nested kernel function with many yield points. Resuming a
 * thread at a yield n generators deep costs n resumptions (each `yield*` resumes its inner
 * generator); run from the scheduler, g is instead pushed on the thread's stack of calls
 * (Scheduler.step) and resumed directly, and the caller resumes in the same step once g has
 * returned or thrown. The yield points, their order and the atomic sections are the same either
 * way. Under any other driver (test helpers calling next()) flat() is plain delegation; a driver
 * inside a step that resumes us without handing the Call on (a test's forwarding loop ignoring
 * values that are not labels) gets plain delegation too, as the Call comes back unsettled.
 */
export function* flat<T>(g: KGen<T>): KGen<T> {
  if (!schedulerStack) return yield* g;
  const c = new Call(g);
  yield c;
  if (!c.settled) return yield* g;
  if (c.threw) throw c.result;
  return c.result as T;
}

/** What a blocked thread waits for: it is runnable again once `owner` is -1 or itself. */
export interface Lock {
  readonly name: string;
  readonly owner: number;
}

export class Mutex implements Lock {
  owner = -1;
  constructor(readonly name: string) {}
}

/**
 * A reader-writer semaphore (mem_hotplug_lock is a percpu_rw_semaphore: get_online_mems() /
 * mem_hotplug_begin()). The two sides are Locks for the scheduler: a reader waits while a writer
 * holds it; a writer waits while anyone holds it (owner -2: readers). No writer preference: a
 * reader arriving while a writer waits still gets in (percpu_down_read's fast path).
 */
export class RwSem {
  writer = -1;
  readers = 0;
  readonly readSide: Lock;
  readonly writeSide: Lock;
  constructor(readonly name: string) {
    this.readSide = new RwSemSide(this, 'read');
    this.writeSide = new RwSemSide(this, 'write');
  }
}

/** One side of an RwSem as the scheduler sees it (prototype getters: snapshot.ts copies own fields only). */
class RwSemSide implements Lock {
  readonly name: string;
  constructor(private readonly sem: RwSem, private readonly side: 'read' | 'write') {
    this.name = `${sem.name}(${side})`;
  }

  get owner(): number {
    const s = this.sem;
    if (this.side === 'read' || s.writer !== -1) return s.writer;
    return s.readers > 0 ? -2 : -1;
  }
}

export function* downRead(k: CurrentThread, s: RwSem): KGen {
  if (s.writer === k.current) throw new KernelBug(`down_read(${s.name}) by thread ${k.current}, which holds it for writing: deadlock`);
  while (s.writer !== -1) yield s.readSide;
  s.readers++;
}

export function upRead(s: RwSem): void {
  s.readers--;
}

export function* downWrite(k: CurrentThread, s: RwSem): KGen {
  if (s.writer === k.current) throw new KernelBug(`down_write(${s.name}) by thread ${k.current}, which holds it already: deadlock`);
  while (s.writer !== -1 || s.readers > 0) yield s.writeSide;
  s.writer = k.current;
}

export function upWrite(s: RwSem): void {
  s.writer = -1;
}

/** The thread currently running (set by the scheduler; mutex owners are thread ids). */
export interface CurrentThread {
  current: number;
}

/** mutex_lock(): a thread waiting for a held mutex is not runnable. */
export function* mutexLock(k: CurrentThread, m: Mutex): KGen {
  if (m.owner === k.current) throw new KernelBug(`mutex_lock(${m.name}) by thread ${k.current}, its owner: recursive locking deadlocks`);
  while (m.owner !== -1) yield m;
  m.owner = k.current;
}

/**
 * mutex_lock()'s path for a free mutex, as a plain call: takes `m` and returns true when nobody
 * holds it (mutexLock() would take it without yielding), else false and the caller runs
 * `yield* mutexLock(k, m)` (a generator only for a held mutex, where it may wait).
 */
export function mutexLockFree(k: CurrentThread, m: Mutex): boolean {
  if (m.owner !== -1) return false;
  m.owner = k.current;
  return true;
}

export function mutexUnlock(m: Mutex): void {
  m.owner = -1;
}

export interface StepRecord {
  step: number;
  thread: number;
  /** kernel function at the yield point that ended the step */
  at: string;
}

export type RunEnd = 'done' | 'deadlock' | 'livelock';

export interface Thread {
  id: number;
  gen: KGen<unknown>;
  /** the nested calls flat() handed over, innermost last (resumed instead of gen while any) */
  calls: Call[];
  done: boolean;
  waiting: Lock | null;
}

export interface SchedulerHooks {
  /**
   * called after every step; returning a string stops the run (a violation). Without
   * recordTrace the record is reused for the next step: read it during the call only.
   */
  afterStep?: (rec: StepRecord) => string | null | void;
}

export interface RunResult {
  end: RunEnd;
  steps: number;
  preemptions: number;
  /** what stopped the run early (a violation from afterStep) */
  stoppedBy?: string;
  /** schedule choices actually used (0 where the fixed policy decided) */
  trace: StepRecord[];
}

export class Scheduler {
  readonly threads: Thread[] = [];
  trace: StepRecord[] = [];
  recordTrace = true;

  constructor(readonly k: CurrentThread, readonly maxSteps = 100_000) {}

  spawn(gen: KGen<unknown>): number {
    const id = this.threads.length;
    this.threads.push({ id, gen, calls: [], done: false, waiting: null });
    return id;
  }

  private runnable(t: Thread): boolean {
    if (t.done) return false;
    if (t.waiting && t.waiting.owner !== -1 && t.waiting.owner !== t.id) return false;
    return true;
  }

  /** Pick the thread for the next step from a schedule choice (undefined: fixed policy). */
  pick(cur: number, choice: number | undefined): number {
    return this.pickFrom(cur, this.curRunnable(cur), choice);
  }

  /** `cur` is a thread that can run */
  private curRunnable(cur: number): boolean {
    return cur >= 0 && cur < this.threads.length && this.runnable(this.threads[cur]);
  }

  /** pick, with curRunnable(cur) known */
  private pickFrom(cur: number, curOk: boolean, choice: number | undefined): number {
    const ts = this.threads;
    if ((choice === undefined || choice === 0) && curOk) return cur;
    const run: number[] = [];
    for (const t of ts) if (this.runnable(t)) run.push(t.id);
    if (run.length === 0) return -1;
    if (choice === undefined || choice === 0) return run[0];
    const pos = curOk ? run.indexOf(cur) : -1;
    return run[(pos + choice + run.length) % run.length];
  }

  /** Runs one atomic section of thread `tid`. */
  step(tid: number): string {
    const t = this.threads[tid];
    this.k.current = tid;
    t.waiting = null;
    const outer = schedulerStack;
    schedulerStack = true;
    let r;
    try {
      r = resume(t);
    } finally {
      schedulerStack = outer;
    }
    if (r.done) {
      t.done = true;
      return 'exit';
    }
    if (typeof r.value === 'string') return r.value;
    t.waiting = r.value as Lock;
    return `wait:${t.waiting.name}`;
  }

  /** steps and preemptions of the current run so far (read when a step throws: executor.ts) */
  steps = 0;
  preemptions = 0;

  run(schedule: readonly number[] = [], hooks: SchedulerHooks = {}): RunResult {
    let cur = 0;
    this.steps = 0;
    this.preemptions = 0;
    let i = 0;
    const choiceAt = (schedule as { [SCHEDULE_CHOICE]?: ChoiceFn })[SCHEDULE_CHOICE];
    const afterStep = hooks.afterStep;
    const record = this.recordTrace;
    // Not recording: one record for every step (afterStep reads it during its call only).
    const scratch: StepRecord = { step: 0, thread: 0, at: '' };
    for (;;) {
      const choice = choiceAt ? choiceAt(i) : i < schedule.length ? schedule[i] : undefined;
      i++;
      const curOk = this.curRunnable(cur);
      // (most steps: the fixed policy keeps the running thread)
      if (!curOk || (choice !== undefined && choice !== 0)) {
        const next = this.pickFrom(cur, curOk, choice);
        if (next < 0) {
          const end = this.threads.every((t) => t.done) ? 'done' : 'deadlock';
          return { end, steps: this.steps, preemptions: this.preemptions, trace: this.trace };
        }
        if (next !== cur && curOk) this.preemptions++;
        cur = next;
      }
      if (this.steps >= this.maxSteps) return { end: 'livelock', steps: this.steps, preemptions: this.preemptions, trace: this.trace };
      const at = this.step(cur);
      let rec: StepRecord;
      if (record) this.trace.push((rec = { step: this.steps, thread: cur, at }));
      else {
        rec = scratch;
        rec.step = this.steps;
        rec.thread = cur;
        rec.at = at;
      }
      this.steps++;
      const stop = afterStep !== undefined ? afterStep(rec) : undefined;
      if (stop) return { end: 'done', steps: this.steps, preemptions: this.preemptions, stoppedBy: stop, trace: this.trace };
    }
  }
}

/**
 * Resumes a thread up to its next yield point (a label or a Lock) or its end: a Call is pushed
 * and its generator started; a call that returns or throws is popped and settled, and its caller
 * resumed (flat() returns the value or throws the exception inside the caller, so that finally
 * blocks run as with yield*). An exception of the thread's own generator leaves the step.
 */
function resume(t: Thread): IteratorResult<YieldPoint, unknown> {
  const calls = t.calls;
  for (;;) {
    const n = calls.length;
    const g = n ? calls[n - 1].gen : t.gen;
    let r: IteratorResult<YieldPoint, unknown>;
    try {
      r = g.next();
    } catch (e) {
      if (n === 0) throw e;
      settle(calls.pop()!, e, true);
      continue;
    }
    if (r.done) {
      if (n === 0) return r;
      settle(calls.pop()!, r.value, false);
    } else if (r.value instanceof Call) calls.push(r.value);
    else return r;
  }
}

function settle(c: Call, result: unknown, threw: boolean): void {
  c.settled = true;
  c.threw = threw;
  c.result = result;
}
