/**
 * flat() (src/kernel/sched.ts): a nested kernel function run from the thread's stack of generators
 * instead of through `yield*`. The shortcut must not be observable: the same yield points in the
 * same steps, the same return values, the same exceptions and finally blocks, under the scheduler
 * and under a plain driver. Each case runs a program written with flat() and the same program
 * written with plain `yield*`, and compares.
 */
import { describe, expect, it } from 'vitest';
import { Mutex, Scheduler, flat, mutexLock, mutexUnlock, type CurrentThread, type KGen } from '../src/kernel/sched.js';

type Nest = <T>(g: KGen<T>) => KGen<T>;
const viaFlat: Nest = flat;
const viaYield: Nest = function* <T>(g: KGen<T>): KGen<T> {
  return yield* g;
};

/** What a run shows: the trace and whatever the threads logged. */
function runBoth(program: (nest: Nest, log: string[], k: CurrentThread) => KGen<unknown>[], schedule: number[] = []) {
  const out = [viaFlat, viaYield].map((nest) => {
    const k = { current: 0 };
    const log: string[] = [];
    const s = new Scheduler(k);
    for (const g of program(nest, log, k)) s.spawn(g);
    let end: string;
    try {
      end = s.run(schedule).end;
    } catch (e) {
      end = `threw ${(e as Error).message}`;
    }
    return { end, trace: s.trace.map((r) => `${r.thread}:${r.at}`), log };
  });
  expect(out[0]).toEqual(out[1]);
  return out[0];
}

/** Runs a generator with next() alone, keeping the labels (the test helpers' drive()). */
function drive<T>(g: KGen<T>, seen: string[]): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
    if (typeof r.value === 'string') seen.push(r.value);
  }
}

function* leaf(n: number, at: string): KGen<number> {
  for (let i = 0; i < n; i++) yield `${at}${i}`;
  return n * 10;
}

/** One yield point, then an exception. */
function* failing(at: string, message: string): KGen<number> {
  yield at;
  throw new Error(message);
}

describe('flat(): a nested generator resumed from the thread stack', () => {
  it('yields the same points and returns the same values, nested flat() calls included', () => {
    const r = runBoth((nest, log) => {
      function* middle(): KGen<number> {
        const a = yield* nest(leaf(2, 'a'));
        yield 'between';
        const b = yield* nest(leaf(0, 'none')); // returns without a yield: same step
        const c = yield* leaf(1, 'plain');
        return a + b + c;
      }
      function* top(): KGen<void> {
        yield 'start';
        log.push(`sum ${yield* nest(middle())}`);
      }
      return [top(), (function* () { log.push(`t1 ${yield* nest(leaf(3, 'x'))}`); })()];
    }, [0, 1, 1, 0, 1, 1]);
    expect(r.log).toEqual(['sum 30', 't1 30']);
    expect(r.trace.length).toBeGreaterThan(8);
  });

  it('a nested generator waiting for a mutex blocks its thread as with yield*', () => {
    const r = runBoth((nest, log, k) => {
      const m = new Mutex('m');
      function* critical(who: string): KGen<string> {
        yield* mutexLock(k, m);
        yield `${who}:in`;
        mutexUnlock(m);
        return who;
      }
      return [
        (function* () { log.push(yield* nest(critical('a'))); })(),
        (function* () { log.push(yield* nest(critical('b'))); })(),
      ];
    }, [0, 1, 1, 0, 1]);
    expect(r.trace).toContain('1:wait:m');
  });

  it('an exception runs the callers\' finally blocks and can be caught by a caller in the same step', () => {
    const r = runBoth((nest, log) => {
      function* guarded(): KGen<number> {
        try {
          return yield* nest(failing('before-throw', 'bug'));
        } finally {
          log.push('guarded: finally');
        }
      }
      function* catching(): KGen<void> {
        try {
          yield* nest(guarded());
        } catch (e) {
          log.push(`caught ${(e as Error).message}`);
        }
        yield 'after-catch';
      }
      return [catching()];
    });
    expect(r.log).toEqual(['guarded: finally', 'caught bug']);
    expect(r.trace).toEqual(['0:before-throw', '0:after-catch', '0:exit']);
  });

  it('an exception nobody catches leaves the run, after the finally blocks', () => {
    const r = runBoth((nest, log) => {
      return [(function* () {
        try {
          yield* nest(failing('x', 'uncaught'));
        } finally {
          log.push('finally');
        }
      })()];
    });
    expect(r.end).toBe('threw uncaught');
    expect(r.log).toEqual(['finally']);
  });

  it('a forwarding loop inside a thread that drops the values it is resumed with changes nothing', () => {
    const r = runBoth((nest, log) => {
      function* inner(): KGen<number> {
        const a = yield* nest(leaf(2, 'a'));
        try {
          yield* nest(failing('f', 'bug'));
        } catch (e) {
          log.push(`inner caught ${(e as Error).message}`);
        }
        return a + 1;
      }
      // As a test watching every yield of an entry point would write it.
      function* forward<T>(g: KGen<T>): KGen<T> {
        for (let x = g.next(); ; x = g.next()) {
          if (x.done) return x.value;
          yield x.value;
        }
      }
      return [(function* () { log.push(`got ${yield* forward(inner())}`); })()];
    });
    expect(r.log).toEqual(['inner caught bug', 'got 21']);
  });

  it('a driver inside a thread that ignores what is not a label runs the nested generator itself', () => {
    const r = runBoth((nest, log) => {
      function* inner(): KGen<number> {
        return (yield* nest(leaf(2, 'a'))) + 1;
      }
      return [(function* () {
        yield 'before';
        const seen: string[] = [];
        log.push(`drove ${drive(inner(), seen)} past ${seen.join(',')}`);
        yield 'after';
      })()];
    });
    expect(r.log).toEqual(['drove 21 past a0,a1']);
    expect(r.trace).toEqual(['0:before', '0:after', '0:exit']);
  });

  it('under a plain driver flat() is yield*', () => {
    const seen: string[] = [];
    function* top(): KGen<number> {
      return (yield* flat(leaf(2, 'a'))) + (yield* flat(leaf(1, 'b')));
    }
    const values: unknown[] = [];
    const g = top();
    for (let x = g.next(); !x.done; x = g.next()) values.push(x.value);
    expect(values).toEqual(['a0', 'a1', 'b0']);
    expect(drive(top(), seen)).toBe(30);
    // throw() and return() reach the nested generator as through yield*.
    for (const nest of [viaFlat, viaYield]) {
      function* catching(): KGen<string> {
        try {
          yield 'in';
        } catch (e) {
          return `caught ${(e as Error).message}`;
        }
        return 'not thrown';
      }
      function* outer(): KGen<string> {
        return yield* nest(catching());
      }
      const g = outer();
      g.next();
      expect(g.throw(new Error('x'))).toEqual({ value: 'caught x', done: true });
      const h = outer();
      h.next();
      expect(h.return('early')).toEqual({ value: 'early', done: true });
    }
  });
});
