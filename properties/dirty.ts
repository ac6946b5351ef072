/**
 * Which pfns a step touched, so that per-step checks cost what the step touched instead of the
 * size of memory. One tracker per kernel, shared by every checker of a run.
 *
 * It observes the kernel without changing what it does: the memmap's list_add / list_del (every
 * page that enters or leaves a free or pcp list: allocation, free, split, merge, isolation, drain)
 * and the allocation registry (a caller gaining or dropping pages, migration moving an allocation).
 *
 * A free-list operation touches its block's head; the rest of the block counts as touched only
 * when its pfns changed place. A pfn whose first free-list operation in the step took it off a
 * list of some (zone, migratetype) and whose last one put it back on a list of the same (zone,
 * migratetype), not as a head, is where it was: still inside a free block of that class, with the
 * fields of a frame inside a free block, which list operations do not write. That is what expand()
 * does to the pages of a split block and __free_one_page to the pages of the buddies it merges
 * (and move_to_free_list to a block moved within its list): only the heads and the pages that
 * left or joined the free lists (or changed class: isolation, CMA) are reported, which is what the
 * checkers need and a fraction of the 2^order pfns per block. A block that only changed class is
 * reported whole (refines-model's abstraction of its pages changes), but its frames are where they
 * were: page-conservation vouches for them (vouchBare) and the step's bare scans skip them unread.
 * A kernel bug that writes a frame inside a free block without any list operation is not seen per
 * step; page-conservation's full pass at quiescence sees it.
 * Pages that change state with neither (a huge page faulted in: only its flags change) are followed
 * by the checkers themselves through watch lists (refines-model watches hugetlb heads).
 */
import type { Kernel } from '../src/kernel/machine.js';
import type { Memmap } from '../src/kernel/memmap.js';
import { MIGRATE_TYPES, PG_valid } from '../src/kernel/types.js';
import { firstNotBare, type BareScan } from './memmap-scan.js';

export interface DirtyTracker {
  /** ranges [start, end) touched during the last completed step (valid for ctx.step, until the next) */
  ranges(step: number): Int32Array;
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
  coalesced(step: number): Int32Array;
  /**
   * ranges(step) would not be empty: any list operation, allocation or drop since the ranges last
   * handed out (cheaper than ranges(): nothing is resolved or rotated)
   */
  touched(step: number): boolean;
  /**
   * firstNotBare (memmap-scan.ts) for the checks of `step`, which ask about the same free blocks
   * one after the other: stretches found bare by an earlier question of the step are not read
   * again (the checks do not change the kernel; a new step or reset() forgets them).
   */
  bareScan(step: number): BareScan;
  /**
   * For page-conservation, called before its range checks of `step` while it has found no
   * violation in the run: it checked every pfn the run touched (a pfn inside a free block bare)
   * whenever it was touched. From then on bareScan(step) takes as bare, without reading them, the
   * pfns the step reported only because the free block holding them (never as its head) changed
   * class and that nothing else touched (isolation moving a whole block): their frames were last
   * written when they were last touched, and list operations do not write a block's interior.
   */
  vouchBare(step: number): void;
  readonly nrPfns: number;
  /** forget everything recorded (a new run on a kernel restored from a snapshot) */
  reset(): void;
  /**
   * Record nothing while on: for the model checker's replays of steps whose pfns no check will
   * read (see Checker.drainsDirty).
   */
  mute(on: boolean): void;
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

export function muteDirtyTracking(k: Kernel, on: boolean): void {
  TRACKERS.get(k)?.mute(on);
}

function install(k: Kernel): DirtyTracker {
  const mm = k.mm;
  // Ranges pending since the last rotation (the first nPending values of `pending`), and the ones
  // handed out for `lastStep`; raw and coalesced. Two buffers each, swapped at every rotation:
  // a step may mark thousands of ranges (pages freed one by one), most steps none. (Every mark is
  // of int32 pfns: free-list blocks, pcp pages, allocations.)
  let pending = new Int32Array(256);
  let nPending = 0;
  let spare = new Int32Array(256);
  // The ranges handed out: the first nCurrent values of `spare` (swapped in at rotation), their
  // view taken when asked for (most steps' checkers ask for merged() alone, or nothing). Each
  // buffer's views by length are kept with it (prefixView), swapped and dropped along with it.
  let nCurrent = 0;
  let current: Int32Array | null = null;
  let pendingViews: Int32Array[] = [];
  let spareViews: Int32Array[] = [];
  let pendingC = new Int32Array(256);
  let nPendingC = 0;
  let spareC = new Int32Array(256);
  let nCurrentC = 0;
  let currentC: Int32Array | null = null;
  let pendingViewsC: Int32Array[] = [];
  let spareViewsC: Int32Array[] = [];
  let pendingOdd = false;
  let currentOdd = false;
  let pendingAlloc: number[] = [];
  let currentAlloc: number[] = [];
  // Interiors of free blocks that only changed class (resolveFreeOps' classOnly), pfn order.
  let pendingKept: number[] = [];
  let currentKept: number[] = [];
  let lastStep = -1;
  let merged: number[] | null = null;
  let muted = false;
  const rotate = (step: number) => {
    if (step === lastStep) return;
    // (the ranges marked so far come from pcp lists and allocations: the frames they may write)
    const direct = nPending;
    if (nFreeOps) {
      resolveFreeOps(freeOps, mark, nFreeOps, keep);
      nFreeOps = 0;
    }
    lastStep = step;
    merged = null;
    const full = pending;
    const fullC = pendingC;
    nCurrent = nPending;
    nCurrentC = nPendingC;
    current = currentC = null;
    pending = spare;
    pendingC = spareC;
    spare = full;
    spareC = fullC;
    const views = pendingViews;
    const viewsC = pendingViewsC;
    pendingViews = spareViews;
    pendingViewsC = spareViewsC;
    spareViews = views;
    spareViewsC = viewsC;
    nPending = 0;
    nPendingC = 0;
    currentOdd = pendingOdd;
    pendingOdd = false;
    // (a new array only after a step that made allocations: most make none)
    currentAlloc = pendingAlloc.length ? pendingAlloc : NO_RANGES;
    if (pendingAlloc.length) pendingAlloc = [];
    currentKept = pendingKept.length && !currentOdd ? subtractRanges(pendingKept, full, direct) : NO_RANGES;
    if (pendingKept.length) pendingKept = [];
  };
  // Free-list operations of the pending step, in order: [start, end, class, kind] (resolveFree).
  // (a buffer kept from step to step: a step may do thousands of them, most steps none)
  let freeOps = new Int32Array(1024);
  let nFreeOps = 0;
  const mark = (s: number, e: number) => {
    if (muted) return;
    if (nPending === pending.length) {
      pending = grown(pending);
      pendingViews = [];
    }
    pending[nPending] = s;
    pending[nPending + 1] = e;
    nPending += 2;
    // A non-empty range folded into the previous one keeps the union, hence mergeRanges' result
    // (an empty or inverted one, from a corrupt order, makes merged() use the raw ranges).
    if (e <= s) pendingOdd = true;
    const n = nPendingC;
    if (n && e > s && s >= pendingC[n - 2] && s <= pendingC[n - 1]) {
      if (e > pendingC[n - 1]) pendingC[n - 1] = e;
    } else {
      if (n === pendingC.length) {
        pendingC = grown(pendingC);
        pendingViewsC = [];
      }
      pendingC[n] = s;
      pendingC[n + 1] = e;
      nPendingC = n + 2;
    }
  };
  const keep = (s: number, e: number) => {
    if (!muted) pendingKept.push(s, e);
  };
  // Zone lists are laid out per zone: listBase..pcpBase are free lists (a page there heads a
  // buddy block of order[pfn]; listBase + order * MIGRATE_TYPES + migratetype), the rest are pcp
  // lists (single pages). Per list id: its class (zone, migratetype) + 1, 0 for a pcp list.
  const freeClass = new Int32Array(mm.listHead.length + 1);
  for (const z of k.zones) for (let l = z.listBase; l < z.pcpBase; l++) freeClass[l] = z.listBase + ((l - z.listBase) % MIGRATE_TYPES) + 1;
  const order = mm.order;
  const touch = (list: number, pfn: number, kind: number) => {
    if (muted) return;
    const c = freeClass[list];
    if (c !== 0) {
      const n = nFreeOps;
      if (n === freeOps.length) freeOps = grown(freeOps);
      const ops = freeOps;
      ops[n] = pfn;
      ops[n + 1] = pfn + (1 << order[pfn]);
      ops[n + 2] = c;
      ops[n + 3] = kind;
      nFreeOps = n + 4;
    }
    else mark(pfn, pfn + 1);
  };
  const listAdd = mm.listAdd.bind(mm);
  const listDel = mm.listDel.bind(mm);
  mm.listAdd = (list: number, pfn: number, tail: boolean) => {
    listAdd(list, pfn, tail);
    touch(list, pfn, ADD);
  };
  mm.listDel = (pfn: number) => {
    touch(mm.onList[pfn] - 1, pfn, DEL);
    return listDel(pfn);
  };
  const newAllocation = k.newAllocation.bind(k);
  const dropAllocation = k.dropAllocation.bind(k);
  k.newAllocation = (a) => {
    const r = newAllocation(a);
    if (r.nrPages > 0 && !muted) {
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
  const scanBare = bareScanner(mm);
  return {
    nrPfns: k.nrPfns,
    mute(on: boolean): void {
      muted = on;
    },
    reset(): void {
      scanBare.forget();
      nFreeOps = 0;
      nPending = 0;
      nCurrent = 0;
      current = null;
      nPendingC = 0;
      nCurrentC = 0;
      currentC = null;
      pendingOdd = false;
      currentOdd = false;
      pendingAlloc = [];
      currentAlloc = [];
      pendingKept = [];
      currentKept = NO_RANGES;
      lastStep = -1;
      merged = null;
    },
    ranges(step: number): Int32Array {
      rotate(step);
      return (current ??= prefixView(spare, spareViews, nCurrent));
    },
    allocRanges(step: number): number[] {
      rotate(step);
      return currentAlloc;
    },
    merged(step: number): number[] {
      rotate(step);
      return merged ?? (merged = currentOdd ? mergeRanges(spare, k.nrPfns, nCurrent) : mergeRanges(spareC, k.nrPfns, nCurrentC));
    },
    coalesced(step: number): Int32Array {
      rotate(step);
      return (currentC ??= prefixView(spareC, spareViewsC, nCurrentC));
    },
    bareScan(step: number): BareScan {
      if (step !== scanBare.step) {
        scanBare.forget();
        scanBare.step = step;
      }
      return scanBare.scan;
    },
    vouchBare(step: number): void {
      rotate(step);
      if (step !== scanBare.step) {
        scanBare.forget();
        scanBare.step = step;
      }
      scanBare.known = currentKept;
    },
    touched(step: number): boolean {
      // (rotate() makes the ranges of step from pending and the free-list operations, each of
      // which marks at least its head)
      return step === lastStep ? nCurrent > 0 : nPending > 0 || nFreeOps > 0;
    },
  };
}

/** Views of up to this many ranges are kept per buffer (prefixView). */
const PREFIX_VIEWS = 32;

/**
 * buf.subarray(0, n), n even, from `views` (buf's views by n / 2) when n is short: subarray()
 * makes a typed array object per call, and the ranges are asked for at most steps that touch a pfn.
 * A view shows what the buffer holds when it is read: a checker reads the ranges of its step only.
 */
function prefixView(buf: Int32Array, views: Int32Array[], n: number): Int32Array {
  const i = n >> 1;
  if (i >= PREFIX_VIEWS) return buf.subarray(0, n);
  return (views[i] ??= buf.subarray(0, n));
}

/** At most this many bare stretches are remembered per step (each question looks at them all). */
const BARE_STRETCHES = 32;

/**
 * firstNotBare remembering the stretches [a, b) it found bare since forget(), and taking those of
 * `known` (sorted, disjoint: vouchBare) as bare without reading them.
 */
function bareScanner(mm: Memmap): { step: number; known: number[]; scan: BareScan; forget: () => void } {
  const { flags, refcount, owner } = mm;
  const from: number[] = [];
  const to: number[] = [];
  // The index of `known` found last: the checks of a step ask in ascending pfn order, mostly
  // about the range found last or the next one (rangeAtOrBeforeNear tests the guess).
  let near = 0;
  const knownAt = (q: number): number => (near = rangeAtOrBeforeNear(self.known, q, near));
  /** the first pfn from q on that no remembered or known stretch holds */
  const skip = (q: number): number => {
    for (;;) {
      let r = knownEnd(self.known, q, knownAt(q));
      for (let i = 0; i < from.length; i++) {
        if (from[i] <= r && r < to[i]) {
          r = to[i];
          i = -1;
        }
      }
      if (r === q) return q;
      q = r;
    }
  };
  const scan: BareScan = (s, e) => {
    // (short questions and those whose first pfn answers them: no bookkeeping)
    if (e - s <= 16 || flags[s] !== PG_valid || refcount[s] !== 0 || owner[s] !== 0) return firstNotBare(mm, s, e);
    for (let q = skip(s); ; q = skip(q)) {
      if (q >= e) return e;
      // (read up to the next known stretch, then skip it)
      const stop = nextKnown(self.known, e, knownAt(q));
      const r = firstNotBare(mm, q, stop);
      if (r > q && from.length < BARE_STRETCHES) {
        from.push(q);
        to.push(r);
      }
      if (r < stop || stop === e) return r;
      q = r;
    }
  };
  const self = {
    step: -1,
    known: NO_RANGES,
    scan,
    forget: () => {
      // (most steps found no stretch: setting an array's length is not free)
      if (from.length) {
        from.length = 0;
        to.length = 0;
      }
      self.known = NO_RANGES;
      self.step = -1;
    },
  };
  return self;
}

/**
 * The end of the range of r (sorted, disjoint [s, e) pairs) holding q, or q when none does; i is
 * rangeAtOrBefore(r, q).
 */
function knownEnd(r: number[], q: number, i: number): number {
  return i >= 0 && q < r[i + 1] ? r[i + 1] : q;
}

/**
 * The start of the first range of r (sorted, disjoint) after q, or e if it is not below e; i is
 * rangeAtOrBefore(r, q).
 */
function nextKnown(r: number[], e: number, i: number): number {
  const j = i + 2;
  return j < r.length && r[j] < e ? r[j] : e;
}

/** rangeAtOrBefore(r, q), tried first at the index i (even) and the one after it. */
function rangeAtOrBeforeNear(r: number[], q: number, i: number): number {
  const n = r.length;
  if (i >= 0 && i < n && r[i] <= q) {
    if (i + 2 >= n || r[i + 2] > q) return i;
    if (i + 4 >= n || r[i + 4] > q) return i + 2;
  }
  return rangeAtOrBefore(r, q);
}

/** The index of the last range of r (sorted, disjoint [s, e) pairs) starting at or before q, or -2. */
function rangeAtOrBefore(r: number[], q: number): number {
  let lo = 0;
  let hi = r.length >> 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (r[2 * mid] <= q) lo = mid + 1;
    else hi = mid;
  }
  return 2 * lo - 2;
}

/**
 * The pfns of the sorted, disjoint ranges r outside the ranges marks[0, d) (in any order, each
 * non-empty): sorted and disjoint.
 */
function subtractRanges(r: number[], marks: Int32Array, d: number): number[] {
  if (d === 0) return r;
  const m = mergeRanges(marks, Infinity, d);
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < r.length; i += 2) {
    let s = r[i];
    const e = r[i + 1];
    while (j < m.length && m[j + 1] <= s) j += 2;
    for (let x = j; x < m.length && m[x] < e; x += 2) {
      if (m[x] > s) out.push(s, m[x]);
      if (m[x + 1] > s) s = m[x + 1];
    }
    if (s < e) out.push(s, e);
  }
  return out;
}

const NO_RANGES: number[] = [];

/** a copy of a (full) buffer, twice its length */
function grown(a: Int32Array): Int32Array<ArrayBuffer> {
  const b = new Int32Array(2 * a.length);
  b.set(a);
  return b;
}

const DEL = 0;
const ADD = 1;
/** Above this many free-list operations in one step, every block counts as touched whole. */
const RESOLVE_MAX_OPS = 512;

/**
 * `resolve: false` reports every free-list operation's whole block (no net-change resolution):
 * what the checkers were written against, for the test that both give the same verdicts.
 * `shortcuts: false` resolves every step by the sorted-segment walk: for the test that the
 * shortcuts for common patterns give its marks, in its order.
 */
export const FREE_OP_RESOLUTION = { resolve: true, shortcuts: true };

/**
 * Marks the pfns of the step's free-list operations ([start, end, class, kind] each, in order)
 * that changed place (see the header): every operation's head, and every pfn whose first
 * operation is not a DEL, whose last is not an ADD, or whose first and last are of different
 * classes. Elementary segments between the operations' ends and heads, the first and last
 * operation covering each; marks go out in pfn order, adjacent segments joined up to the next head.
 * `classOnly` receives (in pfn order, adjacent ones joined) those of the marked pfns that are no
 * head and were only moved to a free list of another class: first operation a DEL, last an ADD.
 */
export function resolveFreeOps(ops: ArrayLike<number>, mark: (s: number, e: number) => void, len = ops.length, classOnly: (s: number, e: number) => void = ignore): void {
  const n = len >> 2;
  let sound = n <= RESOLVE_MAX_OPS;
  for (let i = 0; i < n && sound; i++) sound = ops[4 * i + 1] > ops[4 * i];
  if (!sound || n === 1 || !FREE_OP_RESOLUTION.resolve) {
    // (a block taken off one list and put on another, or back, is one range, not two in a row:
    // a quarter of the operations of a pageblock freed page by page)
    for (let i = 0; i < n; i++) if (i === 0 || ops[4 * i] !== ops[4 * i - 4] || ops[4 * i + 1] !== ops[4 * i - 3]) mark(ops[4 * i], ops[4 * i + 1]);
    return;
  }
  if (FREE_OP_RESOLUTION.shortcuts && resolvedByShortcut(ops, n, mark, classOnly)) return;
  const m = sortedEnds(ops, n);
  const ends = endsScratch;
  if (scratch.first.length < m) scratch = { first: new Int32Array(2 * m), last: new Int32Array(2 * m), head: new Uint8Array(2 * m) };
  const { first, last, head } = scratch;
  // (one loop, not two fill() calls: m is small in most steps)
  for (let j = 0; j < m; j++) {
    first[j] = -1;
    head[j] = 0;
  }
  for (let i = 0; i < n; i++) {
    let j = endIndex(m, ops[4 * i]);
    const to = endIndex(m, ops[4 * i + 1]);
    head[j] = 1;
    for (; j < to; j++) {
      if (first[j] < 0) first[j] = i;
      last[j] = i;
    }
  }
  const state = segState(m);
  for (let j = 0; j + 1 < m; j++) state[j] = first[j] < 0 ? 0 : coveredState(ops, first[j], last[j], head[j] === 1);
  emitSegments(m, mark, classOnly);
}

/** A segment that changed place (marked). */
const MOVED = 1;
/** A marked segment, no head, whose first operation is a DEL and last an ADD (classOnly). */
const KEPT_MOVED = 2;
/** A segment starting at an operation's head. */
const HEAD = 4;

/** The state of a segment covered first by operation f and last by l (f <= l), a head or not. */
function coveredState(ops: ArrayLike<number>, f: number, l: number, isHead: boolean): number {
  const kept = !isHead && ops[4 * f + 3] === DEL && ops[4 * l + 3] === ADD;
  if (!kept) return isHead ? MOVED | HEAD : MOVED;
  return ops[4 * f + 2] !== ops[4 * l + 2] ? MOVED | KEPT_MOVED : 0;
}

/**
 * The marks (and classOnly ranges) of the m - 1 segments [endsScratch[j], endsScratch[j + 1])
 * whose states are segScratch[j], in pfn order: adjacent marked segments joined up to the next
 * head, adjacent classOnly ones joined.
 */
function emitSegments(m: number, mark: (s: number, e: number) => void, classOnly: (s: number, e: number) => void): void {
  const ends = endsScratch;
  const state = segScratch;
  let open = -1;
  let openKept = -1;
  for (let j = 0; j + 1 < m; j++) {
    const st = state[j];
    // A head starts a range of its own: checkers of free blocks read the heads as range starts.
    if (open >= 0 && (st & (MOVED | HEAD)) !== MOVED) {
      mark(open, ends[j]);
      open = -1;
    }
    if ((st & MOVED) !== 0 && open < 0) open = ends[j];
    if (openKept >= 0 && (st & KEPT_MOVED) === 0) {
      classOnly(openKept, ends[j]);
      openKept = -1;
    }
    if ((st & KEPT_MOVED) !== 0 && openKept < 0) openKept = ends[j];
  }
  if (open >= 0) mark(open, ends[m - 1]);
  if (openKept >= 0) classOnly(openKept, ends[m - 1]);
}

/** segScratch with room for m states */
function segState(m: number): Uint8Array {
  if (segScratch.length < m) segScratch = new Uint8Array(2 * m);
  return segScratch;
}

/** emitSegments' per-segment states, grown on demand and reused from step to step */
let segScratch = new Uint8Array(64);

/** Up to this many operations are tried as one block holding the others (container). */
const NESTED_MAX_OPS = 24;

/** container()'s contained operations by start (their indices), reused from step to step */
const nestedOrder = new Int32Array(NESTED_MAX_OPS);

/**
 * The index of the first or the last operation if its block holds every other one's and those
 * are disjoint, else -1: the split of a block by expand() (a DEL, then ADDs of parts of it), the
 * merge of buddies by __free_one_page (DELs, then one ADD of the whole). Sorts the contained ones
 * by start into nestedOrder.
 */
function container(ops: ArrayLike<number>, n: number): number {
  if (holdsOthers(ops, n, 0)) return 0;
  return holdsOthers(ops, n, n - 1) ? n - 1 : -1;
}

/** Operation c's block holds every other one's, which are disjoint (sorted into nestedOrder). */
function holdsOthers(ops: ArrayLike<number>, n: number, c: number): boolean {
  const s = ops[4 * c];
  const e = ops[4 * c + 1];
  const ord = nestedOrder;
  let k = 0;
  for (let i = 0; i < n; i++) {
    if (i === c) continue;
    const x = ops[4 * i];
    if (x < s || ops[4 * i + 1] > e) return false;
    // (insertion by start: expand() adds its parts in descending order, merges come in any)
    let j = k - 1;
    for (; j >= 0 && ops[4 * ord[j]] > x; j--) ord[j + 1] = ord[j];
    ord[j + 1] = i;
    k++;
  }
  for (let j = 1; j < k; j++) if (ops[4 * ord[j]] < ops[4 * ord[j - 1] + 1]) return false;
  return true;
}

/**
 * The segments of operations whose c-th holds the others (container()) into endsScratch and
 * segScratch, their number of ends: the stretches of the container no other operation covers
 * (covered by it alone: moved, a head at its start), and each contained block's head and
 * interior (covered first by whichever of it and the container came first, last by the other).
 */
function nestedSegments(ops: ArrayLike<number>, n: number, c: number): number {
  const ord = nestedOrder;
  if (endsScratch.length < 4 * n + 1) endsScratch = new Float64Array(8 * n + 2);
  const ends = endsScratch;
  const state = segState(4 * n + 1);
  let m = 0;
  let q = ops[4 * c];
  for (let j = 0; j < n - 1; j++) {
    const i = ord[j];
    const s = ops[4 * i];
    const e = ops[4 * i + 1];
    if (q < s) {
      ends[m] = q;
      state[m++] = q === ops[4 * c] ? MOVED | HEAD : MOVED;
    }
    ends[m] = s;
    state[m++] = MOVED | HEAD;
    if (e > s + 1) {
      ends[m] = s + 1;
      state[m++] = c === 0 ? coveredState(ops, 0, i, false) : coveredState(ops, i, c, false);
    }
    q = e;
  }
  if (q < ops[4 * c + 1]) {
    ends[m] = q;
    state[m++] = MOVED;
  }
  ends[m++] = ops[4 * c + 1];
  return m;
}

/**
 * resolveFreeOps for the common patterns of n (> 1, sound) operations, without sorting their
 * ends: the marks of the sorted-segment walk, in its order. Whether it was one of them.
 */
function resolvedByShortcut(ops: ArrayLike<number>, n: number, mark: (s: number, e: number) => void, classOnly: (s: number, e: number) => void): boolean {
  if (n === 2 && ops[0] === ops[4] && ops[1] === ops[5]) {
    // One block taken off a list and put back (move_to_free_list, move_freepages_block): only
    // its head changed unless it changed class.
    const moved = ops[3] === DEL && ops[7] === ADD;
    const same = moved && ops[2] === ops[6];
    mark(ops[0], same ? ops[0] + 1 : ops[1]);
    if (moved && !same && ops[1] > ops[0] + 1) classOnly(ops[0] + 1, ops[1]);
    return true;
  }
  if (movesInOrder(ops, n)) {
    // Blocks each taken off a list and put back, disjoint and in pfn order (move_freepages_block
    // over a pageblock of several free blocks): the segments are each block's head and interior,
    // so the segment walk would give what the case above gives, block after block.
    for (let i = 0; i < 4 * n; i += 8) {
      const s = ops[i];
      const e = ops[i + 1];
      const same = ops[i + 2] === ops[i + 6];
      mark(s, same ? s + 1 : e);
      if (!same && e > s + 1) classOnly(s + 1, e);
    }
    return true;
  }
  // One block split into disjoint parts, or disjoint blocks merged into one: each part's head
  // and interior, and the rest of the whole.
  const c = n <= NESTED_MAX_OPS ? container(ops, n) : -1;
  if (c >= 0) {
    emitSegments(nestedSegments(ops, n, c), mark, classOnly);
    return true;
  }
  return false;
}

function ignore(): void {}

/**
 * ops (n of them, n > 2) are pairs: a DEL of a block, then an ADD of the same block; each pair's
 * block starts at or after the end of the one before.
 */
function movesInOrder(ops: ArrayLike<number>, n: number): boolean {
  if (n & 1) return false;
  let prevEnd = -1;
  for (let i = 0; i < 4 * n; i += 8) {
    if (ops[i] < prevEnd || ops[i + 4] !== ops[i] || ops[i + 5] !== ops[i + 1] || ops[i + 3] !== DEL || ops[i + 7] !== ADD) return false;
    prevEnd = ops[i + 1];
  }
  return true;
}

/** resolveFreeOps' per-segment arrays, grown on demand and reused from step to step */
let scratch = { first: new Int32Array(64), last: new Int32Array(64), head: new Uint8Array(64) };

/**
 * The index of x, one of the m values sortedEnds put into endsScratch: its rank in the bitset
 * when they were read out of one (the number of bits set below it), else by binary search.
 */
function endIndex(m: number, x: number): number {
  if (!endsDense) return lowerBound(endsScratch, m, x);
  const q = x - endsLo;
  const w = q >> 5;
  return endsRank[w] + bitCount(endsBits[w] & ~(-1 << (q & 31)));
}

/** the number of bits set in x (an int32) */
function bitCount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** The first index of a[0, hi) (ascending) whose value is >= x, or hi. */
function lowerBound(a: Float64Array, hi: number, x: number): number {
  let lo = 0;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** sortedEnds' answer (its first m values), grown on demand and reused from step to step */
let endsScratch = new Float64Array(192);
/** sortedEnds' bitset over [lo, hi], grown on demand and reused from step to step */
let endsBits = new Int32Array(64);
/** Per word of endsBits, the number of bits set in the words before it. */
let endsRank = new Int32Array(64);
/** sortedEnds read its values out of endsBits, bit 0 standing for endsLo (endIndex) */
let endsDense = false;
let endsLo = 0;
/** Up to this many values are sorted in place by insertion (a native sort's call costs more). */
const INSERTION_SORT_MAX = 48;

/**
 * The distinct values of every operation's start, start + 1 and end, ascending, into endsScratch:
 * their number.
 */
function sortedEnds(ops: ArrayLike<number>, n: number): number {
  if (endsScratch.length < 3 * n) endsScratch = new Float64Array(6 * n);
  let lo = ops[0];
  let hi = ops[1];
  for (let i = 1; i < n; i++) {
    if (ops[4 * i] < lo) lo = ops[4 * i];
    if (ops[4 * i + 1] > hi) hi = ops[4 * i + 1];
  }
  // Many operations within a few pageblocks (a pageblock freed page by page): a bitset of the
  // span, read out in order, instead of sorting 3n values. (every end > its start: resolveFreeOps
  // checked, so start + 1 <= end <= hi)
  endsDense = n >= 8 && hi - lo < 64 * n;
  if (endsDense) return denseSortedEnds(ops, n, lo, hi);
  const a = endsScratch;
  const len = 3 * n;
  for (let i = 0; i < n; i++) {
    a[3 * i] = ops[4 * i];
    a[3 * i + 1] = ops[4 * i] + 1;
    a[3 * i + 2] = ops[4 * i + 1];
  }
  if (len <= INSERTION_SORT_MAX) insertionSort(a, len);
  else {
    // (a typed array sorts numerically, natively: no comparator calls)
    a.subarray(0, len).sort();
  }
  let m = 0;
  for (let i = 0; i < len; i++) if (m === 0 || a[i] !== a[m - 1]) a[m++] = a[i];
  return m;
}

/** a[0, len) sorted ascending in place */
function insertionSort(a: Float64Array, len: number): void {
  for (let i = 1; i < len; i++) {
    const x = a[i];
    let j = i - 1;
    for (; j >= 0 && a[j] > x; j--) a[j + 1] = a[j];
    a[j + 1] = x;
  }
}

/** mergeRanges' sort keys, grown on demand and reused from call to call */
let mergeKeys = new Float64Array(64);

/** sortedEnds by a bitset of [lo, hi]: every value is set once, and read out in ascending order. */
function denseSortedEnds(ops: ArrayLike<number>, n: number, lo: number, hi: number): number {
  const words = ((hi - lo) >> 5) + 1;
  if (endsBits.length < words) {
    endsBits = new Int32Array(2 * words);
    endsRank = new Int32Array(2 * words);
  }
  const bits = endsBits;
  const rank = endsRank;
  endsLo = lo;
  bits.fill(0, 0, words);
  for (let i = 0; i < n; i++) {
    const s = ops[4 * i] - lo;
    const e = ops[4 * i + 1] - lo;
    bits[s >> 5] |= 1 << (s & 31);
    bits[(s + 1) >> 5] |= 1 << ((s + 1) & 31);
    bits[e >> 5] |= 1 << (e & 31);
  }
  const a = endsScratch;
  let m = 0;
  for (let w = 0; w < words; w++) {
    rank[w] = m;
    for (let x = bits[w]; x !== 0; x &= x - 1) a[m++] = lo + (w << 5) + (31 - Math.clz32(x & -x));
  }
  return m;
}

/**
 * Sorted, merged copy of a flat [start, end, start, end...] range list (its first `len` values),
 * ends clipped to `limit`.
 */
export function mergeRanges(r: ArrayLike<number>, limit: number, len = r.length): number[] {
  if (len <= 2) return len ? [r[0], Math.min(r[1], limit)] : [];
  const n = len >> 1;
  let sorted = true;
  for (let i = 2; i < len && sorted; i += 2) sorted = r[i - 2] <= r[i];
  const out: number[] = [];
  if (sorted) {
    for (let i = 0; i < len; i += 2) addRange(out, r[i], Math.min(r[i + 1], limit));
    return out;
  }
  if (n < 1 << 20 && allPfns(r, len)) {
    // Sort (start, index) pairs as start * 2^20 + index in a typed array (exact below 2^52): the
    // order of a stable sort by start. (a scratch array reused from call to call; a few keys
    // sorted in place by insertion, more natively)
    if (mergeKeys.length < n) mergeKeys = new Float64Array(2 * n);
    const keys = mergeKeys;
    for (let i = 0; i < n; i++) keys[i] = r[2 * i] * 1048576 + i;
    if (n <= INSERTION_SORT_MAX) insertionSort(keys, n);
    else keys.subarray(0, n).sort();
    for (let j = 0; j < n; j++) {
      const i = keys[j] % 1048576;
      addRange(out, r[2 * i], Math.min(r[2 * i + 1], limit));
    }
    return out;
  }
  const idx: number[] = [];
  for (let i = 0; i < len; i += 2) idx.push(i);
  idx.sort((a, b) => r[a] - r[b]);
  for (const i of idx) addRange(out, r[i], Math.min(r[i + 1], limit));
  return out;
}

/** [s, e) appended to the sorted ranges `out`, merged into the last one when it starts inside it */
function addRange(out: number[], s: number, e: number): void {
  const n = out.length;
  if (n && s <= out[n - 1]) out[n - 1] = Math.max(out[n - 1], e);
  else out.push(s, e);
}

/** every value a non-negative integer below 2^32 */
function allPfns(r: ArrayLike<number>, len: number): boolean {
  for (let i = 0; i < len; i++) if (!Number.isInteger(r[i]) || r[i] < 0 || r[i] >= 2 ** 32) return false;
  return true;
}
