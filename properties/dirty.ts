/**
 * Which pfns a step touched, so that per-step checks cost what the step touched instead of the
 * size of memory. One tracker per kernel, shared by every checker of a run.
 *
 * It observes the kernel without changing what it does: the memmap's list_add / list_del (every
 * page that enters or leaves a free or pcp list: allocation, free, split, merge, isolation, drain)
 * and the allocation registry (a caller gaining or dropping pages, migration moving an allocation).
 * Pages that change state with neither (a huge page faulted in: only its flags change) are followed
 * by the checkers themselves through watch lists (refines-model watches hugetlb heads).
 */
import type { Kernel } from '../src/kernel/machine.js';

export interface DirtyTracker {
  /** ranges [start, end) touched during the last completed step (valid for ctx.step) */
  ranges(step: number): number[];
  /** ranges of allocations created during the last completed step (a subset of ranges()) */
  allocRanges(step: number): number[];
  readonly nrPfns: number;
}

const TRACKERS = new WeakMap<Kernel, DirtyTracker>();

export function dirtyTracker(k: Kernel): DirtyTracker {
  let t = TRACKERS.get(k);
  // A kernel restored from a snapshot (src/kernel/snapshot.ts) loses the observers installed after
  // the snapshot was taken: install them again.
  if (!t || !Object.prototype.hasOwnProperty.call(k.mm, 'listAdd')) TRACKERS.set(k, (t = install(k)));
  return t;
}

function install(k: Kernel): DirtyTracker {
  const mm = k.mm;
  // Ranges pending since the last rotation, and the ones handed out for `lastStep`.
  let pending: number[] = [];
  let current: number[] = [];
  let pendingAlloc: number[] = [];
  let currentAlloc: number[] = [];
  let lastStep = -1;
  const rotate = (step: number) => {
    if (step === lastStep) return;
    lastStep = step;
    current = pending;
    pending = [];
    currentAlloc = pendingAlloc;
    pendingAlloc = [];
  };
  const mark = (s: number, e: number) => {
    pending.push(s, e);
  };
  const freeListLimit = new Set<number>();
  for (const z of k.zones) for (let l = z.listBase; l < z.pcpBase; l++) freeListLimit.add(l);
  const blockEnd = (list: number, pfn: number) => (freeListLimit.has(list) ? pfn + (1 << mm.order[pfn]) : pfn + 1);
  const listAdd = mm.listAdd.bind(mm);
  const listDel = mm.listDel.bind(mm);
  mm.listAdd = (list: number, pfn: number, tail: boolean) => {
    listAdd(list, pfn, tail);
    mark(pfn, blockEnd(list, pfn));
  };
  mm.listDel = (pfn: number) => {
    const list = mm.onList[pfn] - 1;
    mark(pfn, blockEnd(list, pfn));
    return listDel(pfn);
  };
  const newAllocation = k.newAllocation.bind(k);
  const dropAllocation = k.dropAllocation.bind(k);
  k.newAllocation = (a) => {
    const r = newAllocation(a);
    if (r.nrPages > 0) {
      mark(r.pfn, r.pfn + r.nrPages);
      pendingAlloc.push(r.pfn, r.pfn + r.nrPages);
    }
    return r;
  };
  k.dropAllocation = (h) => {
    const a = k.allocs.get(h);
    if (a && a.nrPages > 0) mark(a.pfn, a.pfn + a.nrPages);
    dropAllocation(h);
  };
  return {
    nrPfns: k.nrPfns,
    ranges(step: number): number[] {
      rotate(step);
      return current;
    },
    allocRanges(step: number): number[] {
      rotate(step);
      return currentAlloc;
    },
  };
}
