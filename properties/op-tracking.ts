/**
 * Which op each thread is running, for checkers that judge an op by its start and end (snapshots
 * at op start, postconditions at op end, "ran alone" for properties only sound without overlap).
 */
import type { CheckContext, Checker, OpEvent } from './property.js';
import type { Kernel } from '../src/kernel/machine.js';
import type { Op } from '../src/harness/ops/registry.js';

/**
 * bounded-progress's per-op step bound (kept here: the tracker counts the steps, and the executor
 * wakes bounded-progress only past it). cma_alloc legitimately walks every bitmap position of its
 * area (one alloc_contig_range attempt each) when the area is busy: the bound must exceed that, it
 * is there for loops with no bound.
 */
export const OP_STEP_BOUND = 100_000;

export interface RunningOp {
  op: Op;
  /** step at which it started */
  step: number;
}

export class OpTracker {
  readonly running = new Map<number, RunningOp>();
  /** the last step at which two or more ops were in flight */
  private lastShared = -1;
  /**
   * Per thread id, the steps it ran since its current op started, the op's first included (before
   * its first op: since it started). Fed on every step, replays included, so that bounded-progress
   * keeps no count of its own and need not be called below the bound.
   */
  private readonly opSteps: number[] = [];
  /** opSteps of the thread that ran the step last fed to update (the kernel's current thread) */
  currentOpSteps = 0;

  /** Feed one step's events (the ops that started in it); the step was run by ctx.k.current. */
  update(ctx: CheckContext): void {
    const started = ctx.started;
    for (let i = 0; i < started.length; i++) {
      const s = started[i];
      this.running.set(s.thread, { op: s.op, step: ctx.step });
      this.opSteps[s.thread] = 0;
    }
    const t = ctx.k.current;
    const n = (this.opSteps[t] ?? 0) + 1;
    this.opSteps[t] = n;
    this.currentOpSteps = n;
    if (this.running.size > 1) this.lastShared = ctx.step;
  }

  /** The step fed last was run by a thread past OP_STEP_BOUND steps in one op (or before its first). */
  longOp(): boolean {
    return this.currentOpSteps > OP_STEP_BOUND;
  }

  /**
   * Another thread had an op in flight at some step while this thread's op ran: some step since
   * it started saw two ops in flight, and it was one of them (it is still in flight).
   */
  overlapped(thread: number): boolean {
    const r = this.running.get(thread);
    return r !== undefined && this.lastShared >= r.step;
  }

  /** Call after handling ctx.finished. */
  retire(ctx: CheckContext): void {
    const finished = ctx.finished;
    for (let i = 0; i < finished.length; i++) this.running.delete(finished[i].thread);
  }

  /** The op of the thread that ran the step (the kernel's current thread). */
  current(k: Kernel): Op | undefined {
    return this.running.get(k.current)?.op;
  }

  anyOther(thread: number, pred: (op: Op) => boolean): boolean {
    for (const [t, r] of this.running) if (t !== thread && pred(r.op)) return true;
    return false;
  }
}

/**
 * A checker's view of the ops in flight: the run's tracker when the executor keeps one for every
 * checker (ctx.ops, fed once per step before the checks and retired after them), else the
 * checker's own (a checker driven by hand).
 */
export class OpView {
  private readonly own = new OpTracker();

  /** At the start of a check: the tracker with this step's started ops recorded. */
  begin(ctx: CheckContext): OpTracker {
    if (ctx.ops) return ctx.ops;
    this.own.update(ctx);
    return this.own;
  }

  /** At the end of a check (every path). */
  end(ctx: CheckContext): void {
    if (!ctx.ops) this.own.retire(ctx);
  }
}

/**
 * A checker that judges each op as it finishes, with the ops in flight at that step (OpView): the
 * first message wins. For the postconditions of one op (contig-postcondition, offline-completeness).
 */
export function onOpFinished(judge: (f: OpEvent, ops: OpTracker) => string | null): Checker {
  const view = new OpView();
  return {
    check(ctx) {
      const ops = view.begin(ctx);
      try {
        for (const f of ctx.finished) {
          const msg = judge(f, ops);
          if (msg) return msg;
        }
        return null;
      } finally {
        view.end(ctx);
      }
    },
  };
}

/** Ops that run alloc_contig_range (directly or through CMA / virtio-mem / offline isolation). */
export const CONTIG_OPS = new Set(['alloc_contig_range', 'alloc_contig_pages', 'cma_alloc', 'virtio_mem_unplug']);
/**
 * Ops that isolate pageblocks and must undo it. online_pages (and virtio-mem's plug, which adds
 * and onlines blocks) onlines memory with its pageblocks MIGRATE_ISOLATE until the pages are free.
 */
export const ISOLATING_OPS = new Set(['alloc_contig_range', 'alloc_contig_pages', 'cma_alloc', 'virtio_mem_unplug', 'offline_pages', 'set_nr_hugepages', 'hugetlb_mmap', 'hugetlb_fault', 'demote', 'online_pages', 'virtio_mem_plug']);
