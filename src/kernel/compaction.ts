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
import { clearFrames, clearOnePage, freePages, freeUnrefPage, freeUnrefPages, isolateFreePage } from './page_alloc.js';
import { isolateMovablePage, migratePages, putbackMovablePages } from './migrate.js';
import {
  EBUSY, ENOMEM, KernelBug, PG_buddy, PG_head, PG_hugetlb, PG_lru, PG_movable_ops, PG_pcp, PG_pinned, PG_tail, PG_valid, type Errno,
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
  /**
   * The locals of the isolate_migratepages_block() call in progress, kept here so that its loop
   * runs as a plain function between lock drops (isolateMigratepagesChunk): pages isolated by the
   * call (nr_isolated), the 32-pfn chunk of its last lock drop, cc.migratepages' length at its start.
   */
  nrIsolated: number;
  chunk: number;
  startLen: number;
}

export function newCompactControl(zone: Zone, start: number): CompactControl {
  return { zone, migratePfn: start, migratepages: [], nrIsolated: 0, chunk: 0, startLen: 0 };
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

/** Where isolateMigratepagesChunk() stopped (cc.migratePfn is the pfn it stopped at). */
const SCAN_DONE = 0; // the loop ended: cc.migratePfn is the call's result pfn
const SCAN_DROP = 1; // the next pfn starts a new 32-pfn chunk: the LRU lock is dropped (a yield)
const SCAN_HUGETLB = 2; // a hugetlb page with the hook: isolateHugetlb, a generator

/** The result of isolate_migratepages_range() (see isolateMigratepagesRange), or the generator of its rest. */
type IsolateCall = string | number | KGen<string | number>;

/**
 * isolate_migratepages_block() over [cc.migratePfn, end) in alloc_contig mode: collects movable
 * pages (whole compound pages for THP and hugetlb) until 32 are isolated. Free buddies are
 * skipped; pinned pages are skipped (the racy "page_count > mapcount" check for anon pages), as
 * is everything unmovable: that failure surfaces in test_pages_isolated. Yields every 32 pfns.
 * This is its loop from cc.migratePfn up to the next yield, the hugetlb branch or the end: a plain
 * function (the lock drops and the hugetlb branch are isolateMigratepagesRest's).
 */
function isolateMigratepagesChunk(k: Kernel, cc: CompactControl, end: number, useHook: boolean): number {
  const mm = k.mm;
  let pfn = cc.migratePfn;
  while (pfn < end) {
    if (pfn >>> 5 !== cc.chunk) {
      cc.chunk = pfn >>> 5;
      cc.migratePfn = pfn;
      return SCAN_DROP;
    }
    // Holes and base pages nobody may migrate (the isolate_fail path, pfn + 1), up to the next
    // lock drop: a plain loop.
    pfn = skipUnmovableBasePages(mm, pfn, Math.min(end, (cc.chunk + 1) * 32));
    if (pfn >= end || pfn >>> 5 !== cc.chunk) continue;
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
      if (useHook) {
        cc.migratePfn = pfn;
        return SCAN_HUGETLB;
      }
      pfn = head + nr; // v5.10: not LRU, not movable -> isolate_fail
      continue;
    }
    if ((hf & (PG_lru | PG_movable_ops)) && !(hf & PG_pinned) && mm.refcount[head] > 0) {
      isolateMovablePage(k, head, cc.migratepages);
      cc.nrIsolated += nr;
      pfn = head + nr;
      if (cc.nrIsolated >= COMPACT_CLUSTER_MAX) break;
      continue;
    }
    pfn = f & (PG_head | PG_tail) ? head + nr : pfn + 1;
  }
  cc.migratePfn = Math.min(pfn, end);
  return SCAN_DONE;
}

/** isolate_migratepages_range()'s return value once the block loop is done. */
function isolateResult(k: Kernel, cc: CompactControl): string | number {
  return k.sw.contigErrnos ? '0' : cc.migratePfn;
}

/** isolate_migratepages_block() from where isolateMigratepagesChunk() stopped with `s`. */
function* isolateMigratepagesRest(k: Kernel, cc: CompactControl, end: number, useHook: boolean, s: number): KGen<string | number> {
  for (; s !== SCAN_DONE; s = isolateMigratepagesChunk(k, cc, end, useHook)) {
    if (s === SCAN_DROP) {
      yield 'isolate_migratepages_block';
      continue;
    }
    // SCAN_HUGETLB: the page at cc.migratePfn, looked at as the loop did (nothing ran since).
    const pfn = cc.migratePfn;
    const mm = k.mm;
    const head = mm.flags[pfn] & TAIL ? mm.next[pfn] : pfn;
    const nr = mm.flags[head] & HEAD ? 1 << mm.order[head] : 1;
    const r = yield* isolateHugetlb(k, cc, pfn);
    if (r.err !== '0') {
      const mine = cc.migratepages.splice(cc.startLen);
      yield* putbackMovablePages(k, mine);
      cc.migratePfn = pfn;
      return k.sw.contigErrnos ? r.err : pfn;
    }
    if (r.next === head + nr && cc.migratepages.length > cc.startLen) cc.nrIsolated += nr;
    cc.migratePfn = r.next;
  }
  return isolateResult(k, cc);
}

/**
 * isolate_migratepages_range(cc, start, end). v5.13+: '0' or an errno ('-ENOMEM' from the
 * hugetlb branch), resume pfn in cc.migratePfn. Before v5.13: the next pfn (0 would be a fatal
 * signal, never pending here). The block's loop runs at once up to its first yield: a call that
 * ends before it returns its result, no generator made; the others return the generator of the rest.
 */
function isolateMigratepagesRange(k: Kernel, cc: CompactControl, start: number, end: number): IsolateCall {
  cc.migratePfn = start;
  cc.nrIsolated = 0;
  cc.chunk = start >>> 5;
  cc.startLen = cc.migratepages.length;
  const useHook = k.sw.hugetlbContig !== 'none' && k.hooks.isolateOrDissolveHugePage !== undefined;
  const s = isolateMigratepagesChunk(k, cc, end, useHook);
  return s === SCAN_DONE ? isolateResult(k, cc) : isolateMigratepagesRest(k, cc, end, useHook, s);
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
 * __alloc_contig_migrate_range(cc, start, end): isolate a batch, migrate it; a batch that keeps
 * failing is retried until `++tries == 5` (-EBUSY). -ENOMEM: v5.13+ breaks at once; before, the
 * loop goes on and the 5th try returns the -ENOMEM. Leftovers are put back on error.
 * Not a generator of its own: its first isolation pass runs at once, and a range that pass
 * finishes without a yield and with nothing isolated (nothing to migrate: the common case of a
 * busy or free range) is done, '0', with no generator made; otherwise the generator of the rest.
 */
export function allocContigMigrateRange(k: Kernel, start: number, end: number): Errno | KGen<Errno> {
  const zone = k.zoneOf(start);
  if (!zone) return '-EINVAL';
  const cc = newCompactControl(zone, start);
  if (start >= end) return '0'; // the loop below does not run
  const first = isolateMigratepagesRange(k, cc, start, end);
  const done = k.sw.contigErrnos ? first === '0' : typeof first === 'number' && first !== 0;
  if (done && cc.migratepages.length === 0 && cc.migratePfn >= end) return '0';
  return migrateRangeRest(k, cc, end, first);
}

/** __alloc_contig_migrate_range()'s loop, its first isolation pass `first` begun by the caller. */
function* migrateRangeRest(k: Kernel, cc: CompactControl, end: number, first: IsolateCall): KGen<Errno> {
  const nid = cc.zone.node;
  let pfn = 0;
  let tries = 0;
  let ret: string | number = 0;
  let pass: IsolateCall | undefined = first;
  do {
    if (pass !== undefined || cc.migratepages.length === 0) {
      const call = pass ?? isolateMigratepagesRange(k, cc, pfn, end);
      pass = undefined;
      const r = typeof call === 'object' ? yield* flat(call) : call;
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
  } while (pfn < end || cc.migratepages.length > 0);
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
  for (let p = pfn; p < end;) {
    const ref = refcount[p];
    if (ref === 1 && z !== undefined && p < z.end) {
      // A run of pages with the caller's reference only, in z, up to the first one marked free
      // (PageBuddy or on a pcp list): cleared together, then freed one by one. Exact: freeing a
      // page of the run reads no field that clearing wrote of the later ones (a merge tests only
      // PageBuddy, which none of them has before or after) and writes none of them. The page
      // marked free goes the page-by-page way: freeing the run may have merged it (a PageBuddy
      // page at its order is a buddy), else clearOnePage throws there.
      let q = p + 1;
      const lim = end < z.end ? end : z.end;
      while (q < lim && refcount[q] === 1) q++;
      const run = mm.scanFlags(PG_buddy | PG_pcp, 0, p, q);
      if (run > p) {
        clearFrames(mm, p, run, 0);
        freeUnrefPages(k, z, p, run);
        p = run;
        continue;
      }
    }
    if (ref !== 1) busy++;
    if (ref > 1) {
      refcount[p] = ref - 1;
      p++;
      continue;
    }
    clearOnePage(mm, p);
    // freePages(k, p, 0)
    if (z === undefined || p >= z.end) z = k.zoneOf(p);
    if (!z) throw new KernelBug(`freeing pfn ${p} outside every zone`);
    freeUnrefPage(k, z, p);
    p++;
  }
  return busy;
}
