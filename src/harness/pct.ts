/**
 * PCT (Burckhardt et al., "A Randomized Scheduler with Probabilistic Guarantees of Finding Bugs",
 * ASPLOS 2010) expressed in the executor's schedule format, so that PCT schedules replay, shrink
 * and save exactly like uniform ones.
 *
 * PCT gives each thread a random priority, always runs the highest-priority runnable thread, and at
 * d-1 random steps lowers the running thread's priority below every other. Over the choice format
 * (0 = keep running, c > 0 = the c-th next runnable thread):
 *  - the initial priorities become the first choice (which thread starts);
 *  - between change points the choice is 0: the running (highest-priority) thread keeps running;
 *    when it blocks or ends, the scheduler's fixed policy takes the next runnable one;
 *  - a change point at step i is a non-zero choice at index i: the running thread drops to the
 *    lowest priority and the next thread in priority order runs.
 * A bug of depth d is then hit with probability >= 1/(n * k^(d-1)) for n threads and k steps.
 */
import fc from 'fast-check';

/** Choice arrays with `depth - 1` change points spread over an estimated `steps` steps. */
export function pctScheduleArb(threads: number, depth: number, steps: number): fc.Arbitrary<number[]> {
  if (threads < 2) return fc.constant([]);
  const points = Math.max(0, depth - 1);
  const first = fc.nat({ max: threads - 1 });
  const changes = fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, steps) }), { maxLength: points, minLength: 0 });
  const bumps = fc.array(fc.integer({ min: 1, max: threads - 1 }), { minLength: points, maxLength: points });
  return fc.tuple(first, changes, bumps).map(([f, cs, bs]) => pctSchedule(f, cs, bs));
}

/** The choice array of a PCT run: `first` picks the starting thread, each change point switches. */
export function pctSchedule(first: number, changePoints: number[], bumps: number[]): number[] {
  const sorted = [...changePoints].sort((a, b) => a - b);
  const len = sorted.length ? sorted[sorted.length - 1] + 1 : 1;
  const out = new Array<number>(len).fill(0);
  out[0] = first;
  sorted.forEach((p, i) => {
    out[p] = bumps[i] ?? 1;
  });
  // Trailing zeros carry no information (the fixed policy keeps running).
  while (out.length && out[out.length - 1] === 0) out.pop();
  return out;
}
