/**
 * Which op each thread is running, for checkers that judge an op by its start and end (snapshots
 * at op start, postconditions at op end, "ran alone" for properties only sound without overlap).
 */
import type { CheckContext, Checker, OpEvent } from './property.js';
import type { Kernel } from '../src/kernel/machine.js';
import type { Op } from '../src/harness/ops/registry.js';

export interface RunningOp {
  op: Op;
  /** step at which it started */
  step: number;
}

export class OpTracker {
  readonly running = new Map<number, RunningOp>();
  /** the last step at which two or more ops were in flight */
  private lastShared = -1;

  /** Feed one step's events (the ops that started in it). */
  update(ctx: CheckContext): void {
    for (const s of ctx.started) this.running.set(s.thread, { op: s.op, step: ctx.step });
    if (this.running.size > 1) this.lastShared = ctx.step;
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
    for (const f of ctx.finished) this.running.delete(f.thread);
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
