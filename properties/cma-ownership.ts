import type { Property } from './property.js';
import { offlineBlock } from './freelist-counters.js';
import type { Kernel } from '../src/kernel/machine.js';
import { dirtyTracker } from './dirty.js';
import { freeBlockHead } from '../models/abstraction.js';
import { firstNotBare, firstNotByte, sameFrameEnd, type BareScan } from './memmap-scan.js';
import {
  MIGRATE_CMA, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATETYPE_NAMES, PG_buddy, PG_offline, PG_pcp, PG_tail, PG_valid,
} from '../src/kernel/types.js';

/**
 * cma-ownership: CMA pages return to CMA and only movable memory lives there.
 *  - every pageblock of a CMA area is MIGRATE_CMA at quiescence (ISOLATE only inside cma_alloc),
 *    and no pageblock outside the areas ever becomes CMA (kernel-spec §15.4);
 *  - no unmovable or long-term pinned allocation holds a page of a CMA area (ALLOC_CMA is only
 *    for movable, unpinned requests), checked per step on the pfns the step touched;
 *  - the CMA bitmap and the pages agree at quiescence: a page whose bit is set is held by
 *    someone (cma_alloc caller, hugetlb pool or a demoted piece), a free page's bit is clear
 *    (kernel-spec §15.11, §15.14: demoted pieces go back through cma_release).
 */
interface CmaAreaView {
  base: number;
  count: number;
  orderPerBit: number;
  bitmap: ArrayLike<number>;
}

/** The CMA module's bitmaps, when it is installed (k.ext.cma.areas[i].bitmap, one entry per bit). */
function cmaAreas(k: Kernel): CmaAreaView[] {
  const st = k.ext.cma as { areas?: Array<Partial<CmaAreaView> & { basePfn?: number }> } | undefined;
  const out: CmaAreaView[] = [];
  if (!st?.areas) return out;
  // (a loop, not flatMap: once per run, and flatMap's generic path costs more than the rest)
  for (let i = 0; i < st.areas.length; i++) {
    const a = st.areas[i];
    const c = k.cfg.cma[i];
    if (a.bitmap && c) out.push({ base: a.base ?? a.basePfn ?? c.basePfn, count: a.count ?? c.count, orderPerBit: a.orderPerBit ?? c.orderPerBit, bitmap: a.bitmap });
  }
  return out;
}

function inCma(k: Kernel, p: number): boolean {
  const areas = k.cfg.cma;
  for (let i = 0; i < areas.length; i++) if (p >= areas[i].basePfn && p < areas[i].basePfn + areas[i].count) return true;
  return false;
}

function isFree(k: Kernel, p: number): boolean {
  const f = k.mm.flags[p];
  if (f & (PG_buddy | PG_pcp)) return true;
  if (k.mm.refcount[p] !== 0 || k.mm.owner[p] !== 0) return false;
  const h = freeBlockHead(k, p);
  return h >= 0 && p < h + (1 << k.mm.order[h]);
}

/** pfn p is held by an owner and neither free nor on a pcp list (isFree is false for it). */
function heldByOwner(k: Kernel, p: number): boolean {
  return k.mm.owner[p] !== 0 && (k.mm.flags[p] & (PG_buddy | PG_pcp)) === 0;
}

export function checkCmaAt(k: Kernel, p: number): string | null {
  const h = k.mm.compoundHead(p);
  const al = k.mm.owner[h] ? k.allocs.get(k.mm.owner[h]) : undefined;
  if (!al || al.kind !== 'pages') return null;
  if (al.migratetype !== MIGRATE_MOVABLE || al.pinned) {
    return `pfn ${p} of the CMA area is held by '${al.id}', a ${al.pinned ? 'pinned' : MIGRATETYPE_NAMES[al.migratetype]} allocation: CMA may only serve movable, unpinned requests`;
  }
  return null;
}

/**
 * checkCmaAt over [s, e) (pfns of a CMA area). It depends only on the owner of p's compound head:
 * no owner passes, and an owner that passed once (`passed.owner`, kept across the calls of one
 * check) passes again (the kernel does not change while it is checked). A bare frame, free or
 * taken, has no owner and is no tail: `scan` (firstNotBare) skips a run of them.
 */
function checkCmaHolders(k: Kernel, s: number, e: number, scan: BareScan, passed: { owner: number }): string | null {
  const { flags, next, owner, refcount } = k.mm;
  for (let p = s; p < e; p++) {
    // (the scan only from a bare frame: a held one answers itself, and most are held by one owner)
    if (flags[p] === PG_valid && refcount[p] === 0 && owner[p] === 0) {
      p = scan(p, e);
      if (p >= e) break;
    }
    const tail = (flags[p] & PG_tail) !== 0;
    const o = owner[tail ? next[p] : p];
    if (o !== 0 && o !== passed.owner) {
      const m = checkCmaAt(k, p);
      if (m) return m;
      passed.owner = o;
    }
    // The pages after p with p's very flags and owner (not tails: their own owner is the one
    // judged) pass as p did: an allocation's run of pages, four a read (memmap-scan.ts sameFrameEnd). So do
    // the tails after a tail p with p's head: its owner is the one judged for each of them.
    p = (tail ? tailRunEnd(k.mm, p, e) : sameFrameEnd(k.mm, p, e)) - 1;
  }
  return null;
}

/** The first pfn after the tail p below end that is not a tail of p's compound head (end if none). */
function tailRunEnd(mm: Kernel['mm'], p: number, end: number): number {
  const { flags, next } = mm;
  const h = next[p];
  let q = p + 1;
  while (q < end && (flags[q] & PG_tail) !== 0 && next[q] === h) q++;
  return q;
}

export function checkCmaQuiescent(k: Kernel): string | null {
  const pbPages = 1 << k.pageblockOrder;
  for (let p = 0; p < k.nrPfns; p += pbPages) {
    if (!(k.mm.flags[p] & PG_valid)) continue;
    const mt = k.pb.get(p);
    const cma = inCma(k, p);
    const wrong = cma ? mt !== MIGRATE_CMA : mt === MIGRATE_CMA || (mt === MIGRATE_ISOLATE && k.pb.preserved(p) === MIGRATE_CMA);
    // (an offline block is not judged: asked only of a block that would fail, a map lookup)
    if (!wrong || offlineBlock(k, p)) continue;
    if (cma) return `pageblock at pfn ${p} of a CMA area is ${MIGRATETYPE_NAMES[mt]}, not CMA`;
    return `pageblock at pfn ${p} outside every CMA area is CMA`;
  }
  const scan: BareScan = (s, e) => firstNotBare(k.mm, s, e);
  const passed = { owner: 0 };
  for (const a of k.cfg.cma) {
    passed.owner = 0;
    const m = checkCmaHolders(k, a.basePfn, a.basePfn + a.count, scan, passed);
    if (m) return m;
  }
  // A bit covers 2^order_per_bit pages; cma_alloc rounds up to whole bits (the granularity of
  // §10.3), so a set bit may cover free pages next to the allocated ones. A set bit none of whose
  // pages is held has leaked: nobody will ever cma_release it.
  for (const a of cmaAreas(k)) {
    const per = 1 << a.orderPerBit;
    const bits = Math.ceil(a.count / per);
    for (let bit = 0; bit < bits; bit++) {
      if (a.bitmap[bit] === 0) {
        // (a stretch of clear bits of a byte-per-bit bitmap four a read: most of an idle area)
        if (a.bitmap instanceof Uint8Array) bit = firstNotByte(a.bitmap, bit, Math.min(bits, a.bitmap.length), 0) - 1;
        continue;
      }
      const s = a.base + bit * per;
      const e = Math.min(s + per, a.base + a.count);
      if (per === 1 && heldByOwner(k, s)) {
        // (a bit a page: the pages after s with its flags and owner are held as s is, so their
        // bits pass, set or clear: an allocation's run, four pages a read)
        bit = sameFrameEnd(k.mm, s, a.base + Math.min(bits, a.count)) - a.base - 1;
        continue;
      }
      let held = false;
      for (let p = s; p < e && !held; p++) held = !isFree(k, p);
      if (!held) return `CMA bitmap bit ${bit} [${s}, ${e}) is set but all its pages are free in buddy: they leaked out of CMA (freed without cma_release)`;
    }
  }
  return null;
}

const cmaOwnership: Property = {
  name: 'cma-ownership',
  statement: 'CMA pageblocks stay CMA, CMA pages only serve movable unpinned requests, and the CMA bitmap agrees with the pages (demoted or released pieces return to CMA)',
  kernelRef: 'mm/cma.c cma_alloc / cma_release / cma_pages_valid, mm/hugetlb.c demote_free_huge_page (HPageCma / cma_pages_valid, v5.16); kernel-spec §15.4, §15.11, §15.14',
  guards: 'demoted pieces of a CMA gigantic page freed to buddy (bitmap bits leak forever), unmovable allocations served from CMA, CMA pageblocks re-typed',
  when: 'step',
  wakes: { dirty: true, quiescent: true },
  stateless: true,
  create(k) {
    const tracker = dirtyTracker(k);
    const hasCma = k.cfg.cma.length > 0;
    return {
      check(ctx) {
        if (!hasCma) return null;
        if (ctx.quiescent) return checkCmaQuiescent(k);
        // Same pfns in the same first-visit order as tracker.ranges(), fewer ranges.
        const r = tracker.coalesced(ctx.step);
        const scan = tracker.bareScan(ctx.step);
        const areas = k.cfg.cma;
        const passed = { owner: 0 };
        for (let i = 0; i < r.length; i += 2) {
          for (const a of areas) {
            const m = checkCmaHolders(k, Math.max(r[i], a.basePfn), Math.min(r[i + 1], a.basePfn + a.count), scan, passed);
            if (m) return m;
          }
        }
        return null;
      },
    };
  },
};

export default cmaOwnership;
