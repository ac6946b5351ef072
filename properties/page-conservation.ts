import type { Property } from './property.js';
import { dirtyTracker } from './dirty.js';
import { freeBlockHead } from '../models/abstraction.js';
import { ISOLATING_OPS, OpView, type OpTracker } from './op-tracking.js';
import { firstNotBare, firstNotBareFlags, views, zeroFrames, type BareScan, type Views } from './memmap-scan.js';

/** Ops other than the isolating ones that keep pages on private lists between sections. */
const IN_FLIGHT_OPS = new Set(['offline_pages', 'hugetlb_munmap', 'free_contig_range', 'cma_release']);
import type { Kernel } from '../src/kernel/machine.js';
import type { Zone } from '../src/kernel/mmzone.js';
import type { Memmap } from '../src/kernel/memmap.js';
import { PG_buddy, PG_hugetlb, PG_offline, PG_pcp, PG_tail, PG_valid } from '../src/kernel/types.js';

const VALID_ = PG_valid;
const BUDDY_ = PG_buddy;
const PCP_ = PG_pcp;
const TAIL_ = PG_tail;
const HUGETLB_ = PG_hugetlb;
const OFFLINE_ = PG_offline;

/**
 * Every valid pfn is in exactly one place: inside one free buddy block (on exactly one free list of
 * its own zone, naturally aligned, not crossing a hole or the zone end), on a pcp list, or held
 * (refcount, owner, compound tail, hugetlb, offline). Holes carry no state.
 */
export function checkConservation(k: Kernel): string | null {
  const { mm } = k;
  const { flags } = mm;
  const PG_valid = VALID_;
  const PG_buddy = BUDDY_;
  const PG_pcp = PCP_;
  const PG_tail = TAIL_;
  const PG_hugetlb = HUGETLB_;
  const PG_offline = OFFLINE_;
  // The frames of [zeroFrom, zeroTo) have refcount and owner zero (zeroFrames); the stretch of
  // consecutive free blocks last read ends at freeRunTo (freeRunEnd).
  let zeroFrom = 0;
  let zeroTo = 0;
  let freeRunTo = 0;
  for (const z of k.zones) {
    const end = z.end;
    for (let p = z.start; p < end;) {
      const f = flags[p];
      // A run of held pages (valid, on no list, not free, held by a reference, an owner or its
      // flags): most of memory, in one tight loop.
      const q = heldRunEnd(mm, p, end);
      if (q > p) {
        p = q;
        continue;
      }
      if (!(f & PG_valid)) {
        if (f !== 0 || mm.onList[p] !== 0) return `hole pfn ${p} carries state (flags ${f})`;
        p++;
        continue;
      }
      if (f & PG_buddy) {
        // The refcounts and owners of a stretch of consecutive free blocks, heads included, are
        // all zero unless something is wrong: two native compares for the stretch, and each
        // block's interior then needs only its flags read.
        if (p >= freeRunTo) {
          freeRunTo = freeRunEnd(mm, p, end);
          const zeroed = freeRunTo - p >= ZERO_RUN_MIN && zeroFrames(mm, p, freeRunTo);
          zeroFrom = p;
          zeroTo = zeroed ? freeRunTo : p;
        }
        const m = checkFreeBlock(k, z, p, p + 1, Infinity, undefined, zeroFrom, zeroTo);
        if (m) return m;
        p += 1 << mm.order[p];
        continue;
      }
      if (f & PG_pcp) {
        const m = checkPcpPage(k, z, p);
        if (m) return m;
        p++;
        continue;
      }
      if (mm.onList[p] !== 0) return `pfn ${p} is on a list but neither free nor pcp`;
      if (mm.refcount[p] === 0 && mm.owner[p] === 0 && !(f & (PG_tail | PG_hugetlb | PG_offline))) {
        return `pfn ${p} is lost: not free, not on a pcp list, not held`;
      }
      p++;
    }
  }
  return null;
}

/**
 * A free block head: on a free list of its zone at its order, aligned, inside the zone, its pages
 * bare (those of [from, to) when given: the ones a step touched, see checkConservationRange).
 */
function checkFreeBlock(k: Kernel, z: Zone, p: number, from = p + 1, to = Infinity, scan?: BareScan, zeroFrom = 0, zeroTo = 0): string | null {
  const mm = k.mm;
  const o = mm.order[p];
  const list = mm.onList[p] - 1;
  if (list < z.listBase || list >= z.pcpBase) return `free block at pfn ${p} (order ${o}) is not on a free list of its zone`;
  if (Math.floor((list - z.listBase) / 6) !== o) return `free block at pfn ${p} has order ${o} but sits on an order-${Math.floor((list - z.listBase) / 6)} list`;
  if (p & ((1 << o) - 1)) return `free block at pfn ${p} is not aligned to its order ${o}`;
  if (p + (1 << o) > z.end) return `free block at pfn ${p} (order ${o}) crosses the end of zone ${z.name}`;
  if (mm.refcount[p] !== 0 || mm.owner[p] !== 0) return `free block at pfn ${p} is also held (refcount ${mm.refcount[p]}, owner ${mm.owner[p]})`;
  const e = Math.min(to, p + (1 << o));
  const s = Math.max(from, p + 1);
  // (pages known to have refcount and owner zero: only their flags are left to read)
  const q = scan ? scan(s, e) : s >= zeroFrom && e <= zeroTo ? firstNotBareFlags(mm, s, e) : firstNotBare(mm, s, e);
  if (q < e) {
    return mm.flags[q] & VALID_
      ? `pfn ${q} is inside the free block at ${p} (order ${o}) but is also ${describe(k, q)}`
      : `free block at pfn ${p} (order ${o}) covers hole pfn ${q}`;
  }
  return null;
}

/** From this many pfns on, checkConservation reads the refcounts and owners of a stretch of free blocks natively. */
const ZERO_RUN_MIN = 512;

/**
 * The end of the stretch of consecutive free blocks from the head p, below end: each one starts
 * where the one before ends, with PG_buddy (the walk checkConservation makes).
 */
function freeRunEnd(mm: Memmap, p: number, end: number): number {
  const { flags, order } = mm;
  let q = p;
  while (q < end && (flags[q] & BUDDY_) !== 0) {
    const n = 1 << order[q];
    if (n <= 0 || q + n > end) break;
    q += n;
  }
  return q;
}

/** A pcp page: on a pcp list of its zone, not held. */
function checkPcpPage(k: Kernel, z: Zone, p: number): string | null {
  const mm = k.mm;
  const list = mm.onList[p] - 1;
  if (list < z.pcpBase || list >= z.pcpBase + k.cfg.cpus * 3) return `pcp page ${p} is not on a pcp list of its zone`;
  if (mm.refcount[p] !== 0 || mm.owner[p] !== 0) return `pcp page ${p} is also held`;
  return null;
}

function describe(k: Kernel, p: number): string {
  const m = k.mm;
  return `flags ${m.flags[p]}, refcount ${m.refcount[p]}, owner ${m.owner[p]}`;
}

const PLAIN_ = VALID_ | BUDDY_ | PCP_;
const HELD_ = TAIL_ | HUGETLB_ | OFFLINE_;
/**
 * The first pfn q of [p, end) that is not a held page (valid, neither PageBuddy nor pcp, on no
 * list, and held by a reference, an owner or its flags: compound tail, hugetlb, offline), or end.
 * Most of memory is such runs (allocations, reserved and offline blocks), each page like the next:
 * four pfns a test while they repeat the frame of the first one of the stretch (its flags, and its
 * refcount or owner when the flags alone do not hold it: uniformRunEnd), with no list; every other
 * pfn tested alone.
 */
export function heldRunEnd(mm: Memmap, p: number, end: number): number {
  let q = p;
  // (no view lookup for a pfn that is not held: a free block head, a pcp page, a hole)
  const v = end - q > 8 && heldAt(mm, q) ? views(mm) : null;
  if (v) {
    for (;;) {
      for (; q & 3 && q < end; q++) if (!heldAt(mm, q)) return q;
      if (q + 3 >= end || !heldAt(mm, q)) break;
      const r = uniformRunEnd(mm, v, q, end);
      if (r > q) q = r;
      // (no stretch: four pfns one by one)
      else for (const stop = q + 4; q < stop; q++) if (!heldAt(mm, q)) return q;
    }
  }
  while (q < end && heldAt(mm, q)) q++;
  return q;
}

/**
 * pfn q is a held page (see heldRunEnd; a module function, not a closure: the scans allocate
 * nothing)
 */
function heldAt(mm: Memmap, q: number): boolean {
  const f = mm.flags[q];
  return (f & PLAIN_) === VALID_ && mm.onList[q] === 0 && (mm.refcount[q] !== 0 || mm.owner[q] !== 0 || (f & HELD_) !== 0);
}

/**
 * From a held pfn q (a multiple of 4): the end of the stretch of whole quads that repeat q's frame
 * (its flags, and its refcount or owner when the flags alone do not hold it) with no list. Integer
 * words XOR-ed with q's repeated and OR-ed together: zero iff every pfn of the quad matches.
 */
function uniformRunEnd(mm: Memmap, v: Views, q: number, end: number): number {
  const { flags2, onList2, refcount2 } = v;
  const { owner } = mm;
  const f = mm.flags[q];
  const F = f | (f << 16);
  const r = mm.refcount[q];
  // (one loop per part of the frame that holds the pages: the tight loops are what this is for)
  if (f & HELD_) {
    for (; q + 3 < end; q += 4) {
      const j = q >> 1;
      if (((flags2[j] ^ F) | (flags2[j + 1] ^ F) | onList2[j] | onList2[j + 1]) !== 0) break;
    }
  } else if (r !== 0) {
    const R = (r & 0xffff) | (r << 16);
    for (; q + 3 < end; q += 4) {
      const j = q >> 1;
      if (((flags2[j] ^ F) | (flags2[j + 1] ^ F) | (refcount2[j] ^ R) | (refcount2[j + 1] ^ R) | onList2[j] | onList2[j + 1]) !== 0) break;
    }
  } else {
    const o = owner[q];
    for (; q + 3 < end; q += 4) {
      const j = q >> 1;
      if (((flags2[j] ^ F) | (flags2[j + 1] ^ F) | (owner[q] ^ o) | (owner[q + 1] ^ o) | (owner[q + 2] ^ o) | (owner[q + 3] ^ o) | onList2[j] | onList2[j + 1]) !== 0) break;
    }
  }
  return q;
}

/**
 * The same invariant restricted to one pfn (what a step touched): O(MAX_ORDER), plus the block's
 * pages when pfn is a free block head. A held pfn must not lie inside a free block; an unheld one
 * must be free, on a pcp list, or inside a free block.
 */
export function checkConservationAt(k: Kernel, p: number, inFlightOk = false, scanTo = Infinity, scanFrom = p + 1, scan?: BareScan): string | null {
  const { mm } = k;
  const f = mm.flags[p];
  const z = k.zoneOf(p);
  if (!z) return null;
  if (!(f & PG_valid)) return f !== 0 || mm.onList[p] !== 0 ? `hole pfn ${p} carries state (flags ${f})` : null;
  if (f & PG_buddy) {
    const m = checkFreeBlock(k, z, p, scanFrom, scanTo, scan);
    if (m) return m;
  } else if (f & PG_pcp) {
    const m = checkPcpPage(k, z, p);
    if (m) return m;
  } else if (mm.onList[p] !== 0) {
    return `pfn ${p} is on a list but neither free nor pcp`;
  }
  const head = freeBlockHead(k, p);
  const inFree = head >= 0 && p < head + (1 << mm.order[head]);
  if (f & (PG_buddy | PG_pcp)) {
    if (!(f & PG_buddy) && inFree) return `pcp page ${p} lies inside the free block at ${head}`;
    if ((f & PG_buddy) && head !== p) return `free block at ${p} lies inside the free block at ${head}`;
    return null;
  }
  const held = mm.refcount[p] !== 0 || mm.owner[p] !== 0 || (f & (PG_tail | PG_hugetlb | PG_offline)) !== 0;
  if (held && inFree) return `pfn ${p} is inside the free block at ${head} (order ${mm.order[head]}) but is also ${describe(k, p)}`;
  if (!held && !inFree && !inFlightOk) return `pfn ${p} is lost: not free, not on a pcp list, not held`;
  return null;
}

/**
 * checkConservationAt over [s, e), walking free blocks as units: a free block (found from any of
 * its pfns) is checked once and skipped, so a step that split a MAX_ORDER block costs one pass.
 *
 * Same verdicts and messages as calling checkConservationAt on every pfn not inside a checked
 * block, with two shortcuts for the common case (a page that is neither free nor on a list):
 *  - freeBlockHead(p) skips the candidate heads read in this pass and found not PageBuddy: every
 *    pfn of [nb, p] (the checker does not change the kernel, so what it read stays true);
 *  - the zone of the previous pfn is reused while p lies in it (zoneOf).
 * Anything unusual (a violation to report, no zone) goes through checkConservationAt itself.
 */
export function checkConservationRange(k: Kernel, s: number, e: number, inFlightOk = false, scan?: BareScan): string | null {
  const { flags, refcount, owner, order, onList } = k.mm;
  const BUDDY = BUDDY_;
  const VALID = VALID_;
  const PLAIN_MASK = VALID_ | BUDDY_ | PCP_;
  const HELD_FLAGS = TAIL_ | HUGETLB_ | OFFLINE_;
  const max = k.cfg.maxOrder;
  let zStart = 0;
  let zEnd = 0;
  // every pfn of [nb, p) was read in this pass and is not PageBuddy
  let nb = s;
  // the last pfn for which headBelow() returned -1
  let noHeadAt = -2;
  for (let p = s; p < e;) {
    const f = flags[p];
    if (f === VALID && refcount[p] === 0 && owner[p] === 0) {
      // A bare frame: it must lie inside a free block; check that block once.
      const h = p - 1 === noHeadAt ? -1 : headBelow(k.mm, max, nb, p);
      if (h < 0 || p >= h + (1 << order[h])) {
        if (inFlightOk) {
          // (taken off the lists by an op in flight) The bare frames after p are no PageBuddy
          // head, so their candidate heads are p's: none holds them either. One word-at-a-time
          // scan for the run (an isolated pageblock's 512 pages).
          const r = scan ? scan(p + 1, e) : firstNotBare(k.mm, p + 1, e);
          if (h < 0) noHeadAt = r - 1;
          p = r;
          continue;
        }
        return `pfn ${p} is lost: not free, not on a pcp list, not held`;
      }
      // (the block's head and the pages of it this range holds: the rest were not touched)
      const m = checkConservationAt(k, h, false, e, p, scan);
      if (m) return m;
      p = nb = h + (1 << order[h]);
      continue;
    }
    if ((f & PLAIN_MASK) === VALID && onList[p] === 0) {
      if (p < zStart || p >= zEnd) {
        const z = k.zoneOf(p);
        if (z) {
          zStart = z.start;
          zEnd = z.end;
        } else zStart = zEnd = 0;
      }
      if (p >= zStart && p < zEnd) {
        // headBelow(p - 1) found no head and p is not PageBuddy: every candidate head of p below p
        // is one of p - 1 (same order, same alignment), so there is none for p either. A run of
        // held pages (an allocation) costs one head search.
        const head = p - 1 === noHeadAt ? -1 : headBelow(k.mm, max, nb, p);
        if (head < 0) noHeadAt = p;
        const inFree = head >= 0 && p < head + (1 << order[head]);
        const held = refcount[p] !== 0 || owner[p] !== 0 || (f & HELD_FLAGS) !== 0;
        if (!inFree && held) {
          // The held, listless, not PageBuddy pages after p in the zone pass the same way (no
          // head, by the same induction): one tight loop for an allocation's run of pages.
          const r = heldRunEnd(k.mm, p + 1, e < zEnd ? e : zEnd);
          noHeadAt = r - 1;
          p = r;
          continue;
        }
        if (!inFree && inFlightOk) {
          p++;
          continue;
        }
      }
    }
    const m = checkConservationAt(k, p, inFlightOk, e, p + 1, scan);
    if (m) return m;
    p = nb = f & BUDDY ? p + (1 << order[p]) : p + 1;
  }
  return null;
}

/**
 * For checkConservationRange: freeBlockHead(p) without the candidate heads of [nb, p], which its
 * pass read and found not PageBuddy (a module function, not a closure: no allocation per range).
 */
function headBelow(mm: Memmap, max: number, nb: number, p: number): number {
  const { flags, order } = mm;
  for (let o = 1; o <= max; o++) {
    const h = p & ~((1 << o) - 1);
    if (h >= nb) continue;
    if ((flags[h] & BUDDY_) && order[h] >= o) return h;
  }
  return -1;
}

export { mergeRanges } from './dirty.js';

/** An op that keeps pages off every list between sections is in flight (see below). */
function opInFlight(ops: OpTracker): boolean {
  for (const x of ops.running.values()) if (ISOLATING_OPS.has(x.op.op) || IN_FLIGHT_OPS.has(x.op.op)) return true;
  return false;
}

/**
 * Per step: the pfns the step touched (properties/dirty.ts); at quiescence: the whole memmap.
 * Sound per step: page_alloc keeps a page in exactly one place at the end of every zone->lock
 * section. One exception: isolate_freepages_block takes free pages onto the caller's private list
 * (cc->freepages) with refcount 0 across zone->lock drops, and migration keeps pages on private
 * lists; the simulator holds those lists in the op's locals, so while an isolating op is in
 * flight an unheld page outside every free block is tolerated per step. At quiescence nothing may
 * be in flight.
 */
const pageConservation: Property = {
  name: 'page-conservation',
  statement: 'every valid pfn is in exactly one place: one free buddy block, a pcp list, or held; nothing both free and owned',
  kernelRef: 'mm/page_alloc.c __free_one_page, expand, del_page_from_free_list; kernel-spec §15.1',
  guards: 'double free, lost pages, free blocks crossing holes or zones, pages handed out while still on a list',
  when: 'step',
  wakes: { dirty: true, quiescent: true },
  stateless: true,
  create(k) {
    const tracker = dirtyTracker(k);
    const view = new OpView();
    // A violation found: the pfns checked since are no longer vouched for (DirtyTracker.vouchBare).
    let failed = false;
    const checkTouched = (step: number, ops: OpTracker): string | null => {
      const r = tracker.merged(step);
      // Every pfn of the run was checked here when it changed, and none failed: the interiors
      // of free blocks the step only moved to another class are bare, unread (pageblock
      // isolation moving whole blocks). This check and the later ones of the step skip them.
      if (!failed) tracker.vouchBare(step);
      const scan = tracker.bareScan(step);
      // Whether an op in flight excuses unheld pages outside every free block, asked when a range
      // fails without that excuse (-1: not asked yet). Exact: checkConservationRange with and
      // without it reads the same pfns up to the first such page, where the run without it
      // fails; so a range that passes without it passes with it, and one that fails is checked
      // again with it.
      let inFlight = -1;
      for (let i = 0; i < r.length; i += 2) {
        let m = checkConservationRange(k, r[i], r[i + 1], inFlight === 1, scan);
        if (m && inFlight < 0) {
          inFlight = opInFlight(ops) ? 1 : 0;
          if (inFlight === 1) m = checkConservationRange(k, r[i], r[i + 1], true, scan);
        }
        if (m) return (failed = true), m;
      }
      return null;
    };
    return {
      check(ctx) {
        const ops = view.begin(ctx);
        // Once per run, O(memory): also catches state changed without any list or allocation
        // change (flag-only corruption), which per-step tracking cannot see.
        const m = ctx.quiescent ? checkConservation(k) : checkTouched(ctx.step, ops);
        view.end(ctx);
        return m;
      },
    };
  },
};

export default pageConservation;
