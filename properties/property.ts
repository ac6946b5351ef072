/**
 * What a property is: a named invariant over the simulated kernel's state, with the kernel code it
 * refers to and the bug it guards against. Properties read the kernel and never change it.
 * `when`: 'step' properties are checked after every atomic section, 'quiescence' ones once all
 * threads are done (for invariants the kernel only promises between operations).
 */
import type { Kernel } from '../src/kernel/machine.js';
import type { Op, OpResult } from '../src/harness/ops/registry.js';
import type { OpTracker } from './op-tracking.js';

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
   * per-run checker (may keep state across steps, e.g. snapshots at op start). A checker that is
   * stateless or implements checkpoint/restore may be kept by the model checker for many runs of
   * one program on the same restored kernel, created once on the freshly booted machine.
   */
  create(k: Kernel): Checker;
}

/** A stateless property from a plain check function. */
export function stateless(p: Omit<Property, 'create'>, check: (k: Kernel, ctx: CheckContext) => string | null): Property {
  return { ...p, create: () => ({ check: (ctx) => check(ctx.k, ctx) }) };
}
