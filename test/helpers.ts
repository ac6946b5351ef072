/** Helpers shared by the mechanism tests: driving a kernel entry point to completion. */
import { expect } from 'vitest';
import type { Kernel } from '../src/kernel/machine.js';
import { Scheduler, type KGen } from '../src/kernel/sched.js';
import { hotplugState, type MemAction } from '../src/kernel/memory_hotplug.js';
import { OPS } from '../src/harness/ops/index.js';

/** Runs a generator to its end on the caller's stack, collecting the yield labels. */
export function drive<T>(g: KGen<T>, seen: string[] = []): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
    if (typeof r.value === 'string') seen.push(r.value);
  }
}

/** Runs one op of the vocabulary to completion. */
export function op(k: Kernel, o: Record<string, unknown>) {
  return drive(OPS[o.op as string].run(k, o));
}

/** Runs a generator as the only thread of a scheduler (mutexes work), expecting it to finish. */
export function driveThread<T>(k: Kernel, g: KGen<T>): T {
  const s = new Scheduler(k);
  let out: T | undefined;
  s.spawn((function* () { out = yield* g; })());
  expect(s.run().end).toBe('done');
  return out as T;
}

/**
 * Another driver's memory notifier that vetoes `action` (NOTIFY_BAD), registered after virtio-mem
 * ('after') or ahead of it ('before').
 */
export function vetoing(k: Kernel, action: MemAction, where: 'before' | 'after'): void {
  const n = function* (_k: Kernel, a: MemAction): KGen<string> {
    return a === action ? '-EBUSY' : '0';
  };
  const list = hotplugState(k).notifiers;
  if (where === 'after') list.push(n);
  else list.unshift(n);
}

/** A small deterministic generator (xorshift). */
export function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}
