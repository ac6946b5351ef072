/**
 * The deterministic scheduler and its sleeping locks (src/kernel/sched.ts), written against the
 * survivors of a mutation run: which thread a schedule choice picks when the current thread is
 * blocked, finished or out of range, when a thread waiting for a mutex or one side of a
 * reader-writer semaphore is runnable again, how the run ends (done / deadlock / livelock / stopped
 * by a violation) and what the trace records. The locks stand for the kernel's sleeping locks:
 * mutex_lock() (kernel/locking/mutex.c) and mem_hotplug_lock, a percpu_rw_semaphore
 * (kernel/locking/percpu-rwsem.c: percpu_down_read / percpu_down_write).
 */
import { describe, expect, it } from 'vitest';
import {
  Mutex, RwSem, Scheduler, downRead, downWrite, mutexLock, mutexUnlock, upRead, upWrite, type CurrentThread, type KGen,
} from '../src/kernel/sched.js';

/** A fresh "kernel" for the scheduler: only the running thread id matters to the locks. */
function cpu(): CurrentThread {
  return { current: 0 };
}

/** `n` scheduling points ("cond_resched()"), labelled `at`. */
function* work(n: number, at = 'work'): KGen {
  for (let i = 0; i < n; i++) yield at;
}

/** The threads each step ran, in order. */
function threadsOf(s: Scheduler): number[] {
  return s.trace.map((r) => r.thread);
}

describe('mutex_lock: a waiter sleeps while another thread holds the mutex', () => {
  it('an uncontended mutex_lock takes the mutex without sleeping', () => {
    const k = cpu();
    const m = new Mutex('m');
    const s = new Scheduler(k);
    s.spawn((function* () { yield* mutexLock(k, m); yield 'locked'; mutexUnlock(m); })());
    expect(s.run()).toMatchObject({ end: 'done', steps: 2 });
    expect(s.trace.map((r) => r.at)).toEqual(['locked', 'exit']);
  });

  it('the waiter runs again once the owner unlocks, and then owns the mutex', () => {
    const k = cpu();
    const m = new Mutex('m');
    const s = new Scheduler(k);
    let owner1 = -1;
    s.spawn((function* () { yield* mutexLock(k, m); yield* work(2, 'critical'); mutexUnlock(m); yield 'unlocked'; })());
    s.spawn((function* () { yield* mutexLock(k, m); owner1 = m.owner; mutexUnlock(m); })());
    // Switch to thread 1 right after thread 0 locked: it blocks, the policy goes back to 0, which
    // (the schedule used up) runs to its end before the lowest runnable thread, 1, takes the mutex.
    expect(s.run([0, 1]).end).toBe('done');
    expect(s.trace.map((r) => `${r.thread}:${r.at}`)).toEqual([
      '0:critical', '1:wait:m', '0:critical', '0:unlocked', '0:exit', '1:exit',
    ]);
    expect(owner1).toBe(1);
    expect(m.owner).toBe(-1);
  });

  it('a thread that ends holding a mutex deadlocks the waiter: the run ends "deadlock", not "done"', () => {
    const k = cpu();
    const m = new Mutex('m');
    const s = new Scheduler(k);
    s.spawn((function* () { yield* mutexLock(k, m); })()); // returns with the mutex held
    s.spawn((function* () { yield 'before'; yield* mutexLock(k, m); })());
    expect(s.run().end).toBe('deadlock');
    expect(s.threads.map((t) => t.done)).toEqual([true, false]);
  });
});

describe('mem_hotplug_lock as a reader-writer semaphore', () => {
  type Side = 'read' | 'write';
  /** A critical section on one side of `hp`, labelled `at`; `after` is yielded once it is left. */
  function* section(k: CurrentThread, hp: RwSem, side: Side, at: string, after?: string): KGen {
    yield* (side === 'read' ? downRead(k, hp) : downWrite(k, hp));
    yield at;
    if (side === 'read') upRead(hp);
    else upWrite(hp);
    if (after) yield after;
  }

  /** Thread 0 holds `first`; the schedule switches to thread 1 (wanting `second`) at once. */
  function contend(first: Side, second: Side): { hp: RwSem; trace: string[] } {
    const k = cpu();
    const hp = new RwSem('mem_hotplug_lock');
    const s = new Scheduler(k);
    s.spawn(section(k, hp, first, 'held', 'released'));
    s.spawn(section(k, hp, second, 'got it'));
    expect(s.run([0, 1]).end).toBe('done');
    return { hp, trace: s.trace.map((r) => `${r.thread}:${r.at}`) };
  }

  it('get_online_mems() sleeps while mem_hotplug_begin() holds the write side, and the wait is traced by lock side', () => {
    const { hp, trace } = contend('write', 'read');
    expect(trace).toEqual(['0:held', '1:wait:mem_hotplug_lock(read)', '0:released', '0:exit', '1:got it', '1:exit']);
    expect([hp.readers, hp.writer]).toEqual([0, -1]);
  });

  it('a writer sleeps while a reader holds it, named by the write side', () => {
    const { hp, trace } = contend('read', 'write');
    expect(trace).toEqual(['0:held', '1:wait:mem_hotplug_lock(write)', '0:released', '0:exit', '1:got it', '1:exit']);
    expect([hp.readers, hp.writer]).toEqual([0, -1]);
  });

  it('a second reader is not held up by the first: readers share (percpu_down_read fast path)', () => {
    const { hp, trace } = contend('read', 'read');
    expect(trace.slice(0, 2)).toEqual(['0:held', '1:got it']);
    expect(hp.readers).toBe(0);
  });

  it('up_read drops the reader count: after a read section a writer gets in at once', () => {
    const k = cpu();
    const hp = new RwSem('hp');
    const s = new Scheduler(k);
    s.spawn((function* () {
      yield* downRead(k, hp);
      yield 'reading';
      upRead(hp);
      yield* downWrite(k, hp);
      yield 'writing';
      upWrite(hp);
    })());
    expect(s.run()).toMatchObject({ end: 'done', steps: 3 });
    expect(hp.readers).toBe(0);
  });

  it('the write side of a lock held by readers only reports owner -2; the read side -1 (a waiting reader is runnable)', () => {
    const k = cpu();
    const hp = new RwSem('hp');
    const s = new Scheduler(k);
    s.spawn(work(1)); // thread 0: holds the read side (set below)
    s.spawn(work(1)); // thread 1: waits for the write side
    s.spawn(work(1)); // thread 2: waits for the read side
    hp.readers = 1;
    s.threads[1].waiting = hp.writeSide;
    s.threads[2].waiting = hp.readSide;
    expect([hp.writeSide.owner, hp.readSide.owner]).toEqual([-2, -1]);
    s.threads[0].done = true;
    // The lowest runnable thread: the writer sleeps, the reader may go.
    expect(s.pick(0, undefined)).toBe(2);
    hp.writer = 1;
    hp.readers = 0;
    expect([hp.writeSide.owner, hp.readSide.owner]).toEqual([1, 1]);
  });
});

describe('Scheduler.pick: what a schedule choice means', () => {
  /** Three threads; `blocked` wait for a mutex thread 9 holds, `finished` are done. */
  function three(blocked: number[], finished: number[]): Scheduler {
    const s = new Scheduler(cpu());
    const held: Mutex = Object.assign(new Mutex('held'), { owner: 9 });
    for (let i = 0; i < 3; i++) s.spawn(work(1));
    for (const t of blocked) s.threads[t].waiting = held;
    for (const t of finished) s.threads[t].done = true;
    return s;
  }

  it('0 (or no choice) keeps a runnable current thread; for a finished one it takes the lowest runnable thread', () => {
    expect(three([], []).pick(1, 0)).toBe(1);
    expect(three([], [1]).pick(1, 0)).toBe(0);
    expect(three([], [0, 1]).pick(1, 0)).toBe(2);
    expect(three([], [1]).pick(1, undefined)).toBe(0);
  });

  it('c > 0 from a blocked current thread counts from the start of the runnable list', () => {
    // runnable [0, 2]; the current thread 1 is not in it: choice 1 is the first of them.
    expect(three([1], []).pick(1, 1)).toBe(0);
    expect(three([1], []).pick(1, 2)).toBe(2);
    // From a runnable current thread, c steps on cyclically.
    expect(three([], []).pick(1, 1)).toBe(2);
    expect(three([], []).pick(2, 1)).toBe(0);
  });

  it('a current thread id outside the thread list (before the first step) is never "runnable"', () => {
    expect(three([], [0]).pick(-1, 0)).toBe(1);
    expect(three([], [0]).pick(3, 0)).toBe(1);
    expect(three([], []).pick(3, 1)).toBe(0);
  });

  it('no runnable thread: -1', () => {
    expect(three([0, 1], [2]).pick(0, undefined)).toBe(-1);
  });
});

describe('Scheduler.run: how a run ends and what it records', () => {
  it('a thread that never finishes is a livelock after exactly maxSteps steps', () => {
    const s = new Scheduler(cpu(), 7); // any small bound
    s.spawn((function* () { for (;;) yield 'spin'; })());
    expect(s.run()).toMatchObject({ end: 'livelock', steps: 7 });
    expect(s.trace.length).toBe(7);
  });

  it('a violation reported after a step stops the run there: end "done", stoppedBy the message', () => {
    const s = new Scheduler(cpu());
    s.spawn(work(5));
    const r = s.run([], { afterStep: (rec) => (rec.step === 2 ? 'boom' : null) });
    expect(r).toMatchObject({ end: 'done', steps: 3, preemptions: 0, stoppedBy: 'boom' });
    expect(s.threads[0].done).toBe(false);
  });

  it('afterStep sees each step\'s own step, thread and label, with the trace recorded or not (the unrecorded record is reused)', () => {
    const seen = (record: boolean): string[] => {
      const s = new Scheduler(cpu());
      s.recordTrace = record;
      s.spawn(work(3, 'a'));
      s.spawn(work(2, 'b'));
      const out: string[] = [];
      s.run([0, 1, 0, 1], { afterStep: (rec) => void out.push(`${rec.step}:${rec.thread}:${rec.at}`) });
      if (record) expect(s.trace.map((r) => `${r.step}:${r.thread}:${r.at}`)).toEqual(out);
      return out;
    };
    const traced = seen(true);
    expect(traced).toEqual(['0:0:a', '1:1:b', '2:1:b', '3:0:a', '4:0:a', '5:0:exit', '6:1:exit']);
    expect(seen(false)).toEqual(traced);
  });

  it('a finished thread\'s last step is traced as "exit"; recordTrace=false records nothing', () => {
    const s = new Scheduler(cpu());
    s.spawn(work(1, 'a'));
    s.spawn(work(0));
    s.run();
    expect(s.trace.map((r) => `${r.thread}:${r.at}`)).toEqual(['0:a', '0:exit', '1:exit']);
    const quiet = new Scheduler(cpu());
    quiet.recordTrace = false;
    quiet.spawn(work(3));
    expect(quiet.run()).toMatchObject({ end: 'done', steps: 4, trace: [] });
  });

  it('switching away from a runnable thread is a preemption; taking over from a finished one is not', () => {
    const s = new Scheduler(cpu());
    s.spawn(work(2));
    s.spawn(work(2));
    const r = s.run([1]);
    expect(threadsOf(s)).toEqual([1, 1, 1, 0, 0, 0]);
    expect(r.preemptions).toBe(1);
  });
});

describe('recursive locking is a kernel bug (the kernel deadlocks on itself; lockdep reports it)', () => {
  const me = { current: 3 };
  const run = (g: Generator<unknown, unknown, unknown>) => {
    for (let r = g.next(); !r.done; r = g.next());
  };
  it('mutex_lock by the mutex owner', () => {
    const m = new Mutex('cma_mutex');
    run(mutexLock(me, m));
    expect(() => run(mutexLock(me, m))).toThrow(/mutex_lock\(cma_mutex\) by thread 3, its owner/);
    mutexUnlock(m);
    run(mutexLock(me, m));
    expect(m.owner).toBe(3);
  });
  it('down_write or down_read by the writer', () => {
    const s = new RwSem('mem_hotplug_lock');
    run(downWrite(me, s));
    expect(() => run(downWrite(me, s))).toThrow(/down_write\(mem_hotplug_lock\) by thread 3/);
    expect(() => run(downRead(me, s))).toThrow(/down_read\(mem_hotplug_lock\) by thread 3/);
    upWrite(s);
    run(downRead(me, s));
    run(downRead(me, s));
    expect(s.readers).toBe(2);
  });
});
