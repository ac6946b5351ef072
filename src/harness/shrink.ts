/**
 * The last shrinking pass. fast-check shrinks the generated case (shorter op lists, smaller
 * arguments, shorter schedules) but its shrinker works on the generator's structure; this pass
 * works on the explicit trace and makes the result 1-minimal: removing any single op, removing a
 * thread, moving an op to an earlier thread, zeroing / dropping any single schedule choice, or
 * lowering any numeric argument of an op
 * (to its minimum, by halving the distance, by one unit) no longer reproduces the same property
 * with a counterexample at least as short.
 *
 * "Short" is, in order: fewer ops, fewer preemptions, fewer steps. The steps (and the measured
 * preemptions) are known only when `fails` reports them ({ steps, preemptions }); with a plain
 * boolean the preemptions are the non-zero schedule choices (a zero choice is "keep running") and
 * steps are not compared.
 */
import { OPS, validateOp, type Op } from './ops/index.js';
import type { FieldSpec } from './ops/registry.js';

export interface TraceCase {
  threads: Op[][];
  schedule: number[];
}

/** What `fails` says: not violated (false), violated (true), or violated after a run of this length. */
export type Verdict = boolean | { steps: number; preemptions?: number };

interface Rank {
  ops: number;
  preemptions: number;
  /** NaN: unknown (not compared) */
  steps: number;
}

/**
 * `fails(c)` runs the case and says whether the same property is still violated (and, preferably,
 * how long the run was). Deterministic: the same `fails` gives the same result; at most `budget`
 * runs.
 */
export function minimize(start: TraceCase, fails: (c: TraceCase) => Verdict, budget = 2_000): TraceCase {
  let cur = clone(start);
  let tries = 1;
  const first = fails(cur);
  // Nothing to keep: a case that does not fail has no shorter failing form to look for.
  if (!first) return cur;
  let curRank = rankOf(cur, first);
  const attempt = (c: TraceCase): boolean => {
    if (tries >= budget) return false;
    tries++;
    const v = fails(c);
    if (!v) return false;
    const r = rankOf(c, v);
    if (!noWorse(r, curRank)) return false;
    cur = c;
    curRank = r;
    return true;
  };
  let changed = true;
  while (changed && tries < budget) {
    // Every pass runs again after any change: fewer ops or smaller arguments give a shorter run,
    // which may need fewer schedule choices (and the other way round).
    changed = structuralPasses(() => cur, attempt);
    if (valuePass(() => cur, attempt)) changed = true;
  }
  // Trailing zeros say nothing (the fixed policy keeps running).
  const s = [...cur.schedule];
  while (s.length && s[s.length - 1] === 0) s.pop();
  if (s.length !== cur.schedule.length && fails({ threads: cur.threads, schedule: s })) cur = { threads: cur.threads, schedule: s };
  return cur;
}

type Attempt = (c: TraceCase) => boolean;

/** Threads, single ops, ops between threads, schedule choices. `get` reads the current case (attempts replace it). */
function structuralPasses(get: () => TraceCase, attempt: Attempt): boolean {
  let changed = false;
  // Whole threads (the last thread first: removing it does not renumber the others).
  for (let t = get().threads.length - 1; t >= 0 && get().threads.length > 1; t--) {
    const cur = get();
    if (attempt({ threads: cur.threads.filter((_, i) => i !== t), schedule: cur.schedule })) changed = true;
  }
  // Single ops.
  for (let t = 0; t < get().threads.length; t++) {
    for (let i = get().threads[t].length - 1; i >= 0; i--) {
      const cur = get();
      if (cur.threads[t].length <= 1 && cur.threads.length > 1) continue;
      const threads = cur.threads.map((ops, j) => (j === t ? ops.filter((_, x) => x !== i) : ops));
      if (attempt({ threads, schedule: cur.schedule })) changed = true;
    }
  }
  if (mergePass(get, attempt)) changed = true;
  return schedulePass(get, attempt) || changed;
}

/**
 * Ops of later threads moved into earlier ones (a thread left empty goes): a violation that needs
 * no interleaving then needs no preemption either. Ops only move to a lower thread, so this ends.
 */
function mergePass(get: () => TraceCase, attempt: Attempt): boolean {
  let changed = false;
  for (let b = get().threads.length - 1; b >= 1; b--) {
    let i = 0;
    while (b < get().threads.length && i < get().threads[b].length) {
      // A moved op leaves the next one at the same index.
      if (moveOp(get, attempt, b, i)) changed = true;
      else i++;
    }
  }
  return changed;
}

/** Op i of thread b at every position of every earlier thread, with the schedule kept, then none. */
function moveOp(get: () => TraceCase, attempt: Attempt, b: number, i: number): boolean {
  for (let a = 0; a < b; a++) {
    for (let p = 0; p <= get().threads[a].length; p++) {
      const cur = get();
      const op = cur.threads[b][i];
      const threads = cur.threads
        .map((ops, j) => (j === a ? [...ops.slice(0, p), op, ...ops.slice(p)] : j === b ? ops.filter((_, x) => x !== i) : ops))
        .filter((ops, j) => j !== b || ops.length > 0);
      if (attempt({ threads, schedule: cur.schedule })) return true;
      // The old choices may not fit the new threads; no choices at all is the serial run.
      if (cur.schedule.length && attempt({ threads, schedule: [] })) return true;
    }
  }
  return false;
}

/** The schedule: drop the tail, then zero each choice (or make it 1), then drop single choices. */
function schedulePass(get: () => TraceCase, attempt: Attempt): boolean {
  let changed = false;
  const withSchedule = (schedule: number[]): TraceCase => ({ threads: get().threads, schedule });
  while (get().schedule.length && attempt(withSchedule(get().schedule.slice(0, -1)))) changed = true;
  for (let i = 0; i < get().schedule.length; i++) {
    const s = get().schedule;
    if (s[i] === 0) continue;
    if (attempt(withSchedule(s.map((c, j) => (j === i ? 0 : c))))) changed = true;
    else if (s[i] > 1 && attempt(withSchedule(s.map((c, j) => (j === i ? 1 : c))))) changed = true;
  }
  for (let i = get().schedule.length - 1; i >= 0; i--) {
    if (attempt(withSchedule(get().schedule.filter((_, j) => j !== i)))) changed = true;
  }
  return changed;
}

/**
 * Argument values: for each op and each numeric argument (or range), the smallest lower value
 * that still fails, found like fast-check's integer shrinker (the minimum first, then the current
 * value minus half the distance, a quarter, ..., one unit) and repeated until no lower value fails.
 * Only ops that pass validateOp are tried.
 */
function valuePass(get: () => TraceCase, attempt: Attempt): boolean {
  let changed = false;
  for (let t = 0; t < get().threads.length; t++) {
    for (let i = 0; i < get().threads[t].length; i++) {
      for (const lower of lowerings(get().threads[t][i])) {
        while (lowerOnce(get, attempt, t, i, lower)) changed = true;
      }
    }
  }
  return changed;
}

/** One round for one argument: the first (lowest) candidate that still fails replaces the op. */
function lowerOnce(get: () => TraceCase, attempt: Attempt, t: number, i: number, lower: Lowering): boolean {
  for (const op of lower(get().threads[t][i])) {
    const valid = validated(op);
    if (!valid) continue;
    const cur = get();
    const threads = cur.threads.map((ops, j) => (j === t ? ops.map((o, x) => (x === i ? valid : o)) : ops));
    if (attempt({ threads, schedule: cur.schedule })) return true;
  }
  return false;
}

/** Lower variants of an op, lowest first. */
type Lowering = (op: Op) => Op[];

/** The numeric arguments of an op, and its [start, end) range as a whole. */
function lowerings(op: Op): Lowering[] {
  const spec = OPS[op.op];
  if (!spec) return [];
  const out: Lowering[] = [];
  const hasRange = 'start' in spec.fields && 'end' in spec.fields;
  if (hasRange && typeof op.start === 'number' && typeof op.end === 'number') {
    // Shorter from either end (a lower `start` alone would make the range longer), then an
    // earlier range of the same length.
    const len = (o: Op) => num(o.end) - num(o.start);
    out.push((o) => lowerValues(len(o), 1).map((n) => ({ ...o, end: num(o.start) + n })));
    out.push((o) => lowerValues(len(o), 1).map((n) => ({ ...o, start: num(o.end) - n })));
    out.push((o) => lowerValues(num(o.start), 0).map((s) => ({ ...o, start: s, end: s + len(o) })));
  }
  for (const [name, f] of Object.entries(spec.fields)) {
    if (hasRange && (name === 'start' || name === 'end')) continue;
    if (typeof op[name] !== 'number' || !numeric(f)) continue;
    // Sizes in bytes go by whole pages: a part of a page says nothing more to the kernel.
    const unit = f.type === 'bytes' ? 4096 : 1;
    out.push((o) => lowerValues(num(o[name]), f.min ?? 0, unit).map((v) => ({ ...o, [name]: v })));
  }
  return out;
}

function numeric(f: FieldSpec): boolean {
  return f.type === 'int' || f.type === 'count' || f.type === 'bytes' || f.type === 'name-or-index';
}

function num(v: unknown): number {
  return v as number;
}

/**
 * Values below `v` down to `lo`, lowest first: `lo`, then v - k*unit for k = K/2, K/4, ..., 1
 * (K = whole units between lo and v). The last one, one unit lower, makes the result 1-minimal.
 */
export function lowerValues(v: number, lo: number, unit = 1): number[] {
  if (!(v > lo)) return [];
  const out = [lo];
  for (let k = Math.floor((v - lo) / unit / 2); k >= 1; k = Math.floor(k / 2)) out.push(v - k * unit);
  if (v - unit > lo) out.push(v - unit);
  return [...new Set(out)].sort((a, b) => a - b);
}

/** The op as validateOp normalises it, or null if it is not a valid op. */
function validated(op: Op): Op | null {
  try {
    return validateOp(op, 'shrink');
  } catch {
    return null;
  }
}

function rankOf(c: TraceCase, v: Verdict): Rank {
  const measured = typeof v === 'object' ? v : null;
  return {
    ops: countOps(c),
    preemptions: measured?.preemptions ?? c.schedule.filter((x) => x !== 0).length,
    steps: measured ? measured.steps : NaN,
  };
}

/** Lexicographic (ops, preemptions, steps) a <= b; unknown steps compare equal. */
function noWorse(a: Rank, b: Rank): boolean {
  if (a.ops !== b.ops) return a.ops < b.ops;
  if (a.preemptions !== b.preemptions) return a.preemptions < b.preemptions;
  return !(a.steps > b.steps);
}

function clone(c: TraceCase): TraceCase {
  return { threads: c.threads.map((t) => t.map((o) => ({ ...o }))), schedule: [...c.schedule] };
}

export function countOps(c: TraceCase): number {
  return c.threads.reduce((n, t) => n + t.length, 0);
}
