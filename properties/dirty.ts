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
  /** ranges(step) sorted, merged and clipped to nrPfns (mergeRanges), computed once per step */
  merged(step: number): number[];
  /**
   * The same pfns as ranges(step), first occurrences in the same order, with a range that starts
   * inside (or right at the end of) the previous one folded into it: for checkers that look at
   * every pfn (not at range starts) and that a run of page-by-page list operations (thousands of
   * one-pfn ranges) would otherwise slow down.
   */
  coalesced(step: number): number[];
  readonly nrPfns: number;
  /** forget everything recorded (a new run on a kernel restored from a snapshot) */
  reset(): void;
}

const TRACKERS = new WeakMap<Kernel, DirtyTracker>();

export function dirtyTracker(k: Kernel): DirtyTracker {
  let t = TRACKERS.get(k);
  // A kernel restored from a snapshot (src/kernel/snapshot.ts) loses the observers installed after
  // the snapshot was taken: install them again.
  if (!t || !Object.prototype.hasOwnProperty.call(k.mm, 'listAdd')) TRACKERS.set(k, (t = install(k)));
  return t;
}

/**
 * For a runner that restores one kernel from a snapshot for every run (src/harness/fuzz.ts):
 * install the tracker before the snapshot is taken, so that the wrapped list and allocation
 * functions are part of the snapshot. Otherwise each run adds them as fields of the memmap and the
 * kernel and each restore deletes them again, which turns both objects into slow dictionary-mode
 * objects in V8 for the rest of the process. `resetDirtyTracking` after each restore.
 */
export function prepareDirtyTracking(k: Kernel): void {
  dirtyTracker(k).reset();
}

export function resetDirtyTracking(k: Kernel): void {
  TRACKERS.get(k)?.reset();
}

function install(k: Kernel): DirtyTracker {
  const mm = k.mm;
  // Ranges pending since the last rotation, and the ones handed out for `lastStep`.
  let pending: number[] = [];
  let current: number[] = [];
  let pendingC: number[] = [];
  let currentC: number[] = [];
  let pendingOdd = false;
  let currentOdd = false;
  let pendingAlloc: number[] = [];
  let currentAlloc: number[] = [];
  let lastStep = -1;
  let merged: number[] | null = null;
  const rotate = (step: number) => {
    if (step === lastStep) return;
    lastStep = step;
    merged = null;
    current = pending;
    pending = [];
    currentC = pendingC;
    pendingC = [];
    currentOdd = pendingOdd;
    pendingOdd = false;
    currentAlloc = pendingAlloc;
    pendingAlloc = [];
  };
  const mark = (s: number, e: number) => {
    pending.push(s, e);
    // A non-empty range folded into the previous one keeps the union, hence mergeRanges' result
    // (an empty or inverted one, from a corrupt order, makes merged() use the raw ranges).
    if (e <= s) pendingOdd = true;
    const n = pendingC.length;
    if (n && e > s && s >= pendingC[n - 2] && s <= pendingC[n - 1]) {
      if (e > pendingC[n - 1]) pendingC[n - 1] = e;
    } else pendingC.push(s, e);
  };
  // Zone lists are laid out per zone: listBase..pcpBase are free lists (a page there heads a
  // buddy block of order[pfn]), the rest are pcp lists (single pages). One byte per list id.
  const isFreeList = new Uint8Array(mm.listHead.length + 1);
  for (const z of k.zones) isFreeList.fill(1, z.listBase, z.pcpBase);
  const order = mm.order;
  const blockEnd = (list: number, pfn: number) => (isFreeList[list] === 1 ? pfn + (1 << order[pfn]) : pfn + 1);
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
    reset(): void {
      pending = [];
      current = [];
      pendingC = [];
      currentC = [];
      pendingOdd = false;
      currentOdd = false;
      pendingAlloc = [];
      currentAlloc = [];
      lastStep = -1;
      merged = null;
    },
    ranges(step: number): number[] {
      rotate(step);
      return current;
    },
    allocRanges(step: number): number[] {
      rotate(step);
      return currentAlloc;
    },
    merged(step: number): number[] {
      rotate(step);
      return merged ?? (merged = mergeRanges(currentOdd ? current : currentC, k.nrPfns));
    },
    coalesced(step: number): number[] {
      rotate(step);
      return currentC;
    },
  };
}

/** Sorted, merged copy of a flat [start, end, start, end...] range list, ends clipped to `limit`. */
export function mergeRanges(r: number[], limit: number): number[] {
  if (r.length <= 2) return r.length ? [r[0], Math.min(r[1], limit)] : r;
  const n = r.length >> 1;
  let sorted = true;
  for (let i = 2; i < r.length && sorted; i += 2) sorted = r[i - 2] <= r[i];
  const out: number[] = [];
  const add = (s: number, e: number) => {
    if (out.length && s <= out[out.length - 1]) out[out.length - 1] = Math.max(out[out.length - 1], e);
    else out.push(s, e);
  };
  if (sorted) {
    for (let i = 0; i < r.length; i += 2) add(r[i], Math.min(r[i + 1], limit));
    return out;
  }
  if (n < 1 << 20 && r.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32)) {
    // Sort (start, index) pairs as start * 2^20 + index in a typed array (exact below 2^52): the
    // order of a stable sort by start.
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) keys[i] = r[2 * i] * 1048576 + i;
    keys.sort();
    for (let j = 0; j < n; j++) {
      const i = keys[j] % 1048576;
      add(r[2 * i], Math.min(r[2 * i + 1], limit));
    }
    return out;
  }
  const idx: number[] = [];
  for (let i = 0; i < r.length; i += 2) idx.push(i);
  idx.sort((a, b) => r[a] - r[b]);
  for (const i of idx) add(r[i], Math.min(r[i + 1], limit));
  return out;
}
