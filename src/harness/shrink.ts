/**
 * The last shrinking pass. fast-check shrinks the generated case (shorter op lists, smaller
 * arguments, shorter schedules) but its shrinker works on the generator's structure; this pass
 * works on the explicit trace and makes the result 1-minimal: removing any single op, removing a
 * thread, or zeroing / dropping any single schedule choice no longer reproduces the same property.
 * Fewer ops first, then fewer preemptions (a zero choice is "keep running").
 */
import type { Op } from './ops/index.js';

export interface TraceCase {
  threads: Op[][];
  schedule: number[];
}

/** `fails(c)` runs the case and says whether the same property is still violated. */
export function minimize(start: TraceCase, fails: (c: TraceCase) => boolean, budget = 2_000): TraceCase {
  let cur = clone(start);
  let tries = 0;
  const attempt = (c: TraceCase): boolean => {
    if (tries >= budget) return false;
    tries++;
    if (!fails(c)) return false;
    cur = c;
    return true;
  };
  let changed = true;
  while (changed && tries < budget) {
    changed = false;
    // Whole threads (the last thread first: removing it does not renumber the others).
    for (let t = cur.threads.length - 1; t >= 0 && cur.threads.length > 1; t--) {
      if (attempt({ threads: cur.threads.filter((_, i) => i !== t), schedule: cur.schedule })) changed = true;
    }
    // Single ops.
    for (let t = 0; t < cur.threads.length; t++) {
      for (let i = cur.threads[t].length - 1; i >= 0; i--) {
        if (cur.threads[t].length <= 1 && cur.threads.length > 1) continue;
        const threads = cur.threads.map((ops, j) => (j === t ? ops.filter((_, x) => x !== i) : ops));
        if (attempt({ threads, schedule: cur.schedule })) changed = true;
      }
    }
    // The schedule: drop the tail, then zero each choice, then drop single choices.
    while (cur.schedule.length && attempt({ threads: cur.threads, schedule: cur.schedule.slice(0, -1) })) changed = true;
    for (let i = 0; i < cur.schedule.length; i++) {
      if (cur.schedule[i] === 0) continue;
      if (attempt({ threads: cur.threads, schedule: cur.schedule.map((c, j) => (j === i ? 0 : c)) })) changed = true;
      else if (cur.schedule[i] > 1 && attempt({ threads: cur.threads, schedule: cur.schedule.map((c, j) => (j === i ? 1 : c)) })) changed = true;
    }
    for (let i = cur.schedule.length - 1; i >= 0; i--) {
      if (attempt({ threads: cur.threads, schedule: cur.schedule.filter((_, j) => j !== i) })) changed = true;
    }
  }
  // Trailing zeros say nothing (the fixed policy keeps running).
  const s = [...cur.schedule];
  while (s.length && s[s.length - 1] === 0) s.pop();
  if (s.length !== cur.schedule.length && fails({ threads: cur.threads, schedule: s })) cur = { threads: cur.threads, schedule: s };
  return cur;
}

function clone(c: TraceCase): TraceCase {
  return { threads: c.threads.map((t) => t.map((o) => ({ ...o }))), schedule: [...c.schedule] };
}

export function countOps(c: TraceCase): number {
  return c.threads.reduce((n, t) => n + t.length, 0);
}
