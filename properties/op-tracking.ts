/**
 * Which op each thread is running, for checkers that judge an op by its start and end (snapshots
 * at op start, postconditions at op end, "ran alone" for properties only sound without overlap).
 */
import type { CheckContext } from './property.js';
import type { Kernel } from '../src/kernel/machine.js';
import type { Op } from '../src/harness/ops/registry.js';

export interface RunningOp {
  op: Op;
  /** step at which it started */
  step: number;
  /** another thread had an op in flight at some point while this one ran */
  overlapped: boolean;
}

export class OpTracker {
  readonly running = new Map<number, RunningOp>();

  /** Feed one step's events; returns the ops that started in it (after recording them). */
  update(ctx: CheckContext): void {
    for (const s of ctx.started) this.running.set(s.thread, { op: s.op, step: ctx.step, overlapped: false });
    if (this.running.size > 1) for (const r of this.running.values()) r.overlapped = true;
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

/** Ops that run alloc_contig_range (directly or through CMA / virtio-mem / offline isolation). */
export const CONTIG_OPS = new Set(['alloc_contig_range', 'alloc_contig_pages', 'cma_alloc', 'virtio_mem_unplug']);
/** Ops that isolate pageblocks and must undo it. */
export const ISOLATING_OPS = new Set(['alloc_contig_range', 'alloc_contig_pages', 'cma_alloc', 'virtio_mem_unplug', 'offline_pages', 'set_nr_hugepages', 'hugetlb_mmap', 'hugetlb_fault', 'demote']);
