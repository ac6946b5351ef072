/**
 * The compaction pieces contiguous allocation uses (mm/compaction.c) in alloc_contig mode:
 * isolate_migratepages_range / isolate_migratepages_block, isolate_freepages_range (strict), and
 * __alloc_contig_migrate_range (mm/page_alloc.c), which drives them with migrate_pages. It lives
 * here so that page_isolation (isolate_single_pageblock migrates straddling pages with it) and
 * contig can both call it without an import cycle.
 *
 * Profile switches:
 *  - contigErrnos (v5.13, c2ad7a1ffeaf / c8e28b47af45): isolate_migratepages_range returns 0 or an
 *    errno and stores the resume pfn in cc.migratePfn; before, it returned the next pfn (0 = fatal
 *    signal). __alloc_contig_migrate_range breaks at once on -ENOMEM from migrate_pages (v5.13);
 *    before, it retried until its 5 tries were used up and then returned -ENOMEM.
 *  - hugetlbContig: 'none' (v5.10: a hugetlb page is neither LRU nor movable, it is skipped and
 *    test_pages_isolated fails later) or a hook (k.hooks.isolateOrDissolveHugePage: v5.13
 *    isolate_or_dissolve_huge_page, or the RFC's alloc_and_dissolve_huge_page).
 * Not modelled: too_many_isolated throttling, fatal signals (never pending), the LRU lock itself
 * (a yield every 32 pfns stands for its drop in compact_unlock_should_abort).
 */
import type { Kernel } from './machine.js';
import type { Zone } from './mmzone.js';
import { flat, type KGen } from './sched.js';
import type { Memmap } from './memmap.js';
import { clearOnePage, freePages, freeUnrefPage, isolateFreePage } from './page_alloc.js';
import { isolateMovablePage, migratePages, putbackMovablePages } from './migrate.js';
import {
  EBUSY, ENOMEM, KernelBug, PG_buddy, PG_head, PG_hugetlb, PG_lru, PG_movable_ops, PG_pinned, PG_tail, PG_valid, type Errno,
} from './types.js';

// Module-local copies of the flags used per pfn (imported bindings cost a getter call under tsx).
const VALID = PG_valid;
const BUDDY = PG_buddy;
const TAIL = PG_tail;
const HEAD = PG_head;
/** A page the scanner does more with than step over: free, compound or hugetlb. */
const NOT_PLAIN = PG_buddy | PG_head | PG_tail | PG_hugetlb;
const MOVABLE_PAGE = PG_lru | PG_movable_ops;

/** COMPACT_CLUSTER_MAX: pages isolated per batch, and pfns between LRU-lock drops. */
export const COMPACT_CLUSTER_MAX = 32;

/** struct compact_control, the fields alloc_contig_range uses. */
export interface CompactControl {
  zone: Zone;
  /** resume pfn of the migrate scanner */
  migratePfn: number;
  /** cc->migratepages: head pfns of isolated pages */
  migratepages: number[];
}

export function newCompactControl(zone: Zone, start: number): CompactControl {
  return { zone, migratePfn: start, migratepages: [] };
}

/** The hugetlb branch of isolate_migratepages_block (alloc_contig mode, v5.13+ and the RFC). */
function* isolateHugetlb(k: Kernel, cc: CompactControl, pfn: number): KGen<{ err: string; next: number }> {
  const mm = k.mm;
  const head = mm.compoundHead(pfn);
  // The number of pfns to skip is read before the call: the page may be dissolved under us.
  const nr = 1 << mm.order[head];
  const ret = yield* k.hooks.isolateOrDissolveHugePage!(k, pfn, cc.migratepages);
  if (ret !== '0') {
    // -EBUSY is not reported down the chain; -ENOMEM (incl. the gigantic fence) aborts the scan.
    return { err: ret === EBUSY || !k.sw.contigErrnos ? '0' : ret, next: head + nr };
  }
  if ((mm.flags[head] & (PG_hugetlb | PG_head)) === (PG_hugetlb | PG_head)) {
    return { err: '0', next: head + nr }; // still hugetlb: isolated onto our list (isolate_success_no_list)
  }
  // Dissolved: its pages are free buddies in an isolated block; rescan from the head.
  return { err: '0', next: Math.max(head, pfn) };
}

/**
 * isolate_migratepages_block() over [cc.migratePfn, end) in alloc_contig mode: collects movable
 * pages (whole compound pages for THP and hugetlb) until 32 are isolated. Free buddies are
 * skipped; pinned pages are skipped (the racy "page_count > mapcount" check for anon pages), as
 * is everything unmovable: that failure surfaces in test_pages_isolated. Yields every 32 pfns.
 * Returns as isolate_migratepages_range() does: v5.13+ '0' or an errno with the resume pfn in
 * cc.migratePfn; before, the next pfn (the block's low_pfn).
 */
function* isolateMigratepagesBlock(k: Kernel, cc: CompactControl, end: number): KGen<string | number> {
  const mm = k.mm;
  const useHook = k.sw.hugetlbContig !== 'none' && k.hooks.isolateOrDissolveHugePage !== undefined;
  let nrIsolated = 0;
  let lastYield = cc.migratePfn >>> 5;
  const startLen = cc.migratepages.length;
  let pfn = cc.migratePfn;
  while (pfn < end) {
    if (pfn >>> 5 !== lastYield) {
      lastYield = pfn >>> 5;
      yield 'isolate_migratepages_block';
    }
    // Holes and base pages nobody may migrate (the isolate_fail path, pfn + 1), up to the next
    // lock drop: a plain loop.
    pfn = skipUnmovableBasePages(mm, pfn, Math.min(end, (lastYield + 1) * 32));
    if (pfn >= end || pfn >>> 5 !== lastYield) continue;
    const f = mm.flags[pfn];
    if (!(f & VALID)) {
      pfn++;
      continue;
    }
    if (f & BUDDY) {
      const o = mm.order[pfn];
      pfn += o <= k.maxOrder ? 1 << o : 1;
      continue;
    }
    const head = f & TAIL ? mm.next[pfn] : pfn;
    const hf = mm.flags[head];
    const nr = hf & HEAD ? 1 << mm.order[head] : 1;
    if (hf & PG_hugetlb) {
      if (!useHook) {
        pfn = head + nr; // v5.10: not LRU, not movable -> isolate_fail
        continue;
      }
      const r = yield* isolateHugetlb(k, cc, pfn);
      if (r.err !== '0') {
        const mine = cc.migratepages.splice(startLen);
        yield* putbackMovablePages(k, mine);
        cc.migratePfn = pfn;
        return k.sw.contigErrnos ? r.err : pfn;
      }
      if (r.next === head + nr && cc.migratepages.length > startLen) nrIsolated += nr;
      pfn = r.next;
      continue;
    }
    if ((hf & (PG_lru | PG_movable_ops)) && !(hf & PG_pinned) && mm.refcount[head] > 0) {
      isolateMovablePage(k, head, cc.migratepages);
      nrIsolated += nr;
      pfn = head + nr;
      if (nrIsolated >= COMPACT_CLUSTER_MAX) break;
      continue;
    }
    pfn = f & (PG_head | PG_tail) ? head + nr : pfn + 1;
  }
  cc.migratePfn = Math.min(pfn, end);
  return k.sw.contigErrnos ? '0' : cc.migratePfn;
}

/**
 * isolate_migratepages_block's steps over holes and over base pages it does not isolate (not
 * LRU/movable, pinned, or no reference) from `pfn` up to `lim`: the first pfn that is not one of
 * those, or `lim`. What the loop body does for them is `pfn++` and nothing else.
 */
function skipUnmovableBasePages(mm: Memmap, pfn: number, lim: number): number {
  const { flags, refcount } = mm;
  const n = Math.min(lim, flags.length); // pfns past the memmap are holes
  for (; pfn < n; pfn++) {
    // Valid base pages that are neither free, compound, hugetlb nor LRU/movable, two a read.
    pfn = mm.scanFlags(VALID | NOT_PLAIN | MOVABLE_PAGE, VALID, pfn, n);
    if (pfn >= n) break;
    const f = flags[pfn];
    if (!(f & VALID)) continue;
    if (f & NOT_PLAIN) return pfn;
    if (f & MOVABLE_PAGE && !(f & PG_pinned) && refcount[pfn] > 0) return pfn;
  }
  return lim;
}

/**
 * isolate_migratepages_range(cc, start, end). v5.13+: '0' or an errno ('-ENOMEM' from the
 * hugetlb branch), resume pfn in cc.migratePfn. Before v5.13: the next pfn (0 would be a fatal
 * signal, never pending here).
 */
export function isolateMigratepagesRange(k: Kernel, cc: CompactControl, start: number, end: number): KGen<string | number> {
  cc.migratePfn = start;
  // Not a generator of its own: the caller runs the block's (one delegation less per yield).
  return isolateMigratepagesBlock(k, cc, end);
}

/**
 * __alloc_contig_migrate_range(cc, start, end): isolate a batch, migrate it; a batch that keeps
 * failing is retried until `++tries == 5` (-EBUSY). -ENOMEM: v5.13+ breaks at once; before, the
 * loop goes on and the 5th try returns the -ENOMEM. Leftovers are put back on error.
 */
export function* allocContigMigrateRange(k: Kernel, start: number, end: number): KGen<Errno> {
  const zone = k.zoneOf(start);
  if (!zone) return '-EINVAL';
  const cc = newCompactControl(zone, start);
  const nid = zone.node;
  let pfn = start;
  let tries = 0;
  let ret: string | number = 0;
  while (pfn < end || cc.migratepages.length > 0) {
    if (cc.migratepages.length === 0) {
      const r = yield* flat(isolateMigratepagesRange(k, cc, pfn, end));
      if (k.sw.contigErrnos) {
        ret = r === '0' ? 0 : r;
        if (ret !== 0 && ret !== '-EAGAIN') break;
        pfn = cc.migratePfn;
      } else {
        if (r === 0) {
          ret = '-EINTR';
          break;
        }
        pfn = r as number;
      }
      tries = 0;
    } else if (++tries === 5) {
      ret = k.sw.contigErrnos ? EBUSY : typeof ret === 'string' ? ret : EBUSY;
      break;
    }
    if (cc.migratepages.length === 0) continue;
    ret = yield* migratePages(k, cc.migratepages, nid, 'MR_CONTIG_RANGE');
    yield 'migrate_pages:done';
    if (ret === ENOMEM && k.sw.contigErrnos) break;
  }
  if (typeof ret === 'string') {
    yield* putbackMovablePages(k, cc.migratepages);
    return ret as Errno;
  }
  return '0';
}

/**
 * isolate_freepages_range(cc, start, end), strict: take every free buddy from start on; the first
 * pfn that is not a free buddy head fails the whole call (what was taken is freed again) and
 * returns 0. A buddy reaching past `end` is taken whole: the result (outer_end) is the pfn after
 * the last taken buddy. zone->lock is dropped every 32 pfns. Taken pages get refcount 1 and
 * `owner` (split_map_pages: order-0 pages).
 */
export function* isolateFreepagesRange(k: Kernel, start: number, end: number, owner: number): KGen<number> {
  const mm = k.mm;
  const z = k.zoneOf(start);
  if (!z) return 0;
  const taken: number[] = [];
  let pfn = start;
  let lastYield = start >>> 5;
  while (pfn < end) {
    if (pfn >>> 5 !== lastYield) {
      lastYield = pfn >>> 5;
      yield 'isolate_freepages_block';
    }
    if (!(mm.flags[pfn] & BUDDY) || pfn >= z.end) {
      for (let i = 0; i < taken.length; i += 2) freePages(k, taken[i], taken[i + 1]);
      return 0;
    }
    const o = mm.order[pfn];
    isolateFreePage(k, z, pfn, o);
    taken.push(pfn, o);
    pfn += 1 << o;
  }
  mm.refcount.fill(1, start, pfn);
  mm.owner.fill(owner, start, pfn);
  return pfn;
}

/**
 * Give back order-0 pages of a contiguous range one by one (the free half of free_contig_range):
 * __free_page() drops the caller's reference, and a page someone else still holds a reference to
 * (refcount > 1: counted for the WARN) is left to that holder's put_page().
 */
export function freeContigPfns(k: Kernel, pfn: number, nr: number): number {
  const mm = k.mm;
  const refcount = mm.refcount;
  const end = pfn + nr;
  let busy = 0;
  // The zone of the last page freed: pfns ascend, so it is looked up again only past its end.
  let z: Zone | undefined;
  for (let p = pfn; p < end; p++) {
    const ref = refcount[p];
    if (ref !== 1) busy++;
    if (ref > 1) {
      refcount[p] = ref - 1;
      continue;
    }
    clearOnePage(mm, p);
    // freePages(k, p, 0)
    if (z === undefined || p >= z.end) z = k.zoneOf(p);
    if (!z) throw new KernelBug(`freeing pfn ${p} outside every zone`);
    freeUnrefPage(k, z, p);
  }
  return busy;
}
