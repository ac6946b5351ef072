import type { Property } from './property.js';
import { OP_STEP_BOUND, OpView } from './op-tracking.js';

export { OP_STEP_BOUND };

/**
 * bounded-progress: no deadlock (every unfinished thread waiting for a sleeping lock) and no op
 * running past its step bound (a livelock: a retry loop without a bound or a signal exit, e.g.
 * offline_pages retrying forever on a page it can never migrate, kernel-spec §15.10).
 *
 * Deadlock and the run's global step limit are detected by the scheduler and reported under this
 * name by the executor; this checker adds the per-op bound. The op tracker counts each thread's
 * steps in its current op (OpTracker.currentOpSteps, fed on every step), so the checker keeps
 * nothing and is woken only on a step past the bound (wakes.longOp): the same step the count
 * first exceeds it, as when it was called on every step.
 */
const boundedProgress: Property = {
  name: 'bounded-progress',
  statement: 'no deadlock, no op past its step bound',
  kernelRef: 'kernel-spec §15.10, §17 (locks: cma_mutex, resize_lock, hotplug lock); mm/memory_hotplug.c offline_pages retry loop',
  guards: 'lock-order inversions between resize_lock / cma_mutex / hotplug lock, retry loops without a bound',
  when: 'step',
  stateless: true,
  wakes: { longOp: true },
  create(k) {
    const view = new OpView();
    return {
      check(ctx) {
        const ops = view.begin(ctx);
        const n = ops.currentOpSteps;
        // (the op is looked up only past the bound: a checker driven by hand is called on every step)
        const op = n > OP_STEP_BOUND ? ops.current(k) : undefined;
        view.end(ctx);
        if (op) return `${op.op} in thread ${k.current} ran ${n} steps without returning (bound ${OP_STEP_BOUND})`;
        return null;
      },
    };
  },
};

export default boundedProgress;
