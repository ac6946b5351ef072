/**
 * What a property is: a named invariant over the simulated kernel's state, with the kernel code it
 * refers to and the bug it guards against. Properties read the kernel and never change it.
 * `when`: 'step' properties are checked after every atomic section, 'quiescence' ones once all
 * threads are done (for invariants the kernel only promises between operations).
 */
import type { Kernel } from '../src/kernel/machine.js';
import type { Op, OpResult } from '../src/harness/ops/registry.js';
import type { OpTracker } from './op-tracking.js';
import type { HugetlbWatch } from './hugetlb-watch.js';

export interface OpEvent {
  thread: number;
  index: number;
  op: Op;
  result: OpResult;
}

export interface CheckContext {
  k: Kernel;
  step: number;
  /** ops that started in this step (their first section ran) */
  started: { thread: number; index: number; op: Op }[];
  /** ops that completed in this step */
  finished: OpEvent[];
  /** all threads are done */
  quiescent: boolean;
  /** the ops in flight, kept by the executor for every checker of the run (see OpView) */
  ops?: OpTracker;
  /** the hugetlb pool counters as of this step, fed by the executor with ops (see HugetlbWatch) */
  hugetlb?: HugetlbWatch;
}

export interface Checker {
  /** a violation message, or null */
  check(ctx: CheckContext): string | null;
  /** optional: the run is over and the checker will not be called again (it may recycle buffers) */
  dispose?(): void;
  /**
   * Optional, with restore (for the model checker, which replays a schedule's prefix from the
   * booted machine for every schedule): remember the checker's state as it is now, between two
   * steps, under `slot` (a step count; a later checkpoint of the same slot replaces it).
   */
  checkpoint?(slot: number): void;
  /**
   * Back to the state of the last checkpoint(slot), on the kernel brought back to that point by a
   * replay of the same steps that this checker did not see: it resumes as if it had checked them.
   * Depth first: the steps checked since checkpoint(slot) all came after that point (no smaller
   * slot was restored since). Restoring a slot again (another branch) gives the same state again.
   */
  restore?(slot: number): void;
  /**
   * With restore: the checker takes every step's pfns off the dirty-pfn tracker (properties/dirty.ts)
   * when it checks the step, so that after a restore no check may be handed those of the steps
   * replayed before it (its restore drops them): the model checker need not record them at all.
   */
  drainsDirty?: boolean;
  /**
   * For a property with wakes.watching: while true, the checker is called on every step, woken or
   * not (it follows state of its own that a step may change with none of its wake bits: see
   * refines-model). Read before each step's checks; set by the checker.
   */
  watching?: boolean;
}

export interface Property {
  name: string;
  statement: string;
  kernelRef: string;
  guards: string;
  when: 'step' | 'quiescence';
  /**
   * Its checker keeps nothing from one step that a later check reads (what it reads of the past
   * comes from the kernel, the shared op tracker or the dirty-pfn tracker, which hands a later
   * check the pfns of every step not looked at): a check it skips changes no later verdict. The
   * model checker skips such checkers on the steps it replays (their verdicts are known).
   */
  stateless?: boolean;
  /**
   * Set when its check can only report, or change its checker's state, on a step that has one of
   * these: pfns the dirty-pfn tracker reports for it ('dirty'), an op that finished in it,
   * quiescence, a thread past OP_STEP_BOUND steps in its op ('longOp', OpTracker.longOp),
   * hugetlb pools that moved or hold gigantic pages ('hugetlb', HugetlbWatch.moved), an op that
   * started in it ('started'), or its checker's `watching` flag set ('watching'); on
   * any other step the check reads nothing that changed and returns null (what it
   * reads of the ops in flight comes from ctx.ops, which the executor feeds on every step). The
   * executor does not call it on such steps (most of a run: see stepWakes). Unset: every step.
   */
  wakes?: Wakes;
  /**
   * per-run checker (may keep state across steps, e.g. snapshots at op start). A checker that is
   * stateless or implements checkpoint/restore may be kept by the model checker for many runs of
   * one program on the same restored kernel, created once on the freshly booted machine.
   */
  create(k: Kernel): Checker;
}

export interface Wakes {
  dirty?: boolean;
  finished?: boolean;
  quiescent?: boolean;
  longOp?: boolean;
  hugetlb?: boolean;
  started?: boolean;
  watching?: boolean;
}

/** Bits of a step for wakeMask: what it has that a checker may wait for. */
export const WAKE_DIRTY = 1;
export const WAKE_FINISHED = 2;
export const WAKE_QUIESCENT = 4;
export const WAKE_LONG_OP = 8;
export const WAKE_HUGETLB = 16;
export const WAKE_STARTED = 32;
/** no step has it: a checker waiting for it is called while its `watching` flag is set */
export const WAKE_WATCHING = 64;
/** every step has it (the highest bit): a checker waiting for it is called on every step */
export const WAKE_ALWAYS = 128;

/**
 * The steps a property's checker is called on, as a mask of WAKE_* bits: it is called on a step
 * whose bits (stepWakes) meet the mask. A 'quiescence' property waits for quiescence alone.
 */
export function wakeMask(p: Property): number {
  if (p.when === 'quiescence') return WAKE_QUIESCENT;
  const w = p.wakes;
  if (!w) return WAKE_ALWAYS;
  return (w.dirty ? WAKE_DIRTY : 0) | (w.finished ? WAKE_FINISHED : 0) | (w.quiescent ? WAKE_QUIESCENT : 0) | (w.longOp ? WAKE_LONG_OP : 0) | (w.hugetlb ? WAKE_HUGETLB : 0) | (w.started ? WAKE_STARTED : 0) | (w.watching ? WAKE_WATCHING : 0);
}

/**
 * A step's WAKE_* bits: `dirty` when the dirty-pfn tracker has pfns to report for it, `longOp`
 * when the op tracker fed with it says longOp(), `hugetlb` when the hugetlb watch fed with it
 * says moved.
 */
export function stepWakes(dirty: boolean, finished: boolean, quiescent: boolean, longOp: boolean, hugetlb: boolean, started: boolean): number {
  return WAKE_ALWAYS | (dirty ? WAKE_DIRTY : 0) | (finished ? WAKE_FINISHED : 0) | (quiescent ? WAKE_QUIESCENT : 0) | (longOp ? WAKE_LONG_OP : 0) | (hugetlb ? WAKE_HUGETLB : 0) | (started ? WAKE_STARTED : 0);
}

/** A checker woken by `mask` is called on a step with wake bits `now` (or while watching). */
export function wakesFor(mask: number, now: number, c: Checker): boolean {
  return (mask & now) !== 0 || ((mask & WAKE_WATCHING) !== 0 && c.watching === true);
}

/** A stateless property from a plain check function. */
export function stateless(p: Omit<Property, 'create'>, check: (k: Kernel, ctx: CheckContext) => string | null): Property {
  return { ...p, create: () => ({ check: (ctx) => check(ctx.k, ctx) }) };
}
