/**
 * Page isolation (mm/page_isolation.c): has_unmovable_pages, set_migratetype_isolate,
 * unset_migratetype_isolate, start_isolate_page_range (with isolate_single_pageblock),
 * undo_isolate_page_range, test_pages_isolated; plus the two zone->lock helpers that live in
 * mm/page_alloc.c but exist only for isolation: split_free_page (v5.19-v6.9) and
 * move_freepages_block_isolate / find_large_buddy (v6.10+).
 *
 * Every exported plain function is one zone->lock critical section. The range functions are
 * generators that yield between pageblocks (kernel-spec §17: one Z-section per pageblock).
 *
 * Profile switches:
 *  - contigGranularity: 'max-order' (<= v5.18: the caller aligns the range to MAX_ORDER-1 blocks,
 *    pageblock-aligned input is required), 'pageblock' (v5.19: isolate_single_pageblock at both
 *    ends, splitting straddling free buddies with split_free_page and migrating straddling
 *    compound pages; v6.10 with hygiene: splitting is done under the lock by
 *    move_freepages_block_isolate, straddling non-hugetlb compound pages fail), 'pageblock-naive'
 *    (buggy: isolates exactly the pageblocks of the range with set_migratetype_isolate and nothing
 *    else; straddling buddies are moved whole or left on their old list; seed 004).
 *  - unmovableRangeOfInterest: has_unmovable_pages scans [start, end) ∩ block (v5.19, 844fbae63e1f)
 *    instead of the whole pageblock.
 *  - isolateMode: 'replace' (caller passes the type to restore) or 'bit' (mainline 2025: the
 *    preserved type is restored and the argument is ignored).
 *  - hygiene (v6.10): set/unset use move_freepages_block_isolate; counters kept by the list helpers.
 *  - isolateUndoFix (v5.16): the failure path of start_isolate_page_range un-isolates by first
 *    valid page; before, by first pfn, missing blocks that start with a hole.
 *  - isolateSingleSavedMt (v5.19 as released, buggy profile v5.19-cma-retype): the boundary
 *    blocks are isolated with their own type as the caller's migratetype (80e2b584f3ab).
 */
import type { Kernel } from './machine.js';
import type { Zone } from './mmzone.js';
import type { Memmap } from './memmap.js';
import type { KGen } from './sched.js';
import {
  delFromFreeList, freeBlock, freeOnePage, isolateFreePage, modFreepageState, moveFreepagesBlock, pageIsBuddy,
  putbackIsolatedPage,
} from './page_alloc.js';
import {
  EBUSY, KernelBug, MIGRATE_CMA, MIGRATE_ISOLATE, PG_buddy, PG_head, PG_hugetlb, PG_lru, PG_movable_ops, PG_offline,
  PG_reserved, PG_tail, PG_valid, type Errno,
} from './types.js';
import { allocContigMigrateRange } from './compaction.js';

// Module-local copies of the page flags used in per-pfn loops: imported bindings cost a getter
// call per access under the tsx loader (measured in bench/contig.bench.ts).
const VALID = PG_valid;
const BUDDY = PG_buddy;
const RESERVED = PG_reserved;
const COMPOUND = PG_head | PG_tail;
const TAIL = PG_tail;
const HUGETLB = PG_hugetlb;
const MOVABLE_PAGE = PG_lru | PG_movable_ops;
const OFFLINE = PG_offline;

/** isol_flags of start_isolate_page_range (include/linux/page-isolation.h). */
export const MEMORY_OFFLINE = 0x1;
export const REPORT_FAILURE = 0x2;

/**
 * pfn_to_online_page(pfn) != NULL: the pfn has a memmap (not a hole) and its memory block is
 * online. An offlined block keeps PG_valid | PG_offline and its pageblocks stay ISOLATE (as after
 * the kernel's offline_pages), but pfn_to_online_page() returns NULL for it, so the isolation
 * helpers below never look at it again: undo_isolate_page_range() skips it and
 * test_pages_isolated() fails. The block state is read from k.ext.hotplug (memory_hotplug.ts
 * imports this file, so no import back; no hotplug state means everything is online).
 */
export function pfnOnline(k: Kernel, pfn: number): boolean {
  if (!(k.mm.flags[pfn] & VALID)) return false;
  const hp = k.ext.hotplug as { blocks: Map<number, string> } | undefined;
  return !hp || hp.blocks.get(Math.floor(pfn / k.cfg.memoryBlockPages)) !== 'offline';
}

/**
 * pfn_to_page() arithmetic on a pfn whose memory block was offlined and removed
 * (offline_and_remove_memory -> arch_remove_memory frees the section's memmap): the first read of
 * the struct page (page_zone() at the top of set/unset_migratetype_isolate and
 * isolate_single_pageblock) faults in the kernel. Only reachable after an isolator lost its
 * blocks to the `goto done` race (contig.ts) and virtio-mem removed them under it. A block that
 * was only offlined keeps its (stale) memmap: the code runs on, as the kernel's does.
 */
function checkMemmap(k: Kernel, pfn: number, fn: string): void {
  const hp = k.ext.hotplug as { blocks: Map<number, string>; removed: Set<number> } | undefined;
  if (!hp || hp.removed.size === 0) return; // (nothing removed: no lookup per call)
  const b = Math.floor(pfn / k.cfg.memoryBlockPages);
  if (hp.removed.has(b) && hp.blocks.get(b) === 'offline') {
    throw new KernelBug(`${fn}: page_zone(pfn_to_page(${pfn})) reads the freed memmap of hot-removed memory block ${b}`);
  }
}

/**
 * __first_valid_page(pfn, nr): the first pfn of [pfn, pfn+nr) that pfn_to_online_page() accepts,
 * or -1. Before this checked the memory block state, an alloc_contig_range whose range was
 * offlined under it (after the `goto done` race, see contig.ts) un-isolated the offlined block in
 * its undo and drove nr_isolate_pageblock to -1; the kernel skips offline sections here.
 * A valid pfn of an offline memory block skips the rest of that block (same state throughout).
 */
export function firstValidPage(k: Kernel, pfn: number, nr: number): number {
  const f = k.mm.flags;
  const end = pfn + nr;
  for (let p = pfn; p < end; p++) {
    if (!(f[p] & VALID)) continue;
    if (pfnOnline(k, p)) return p;
    const mbp = k.cfg.memoryBlockPages;
    p = (Math.floor(p / mbp) + 1) * mbp - 1;
  }
  return -1;
}

/**
 * firstValidPage() for a scan that looks at many pfns inside one atomic section (no yield
 * between calls: block states cannot change): the state of the last memory block looked at is
 * kept as the pfn interval [lo, hi) and `online` (no hotplug state: everything online), so a
 * caller may test `f[pfn] & PG_valid && pfn >= lo && pfn < hi && online` inline before calling
 * first(). Same answers as firstValidPage(); make a new one after every yield
 * (test/kernel-fastpaths.test.ts compares the two).
 */
export class ValidPageScanner {
  flags: Uint16Array;
  private hp: { blocks: Map<number, string> } | undefined;
  private mbp: number;
  lo = 0;
  hi = 0;
  online = true;

  constructor(k: Kernel) {
    this.flags = k.mm.flags;
    this.hp = k.ext.hotplug as { blocks: Map<number, string> } | undefined;
    this.mbp = k.cfg.memoryBlockPages;
    if (!this.hp) this.hi = Infinity;
  }

  /** As a new scanner for k (scanFor's shared one). */
  private reset(k: Kernel): this {
    this.flags = k.mm.flags;
    this.hp = k.ext.hotplug as { blocks: Map<number, string> } | undefined;
    this.mbp = k.cfg.memoryBlockPages;
    this.lo = 0;
    this.hi = this.hp ? 0 : Infinity;
    this.online = true;
    return this;
  }

  /**
   * A scanner for a scan of k that ends before its caller returns or yields (isolate_single_pageblock's
   * boundary walk, test_pages_isolated): one object reset for each, not one made per call (three
   * per alloc_contig_range attempt). Never kept: the next scan resets it.
   */
  static scanFor(k: Kernel): ValidPageScanner {
    return SHARED ? SHARED.reset(k) : (SHARED = new ValidPageScanner(k));
  }

  /** firstValidPage(k, pfn, end - pfn) */
  first(pfn: number, end: number): number {
    const f = this.flags;
    for (let p = pfn; p < end; p++) {
      if (!(f[p] & VALID)) continue;
      if (p < this.lo || p >= this.hi) {
        const b = Math.floor(p / this.mbp);
        this.lo = b * this.mbp;
        this.hi = this.lo + this.mbp;
        this.online = this.hp!.blocks.get(b) !== 'offline';
      }
      if (this.online) return p;
      p = this.hi - 1; // the rest of an offline block is offline too
    }
    return -1;
  }
}

let SHARED: ValidPageScanner | undefined;

function pbStart(k: Kernel, pfn: number): number {
  return pfn & ~((1 << k.pageblockOrder) - 1);
}

/**
 * has_unmovable_pages(): the first pfn of [start, end) (one pageblock) that prevents isolation,
 * or -1. Racy by design in the kernel (no references held); false "movable" answers are caught
 * later by migration or test_pages_isolated. `z` is the zone of the block.
 */
export function hasUnmovablePages(k: Kernel, z: Zone, start: number, end: number, migratetype: number, flags: number): number {
  const mm = k.mm;
  // Only CMA allocations may isolate CMA blocks; everybody else sees them as unmovable.
  if (k.pb.get(start) === MIGRATE_CMA) return migratetype === MIGRATE_CMA ? -1 : start;
  if (z.isMovable()) {
    // ZONE_MOVABLE is trusted to hold only movable pages: the loop below stops only at a valid
    // PageReserved pfn there. Found with scanFlags (the next PageReserved pfn), then tested.
    const e = Math.min(end, mm.nrPfns);
    for (let pfn = mm.scanFlags(RESERVED, 0, start, e); pfn < e; pfn = mm.scanFlags(RESERVED, 0, pfn + 1, e)) {
      if (mm.flags[pfn] & VALID) return pfn;
    }
    return -1;
  }
  for (let pfn = start; pfn < end; pfn++) {
    const f = mm.flags[pfn];
    if (!(f & VALID)) continue; // pfn_valid_within() holes (pre-5.14 configs)
    if (f & RESERVED) return pfn;
    if (f & COMPOUND) {
      const head = f & TAIL ? mm.next[pfn] : pfn;
      const hf = mm.flags[head];
      // hugetlb: x86-64 supports migration of every hstate (hugepage_migration_supported);
      // other compound pages are judged by their head.
      if (!(hf & HUGETLB) && !(hf & MOVABLE_PAGE)) return pfn;
      pfn = head + (1 << mm.order[head]) - 1;
      continue;
    }
    if (mm.refcount[pfn] === 0) {
      // free: a buddy is skipped whole; a pcp page (refcount 0) counts as movable too
      if (f & BUDDY) pfn += (1 << mm.order[pfn]) - 1;
      continue;
    }
    if ((flags & MEMORY_OFFLINE) && (f & OFFLINE)) continue;
    if (f & MOVABLE_PAGE) continue;
    return pfn;
  }
  return -1;
}

/**
 * find_large_buddy() (v6.10): the head of a free buddy larger than a pageblock that covers the
 * block starting at `start`, searching backwards through aligned starts; `start` if none.
 */
export function findLargeBuddy(k: Kernel, start: number): number {
  const mm = k.mm;
  let pfn = start;
  let order = 0;
  while (!(mm.flags[pfn] & PG_buddy)) {
    // The kernel's loop goes one order up a time; the orders below pfn's lowest set bit align it
    // to itself and test the same pfn again (a pageblock start: pageblock_order of them).
    order = pfn === 0 ? k.maxOrder + 1 : Math.max(order + 1, 32 - Math.clz32(pfn & -pfn));
    if (order > k.maxOrder) return start;
    pfn &= ~((1 << order) - 1);
  }
  return pfn + (1 << mm.order[pfn]) > start ? pfn : start;
}

/**
 * move_freepages_block_isolate() (v6.10): a free buddy larger than a pageblock that straddles
 * this block is taken off its list and re-freed in pageblock pieces, each with its own block's
 * type (split_large_buddy), after the block type is set, all under zone->lock. Otherwise the
 * block's free pages move and its type is set (__move_freepages_block). false at zone edges.
 */
export function moveFreepagesBlockIsolate(k: Kernel, z: Zone, pfn: number, mt: number): boolean {
  const pbPages = 1 << k.pageblockOrder;
  const start = pbStart(k, pfn);
  if (start < z.start || start + pbPages > z.end) return false;
  if (k.pageblockOrder < k.maxOrder) {
    const head = findLargeBuddy(k, start);
    const big = head !== start || ((k.mm.flags[start] & PG_buddy) !== 0 && k.mm.order[start] > k.pageblockOrder);
    if (big) {
      const order = k.mm.order[head];
      delFromFreeList(k, z, head);
      k.pb.set(start, mt);
      freeBlock(k, z, head, order, k.pb.get(head), false); // split_large_buddy
      return true;
    }
  }
  moveFreepagesBlock(k, z, start, mt); // with nothing free to move, __move_freepages_block only re-types
  return true;
}

/**
 * set_migratetype_isolate(): one zone->lock section. `pfn` is the first valid page of the block;
 * [start, end) the caller's range of interest (used when sw.unmovableRangeOfInterest).
 * Returns '0' or -EBUSY (already isolated — the only mutual exclusion between isolators —,
 * an unmovable page, or (v6.10) a block crossing the zone edge).
 */
export function setMigratetypeIsolate(k: Kernel, pfn: number, migratetype: number, flags: number, start: number, end: number): Errno {
  checkMemmap(k, pfn, 'set_migratetype_isolate');
  const z = k.zoneOf(pfn);
  if (!z) return EBUSY;
  if (k.pb.isIsolated(pfn)) return EBUSY;
  const bEnd = pbStart(k, pfn) + (1 << k.pageblockOrder);
  const s = k.sw.unmovableRangeOfInterest ? Math.max(pfn, start) : pfn;
  const e = k.sw.unmovableRangeOfInterest ? Math.min(bEnd, end) : bEnd;
  const bad = hasUnmovablePages(k, z, s, Math.min(e, z.end), migratetype, flags);
  if (bad >= 0) {
    if (flags & REPORT_FAILURE) k.events.push(`page_isolation: unmovable page at pfn ${bad}`);
    return EBUSY;
  }
  if (k.sw.hygiene) {
    if (!moveFreepagesBlockIsolate(k, z, pfn, MIGRATE_ISOLATE)) return EBUSY;
    z.nrIsolatePageblock++;
    return '0';
  }
  // <= v6.9: a buddy larger than the block that starts here is moved whole (dragging the next
  // block's pages onto the ISOLATE list); one whose head lies in an earlier block is not moved.
  const mt = k.pb.get(pfn);
  k.pb.set(pfn, MIGRATE_ISOLATE);
  z.nrIsolatePageblock++;
  const moved = moveFreepagesBlockWalk(k, z, pfn, MIGRATE_ISOLATE);
  modFreepageState(z, -moved, mt);
  return '0';
}

/**
 * move_freepages_block() (<= v6.9), skipping the call when it would move nothing: the block lies
 * inside a free buddy whose head is in an earlier block. Same result.
 */
function moveFreepagesBlockWalk(k: Kernel, z: Zone, pfn: number, mt: number): number {
  const start = pbStart(k, pfn);
  if (start >= z.start && k.pageblockOrder < k.maxOrder && findLargeBuddy(k, start) !== start) return 0;
  return moveFreepagesBlock(k, z, pfn, mt);
}

/** The type an isolated block goes back to: the caller's (replace mode) or the preserved one (bit mode). */
function restoreType(k: Kernel, pfn: number, migratetype: number): number {
  return k.pb.preserved(pfn) ?? migratetype;
}

/**
 * unset_migratetype_isolate(): one zone->lock section; no-op unless the block is ISOLATE.
 * A free buddy of order in [pageblock_order, top order) at the block start whose buddy is not
 * isolated is taken off and put back after the type change so that it merges (an ISOLATE block
 * never merged with a non-ISOLATE one above pageblock order).
 *
 * Faithful, including a latent upstream hole (6.10..mainline, checked against 6.12.117): the
 * taken buddy may be larger than a pageblock (order in (pageblock_order, MAX_PAGE_ORDER)) and
 * cover further blocks that are still ISOLATE (__free_one_page always merges two ISOLATE blocks:
 * same type). Only this block is re-typed, then
 *     set_pageblock_migratetype(page, migratetype);
 *     __putback_isolated_page(page, order, migratetype);
 * frees the whole buddy onto the MOVABLE list, where it merges further: until the undo reaches the
 * next block, a free buddy spans a MOVABLE and an ISOLATE pageblock (no-cross-migratetype-merge;
 * e.g. tiny, offline_pages aborted by a signal after a page in the block was migrated away). Not
 * reachable when pageblock_order >= MAX_PAGE_ORDER - 1 (x86-64: 9 and 10, the `small` config);
 * reachable with tiny's 2 and 4, as with mainline's CONFIG_PAGE_BLOCK_MAX_ORDER (2025) below
 * MAX_PAGE_ORDER - 1.
 */
export function unsetMigratetypeIsolate(k: Kernel, pfn: number, migratetype: number): void {
  checkMemmap(k, pfn, 'unset_migratetype_isolate');
  const z = k.zoneOf(pfn);
  if (!z || !k.pb.isIsolated(pfn)) return;
  const mm = k.mm;
  const mt = restoreType(k, pfn, migratetype);
  let order = 0;
  let taken = false;
  if (mm.flags[pfn] & PG_buddy) {
    order = mm.order[pfn];
    // Patch unset-isolate-pageblock-buddy: only a buddy of exactly one pageblock takes the
    // shortcut; a larger one goes through move_freepages_block_isolate, which splits it per block.
    const shortcut = order === k.pageblockOrder || k.sw.unsetIsolateLargeBuddy;
    if (order >= k.pageblockOrder && order < k.maxOrder && shortcut) {
      const buddy = pfn ^ (1 << order);
      // v5.10 only checked the buddy block's type; later kernels find_buddy_page_pfn() first.
      const ok = k.sw.mergeRule === 'v5.10' ? z.contains(buddy) && (mm.flags[buddy] & PG_valid) !== 0 : pageIsBuddy(k, z, buddy, order);
      if (ok && !k.pb.isIsolated(buddy)) taken = isolateFreePage(k, z, pfn, order);
    }
  }
  if (!taken) {
    if (k.sw.hygiene) {
      if (!moveFreepagesBlockIsolate(k, z, pfn, mt)) k.events.push(`WARN: unset_migratetype_isolate at zone edge, pfn ${pfn}`);
    } else {
      const moved = moveFreepagesBlockWalk(k, z, pfn, mt);
      modFreepageState(z, moved, mt);
    }
  }
  k.pb.set(pfn, mt);
  if (taken) putbackIsolatedPage(k, z, pfn, order, mt);
  z.nrIsolatePageblock--;
}

/**
 * split_free_page() (v5.19-v6.9): re-free a free buddy as naturally aligned pieces, each typed by
 * its own pageblock, cut at `pfn + splitOffset`. -ENOENT when the buddy changed meanwhile.
 */
export function splitFreePage(k: Kernel, pfn: number, order: number, splitOffset: number): Errno {
  if (splitOffset === 0) return '0';
  const z = k.zoneOf(pfn);
  const mm = k.mm;
  if (!z || !(mm.flags[pfn] & PG_buddy) || mm.order[pfn] !== order) return '-ENOENT';
  const mt = k.pb.get(pfn);
  if (!k.sw.hygiene) modFreepageState(z, -(1 << order), mt);
  delFromFreeList(k, z, pfn);
  const end = pfn + (1 << order);
  let off = splitOffset;
  for (let p = pfn; p < end;) {
    const align = p === 0 ? order : 31 - Math.clz32(p & -p);
    const o = Math.min(align, 31 - Math.clz32(off));
    freeOnePage(k, z, p, o, k.pb.get(p), false);
    p += 1 << o;
    off -= 1 << o;
    if (off === 0) off = end - p; // first part done; now the second part
  }
  return '0';
}

/**
 * The compound page straddling the boundary, v5.19-v6.9: migrate it away with its own block
 * temporarily isolated, then point at the free buddy that now holds `pfn`. false: give up.
 */
function* migrateStraddlingCompound(k: Kernel, pfn: number, head: number, flags: number): KGen<{ ok: boolean; next: number }> {
  const mm = k.mm;
  const nr = 1 << mm.order[head];
  const hf = mm.flags[head];
  if (!(hf & (PG_hugetlb | PG_lru | PG_movable_ops))) return { ok: false, next: pfn };
  const pageMt = k.pb.get(pfn);
  const isolatePage = pageMt !== MIGRATE_ISOLATE;
  // 88ee134320b8: mark the page's block ISOLATE so nobody grabs the freed page before it is split.
  if (isolatePage && setMigratetypeIsolate(k, pfn, pageMt, flags, head, head + nr) !== '0') return { ok: false, next: pfn };
  yield 'isolate_single_pageblock:migrate';
  const migrate = allocContigMigrateRange(k, head, head + nr);
  const ret = typeof migrate === 'string' ? migrate : yield* migrate;
  if (isolatePage) unsetMigratetypeIsolate(k, pfn, pageMt);
  if (ret !== '0') return { ok: false, next: pfn };
  let outer = pfn;
  for (let order = 0; !(mm.flags[outer] & PG_buddy);) {
    if (++order > k.maxOrder) return { ok: false, next: pfn };
    outer &= ~((1 << order) - 1);
  }
  return { ok: true, next: outer };
}

/**
 * isolate_single_pageblock(): isolate the block after (`before` false) or before `boundary`, then
 * neutralise free or in-use pages that cross the boundary, scanning from the MAX_ORDER-1 aligned
 * start below it. v5.19-v6.9 split free buddies (split_free_page, its own zone->lock section) and
 * migrate straddling compound pages; v6.10 (hygiene) only verifies, because
 * move_freepages_block_isolate already split under the lock.
 */
function isolateSinglePageblock(k: Kernel, boundary: number, flags: number, before: boolean, skipIsolation: boolean, migratetype: number): Errno | KGen<Errno> {
  // Not a generator of its own: most calls end before the boundary scan's first yield (no
  // generator made for them); the rest return the generator of the scan's remainder.
  const pbPages = 1 << k.pageblockOrder;
  const block = before ? boundary - pbPages : boundary;
  checkMemmap(k, block, 'isolate_single_pageblock');
  const z = k.zoneOf(block);
  if (!z) return EBUSY;
  const start = Math.max(block & ~((1 << k.maxOrder) - 1), z.start);
  // v5.19 as released passed the block's own type (saved_mt): the CMA check then always passes.
  const saved = k.sw.isolateSingleSavedMt ? k.pb.get(block) : migratetype;
  if (skipIsolation) {
    // VM_BUG_ON(!is_migrate_isolate(mt)) (6.1/6.12; mainline: VM_BUG_ON(!get_pageblock_isolate())).
    // Reachable in the real kernel (CONFIG_DEBUG_VM), not a simulator artefact: between the two
    // isolate_single_pageblock() calls of a one-pageblock range nothing is locked, and another
    // alloc_contig_range() whose start_isolate_page_range() failed on this very block runs
    // `goto done` -> undo_isolate_page_range() over its whole range, un-isolating it (contig.ts).
    if (!k.pb.isIsolated(block)) throw new KernelBug(`isolate_single_pageblock: VM_BUG_ON(!is_migrate_isolate(mt)): block ${block} should already be isolated`);
  } else {
    const r = setMigratetypeIsolate(k, block, saved, flags, block, block + pbPages);
    if (r !== '0') return r;
  }
  // Bail out when nothing can straddle: the other side of the boundary is not online.
  // (pfn_to_online_page() through the scan's ValidPageScanner: the walk then knows that memory
  // block's state, usually the one it starts in.)
  const other = before ? boundary : boundary - 1;
  const sc = ValidPageScanner.scanFor(k);
  if (other < z.start || other >= z.end || sc.first(other, other + 1) !== other) return '0'; // !pfn_to_online_page()
  // The scan from `start` up to the boundary: most find nothing that needs a yield.
  const pfn = scanBoundaryWalk(k, sc, start, boundary);
  if (pfn < 0) return '0';
  return finishSinglePageblock(k, pfn, boundary, flags, skipIsolation, block, saved);
}

/** The end of isolate_single_pageblock() once its scan found a page crossing the boundary at `pfn`. */
function* finishSinglePageblock(k: Kernel, pfn: number, boundary: number, flags: number, skipIsolation: boolean, block: number, saved: number): KGen<Errno> {
  if (yield* scanBoundary(k, pfn, boundary, flags)) return '0';
  if (!skipIsolation) unsetMigratetypeIsolate(k, block, saved);
  return EBUSY;
}

/**
 * The rest of isolate_single_pageblock's scan up to `boundary` from `pfn`, where
 * scanBoundaryWalk() (the walk itself: a plain function, no yield in it) stopped: splitting a free
 * buddy that crosses the boundary (v5.19-v6.9) or the compound page that crosses it, then walking
 * on (with a new ValidPageScanner: block states may change across a yield).
 */
function* scanBoundary(k: Kernel, pfn: number, boundary: number, flags: number): KGen<boolean> {
  const mm = k.mm;
  do {
    const f = mm.flags[pfn];
    if (f & PG_buddy) {
      const order = mm.order[pfn];
      yield 'split_free_page';
      // the buddy changed before the split: look at the same pfn again
      if (splitFreePage(k, pfn, order, boundary - pfn) === '0') pfn += 1 << order;
    } else {
      // A compound page crossing the boundary.
      if (k.sw.hygiene) return false; // LRU/movable compound pages are not expected to exceed a pageblock
      const head = f & PG_tail ? mm.next[pfn] : pfn;
      const r = yield* migrateStraddlingCompound(k, pfn, head, flags);
      if (!r.ok) return false;
      pfn = r.next;
    }
    pfn = scanBoundaryWalk(k, ValidPageScanner.scanFor(k), pfn, boundary);
  } while (pfn >= 0);
  return true;
}

/**
 * isolate_single_pageblock's scan loop from `pfn` up to `boundary` within one atomic section:
 * pfn = __first_valid_page(pfn, boundary - pfn) (inline while pfn is valid and in the online
 * memory block the scanner looked at last: the walk over allocated pages, pfn++); free buddies
 * and compound pages that end before the boundary are skipped whole, as are hugetlb pages with
 * hygiene (v6.10), which only WARNs about a free buddy crossing the boundary. Returns the pfn of
 * a free buddy (<= v6.9) or compound page crossing the boundary, or -1 when the scan is done.
 */
function scanBoundaryWalk(k: Kernel, sc: ValidPageScanner, pfn: number, boundary: number): number {
  const mm = k.mm;
  const fl = mm.flags;
  const hyg = k.sw.hygiene;
  while (pfn < boundary) {
    const f = fl[pfn];
    if (!(f & VALID && pfn >= sc.lo && pfn < sc.hi && sc.online)) {
      pfn = sc.first(pfn, boundary);
      if (pfn < 0) return -1;
      continue; // read the flags of the valid page: it passes the inline test now
    }
    if (!(f & (BUDDY | COMPOUND))) {
      // An allocated base page: pfn++. So are the valid ones after it, up to the block's end.
      pfn = mm.scanFlags(VALID | BUDDY | COMPOUND, VALID, pfn + 1, boundary < sc.hi ? boundary : sc.hi);
      continue;
    }
    if (f & BUDDY) {
      const order = mm.order[pfn];
      if (pfn + (1 << order) > boundary) {
        if (!hyg) return pfn;
        k.events.push(`WARN: free page at ${pfn} crosses isolation boundary ${boundary}`);
      }
      pfn += 1 << order;
      continue;
    }
    // A compound page.
    const head = f & TAIL ? mm.next[pfn] : pfn;
    const nr = 1 << mm.order[head];
    if (head + nr <= boundary || (hyg && (fl[head] & HUGETLB))) {
      pfn = head + nr;
      continue;
    }
    return pfn;
  }
  return -1;
}

/**
 * start_isolate_page_range(start, end, migratetype, flags): isolate every pageblock of the range,
 * undoing its own work on failure (-EBUSY). Granularity per sw.contigGranularity (see the top).
 */
export function startIsolatePageRange(k: Kernel, start: number, end: number, migratetype: number, flags: number): KGen<Errno> {
  // Not a generator of its own: the caller runs the granularity's (one delegation less per yield).
  if (k.sw.contigGranularity === 'pageblock') return startIsolateV519(k, start, end, migratetype, flags);
  return startIsolateBlocks(k, start, end, migratetype, flags);
}

/** start_isolate_page_range before v5.19 ('max-order') and the buggy 'pageblock-naive'. */
function* startIsolateBlocks(k: Kernel, start: number, end: number, migratetype: number, flags: number): KGen<Errno> {
  const pbPages = 1 << k.pageblockOrder;
  if (k.sw.contigGranularity === 'max-order' && ((start | end) & (pbPages - 1))) {
    throw new KernelBug(`start_isolate_page_range: [${start}, ${end}) is not pageblock aligned`);
  }
  // max-order: the caller aligned the range; pageblock-naive: exactly the blocks of the range.
  const s = pbStart(k, start);
  const e = (end + pbPages - 1) & ~(pbPages - 1);
  for (let pfn = s; pfn < e; pfn += pbPages) {
    const page = firstValidPage(k, pfn, pbPages);
    if (page >= 0 && setMigratetypeIsolate(k, page, migratetype, flags, start, end) !== '0') {
      if (k.sw.isolateUndoFix) yield* undoIsolatePageRange(k, s, pfn, migratetype);
      else yield* undoByFirstPfn(k, s, pfn, migratetype);
      return EBUSY;
    }
    yield 'set_migratetype_isolate';
  }
  return '0';
}

/**
 * The failure path before v5.16: looks only at each block's first pfn (pfn_to_online_page, which
 * is NULL for a pfn_valid_within() hole), so a block isolated through a later valid page stays
 * ISOLATE for good.
 */
function* undoByFirstPfn(k: Kernel, start: number, end: number, migratetype: number): KGen<void> {
  for (let pfn = start; pfn < end; pfn += 1 << k.pageblockOrder) {
    if (!pfnOnline(k, pfn)) continue;
    unsetMigratetypeIsolate(k, pfn, migratetype);
    yield 'unset_migratetype_isolate';
  }
}

/** v5.19 start_isolate_page_range: both boundary blocks first, then the middle ones. */
function* startIsolateV519(k: Kernel, start: number, end: number, migratetype: number, flags: number): KGen<Errno> {
  const pbPages = 1 << k.pageblockOrder;
  const isoStart = pbStart(k, start);
  const isoEnd = (end + pbPages - 1) & ~(pbPages - 1);
  let r = isolateSinglePageblock(k, isoStart, flags, false, false, migratetype);
  let ret = typeof r === 'string' ? r : yield* r;
  if (ret !== '0') return ret;
  yield 'isolate_single_pageblock';
  const skip = isoStart === isoEnd - pbPages;
  r = isolateSinglePageblock(k, isoEnd, flags, true, skip, migratetype);
  ret = typeof r === 'string' ? r : yield* r;
  if (ret !== '0') {
    // unset_migratetype_isolate(pfn_to_page(isolate_start)): no pfn_to_online_page() here. If our
    // first block was stolen (`goto done` race, contig.ts) and then offlined (it stays ISOLATE),
    // this un-isolates offline memory and nr_isolate_pageblock underflows, as in the kernel
    // (stale memmap); had the block been removed, checkMemmap() reports the memmap use-after-free.
    unsetMigratetypeIsolate(k, isoStart, migratetype);
    return ret;
  }
  yield 'isolate_single_pageblock';
  for (let pfn = isoStart + pbPages; pfn < isoEnd - pbPages; pfn += pbPages) {
    const page = firstValidPage(k, pfn, pbPages);
    if (page >= 0 && setMigratetypeIsolate(k, page, migratetype, flags, start, end) !== '0') {
      yield* undoIsolatePageRange(k, isoStart, pfn, migratetype);
      unsetMigratetypeIsolate(k, isoEnd - pbPages, migratetype);
      return EBUSY;
    }
    yield 'set_migratetype_isolate';
  }
  return '0';
}

/**
 * undo_isolate_page_range(): un-isolate every ISOLATE block of the (pageblock-extended) range. It
 * has no record of who isolated what: safe only because overlapping isolation is refused.
 */
export function* undoIsolatePageRange(k: Kernel, start: number, end: number, migratetype: number): KGen<void> {
  const pbPages = 1 << k.pageblockOrder;
  const e = (end + pbPages - 1) & ~(pbPages - 1);
  for (let pfn = pbStart(k, start); (pfn = undoIsolateNext(k, pfn, e, migratetype)) >= 0;) yield 'unset_migratetype_isolate';
}

/**
 * One section of undo_isolate_page_range() from the pageblock at `pfn` up to `end` (pageblock
 * aligned): un-isolates the next ISOLATE block and returns the pfn of the block after it, or -1
 * when none is left. (A caller may run the loop of undoIsolatePageRange itself: a generator less.)
 */
export function undoIsolateNext(k: Kernel, pfn: number, end: number, migratetype: number): number {
  const pbPages = 1 << k.pageblockOrder;
  for (; pfn < end; pfn += pbPages) {
    const page = firstValidPage(k, pfn, pbPages);
    if (page < 0 || !k.pb.isIsolated(page)) continue;
    unsetMigratetypeIsolate(k, page, migratetype);
    return pfn + pbPages;
  }
  return -1;
}

/**
 * test_pages_isolated(start, end, flags): every pageblock ISOLATE (lockless check; the loop steps
 * by pageblocks from the unaligned start and asks __first_valid_page(pfn, pageblock_nr_pages), as
 * the kernel does), then under zone->lock every pfn is a
 * free buddy (or, for memory offline, an offline page with refcount 0). -EBUSY otherwise.
 */
export function testPagesIsolated(k: Kernel, start: number, end: number, flags: number): Errno {
  const pbPages = 1 << k.pageblockOrder;
  const sc = ValidPageScanner.scanFor(k); // __first_valid_page() for every window: no yield here
  for (let pfn = start; pfn < end; pfn += pbPages) {
    // The window is a whole pageblock even on the last step, past end_pfn (6.1, 6.12): a range
    // that ends in a hole still has its block's first valid page tested.
    const page = sc.first(pfn, pfn + pbPages);
    if (page >= 0 && !k.pb.isIsolated(page)) return EBUSY;
  }
  const first = sc.first(start, end);
  if (first < 0) return EBUSY;
  const mm = k.mm;
  let pfn = first;
  while (pfn < end) {
    const f = mm.flags[pfn];
    if (f & BUDDY) pfn += 1 << mm.order[pfn];
    else if ((flags & MEMORY_OFFLINE) && (f & OFFLINE) && mm.refcount[pfn] === 0) pfn = offlineRunEnd(mm, pfn + 1, end);
    else if (!(f & VALID)) pfn++; // holes inside a MAX_ORDER block (pre-5.14)
    else break;
  }
  return pfn < end ? EBUSY : '0';
}

/**
 * The pfns from `pfn` on that test_pages_isolated(MEMORY_OFFLINE) steps over one by one as
 * offline pages with refcount 0 (PageOffline, not PageBuddy): the first pfn after them, found a
 * word at a time (a fake-offline memory block is thousands of them).
 */
function offlineRunEnd(mm: Memmap, pfn: number, end: number): number {
  return mm.firstReferenced(pfn, mm.scanFlags(OFFLINE | BUDDY, OFFLINE, pfn, end));
}
