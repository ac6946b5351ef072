import type { Property } from './property.js';
import { OpView } from './op-tracking.js';
import { SavedArrays } from './checkpoint.js';

/**
 * bounded-progress: no deadlock (every unfinished thread waiting for a sleeping lock) and no op
 * running past its step bound (a livelock: a retry loop without a bound or a signal exit, e.g.
 * offline_pages retrying forever on a page it can never migrate, kernel-spec §15.10).
 *
 * Deadlock and the run's global step limit are detected by the scheduler and reported under this
 * name by the executor; this checker adds the per-op bound, counted per step (O(1)).
 */
// cma_alloc legitimately walks every bitmap position of its area (one alloc_contig_range attempt
// each) when the area is busy: the bound must exceed that, it is there for loops with no bound.
export const OP_STEP_BOUND = 100_000;

const boundedProgress: Property = {
  name: 'bounded-progress',
  statement: 'no deadlock, no op past its step bound',
  kernelRef: 'kernel-spec §15.10, §17 (locks: cma_mutex, resize_lock, hotplug lock); mm/memory_hotplug.c offline_pages retry loop',
  guards: 'lock-order inversions between resize_lock / cma_mutex / hotplug lock, retry loops without a bound',
  when: 'step',
  create(k) {
    const view = new OpView();
    // steps of each thread's current op, by thread id
    const steps: number[] = [];
    const saved = new SavedArrays<number>();
    return {
      check(ctx) {
        const ops = view.begin(ctx);
        for (const s of ctx.started) steps[s.thread] = 0;
        const t = k.current;
        const n = (steps[t] ?? 0) + 1;
        steps[t] = n;
        // (the op is looked up only past the bound: every step calls this)
        const op = n > OP_STEP_BOUND ? ops.current(k) : undefined;
        view.end(ctx);
        if (op) return `${op.op} in thread ${t} ran ${n} steps without returning (bound ${OP_STEP_BOUND})`;
        return null;
      },
      checkpoint: (slot) => saved.save(slot, steps),
      restore: (slot) => saved.load(slot, steps),
    };
  },
};

export default boundedProgress;
