/**
 * The buddy allocator (mm/page_alloc.c): __free_one_page, expand, __rmqueue_smallest,
 * __rmqueue_fallback / steal_suitable_fallback (<= v6.9) and try_to_steal_block (v6.10+),
 * move_freepages_block, the per-cpu lists (free_unref_page, rmqueue_bulk, free_pcppages_bulk,
 * drain_all_pages), __isolate_free_page / __putback_isolated_page, and boot
 * (memmap_init + memblock_free_all + cma_activate_area's pageblock typing).
 *
 * Every exported function here is one zone->lock (or pcp lock) critical section: a plain
 * function, atomic by construction. Generators live in the callers.
 *
 * Profile switches: mergeRule, hygiene (counter accounting in the list helpers, split of large
 * frees per pageblock, re-typing on merge), fallback, pcpBulkFree (which pcp list gives how many
 * pages), pcpFreeFactor (nr_pcp_free's doubling, v5.14-v6.6).
 * Not modelled: watermarks and the highatomic reserve, high-order pcp lists (pcp is order-0 as in
 * v5.10), the v6.7+ pcp->high auto-tuning and free_count (v6.10 and mainline free pcp->batch pages
 * at a time), page shuffling, compaction capture, the v6.15 claim/steal split of __rmqueue.
 */
import type { Kernel } from './machine.js';
import type { Zone } from './mmzone.js';
import { NIL, type Memmap } from './memmap.js';
import {
  MIGRATE_CMA, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_PCPTYPES, MIGRATE_RECLAIMABLE,
  MIGRATE_TYPES, MIGRATE_UNMOVABLE, PG_buddy, PG_head, PG_lru, PG_movable_ops, PG_pcp, PG_reserved, PG_tail, PG_valid,
  isMergeable, KernelBug,
} from './types.js';

/** __mod_zone_freepage_state(): ISOLATE pages are not free as far as watermarks are concerned. */
export function modFreepageState(z: Zone, nr: number, mt: number): void {
  if (mt === MIGRATE_ISOLATE) return;
  z.freePages += nr;
  if (mt === MIGRATE_CMA) z.freeCma += nr;
}

/** The migratetype of the free list a buddy head is on. */
export function listMigratetype(k: Kernel, pfn: number): number {
  return (k.mm.onList[pfn] - 1) % MIGRATE_TYPES;
}

/** __add_to_free_list / add_to_free_list_tail (v6.10 accounts here: account_freepages). */
export function addToFreeList(k: Kernel, z: Zone, pfn: number, order: number, mt: number, tail: boolean): void {
  const mm = k.mm;
  mm.setBuddy(pfn);
  mm.order[pfn] = order;
  mm.listAdd(z.freeList(order, mt), pfn, tail);
  z.nrFree[order]++;
  if (k.sw.hygiene) modFreepageState(z, 1 << order, mt);
}

/** del_page_from_free_list */
export function delFromFreeList(k: Kernel, z: Zone, pfn: number): void {
  const mm = k.mm;
  const order = mm.order[pfn];
  const list = mm.listDel(pfn);
  mm.clearBuddy(pfn);
  z.nrFree[order]--;
  if (k.sw.hygiene) modFreepageState(z, -(1 << order), (list - z.listBase) % MIGRATE_TYPES);
}

/** move_to_free_list: the same block onto another migratetype's list. */
export function moveToFreeList(k: Kernel, z: Zone, pfn: number, order: number, mt: number): void {
  delFromFreeList(k, z, pfn);
  addToFreeList(k, z, pfn, order, mt, true);
}

/** page_is_buddy(): valid, same zone, PageBuddy at exactly this order. */
export function pageIsBuddy(k: Kernel, z: Zone, pfn: number, order: number): boolean {
  if (pfn < z.start || pfn >= z.end) return false;
  const f = k.mm.flags[pfn];
  return (f & (PG_valid | PG_buddy)) === (PG_valid | PG_buddy) && k.mm.order[pfn] === order;
}

/** Re-type every pageblock a block of 2^order pages at pfn covers (change_pageblock_range). */
export function changePageblockRange(k: Kernel, pfn: number, order: number, mt: number): void {
  const pbo = k.pageblockOrder;
  const n = order > pbo ? 1 << (order - pbo) : 1;
  for (let i = 0; i < n; i++) k.pb.set(pfn + (i << pbo), mt);
}

/**
 * __free_one_page(): merge with free buddies up to the top order. The rule at and above
 * pageblock_order is the profile's mergeRule (see kernel-spec §4.2).
 */
export function freeOnePage(k: Kernel, z: Zone, pfn: number, order: number, mt: number, toTail: boolean): void {
  const maxOrder = k.maxOrder;
  const pbo = k.pageblockOrder;
  const rule = k.sw.mergeRule;
  const hygiene = k.sw.hygiene;
  // pageIsBuddy() and the list helpers inline, on the arrays, zone span and switches read once:
  // the list calls in between (observed by the checkers' dirty tracker) re-create none of them.
  const mm = k.mm;
  const { flags, order: orders, buddies, blockOrder } = mm;
  const nrFree = z.nrFree;
  const zStart = z.start;
  const zEnd = z.end;
  if (!hygiene) modFreepageState(z, 1 << order, mt);
  while (order < maxOrder) {
    const buddy = pfn ^ (1 << order);
    if (buddy < zStart || buddy >= zEnd || (flags[buddy] & VALID_BUDDY) !== VALID_BUDDY || orders[buddy] !== order) break;
    if (order >= pbo) {
      const bmt = k.pb.get(buddy);
      if (rule === 'v5.10') {
        // v5.10: only ISOLATE is fenced, and only while the zone has isolated pageblocks.
        if (z.nrIsolatePageblock > 0 && bmt !== mt && (bmt === MIGRATE_ISOLATE || mt === MIGRATE_ISOLATE)) break;
      } else if (bmt !== mt && (!isMergeable(mt) || !isMergeable(bmt))) break; // 1dd214b8f21c (v5.18)
      if (rule === 'v6.10' && bmt !== mt) {
        // "fix up block types when merging compatible blocks": keep list type == block type.
        delFromFreeList(k, z, buddy);
        changePageblockRange(k, buddy, order, mt);
        pfn &= ~(1 << order);
        order++;
        continue;
      }
    }
    // delFromFreeList(k, z, buddy): its order is `order`
    const list = mm.listDel(buddy);
    flags[buddy] &= ~PG_buddy; // mm.clearBuddy(buddy): the flag is set (tested above)
    buddies[buddy >>> blockOrder]--;
    nrFree[order]--;
    if (hygiene) modFreepageState(z, -(1 << order), (list - z.listBase) % MIGRATE_TYPES);
    pfn &= ~(1 << order);
    order++;
  }
  // buddy_merge_likely(): if the next-higher buddy is free, put this block at the tail.
  let tail = toTail;
  if (!tail && order < maxOrder - 1) {
    const hb = (pfn & ~((2 << order) - 1)) ^ (2 << order);
    // pageIsBuddy(hb, order[hb]) with order[hb] >= order + 1
    if (hb >= zStart && hb < zEnd && (flags[hb] & VALID_BUDDY) === VALID_BUDDY && orders[hb] > order) tail = true;
  }
  // addToFreeList(k, z, pfn, order, mt, tail)
  mm.setBuddy(pfn);
  orders[pfn] = order;
  mm.listAdd(z.freeList(order, mt), pfn, tail);
  nrFree[order]++;
  if (hygiene) modFreepageState(z, 1 << order, mt);
}

const VALID_BUDDY = PG_valid | PG_buddy;

/**
 * Free a block under zone->lock (free_one_page). v6.10+ splits a block larger than a pageblock
 * and frees each piece with its own pageblock's type (split_large_buddy).
 */
export function freeBlock(k: Kernel, z: Zone, pfn: number, order: number, mt: number, toTail: boolean): void {
  const pbo = k.pageblockOrder;
  if (k.sw.hygiene && order > pbo) {
    const end = pfn + (1 << order);
    for (let p = pfn; p < end; p += 1 << pbo) freeOnePage(k, z, p, pbo, k.pb.get(p), toTail);
    return;
  }
  freeOnePage(k, z, pfn, order, mt, toTail);
}

/** expand(): split a block of order `high`, returning the upper halves to list `mt`. */
export function expand(k: Kernel, z: Zone, pfn: number, low: number, high: number, mt: number): void {
  let size = 1 << high;
  while (high > low) {
    high--;
    size >>= 1;
    addToFreeList(k, z, pfn + size, high, mt, false);
  }
}

/** __rmqueue_smallest(): first block of at least `order` on list `mt`; -1 if none. */
export function rmqueueSmallest(k: Kernel, z: Zone, order: number, mt: number): number {
  const mm = k.mm;
  for (let cur = order; cur <= k.maxOrder; cur++) {
    const pfn = mm.listHead[z.freeList(cur, mt)];
    if (pfn === NIL) continue;
    delFromFreeList(k, z, pfn);
    expand(k, z, pfn, order, cur, mt);
    k.lastRmqueueMt = mt;
    return pfn;
  }
  return -1;
}

const FALLBACKS: number[][] = [
  [MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE], // UNMOVABLE
  [MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE], // MOVABLE
  [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE], // RECLAIMABLE
];

/** can_steal_fallback() */
function canStealFallback(k: Kernel, order: number, startMt: number): boolean {
  if (order >= k.pageblockOrder) return true;
  return order >= k.pageblockOrder / 2 || startMt === MIGRATE_RECLAIMABLE || startMt === MIGRATE_UNMOVABLE;
}

/** find_suitable_fallback(): a fallback type with a free block of this order, or -1. */
function findSuitableFallback(k: Kernel, z: Zone, order: number, startMt: number): number {
  const fallbacks = FALLBACKS[startMt];
  for (let i = 0; i < fallbacks.length; i++) if (k.mm.listHead[z.freeList(order, fallbacks[i])] !== NIL) return fallbacks[i];
  return -1;
}

/** Free and movable page counts of the pageblock holding pfn (the counting half of move_freepages_block). */
function countBlock(k: Kernel, start: number, end: number): { free: number; movable: number } {
  const mm = k.mm;
  let free = 0;
  let movable = 0;
  for (let p = start; p < end;) {
    const f = mm.flags[p];
    if (f & PG_buddy) {
      free += 1 << mm.order[p];
      p += 1 << mm.order[p];
      continue;
    }
    const hf = f & PG_tail ? mm.flags[mm.next[p]] : f;
    if (hf & (PG_lru | PG_movable_ops)) movable++;
    p++;
  }
  return { free, movable };
}

/**
 * move_freepages_block(): move the free blocks of pfn's pageblock to `mt` lists.
 * v5.10 (hygiene off): a block starting before the zone is cut to start at pfn (a real bug), a
 * block ending past the zone moves nothing; the pageblock type and counters are left alone; a buddy
 * larger than the block is moved whole. v6.10: refuses blocks not fully in the zone, re-types the
 * block and accounts (in the list helpers). Returns the number of free pages moved, -1 if refused.
 * The walk goes from buddy head to buddy head (scanFlags finds the next PageBuddy pfn): what the
 * pfn++ loop over the other pages would have done is nothing.
 */
export function moveFreepagesBlock(k: Kernel, z: Zone, pfn: number, mt: number): number {
  const pbPages = 1 << k.pageblockOrder;
  let start = pfn & ~(pbPages - 1);
  const end = start + pbPages;
  if (k.sw.hygiene) {
    if (start < z.start || end > z.end) return -1;
  } else {
    if (start < z.start) start = pfn;
    if (end > z.end) return 0;
  }
  const mm = k.mm;
  let moved = 0;
  // A block whose `buddies` count is 0 has no PageBuddy pfn: the walk would find nothing.
  const none = mm.buddies[start >>> mm.blockOrder] === 0;
  for (let p = none ? end : mm.scanFlags(PG_buddy, 0, start, end); p < end; p = mm.scanFlags(PG_buddy, 0, p, end)) {
    if (!(mm.flags[p] & PG_valid)) {
      p++;
      continue;
    }
    const o = mm.order[p];
    moveToFreeList(k, z, p, o, mt);
    moved += 1 << o;
    p += 1 << o;
  }
  if (k.sw.hygiene) k.pb.set(start, mt);
  return moved;
}

/** steal_suitable_fallback() (<= v6.9). */
function stealSuitableFallback(k: Kernel, z: Zone, pfn: number, cur: number, startMt: number, wholeBlock: boolean): void {
  const oldMt = k.pb.get(pfn);
  const pbo = k.pageblockOrder;
  if (oldMt !== MIGRATE_HIGHATOMIC) {
    if (cur >= pbo) {
      changePageblockRange(k, pfn, cur, startMt);
    } else if (wholeBlock) {
      const start = pfn & ~((1 << pbo) - 1);
      const { movable } = countBlock(k, start, start + (1 << pbo));
      const free = moveFreepagesBlock(k, z, pfn, startMt);
      let alike = 0;
      if (startMt === MIGRATE_MOVABLE) alike = movable;
      else if (oldMt === MIGRATE_MOVABLE) alike = (1 << pbo) - free - movable;
      if (free > 0) {
        if (free + alike >= 1 << (pbo - 1)) k.pb.set(pfn, startMt);
        return; // the found page was moved with its block
      }
    }
  }
  moveToFreeList(k, z, pfn, cur, startMt);
}

/**
 * __rmqueue_fallback(): search the largest blocks of fallback types first; a movable request that
 * may not steal a whole block takes the smallest suitable one instead.
 * v5.10: steal (possibly stranding pages), then let __rmqueue_smallest retry. v6.10: claim the
 * block transactionally (try_to_steal_block) or take just the requested chunk.
 * Returns the pfn for v6.10 (allocated), 0 for v5.10 "stolen, retry", -1 for nothing.
 */
function rmqueueFallback(k: Kernel, z: Zone, order: number, startMt: number): number {
  const mm = k.mm;
  let cur = k.maxOrder;
  let fmt = -1;
  let canSteal = false;
  for (; cur >= order; cur--) {
    fmt = findSuitableFallback(k, z, cur, startMt);
    if (fmt < 0) continue;
    canSteal = canStealFallback(k, cur, startMt);
    if (!canSteal && startMt === MIGRATE_MOVABLE) {
      // find_smallest
      for (cur = order; cur <= k.maxOrder; cur++) {
        fmt = findSuitableFallback(k, z, cur, startMt);
        if (fmt >= 0) break;
      }
    }
    break;
  }
  if (fmt < 0 || cur > k.maxOrder) return -1;
  const pfn = mm.listHead[z.freeList(cur, fmt)];
  if (k.sw.fallback === 'v5.10') {
    stealSuitableFallback(k, z, pfn, cur, startMt, canSteal);
    return 0;
  }
  return tryToStealBlock(k, z, pfn, cur, order, startMt, fmt, canSteal);
}

/** v6.10 try_to_steal_block(), falling back to taking just the chunk (page_del_and_expand). */
function tryToStealBlock(k: Kernel, z: Zone, pfn: number, cur: number, order: number, startMt: number, fmt: number, whole: boolean): number {
  const pbo = k.pageblockOrder;
  const blockMt = k.pb.get(pfn);
  if (blockMt !== MIGRATE_HIGHATOMIC) {
    if (cur >= pbo) {
      delFromFreeList(k, z, pfn);
      changePageblockRange(k, pfn, cur, startMt);
      expand(k, z, pfn, order, cur, startMt);
      k.lastRmqueueMt = startMt;
      return pfn;
    }
    const start = pfn & ~((1 << pbo) - 1);
    if (whole && start >= z.start && start + (1 << pbo) <= z.end) {
      const { free, movable } = countBlock(k, start, start + (1 << pbo));
      let alike = 0;
      if (startMt === MIGRATE_MOVABLE) alike = movable;
      else if (blockMt === MIGRATE_MOVABLE) alike = (1 << pbo) - free - movable;
      if (free + alike >= 1 << (pbo - 1)) {
        moveFreepagesBlock(k, z, start, startMt);
        return rmqueueSmallest(k, z, order, startMt);
      }
    }
  }
  delFromFreeList(k, z, pfn);
  expand(k, z, pfn, order, cur, fmt);
  k.lastRmqueueMt = fmt;
  return pfn;
}

/**
 * __rmqueue(): CMA balancing first (movable requests may use CMA when more than half of the free
 * pages are CMA), then the requested type, then CMA, then fallback. -1 if the zone has nothing.
 */
export function rmqueue(k: Kernel, z: Zone, order: number, mt: number, allowCma: boolean): number {
  let pfn: number;
  if (allowCma && z.freeCma > z.freePages / 2) {
    pfn = rmqueueSmallest(k, z, order, MIGRATE_CMA);
    if (pfn >= 0) return pfn;
  }
  for (;;) {
    pfn = rmqueueSmallest(k, z, order, mt);
    if (pfn >= 0) return pfn;
    if (allowCma) {
      pfn = rmqueueSmallest(k, z, order, MIGRATE_CMA);
      if (pfn >= 0) return pfn;
    }
    if (mt >= MIGRATE_PCPTYPES) return -1;
    const r = rmqueueFallback(k, z, order, mt);
    if (r !== 0) return r;
  }
}

/** rmqueue() for order > 0 (buddy, zone->lock): also the pre-6.10 call-site accounting. */
export function rmqueueBuddy(k: Kernel, z: Zone, order: number, mt: number, allowCma: boolean): number {
  const pfn = rmqueue(k, z, order, mt, allowCma);
  if (pfn >= 0 && !k.sw.hygiene) modFreepageState(z, -(1 << order), k.lastRmqueueMt);
  return pfn;
}

/** rmqueue_pcplist(): pop from this cpu's list, refilling a batch from buddy (rmqueue_bulk) if empty. */
export function rmqueuePcplist(k: Kernel, z: Zone, cpu: number, mt: number, allowCma: boolean): number {
  const mm = k.mm;
  const list = z.pcpList(cpu, mt);
  // "On allocation, reduce the number of pages that are batch freed." (v5.14-v6.6)
  if (k.sw.pcpFreeFactor) z.pcpFreeFactor[cpu] >>= 1;
  if (mm.listHead[list] === NIL) {
    const batch = k.cfg.pcpBatch;
    for (let i = 0; i < batch; i++) {
      const p = rmqueue(k, z, 0, mt, allowCma);
      if (p < 0) break;
      const cached = k.lastRmqueueMt;
      if (!k.sw.hygiene) modFreepageState(z, -1, cached);
      mm.flags[p] |= PG_pcp;
      mm.order[p] = cached; // set_pcppage_migratetype(): page->index holds it in the kernel
      mm.listAdd(list, p, true);
      z.pcpCount[cpu]++;
    }
  }
  const pfn = mm.listHead[list];
  if (pfn === NIL) return -1;
  mm.listDel(pfn);
  mm.flags[pfn] &= ~PG_pcp;
  mm.order[pfn] = 0;
  z.pcpCount[cpu]--;
  return pfn;
}

/**
 * nr_pcp_free() (6.1 mm/page_alloc.c:3422-3449, order-0 frees): pcp->batch pages, from v5.14
 * "doubled each time there is subsequent freeing of pages without any allocation", leaving at
 * least pcp->batch pages on the lists (CONFIG_PCP_BATCH_SCALE_MAX 5 caps the factor in 6.1.y).
 */
function nrPcpFree(k: Kernel, z: Zone, cpu: number): number {
  const batch = k.cfg.pcpBatch;
  const high = k.cfg.pcpHigh;
  if (!k.sw.pcpFreeFactor) return batch;
  if (high < batch) return 1;
  const max = high - batch;
  const scaled = batch << z.pcpFreeFactor[cpu];
  if (scaled < max && z.pcpFreeFactor[cpu] < PCP_BATCH_SCALE_MAX) z.pcpFreeFactor[cpu]++;
  return Math.min(Math.max(scaled, batch), max);
}

const PCP_BATCH_SCALE_MAX = 5;

/** NR_PCP_LISTS of v5.14-v5.17 on x86-64: MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1 + NR_PCP_THP). */
const NR_PCP_LISTS_V514 = MIGRATE_PCPTYPES * (3 + 1 + 1);

/**
 * free_pcppages_bulk(): return `count` pages of this cpu's lists to buddy, one zone->lock hold,
 * each taken from the tail of its list (the coldest). `pindex` is the list of the page whose free
 * triggered it (0 for a drain). Which list gives how many pages is the version's
 * (Switches.pcpBulkFree). Only order-0 pcp lists are modelled: the high-order lists are empty.
 */
export function freePcppagesBulk(k: Kernel, z: Zone, cpu: number, count: number, pindex = 0, frees?: AscendingFrees, run = NO_RUN): void {
  const mm = k.mm;
  const lists = z.pcpList(cpu, 0); // this cpu's lists: lists + migratetype (= pindex of order 0)
  count = Math.min(count, z.pcpCount[cpu]);
  // A pcp->count the lists do not hold: the kernel would spin forever ("Ensure proper count is
  // passed which otherwise would stuck in the below while (list_empty(list)) loop"); the list
  // searches below report it instead, once every list is empty.
  const was = z.pcpCount[cpu];
  if (k.sw.pcpBulkFree === 'v5.18') {
    // 6.1 mm/page_alloc.c:1574-1640: from the requested list on, round robin, each list drained
    // whole. (min/max_pindex narrow the window past empty end lists: the same cyclic order.)
    // (a list holds the pages of `run` after its own: PcpRun, freeUnrefPages)
    let p = pindex - 1;
    while (count > 0) {
      let looked = 0;
      do {
        if (++p === MIGRATE_PCPTYPES) p = 0;
        if (++looked > MIGRATE_PCPTYPES) throw pcpStuck(z, cpu, was);
      } while (!run.holds(mm, lists + p));
      const list = lists + p;
      do count -= mm.listTail[list] !== NIL ? freePcpTail(k, z, cpu, list, frees) : freeRunOldest(k, z, cpu, run, frees!);
      while (count > 0 && run.holds(mm, list));
    }
    return;
  }
  // <= v5.17: round robin from the list after 0 (MOVABLE first); batch_free grows by one per list
  // visited, empty ones included, "so more pages are freed off fuller lists instead of spinning
  // excessively around empty lists", and carries over from one list to the next.
  const nrLists = k.sw.pcpBulkFree === 'v5.14' ? NR_PCP_LISTS_V514 : MIGRATE_PCPTYPES;
  let p = 0;
  let batchFree = 0;
  while (count > 0) {
    let looked = 0;
    do {
      batchFree++;
      if (++p === nrLists) p = 0;
      if (++looked > nrLists) throw pcpStuck(z, cpu, was);
    } while (p >= MIGRATE_PCPTYPES || mm.listTail[lists + p] === NIL);
    // "This is the only non-empty list. Free them all."
    if (batchFree === nrLists) batchFree = count;
    do count -= freePcpTail(k, z, cpu, lists + p, frees);
    while (count > 0 && --batchFree > 0 && mm.listTail[lists + p] !== NIL);
  }
}

function pcpStuck(z: Zone, cpu: number, was: number): KernelBug {
  return new KernelBug(`free_pcppages_bulk: pcp->count ${was} but ${was - z.pcpCount[cpu]} pages on cpu ${cpu}'s lists`);
}

/**
 * The tail page of pcp list `list` back to buddy (free_pcppages_bulk's inner loop), through
 * `frees` when given; returns 1.
 */
function freePcpTail(k: Kernel, z: Zone, cpu: number, list: number, frees?: AscendingFrees): number {
  const mm = k.mm;
  const pfn = mm.listTail[list];
  mm.listDel(pfn);
  mm.flags[pfn] &= ~PG_pcp;
  z.pcpCount[cpu]--;
  // <= v6.9: the cached type, re-read only when the zone has isolated pageblocks (the page's
  // block may have been isolated while it sat on the pcp list). v6.10: always the block's type.
  let mt = mm.order[pfn];
  mm.order[pfn] = 0;
  if (k.sw.hygiene || z.nrIsolatePageblock > 0) mt = k.pb.get(pfn);
  if (frees) frees.add(k, z, pfn, mt);
  else freeOnePage(k, z, pfn, 0, mt, false);
  return 1;
}

/** free_unref_page() for an order-0 page: pcp list, or straight to buddy for ISOLATE blocks. */
export function freeUnrefPage(k: Kernel, z: Zone, pfn: number): void {
  freeUnrefPages(k, z, pfn, pfn + 1);
}

/**
 * free_unref_page() of every page of [start, end) in pfn order (free_contig_range's loop), all in
 * zone z: the cpu, its pcp lists and pcp->high are the same for each (no yield in between). The
 * pages must be cleared (clearFrames) and not free.
 */
export function freeUnrefPages(k: Kernel, z: Zone, start: number, end: number): void {
  const mm = k.mm;
  const pb = k.pb;
  const { flags, order } = mm;
  const cpu = k.cpu();
  const lists = z.pcpList(cpu, 0);
  const high = k.cfg.pcpHigh;
  const count = z.pcpCount;
  const maxChunk = Math.min(k.pageblockOrder, k.maxOrder);
  // The pcp lists are first in first out: the pages of the range that pcp->high sends on to buddy
  // arrive there in ascending runs, freed a chunk at a time too (AscendingFrees).
  const frees = end - start > 1 ? new AscendingFrees() : undefined;
  // v5.18: the pages of the range not yet on their pcp list (PcpRun).
  const run = frees && k.sw.pcpBulkFree === 'v5.18' ? new PcpRun() : undefined;
  try {
    for (let pfn = start; pfn < end; pfn++) {
      const mt = pb.get(pfn);
      if (mt === MIGRATE_ISOLATE || z.pcpDisabled > 0) {
        frees?.flush(k);
        // Straight to buddy (free_one_page): an aligned chunk of the range at a time when it can.
        const o = chunkOrder(mm, pfn, end, maxChunk);
        if (o > 0) {
          freeChunkAscending(k, z, pfn, o, mt);
          pfn += (1 << o) - 1;
        } else freeOnePage(k, z, pfn, 0, mt, false);
        continue;
      }
      // CMA and HIGHATOMIC pages go on the MOVABLE pcp list; the cached type brings them home.
      const pindex = mt < MIGRATE_PCPTYPES ? mt : MIGRATE_MOVABLE;
      if (run) {
        if (pfn !== run.end || lists + pindex !== run.list || mt !== run.mt) run.restart(mm, lists + pindex, pfn, mt);
        run.end++;
        if (++count[cpu] >= high) freePcppagesBulk(k, z, cpu, nrPcpFree(k, z, cpu), pindex, frees, run);
        continue;
      }
      flags[pfn] |= PG_pcp;
      order[pfn] = mt;
      mm.listAdd(lists + pindex, pfn, false);
      if (++count[cpu] >= high) freePcppagesBulk(k, z, cpu, nrPcpFree(k, z, cpu), pindex, frees);
    }
  } finally {
    run?.restart(mm, -1, 0, 0);
    frees?.flush(k);
  }
}

/**
 * The pages [start, end) that freeUnrefPages has counted in pcp->count but not yet put on pcp list
 * `list` (each would go to its head in turn, cached type `mt`): the newest pages of that list, so
 * that free_pcppages_bulk takes them last from it, oldest first (freePcppagesBulk). Most of a
 * long range is sent on to buddy by pcp->high before the range ends: those pages never need the
 * list_add and list_del, only what the round trip leaves behind (no PG_pcp, order 0, unlinked).
 */
class PcpRun {
  list = -1;
  start = 0;
  end = 0;
  mt = 0;

  /** Puts the pages still held on their list (list_add in pfn order), and starts a run at pfn. */
  restart(mm: Memmap, list: number, pfn: number, mt: number): void {
    for (let q = this.start; q < this.end; q++) {
      mm.flags[q] |= PG_pcp;
      mm.order[q] = this.mt;
      mm.listAdd(this.list, q, false);
    }
    this.list = list;
    this.start = pfn;
    this.end = pfn;
    this.mt = mt;
  }

  /** pcp list `list` holds pages: on the list or in the run */
  holds(mm: Memmap, list: number): boolean {
    return mm.listTail[list] !== NIL || (list === this.list && this.start < this.end);
  }
}

/** A run holding no page: a list holds pages only when it has some itself (never restarted). */
const NO_RUN = new PcpRun();

/** freePcpTail() of the oldest page of `run` (its list has no other pages); returns 1. */
function freeRunOldest(k: Kernel, z: Zone, cpu: number, run: PcpRun, frees: AscendingFrees): number {
  const mm = k.mm;
  const pfn = run.start++;
  // what list_add + list_del and the cached type's reset leave
  mm.next[pfn] = NIL;
  mm.prev[pfn] = NIL;
  mm.order[pfn] = 0;
  z.pcpCount[cpu]--;
  const mt = k.sw.hygiene || z.nrIsolatePageblock > 0 ? k.pb.get(pfn) : run.mt;
  frees.add(k, z, pfn, mt);
  return 1;
}

/**
 * Order-0 frees to buddy (__free_one_page(page, 0)) held back while they are of ascending
 * consecutive pfns of one zone and migratetype, and made at flush() an aligned chunk at a time
 * (freeAscending). Exact as long as nothing reads or writes the buddy lists in between (the
 * caller flushes before any other buddy operation): what happens meanwhile is pcp list work, which
 * reads neither the free lists nor the frames of pages already off the pcp lists (a v6.10 merge
 * re-types only free pageblocks, none of which holds a page still on a pcp list).
 */
class AscendingFrees {
  private z: Zone | null = null;
  private start = 0;
  private end = 0;
  private mt = 0;

  add(k: Kernel, z: Zone, pfn: number, mt: number): void {
    if (pfn === this.end && z === this.z && mt === this.mt) {
      this.end++;
      return;
    }
    this.flush(k);
    this.z = z;
    this.start = pfn;
    this.end = pfn + 1;
    this.mt = mt;
  }

  flush(k: Kernel): void {
    const z = this.z;
    if (z === null) return;
    this.z = null;
    freeAscending(k, z, this.start, this.end, this.mt);
  }
}

/** __free_one_page(page, 0, mt) of every page of [start, end) in ascending pfn order (valid or not). */
function freeAscending(k: Kernel, z: Zone, start: number, end: number, mt: number): void {
  const maxChunk = Math.min(k.pageblockOrder, k.maxOrder);
  for (let pfn = start; pfn < end;) {
    const o = chunkOrder(k.mm, pfn, end, maxChunk);
    if (o > 0) {
      freeChunkAscending(k, z, pfn, o, mt);
      pfn += 1 << o;
    } else freeOnePage(k, z, pfn++, 0, mt, false);
  }
}

/**
 * The largest order o <= maxChunk with pfn aligned to 2^o, [pfn, pfn + 2^o) inside [pfn, end) and
 * every page of it valid (0 when none above 0 fits): a chunk for freeChunkAscending.
 */
function chunkOrder(mm: Memmap, pfn: number, end: number, maxChunk: number): number {
  let o = pfn === 0 ? maxChunk : Math.min(maxChunk, 31 - Math.clz32(pfn & -pfn));
  while (o > 0 && pfn + (1 << o) > end) o--;
  while (o > 0 && mm.scanFlags(PG_valid, PG_valid, pfn, pfn + (1 << o)) !== pfn + (1 << o)) o--;
  return o;
}

/**
 * __free_one_page(page, 0) of every page of the aligned chunk [pfn, pfn + 2^o) in ascending pfn
 * order, to the free lists of `mt`, as one __free_one_page(pfn, o) (free_contig_range's pages in
 * an isolated pageblock: thousands of single-page frees for the outer ends of a range taken from a
 * large buddy). The chunk is valid, cleared, not free and inside one pageblock (o <= pageblock
 * order, o <= MAX_ORDER), and the zone. Exact: below order o a page's buddy lies inside the chunk,
 * so the page-by-page frees only build and merge blocks of the chunk's own pages (no migratetype
 * rule applies below pageblock order); the last page's free merges them into the chunk at order o
 * and goes on from there as freeOnePage(pfn, o) does, on the same state (the list adds and deletes
 * of the blocks in between cancel: same lists, list order, counters and PageBuddy counts). What
 * they leave behind is the order of the pages that headed a block in between: a page at offset
 * r = 2^t * odd (t >= 1) last headed a block of order t - 1 (its right half freed, its left buddy
 * already free once the block of order t was whole), the first page one of order o - 1 (which
 * the chunk's free overwrites if it stays a head), and their list links were reset (list_del).
 * test/free-contig-run.test.ts compares with the page-by-page frees.
 */
function freeChunkAscending(k: Kernel, z: Zone, pfn: number, o: number, mt: number): void {
  const { order, next, prev } = k.mm;
  const n = 1 << o;
  for (let r = 0; r < n; r += 2) {
    const q = pfn + r;
    order[q] = r === 0 ? o - 1 : 30 - Math.clz32(r & -r);
    next[q] = NIL;
    prev[q] = NIL;
  }
  freeOnePage(k, z, pfn, o, mt, false);
}

/** drain_pages_zone(): one cpu's pcp pages of one zone back to buddy. */
export function drainPagesZone(k: Kernel, z: Zone, cpu: number): void {
  if (z.pcpCount[cpu] > 0) freePcppagesBulk(k, z, cpu, z.pcpCount[cpu]);
}

/** __isolate_free_page(): take a free block off the lists for a caller (no watermark check modelled). */
export function isolateFreePage(k: Kernel, z: Zone, pfn: number, order: number): boolean {
  const mt = k.pb.get(pfn);
  delFromFreeList(k, z, pfn);
  if (!k.sw.hygiene) modFreepageState(z, -(1 << order), mt);
  if (order >= k.pageblockOrder - 1) {
    // Re-type the covered pageblocks MOVABLE unless they are non-mergeable (ISOLATE/CMA/HIGHATOMIC).
    const pbo = k.pageblockOrder;
    const end = pfn + (1 << order);
    for (let p = pfn & ~((1 << pbo) - 1); p < end; p += 1 << pbo) {
      const bmt = k.pb.get(p);
      if (isMergeable(bmt) && bmt !== MIGRATE_MOVABLE) {
        if (k.sw.hygiene) moveFreepagesBlock(k, z, p, MIGRATE_MOVABLE);
        else k.pb.set(p, MIGRATE_MOVABLE);
      }
    }
  }
  return true;
}

/** __putback_isolated_page(): re-free to the tail so it merges and is not reused first. */
export function putbackIsolatedPage(k: Kernel, z: Zone, pfn: number, order: number, mt: number): void {
  freeOnePage(k, z, pfn, order, mt, true);
}

// ---------------------------------------------------------------------------------------------
// Page allocation and freeing as callers see them (struct page state + the paths above).

export interface GfpRequest {
  order: number;
  migratetype: number;
  /** long-term pinned: no CMA, no ZONE_MOVABLE (FOLL_LONGTERM migrates out first) */
  pinned?: boolean;
  node?: number;
}

/** The zonelist of a request: preferred node first, highest zone first, only zones it may use. */
export function zonelist(k: Kernel, req: GfpRequest): readonly Zone[] {
  return zonelistOf(k, req.node ?? k.zones[0].node, req.migratetype === MIGRATE_MOVABLE && !req.pinned);
}

/**
 * Built zonelists per zone array, keyed by preferred node and whether ZONE_MOVABLE may be used
 * (the kernel builds node_zonelists once at boot, too): zones never change after construction,
 * and a restored or instance()d kernel shares its zone array. Shared: callers must not mutate.
 */
const ZONELISTS = new WeakMap<readonly Zone[], Map<number, readonly Zone[]>>();

/** The zonelist of preferred node `pref`, with or without ZONE_MOVABLE (__GFP_HIGHMEM | __GFP_MOVABLE). */
export function zonelistOf(k: Kernel, pref: number, movableOk: boolean): readonly Zone[] {
  let byKey = ZONELISTS.get(k.zones);
  if (!byKey) ZONELISTS.set(k.zones, (byKey = new Map()));
  const key = pref * 2 + (movableOk ? 1 : 0);
  let zl = byKey.get(key);
  if (!zl) {
    const ok = k.zones.filter((z) => movableOk || !z.isMovable());
    const rank = (z: Zone) => (z.node === pref ? 0 : 1);
    zl = Object.freeze(ok.sort((a, b) => rank(a) - rank(b) || b.start - a.start));
    byKey.set(key, zl);
  }
  return zl;
}

/**
 * The zonelist of preferred node `pref` cut to that node's zones (__GFP_THISNODE), built once per
 * choice as zonelistOf()'s (negative keys in the same map). Shared: callers must not mutate.
 */
export function thisNodeZonelist(k: Kernel, pref: number, movableOk: boolean): readonly Zone[] {
  const byKey = ZONELISTS.get(k.zones);
  const key = -1 - (pref * 2 + (movableOk ? 1 : 0));
  let zl = byKey?.get(key);
  if (!zl) {
    zl = Object.freeze(zonelistOf(k, pref, movableOk).filter((z) => z.node === pref));
    ZONELISTS.get(k.zones)!.set(key, zl);
  }
  return zl;
}

/** get_page_from_freelist() over the zonelist: pcp for order 0, buddy otherwise. -1 on failure. */
export function allocFromZonelist(k: Kernel, zones: readonly Zone[], req: GfpRequest): number {
  const allowCma = req.migratetype === MIGRATE_MOVABLE && !req.pinned;
  // (by index: no iterator per allocation)
  for (let i = 0; i < zones.length; i++) {
    const z = zones[i];
    // rmqueue() (v5.9+, 1d91df85f399): the MOVABLE pcp list may hold CMA pages, so a MOVABLE
    // request without ALLOC_CMA skips the pcp lists and goes to buddy.
    const pfn = req.order === 0 && (allowCma || req.migratetype !== MIGRATE_MOVABLE)
      ? rmqueuePcplist(k, z, k.cpu(), req.migratetype, allowCma)
      : rmqueueBuddy(k, z, req.order, req.migratetype, allowCma);
    if (pfn >= 0) return pfn;
  }
  return -1;
}

/** prep_new_page(): refcount 1, compound metadata, the user-visible kind of page. */
export function prepNewPage(k: Kernel, pfn: number, order: number, owner: number, flags: number, token: number): void {
  const mm = k.mm;
  mm.refcount[pfn] = 1;
  mm.owner[pfn] = owner;
  mm.token[pfn] = token;
  mm.order[pfn] = order;
  mm.flags[pfn] = (mm.flags[pfn] & PG_valid) | flags | (order > 0 ? PG_head : 0);
  const end = pfn + (1 << order);
  if (order === 0) return;
  mm.setFlagsRange(pfn + 1, end, PG_valid, PG_tail);
  mm.next.fill(pfn, pfn + 1, end);
  mm.owner.fill(owner, pfn + 1, end);
}

/** Clear a page (or compound page) back to a bare valid frame before freeing it. */
export function clearPage(k: Kernel, pfn: number, order: number): void {
  const mm = k.mm;
  if (order === 0) {
    clearOnePage(mm, pfn);
    return;
  }
  // Page by page, the first page that is already free throws with the pages before it cleared;
  // that page is found a word at a time and the pages before it cleared with fills.
  const end = Math.min(pfn + (1 << order), mm.nrPfns);
  const bad = mm.scanFlags(PG_buddy | PG_pcp, 0, pfn, end);
  clearFrames(mm, pfn, bad, 0);
  if (bad < end) throw new KernelBug(`freeing pfn ${bad} which is already free`);
}

/**
 * Every frame of [s, e) bare and valid (flags PG_valid or 0 for a hole, no owner, token, order or
 * compound head) with refcount `refcount`: none of them may be free (the callers know).
 */
export function clearFrames(mm: Memmap, s: number, e: number, refcount: number): void {
  mm.setFlagsRange(s, e, PG_valid, 0);
  mm.refcount.fill(refcount, s, e);
  mm.owner.fill(0, s, e);
  mm.token.fill(0, s, e);
  mm.order.fill(0, s, e);
  mm.next.fill(NIL, s, e);
}

/** clearPage() of one page (free_contig_range calls it for each of its pages). */
export function clearOnePage(mm: Memmap, p: number): void {
  const f = mm.flags[p];
  if (f & (PG_buddy | PG_pcp)) throw new KernelBug(`freeing pfn ${p} which is already free`);
  mm.flags[p] = f & PG_valid;
  mm.refcount[p] = 0;
  mm.owner[p] = 0;
  mm.token[p] = 0;
  mm.order[p] = 0;
  mm.next[p] = NIL;
}

/** __free_pages(): drop the page to buddy (order 0 through pcp). The page must be cleared. */
export function freePages(k: Kernel, pfn: number, order: number): void {
  const z = k.zoneOf(pfn);
  if (!z) throw new KernelBug(`freeing pfn ${pfn} outside every zone`);
  if (order === 0) freeUnrefPage(k, z, pfn);
  else freeBlock(k, z, pfn, order, k.pb.get(pfn), false);
}

/**
 * __free_pages_core() (generic_online_page; memblock_free_all at boot): the pages bypass the pcp
 * lists and go to the tail of their free list, FPI_TO_TAIL (v5.10, 7fef431be9c9 "mm/page_alloc:
 * place pages to tail in __free_pages_core()"), so that freshly onlined memory is handed out last.
 * managed_pages is the caller's. 6.1 mm/page_alloc.c:1759-1786.
 */
export function freePagesCore(k: Kernel, pfn: number, order: number): void {
  const z = k.zoneOf(pfn);
  if (!z) throw new KernelBug(`freeing pfn ${pfn} outside every zone`);
  freeBlock(k, z, pfn, order, k.pb.get(pfn), true);
}

// ---------------------------------------------------------------------------------------------
// Boot.

/**
 * __free_pages_memory(): free [start, end) in the largest naturally aligned chunks, each through
 * memblock_free_pages -> __free_pages_core: to the tail of its free list (FPI_TO_TAIL, v5.10), so
 * that after boot every free list runs in ascending pfn order and allocations start low.
 */
function freeRangeAtBoot(k: Kernel, start: number, end: number): void {
  while (start < end) {
    let order = Math.min(k.maxOrder, start === 0 ? k.maxOrder : 31 - Math.clz32(start & -start));
    while (start + (1 << order) > end) order--;
    freePagesCore(k, start, order);
    start += 1 << order;
  }
}

/**
 * memmap_init + memblock_free_all + cma_activate_area: every pageblock MOVABLE, holes invalid,
 * reserved ranges PageReserved, boot allocations unmovable in UNMOVABLE blocks, CMA areas typed
 * MIGRATE_CMA, everything else freed to buddy.
 */
export function bootMemory(k: Kernel, bootOwner: number): void {
  const { mm, pb, cfg } = k;
  pb.mt.fill(MIGRATE_MOVABLE);
  for (const z of k.zones) mm.flags.fill(PG_valid, z.start, z.end);
  mm.next.fill(NIL);
  mm.prev.fill(NIL);
  for (const h of cfg.holes) mm.flags.fill(0, h.startPfn, h.endPfn);
  for (const r of cfg.reserved) {
    for (let p = r.startPfn; p < r.endPfn; p++) if (mm.flags[p] & PG_valid) {
      mm.flags[p] |= PG_reserved;
      mm.refcount[p] = 1;
    }
  }
  for (const r of cfg.bootUnmovable) {
    for (let p = r.startPfn; p < r.endPfn; p++) if (mm.flags[p] & PG_valid) {
      mm.refcount[p] = 1;
      mm.owner[p] = bootOwner;
    }
    changeRange(k, r.startPfn, r.endPfn, MIGRATE_UNMOVABLE);
  }
  // CMA areas are memblock-reserved until cma_activate_area() (a core_initcall, after
  // memblock_free_all) types them MIGRATE_CMA and frees them a pageblock at a time.
  for (const a of cfg.cma) {
    changeRange(k, a.basePfn, a.basePfn + a.count, MIGRATE_CMA);
    mm.refcount.fill(1, a.basePfn, a.basePfn + a.count);
  }
  for (const z of k.zones) {
    let present = 0;
    let reserved = 0;
    // Free every run of valid, not busy pfns.
    let p = z.start;
    while (p < z.end) {
      if (!(mm.flags[p] & PG_valid)) {
        p++;
        continue;
      }
      present++;
      if (mm.refcount[p] !== 0) {
        if (mm.flags[p] & PG_reserved) reserved++;
        p++;
        continue;
      }
      let e = p + 1;
      while (e < z.end && (mm.flags[e] & PG_valid) && mm.refcount[e] === 0) e++;
      present += e - p - 1;
      freeRangeAtBoot(k, p, e);
      p = e;
    }
    z.presentPages = present;
    z.managedPages = present - reserved;
  }
  for (const a of cfg.cma) initCmaReservedPageblocks(k, a.basePfn, a.basePfn + a.count);
}

/** init_cma_reserved_pageblock(): free each CMA pageblock on its own (its type is already CMA). */
function initCmaReservedPageblocks(k: Kernel, start: number, end: number): void {
  const pbo = k.pageblockOrder;
  const step = 1 << Math.min(pbo, k.maxOrder);
  const z = k.zoneOf(start)!;
  k.mm.refcount.fill(0, start, end);
  for (let p = start; p < end; p += step) freeBlock(k, z, p, Math.min(pbo, k.maxOrder), MIGRATE_CMA, false);
}

function changeRange(k: Kernel, start: number, end: number, mt: number): void {
  const pbPages = 1 << k.pageblockOrder;
  for (let p = start & ~(pbPages - 1); p < end; p += pbPages) k.pb.set(p, mt);
}

