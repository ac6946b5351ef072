/**
 * The buddy allocator's exact list work (src/kernel/page_alloc.ts), written against the survivors
 * of a mutation run: which pfns end up on which free list, at which end, after expand(),
 * __free_one_page() merging (buddy_merge_likely's tail placement, the pageblock_order merge rules
 * of v5.10 / v5.18 / v6.10), __rmqueue_fallback's block stealing (steal_suitable_fallback <= v6.9,
 * try_to_steal_block v6.10), __rmqueue's CMA balancing, the pcp lists (rmqueue_bulk,
 * free_unref_page, free_pcppages_bulk) and __isolate_free_page, with NR_FREE_PAGES /
 * NR_FREE_CMA_PAGES and nr_free. Checked against mm/page_alloc.c of v6.1 (and v6.10 for the
 * hygiene series).
 *
 * Most scenarios start from an empty ZONE_MOVABLE of `tiny` (pageblock order 2, max order 4) and
 * free exactly the blocks they need, so the list order is the one the freeing order gives in the
 * kernel too. (Boot itself frees to the list head here; the kernel's __free_pages_core frees with
 * FPI_TO_TAIL since v5.10, so the tests below do not pin the order of boot's lists.)
 *
 * Survivors judged equivalent: delFromFreeList's `(list - z.listBase) % MIGRATE_TYPES` with `+`
 * (listBase is a multiple of 3 zones' worth of lists, so 2 * listBase is a multiple of 6);
 * changePageblockRange's `order > pbo ? ... : 1` (only called at order >= pageblock_order); the v6.10
 * merge rule's `bmt !== mt` (re-typing a block to its own type); freeBlock's `order > pbo` as `>=`
 * (every caller passes the block's own type); can_steal_fallback's first `order >= pageblock_order`
 * (the next test holds too); steal at `cur >= pbo` as `>` (the whole-block path claims the same block);
 * the zone-span checks of move_freepages_block (both modes) and try_to_steal_block, and
 * steal_suitable_fallback's `free > 0` (zones are pageblock aligned: validateConfig); the PG_valid
 * checks next to PG_buddy (a hole never has PG_buddy); __rmqueue_fallback's initial fmt / can_steal
 * and its `cur > maxOrder` guard (the kernel's VM_BUG_ON); rmqueue_bulk's `break` as `continue`;
 * free_pcppages_bulk's empty-list guard and loop condition and drain_pages_zone's `> 0`;
 * buddy_merge_likely's `!tail &&`; prep_new_page's `order === 0` return; boot's run scan (freeing a
 * run page by page merges to the same blocks); __isolate_free_page's `bmt !== MIGRATE_MOVABLE`.
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import { resolveConfig, type MachineConfig } from '../src/kernel/config.js';
import type { Kernel } from '../src/kernel/machine.js';
import type { Zone } from '../src/kernel/mmzone.js';
import { NIL } from '../src/kernel/memmap.js';
import {
  allocFromZonelist, clearPage, listMigratetype, delFromFreeList, expand, drainPagesZone, freeBlock, freeOnePage, freePages, freeUnrefPage, isolateFreePage,
  modFreepageState, moveFreepagesBlock, prepNewPage, putbackIsolatedPage, rmqueue, rmqueueBuddy, rmqueuePcplist, zonelist,
} from '../src/kernel/page_alloc.js';
import { checkConservation } from '../properties/page-conservation.js';
import { checkFreelistCounters } from '../properties/freelist-counters.js';
import {
  MIGRATE_CMA, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, PG_buddy, PG_lru, PG_pcp, PG_valid,
} from '../src/kernel/types.js';

const T = 'UMRHCI';

/** Every non-empty free list of zone `zi`, head first: "2M: 132 140" (order, type letter, pfns). */
function lists(k: Kernel, zi: number): string[] {
  const z = k.zones[zi];
  const out: string[] = [];
  for (let o = 0; o <= k.maxOrder; o++) {
    for (let mt = 0; mt < T.length; mt++) {
      const ps: number[] = [];
      for (let p = k.mm.listHead[z.freeList(o, mt)]; p !== NIL; p = k.mm.next[p]) ps.push(p);
      if (ps.length) out.push(`${o}${T[mt]}: ${ps.join(' ')}`);
    }
  }
  return out;
}

/** The pcp lists of `cpu` in zone `zi`, head first, with each page's cached type: "M: 129M 130C". */
/** lists() with each list's pfns in ascending order (boot's list order is not the kernel's: see above). */
function listSets(k: Kernel, zi: number): string[] {
  return lists(k, zi).map((l) => {
    const [name, pfns] = l.split(': ');
    return `${name}: ${pfns.split(' ').map(Number).sort((a, b) => a - b).join(' ')}`;
  });
}

function pcp(k: Kernel, zi: number, cpu = 0): string[] {
  const z = k.zones[zi];
  const out: string[] = [];
  for (let mt = 0; mt < 3; mt++) {
    const ps: string[] = [];
    for (let p = k.mm.listHead[z.pcpList(cpu, mt)]; p !== NIL; p = k.mm.next[p]) ps.push(`${p}${T[k.mm.order[p]]}`);
    if (ps.length) out.push(`${T[mt]}: ${ps.join(' ')}`);
  }
  return out;
}

/** The pageblock types of [start, end) as letters. */
function blocks(k: Kernel, start: number, end: number): string {
  let s = '';
  for (let p = start; p < end; p += 1 << k.pageblockOrder) s += T[k.pb.get(p)];
  return s;
}

/** [NR_FREE_PAGES, NR_FREE_CMA_PAGES, nr_free per order] of a zone. */
function counters(z: Zone): [number, number, number[]] {
  return [z.freePages, z.freeCma, [...z.nrFree]];
}

/** Takes every free block of zone `zi` off the lists, as allocated bare pages (accounted as rmqueue does). */
function empty(k: Kernel, zi: number): Zone {
  const z = k.zones[zi];
  for (let p = z.start; p < z.end; p++) {
    if (!(k.mm.flags[p] & PG_buddy)) continue;
    const o = k.mm.order[p];
    const mt = (k.mm.onList[p] - 1 - z.listBase) % T.length;
    delFromFreeList(k, z, p);
    if (!k.sw.hygiene) modFreepageState(z, -(1 << o), mt);
    k.mm.flags.fill(PG_valid, p, p + (1 << o));
    k.mm.refcount.fill(1, p, p + (1 << o));
  }
  expect(counters(z)).toEqual([0, 0, [0, 0, 0, 0, 0]]);
  return z;
}

/** Frees [pfn, pfn + 2^order) of an emptied zone straight to buddy (free_one_page), with its pageblock's type. */
function put(k: Kernel, pfn: number, order: number, toTail = false): void {
  clearPage(k, pfn, order);
  freeOnePage(k, k.zoneOf(pfn)!, pfn, order, k.pb.get(pfn), toTail);
}

/** What `run` returns on each profile's kernel of `cfg`, its zone `zi` emptied first (see empty()). */
function perProfile(profiles: string[], run: (k: Kernel, z: Zone) => unknown, cfg: string | MachineConfig = 'tiny', zi = 1): Record<string, unknown> {
  return Object.fromEntries(profiles.map((profile) => {
    const k = createKernel(cfg, profile);
    return [profile, run(k, empty(k, zi))];
  }));
}

function sound(k: Kernel): void {
  expect(checkConservation(k)).toBeNull();
  expect(checkFreelistCounters(k)).toBeNull();
}

describe('boot (memmap_init, memblock_free_all, cma_activate_area)', () => {
  it('frees each run in the largest aligned chunks and counts present and managed pages', () => {
    const k = createKernel('tiny', 'mainline');
    const [normal, movable] = k.zones;
    // 0..4 reserved, 4..8 boot-allocated (its pageblock UNMOVABLE), 64..96 CMA freed a pageblock at a time.
    expect(listSets(k, 0)).toEqual(['3M: 8', '4M: 16 32 48 96 112', '4C: 64 80']);
    expect(counters(normal)).toEqual([120, 32, [0, 0, 0, 1, 7]]);
    expect([listMigratetype(k, 8), listMigratetype(k, 64), listMigratetype(k, 240)]).toEqual([MIGRATE_MOVABLE, MIGRATE_CMA, MIGRATE_MOVABLE]);
    expect([normal.presentPages, normal.managedPages, movable.presentPages, movable.managedPages]).toEqual([128, 124, 128, 128]);
    expect(blocks(k, 0, 128)).toBe('MUMMMMMMMMMMMMMMCCCCCCCCMMMMMMMM');
  });

  it('a hole splits the run around it and is neither present nor managed (tiny-holes)', () => {
    const k = createKernel('tiny-holes', 'mainline');
    // 96..100 and 102..128 around the hole at 100..102: 96 o2 | 102 o1, 104 o3, 112 o4.
    expect(listSets(k, 0)).toEqual(['1M: 102', '2M: 96', '3M: 8 104', '4M: 16 32 48 112', '4C: 64 80']);
    expect([k.zones[0].presentPages, k.zones[0].managedPages]).toEqual([126, 122]);
    expect(k.zones[0].freePages).toBe(118);
  });

  it('a zone starting at pfn 0 with nothing reserved is one run of max-order blocks', () => {
    const cfg = resolveConfig({ base: 'tiny', name: 'tiny-bare', reserved: [], bootUnmovable: [], cma: [] });
    const k = createKernel(cfg, 'v5.11');
    expect(counters(k.zones[0])).toEqual([128, 0, [0, 0, 0, 0, 8]]);
    expect([k.zones[0].presentPages, k.zones[0].managedPages]).toEqual([128, 128]);
  });
});

describe('expand and __free_one_page', () => {
  for (const profile of ['mainline', 'v5.11']) {
    it(`${profile}: an order-0 request splits a max-order block, the halves to the list heads; freeing merges it back`, () => {
      const k = createKernel('tiny', profile);
      const z = empty(k, 1);
      put(k, 144, 4);
      put(k, 128, 4);
      expect(lists(k, 1)).toEqual(['4M: 128 144']);
      expect(rmqueueBuddy(k, z, 0, MIGRATE_MOVABLE, false)).toBe(128);
      expect(lists(k, 1)).toEqual(['0M: 129', '1M: 130', '2M: 132', '3M: 136', '4M: 144']);
      expect(counters(z)).toEqual([31, 0, [1, 1, 1, 1, 1]]);
      expect(rmqueueBuddy(k, z, 1, MIGRATE_MOVABLE, false)).toBe(130);
      expect(rmqueueBuddy(k, z, 1, MIGRATE_MOVABLE, false)).toBe(132);
      expect(lists(k, 1)).toEqual(['0M: 129', '1M: 134', '3M: 136', '4M: 144']);
      expect(counters(z)).toEqual([27, 0, [1, 1, 0, 1, 1]]);
      put(k, 130, 1);
      put(k, 128, 0);
      put(k, 132, 1);
      expect(lists(k, 1)).toEqual(['4M: 128 144']);
      expect(counters(z)).toEqual([32, 0, [0, 0, 0, 0, 2]]);
      sound(k);
    });
  }

  it('buddy_merge_likely: a block whose next-higher buddy is free goes to the tail, below MAX_ORDER - 2 only', () => {
    const k = createKernel('tiny', 'mainline');
    empty(k, 1);
    put(k, 133, 0); // buddy 132 busy, 134 (order 1) busy: head
    put(k, 130, 1);
    put(k, 128, 0); // 129 busy; its order-1 buddy 130 is free: tail
    expect(lists(k, 1)).toEqual(['0M: 133 128', '1M: 130']);
    put(k, 138, 0);
    put(k, 136, 0); // 137 busy; 138 is free but only at order 0: not likely, head
    expect(lists(k, 1)).toEqual(['0M: 136 138 133 128', '1M: 130']);
    put(k, 212, 2); // order 2 = MAX_ORDER - 2 here (max order 4): 216 busy, head
    put(k, 200, 3);
    put(k, 196, 2); // 192 busy; its order-3 buddy 200 is free: tail
    expect(lists(k, 1).slice(2)).toEqual(['2M: 212 196', '3M: 200']);
    put(k, 176, 4);
    put(k, 152, 3);
    put(k, 160, 3); // order 3: never likely (the order-4 buddy 176 is free, but 3 >= MAX_ORDER - 2)
    expect(lists(k, 1).slice(3)).toEqual(['3M: 160 152 200', '4M: 176']);
    put(k, 244, 2, true); // FPI_TO_TAIL (__putback_isolated_page)
    expect(lists(k, 1)[2]).toBe('2M: 212 196 244');
    sound(k);
  });

  it('merging at and above pageblock_order: v5.10 merges CMA into MOVABLE, v5.18 keeps the types apart, v6.10 re-types the buddy', () => {
    const seen = perProfile(['v5.11', 'v5.18', 'v6.10'], (k, z) => {
      k.pb.set(132, MIGRATE_UNMOVABLE);
      k.pb.set(136, MIGRATE_CMA);
      put(k, 132, 2); // UNMOVABLE pageblock
      put(k, 136, 2); // CMA pageblock, buddy of nothing free yet (140 busy)
      put(k, 140, 2); // MOVABLE next to CMA
      put(k, 128, 2); // MOVABLE next to UNMOVABLE
      return { lists: lists(k, 1), blocks: blocks(k, 128, 144), counters: counters(z) };
    });
    expect(seen).toEqual({
      // v5.10: no isolated pageblocks, so anything merges; the block lands on the freed page's list.
      'v5.11': { lists: ['4M: 128'], blocks: 'MUCM', counters: [16, 4, [0, 0, 0, 0, 1]] },
      // v5.18: MOVABLE + UNMOVABLE merge (both mergeable), CMA stays alone.
      'v5.18': { lists: ['2M: 140', '2C: 136', '3M: 128'], blocks: 'MUCM', counters: [16, 4, [0, 0, 2, 1, 0]] },
      // v6.10: as v5.18, and the UNMOVABLE buddy block is re-typed to the merged block's type.
      'v6.10': { lists: ['2M: 140', '2C: 136', '3M: 128'], blocks: 'MMCM', counters: [16, 4, [0, 0, 2, 1, 0]] },
    });
  });

  it('never merges with a free buddy of another zone (page_is_buddy: same zone)', () => {
    const cfg = resolveConfig({
      base: 'tiny', name: 'tiny-zone-136',
      nodes: [{ id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 136 }, { name: 'Movable', startPfn: 136, endPfn: 256 }] }],
    });
    // 128 o3 (ZONE_NORMAL) and 136 o3 (ZONE_MOVABLE) are buddies: whichever is formed last sees the
    // other in a zone after or before its own.
    for (const order of [[136, 140, 132, 128], [132, 128, 136, 140]]) {
      const k = createKernel(cfg, 'mainline');
      empty(k, 0);
      empty(k, 1);
      for (const p of order) put(k, p, 2);
      expect([order, lists(k, 0), lists(k, 1)]).toEqual([order, ['3M: 128'], ['3M: 136']]);
      sound(k);
    }
  });

  it('v5.10 fences only ISOLATE at pageblock_order, and only while the zone has isolated pageblocks', () => {
    const k = createKernel('tiny', 'v5.11');
    const z = empty(k, 1);
    k.pb.set(132, MIGRATE_ISOLATE);
    z.nrIsolatePageblock = 1;
    put(k, 132, 2);
    put(k, 128, 2); // MOVABLE next to ISOLATE: refused
    put(k, 136, 2);
    put(k, 140, 2); // MOVABLE with MOVABLE: merges to order 3 (its order-3 buddy 128 is order 2)
    expect(lists(k, 1)).toEqual(['2M: 128', '2I: 132', '3M: 136']);
    expect(counters(z)).toEqual([12, 0, [0, 0, 2, 1, 0]]);
    // With nr_isolate_pageblock 0 (has_isolate_pageblock() false) nothing is fenced, ISOLATE included.
    z.nrIsolatePageblock = 0;
    k.pb.set(164, MIGRATE_ISOLATE);
    put(k, 164, 2);
    put(k, 160, 2);
    expect(lists(k, 1)).toEqual(['2M: 128', '2I: 132', '3M: 160 136']);
  });

  it('v6.10 frees a block larger than a pageblock a pageblock at a time, each with its own type (split_large_buddy)', () => {
    const seen = perProfile(['v5.19', 'mainline'], (k, z) => {
      k.pb.set(136, MIGRATE_UNMOVABLE);
      k.pb.set(140, MIGRATE_CMA);
      clearPage(k, 128, 4);
      freeBlock(k, z, 128, 4, MIGRATE_MOVABLE, false);
      return { lists: lists(k, 1), blocks: blocks(k, 128, 144), counters: counters(z) };
    });
    expect(seen).toEqual({
      // <= v6.9: one order-4 block on the caller's list, CMA pages included (a free page not on its block's list).
      'v5.19': { lists: ['4M: 128'], blocks: 'MMUC', counters: [16, 0, [0, 0, 0, 0, 1]] },
      // 136 goes to the tail: its order-3 buddy 128 is free (buddy_merge_likely); CMA 140 merges with nothing.
      'mainline': { lists: ['2U: 136', '2C: 140', '3M: 128'], blocks: 'MMUC', counters: [16, 4, [0, 0, 2, 1, 0]] },
    });
  });
});

/** tiny with pageblock order 3: a pageblock of 8 pages, so a stolen chunk can be smaller than half of it. */
const PB3 = resolveConfig({ base: 'tiny', name: 'tiny-pb3', pageblockOrder: 3 });
/** pageblock order 4 = max order: the smallest chunk a movable request may claim a block with (order 2) is a quarter of it. */
const PB4 = resolveConfig({ base: 'tiny', name: 'tiny-pb4', pageblockOrder: 4 });

/** Runs `fn` on a kernel of `cfg` with its ZONE_MOVABLE emptied, under v5.19 (steal_suitable_fallback) and mainline (try_to_steal_block). */
function onEachFallback(cfg: string | MachineConfig, fn: (k: Kernel, z: Zone, profile: string) => void): void {
  for (const profile of ['v5.19', 'mainline']) {
    const k = createKernel(cfg, profile);
    fn(k, empty(k, 1), profile);
  }
}

/** Marks [pfn, pfn + n) allocated: LRU (movable) pages, or plain unmovable ones. */
function busy(k: Kernel, pfn: number, n: number, lru: boolean): void {
  k.mm.flags.fill(PG_valid | (lru ? PG_lru : 0), pfn, pfn + n);
  k.mm.refcount.fill(1, pfn, pfn + n);
}

describe('__rmqueue_fallback', () => {
  const fallbackProfiles = ['v5.19', 'mainline']; // steal_suitable_fallback, try_to_steal_block

  it('takes the largest fallback block first and claims all its pageblocks (order >= pageblock_order)', () => {
    onEachFallback('tiny', (k, z) => {
      put(k, 144, 4);
      put(k, 130, 1);
      expect(rmqueueBuddy(k, z, 0, MIGRATE_UNMOVABLE, false)).toBe(144);
      expect(lists(k, 1)).toEqual(['0U: 145', '1U: 146', '1M: 130', '2U: 148', '3U: 152']);
      expect(blocks(k, 128, 160)).toBe('MMMMUUUU');
      expect(k.lastRmqueueMt).toBe(MIGRATE_UNMOVABLE);
      expect(counters(z)).toEqual([17, 0, [1, 2, 1, 1, 0]]);
    });
  });

  it('claims a pageblock whose free pages are at least half of it, moving its other free pages too', () => {
    onEachFallback('tiny', (k, z) => {
      busy(k, 128, 1, true);
      put(k, 130, 1);
      put(k, 129, 0);
      busy(k, 132, 1, false);
      put(k, 133, 0); // another MOVABLE pageblock: not touched
      expect(rmqueueBuddy(k, z, 0, MIGRATE_UNMOVABLE, false)).toBe(129);
      expect(lists(k, 1)).toEqual(['0M: 133', '1U: 130']);
      expect(blocks(k, 128, 136)).toBe('UM');
      expect(counters(z)).toEqual([3, 0, [1, 1, 0, 0, 0]]);
    });
  });

  it('an order-0 chunk of a mostly movable pageblock: <= v6.9 moves it to the requested list, v6.10 leaves the block alone', () => {
    const seen = perProfile(fallbackProfiles, (k, z) => {
      busy(k, 128, 3, true);
      put(k, 131, 0);
      expect(rmqueueBuddy(k, z, 0, MIGRATE_UNMOVABLE, false)).toBe(131);
      return { mt: T[k.lastRmqueueMt], blocks: blocks(k, 128, 132), free: z.freePages };
    });
    expect(seen).toEqual({ 'v5.19': { mt: 'U', blocks: 'M', free: 0 }, mainline: { mt: 'M', blocks: 'M', free: 0 } });
  });

  it('a stolen chunk larger than the request: <= v6.9 splits it onto the requested list, v6.10 onto the block\'s own list', () => {
    const seen = perProfile(fallbackProfiles, (k, z) => {
      busy(k, 128, 2, true);
      busy(k, 132, 4, true);
      put(k, 130, 1); // 2 free + 0 alike of 8 < 4: the block is not claimed
      expect(rmqueueBuddy(k, z, 0, MIGRATE_UNMOVABLE, false)).toBe(130);
      return { lists: lists(k, 1), blocks: blocks(k, 128, 136), mt: T[k.lastRmqueueMt] };
    }, PB3);
    expect(seen).toEqual({
      'v5.19': { lists: ['0U: 131'], blocks: 'M', mt: 'U' },
      mainline: { lists: ['0M: 131'], blocks: 'M', mt: 'M' },
    });
  });

  it('exactly half free or alike claims the block; unmovable pages count as alike for an unmovable request', () => {
    onEachFallback(PB3, (k, z) => {
      busy(k, 128, 2, false); // alike
      busy(k, 132, 4, true);
      put(k, 130, 1); // 2 free + 2 alike = 4 = half of 8
      expect(rmqueueBuddy(k, z, 0, MIGRATE_UNMOVABLE, false)).toBe(130);
      expect(lists(k, 1)).toEqual(['0U: 131']);
      expect(blocks(k, 128, 136)).toBe('U');
    });
  });

  it('reclaimable and unmovable requests may claim a block from any order; the used pages of a MOVABLE block count as alike', () => {
    for (const profile of fallbackProfiles) {
      for (const mt of [MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE]) {
        const k = createKernel('tiny', profile);
        const z = empty(k, 1);
        put(k, 129, 0);
        put(k, 131, 0); // order 0 < pageblock_order / 2; 2 free + 2 alike of 4
        // Found 131 (the list head); the block's free pages move in pfn order to the tail: 129 first.
        expect(rmqueueBuddy(k, z, 0, mt, false)).toBe(129);
        expect([mt, blocks(k, 128, 132), lists(k, 1)]).toEqual([mt, T[mt], [`0${T[mt]}: 131`]]);
      }
    }
  });

  it('a movable request counts movable pages as alike; unmovable fallback blocks of another type are never alike', () => {
    for (const profile of fallbackProfiles) {
      // MOVABLE falling back to an UNMOVABLE block (pageblock order 4): 4 free + 4 LRU = half of 16.
      const k = createKernel(PB4, profile);
      const z = empty(k, 1);
      k.pb.set(128, MIGRATE_UNMOVABLE);
      busy(k, 128, 4, true);
      busy(k, 136, 8, false);
      put(k, 132, 2);
      expect(rmqueueBuddy(k, z, 0, MIGRATE_MOVABLE, false)).toBe(132);
      expect(blocks(k, 128, 144)).toBe('M');
      expect(lists(k, 1)).toEqual(['0M: 133', '1M: 134']);
      // RECLAIMABLE falling back to an UNMOVABLE block: its used pages are not alike (could be either).
      const k2 = createKernel(PB3, profile);
      const z2 = empty(k2, 1);
      k2.pb.set(128, MIGRATE_UNMOVABLE);
      busy(k2, 128, 5, false);
      put(k2, 133, 0);
      put(k2, 134, 1); // 3 free of 8
      expect(rmqueueBuddy(k2, z2, 0, MIGRATE_RECLAIMABLE, false)).toBeGreaterThan(132);
      expect(blocks(k2, 128, 136)).toBe('U');
    }
  });

  it('the pages of a compound LRU page all count as movable (PageLRU reads the head)', () => {
    for (const profile of fallbackProfiles) {
      // 4 compound + 1 base LRU page, 1 unmovable, 2 free: 8 - 2 free - 5 movable = 1 alike, 3 < 4: not claimed.
      const k = createKernel(PB3, profile);
      const z = empty(k, 1);
      k.mm.refcount.fill(0, 128, 132);
      prepNewPage(k, 128, 2, 0, PG_lru, 1);
      busy(k, 132, 1, true);
      busy(k, 133, 1, false);
      put(k, 134, 1);
      expect(rmqueueBuddy(k, z, 0, MIGRATE_UNMOVABLE, false)).toBe(134);
      expect(blocks(k, 128, 136)).toBe('M');
    }
  });

  it('a movable request may claim a block from order pageblock_order / 2 up', () => {
    onEachFallback('tiny', (k, z) => {
      k.pb.set(128, MIGRATE_UNMOVABLE);
      put(k, 130, 1); // order 1 = pageblock_order / 2: 2 free of 4 pages, claimed
      expect(rmqueueBuddy(k, z, 0, MIGRATE_MOVABLE, false)).toBe(130);
      expect([blocks(k, 128, 132), lists(k, 1)]).toEqual(['M', ['0M: 131']]);
    });
  });

  it('a movable request that may not claim a block takes the smallest fallback chunk (find_smallest)', () => {
    onEachFallback(PB3, (k, z) => {
      k.pb.set(128, MIGRATE_UNMOVABLE);
      k.pb.set(136, MIGRATE_UNMOVABLE);
      put(k, 130, 1); // order 1 < pageblock_order / 2: a movable request may not steal from it
      put(k, 137, 0);
      expect(rmqueueBuddy(k, z, 0, MIGRATE_MOVABLE, false)).toBe(137);
      expect(lists(k, 1)).toEqual(['1U: 130']);
      expect(blocks(k, 128, 144)).toBe('UU');
    });
  });

  it('a HIGHATOMIC block is never claimed: the chunk alone changes hands', () => {
    const seen = perProfile(fallbackProfiles, (k, z) => {
      put(k, 144, 2);
      k.pb.set(144, MIGRATE_HIGHATOMIC); // (its free page still on the MOVABLE list)
      expect(rmqueueBuddy(k, z, 0, MIGRATE_UNMOVABLE, false)).toBe(144);
      return { lists: lists(k, 1), blocks: blocks(k, 144, 148) };
    });
    expect(seen).toEqual({
      'v5.19': { lists: ['0U: 145', '1U: 146'], blocks: 'H' },
      mainline: { lists: ['0M: 145', '1M: 146'], blocks: 'H' },
    });
  });

  it('CMA and HIGHATOMIC requests have no fallbacks', () => {
    const k = createKernel('tiny', 'mainline');
    const z = empty(k, 1);
    put(k, 128, 4);
    expect(rmqueue(k, z, 0, MIGRATE_CMA, false)).toBe(-1);
    expect(rmqueue(k, z, 0, MIGRATE_HIGHATOMIC, false)).toBe(-1);
    expect(lists(k, 1)).toEqual(['4M: 128']);
  });
});

describe('__rmqueue CMA balancing', () => {
  it('a movable request uses CMA first when more than half of the free pages are CMA, and CMA as a last resort', () => {
    const k = createKernel('tiny', 'mainline');
    const z = empty(k, 0);
    put(k, 64, 4);
    put(k, 16, 4); // 16 CMA of 32 free: not more than half
    expect(rmqueueBuddy(k, z, 2, MIGRATE_MOVABLE, true)).toBe(16);
    expect([z.freePages, z.freeCma]).toEqual([28, 16]); // 16 of 28 now
    expect(rmqueueBuddy(k, z, 2, MIGRATE_MOVABLE, true)).toBe(64);
    expect(k.lastRmqueueMt).toBe(MIGRATE_CMA);
    expect([z.freePages, z.freeCma]).toEqual([24, 12]);
    // Without ALLOC_CMA (pinned, unmovable): never CMA, even when nothing else is left.
    expect(rmqueueBuddy(k, z, 3, MIGRATE_MOVABLE, false)).toBe(24);
    expect(rmqueueBuddy(k, z, 2, MIGRATE_MOVABLE, false)).toBe(20);
    expect(rmqueueBuddy(k, z, 0, MIGRATE_MOVABLE, false)).toBe(-1);
    expect(rmqueueBuddy(k, z, 0, MIGRATE_UNMOVABLE, false)).toBe(-1);
    expect(rmqueueBuddy(k, z, 0, MIGRATE_MOVABLE, true)).toBe(68);
    expect(lists(k, 0)).toEqual(['0C: 69', '1C: 70', '3C: 72']);
    expect([z.freePages, z.freeCma]).toEqual([11, 11]);
  });
});

describe('per-cpu lists', () => {
  for (const profile of ['mainline', 'v5.11']) {
    it(`${profile}: rmqueue_bulk refills a batch to the tail, free_unref_page adds at the head, pcp->high frees a batch from the tail`, () => {
      const k = createKernel('tiny', profile); // batch 2, high 4
      const z = empty(k, 1);
      put(k, 128, 4);
      expect(rmqueuePcplist(k, z, 0, MIGRATE_MOVABLE, true)).toBe(128);
      expect(pcp(k, 1)).toEqual(['M: 129M']);
      expect([z.pcpCount[0], z.freePages]).toEqual([1, 14]);
      expect(k.mm.flags[129] & PG_pcp).toBe(PG_pcp);
      expect(k.mm.flags[128] & PG_pcp).toBe(0);
      expect(rmqueuePcplist(k, z, 0, MIGRATE_MOVABLE, true)).toBe(129);
      expect(rmqueuePcplist(k, z, 0, MIGRATE_MOVABLE, true)).toBe(130); // refill: 130, 131
      expect(rmqueuePcplist(k, z, 0, MIGRATE_MOVABLE, true)).toBe(131);
      expect([pcp(k, 1), z.pcpCount[0], z.freePages, lists(k, 1)]).toEqual([[], 0, 12, ['2M: 132', '3M: 136']]);
      for (const p of [128, 129, 130]) freeUnrefPage(k, z, p);
      expect([pcp(k, 1), z.pcpCount[0], z.freePages]).toEqual([['M: 130M 129M 128M'], 3, 12]);
      freeUnrefPage(k, z, 131); // count reaches high: batch 2 from the tail (128, 129) back to buddy
      expect([pcp(k, 1), z.pcpCount[0], z.freePages]).toEqual([['M: 131M 130M'], 2, 14]);
      expect(lists(k, 1)).toEqual(['1M: 128', '2M: 132', '3M: 136']);
      expect(pcp(k, 1, 1)).toEqual([]);
      drainPagesZone(k, z, 0);
      expect([pcp(k, 1), z.pcpCount[0], z.freePages, lists(k, 1)]).toEqual([[], 0, 16, ['4M: 128']]);
      // A drain empties the list however many pages it holds (one list: three rounds over the types).
      for (let i = 0; i < 4; i++) expect(rmqueuePcplist(k, z, 0, MIGRATE_MOVABLE, true)).toBe(128 + i);
      expect(k.mm.order[128]).toBe(0); // handed out bare: no cached type left in page->index's stand-in
      for (const p of [128, 129, 130]) freeUnrefPage(k, z, p);
      expect(z.pcpCount[0]).toBe(3);
      freeBlock(k, z, 131, 0, MIGRATE_MOVABLE, false);
      drainPagesZone(k, z, 0);
      expect([pcp(k, 1), z.pcpCount[0], z.freePages, lists(k, 1)]).toEqual([[], 0, 16, ['4M: 128']]);
      sound(k);
    });
  }

  it('a CMA page sits on the MOVABLE pcp list with its cached type and goes home to the CMA list', () => {
    const k = createKernel('tiny', 'mainline');
    const z = empty(k, 0);
    put(k, 64, 2);
    expect(rmqueuePcplist(k, z, 1, MIGRATE_MOVABLE, true)).toBe(64);
    expect(pcp(k, 0, 1)).toEqual(['M: 65C']);
    expect([z.freePages, z.freeCma]).toEqual([2, 2]);
    freeUnrefPage(k, z, 64); // k.cpu() is 0: cpu 0's list
    expect(pcp(k, 0, 0)).toEqual(['M: 64C']);
    drainPagesZone(k, z, 0);
    drainPagesZone(k, z, 1);
    expect([lists(k, 0), z.freePages, z.freeCma, [...z.pcpCount]]).toEqual([['2C: 64'], 4, 4, [0, 0]]);
  });

  it('free_pcppages_bulk frees with the cached type (<= v6.9) unless the zone has isolated pageblocks; v6.10 always reads the block', () => {
    const seen: Record<string, string[]> = {};
    for (const [profile, isolated] of [['v5.11', 0], ['v5.11', 1], ['mainline', 0]] as const) {
      const k = createKernel('tiny', profile);
      const z = empty(k, 1);
      put(k, 128, 2);
      expect(rmqueuePcplist(k, z, 0, MIGRATE_MOVABLE, true)).toBe(128); // 129 stays on the pcp list, cached MOVABLE
      k.pb.set(128, MIGRATE_UNMOVABLE); // stolen meanwhile
      z.nrIsolatePageblock = isolated;
      drainPagesZone(k, z, 0);
      seen[`${profile}/${isolated}`] = lists(k, 1);
    }
    expect(seen).toEqual({ 'v5.11/0': ['0M: 129', '1M: 130'], 'v5.11/1': ['0U: 129', '1M: 130'], 'mainline/0': ['0U: 129', '1M: 130'] });
  });

  it('free_unref_page: an ISOLATE page, or any page while the zone\'s pcp is disabled, goes straight to buddy', () => {
    const k = createKernel('tiny', 'mainline');
    const z = empty(k, 1);
    k.pb.set(128, MIGRATE_ISOLATE);
    clearPage(k, 128, 0);
    freeUnrefPage(k, z, 128);
    z.pcpDisabled = 1;
    clearPage(k, 132, 0);
    freeUnrefPage(k, z, 132);
    expect([lists(k, 1), pcp(k, 1), z.pcpCount[0], z.freePages]).toEqual([['0M: 132', '0I: 128'], [], 0, 1]);
  });

  it('allocFromZonelist: order-0 requests use the pcp lists, except movable ones without ALLOC_CMA (v5.9+)', () => {
    const k = createKernel('tiny', 'mainline');
    const zl = (order: number, migratetype: number, pinned = false) => zonelist(k, { order, migratetype, pinned });
    expect(zl(0, MIGRATE_MOVABLE).map((z) => z.name)).toEqual(['Movable', 'Normal']);
    expect(zl(0, MIGRATE_MOVABLE, true).map((z) => z.name)).toEqual(['Normal']);
    expect(zl(0, MIGRATE_UNMOVABLE).map((z) => z.name)).toEqual(['Normal']);
    const a = allocFromZonelist(k, zl(0, MIGRATE_MOVABLE), { order: 0, migratetype: MIGRATE_MOVABLE });
    expect([k.zoneOf(a)!.name, k.zones[1].pcpCount[0]]).toEqual(['Movable', 1]);
    const b = allocFromZonelist(k, zl(0, MIGRATE_MOVABLE, true), { order: 0, migratetype: MIGRATE_MOVABLE, pinned: true });
    expect([k.zoneOf(b)!.name, k.zones[0].pcpCount[0], k.lastRmqueueMt]).toEqual(['Normal', 0, MIGRATE_MOVABLE]);
    const c = allocFromZonelist(k, zl(0, MIGRATE_UNMOVABLE), { order: 0, migratetype: MIGRATE_UNMOVABLE });
    expect([k.zoneOf(c)!.name, k.zones[0].pcpCount[0]]).toEqual(['Normal', 1]);
    const d = allocFromZonelist(k, zl(1, MIGRATE_UNMOVABLE), { order: 1, migratetype: MIGRATE_UNMOVABLE });
    expect([k.zoneOf(d)!.name, k.zones[0].pcpCount[0]]).toEqual(['Normal', 1]);
  });

  it('zonelist: the preferred node first, then the highest zone first', () => {
    const cfg = resolveConfig({
      base: 'tiny', name: 'tiny-2node', virtioMem: undefined,
      nodes: [
        { id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 128 }] },
        { id: 1, zones: [{ name: 'Normal', startPfn: 128, endPfn: 192 }, { name: 'Movable', startPfn: 192, endPfn: 256 }] },
      ],
    });
    const k = createKernel(cfg, 'mainline');
    const names = (node?: number, migratetype = MIGRATE_MOVABLE) => zonelist(k, { order: 0, migratetype, node }).map((z) => `${z.node}${z.name}`);
    expect(names()).toEqual(['0Normal', '1Movable', '1Normal']);
    expect(names(1)).toEqual(['1Movable', '1Normal', '0Normal']);
    expect(names(1, MIGRATE_UNMOVABLE)).toEqual(['1Normal', '0Normal']);
  });
});

describe('__isolate_free_page, __putback_isolated_page, move_freepages_block', () => {
  for (const profile of ['mainline', 'v5.11']) {
    it(`${profile}: isolating at least half a pageblock re-types its mergeable pageblocks MOVABLE; putback frees to the tail`, () => {
      const k = createKernel('tiny', profile);
      const z = empty(k, 1);
      k.pb.set(136, MIGRATE_UNMOVABLE);
      k.pb.set(140, MIGRATE_CMA);
      k.pb.set(128, MIGRATE_RECLAIMABLE);
      put(k, 152, 3);
      put(k, 136, 3); // an UNMOVABLE + CMA block (as v5.10 could merge them)
      put(k, 129, 0);
      put(k, 130, 1);
      expect(isolateFreePage(k, z, 129, 0)).toBe(true); // below pageblock_order - 1: the block keeps its type
      expect(blocks(k, 128, 144)).toBe('RMUC');
      expect(isolateFreePage(k, z, 130, 1)).toBe(true); // half a pageblock
      expect(blocks(k, 128, 144)).toBe('MMUC');
      expect(isolateFreePage(k, z, 136, 3)).toBe(true);
      expect(blocks(k, 128, 144)).toBe('MMMC');
      expect([lists(k, 1), z.freePages, z.freeCma]).toEqual([['3M: 152'], 8, 0]);
      putbackIsolatedPage(k, z, 136, 3, MIGRATE_MOVABLE);
      expect(lists(k, 1)).toEqual(['3M: 152 136']);
    });
  }

  it('move_freepages_block moves every free block of the pageblock to the tail of the new type\'s lists', () => {
    const seen = perProfile(['v5.11', 'mainline'], (k, z) => {
      k.pb.set(144, MIGRATE_UNMOVABLE);
      put(k, 145, 0);
      put(k, 148, 0); // a MOVABLE page of another pageblock
      put(k, 129, 0);
      put(k, 130, 1);
      const moved = moveFreepagesBlock(k, z, 131, MIGRATE_UNMOVABLE);
      return { moved, lists: lists(k, 1), blocks: blocks(k, 128, 132), free: [z.freePages, z.nrFree[0]] };
    });
    expect(seen).toEqual({
      // v5.10: the lists only; the pageblock keeps its type (set by the caller).
      'v5.11': { moved: 3, lists: ['0U: 145 129', '0M: 148', '1U: 130'], blocks: 'M', free: [5, 3] },
      'mainline': { moved: 3, lists: ['0U: 145 129', '0M: 148', '1U: 130'], blocks: 'U', free: [5, 3] },
    });
  });
});

describe('fallbacks[] (mm/page_alloc.c)', () => {
  it('the order in which the other types are tried: UNMOVABLE and MOVABLE try RECLAIMABLE first, RECLAIMABLE tries UNMOVABLE', () => {
    const took: Record<string, string> = {};
    for (const [want, a, b] of [[MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE], [MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE], [MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, MIGRATE_MOVABLE]]) {
      const k = createKernel('tiny', 'mainline');
      const z = empty(k, 1);
      k.pb.set(128, b);
      k.pb.set(144, a);
      put(k, 128, 2);
      put(k, 144, 2); // both fallback types have an order-2 block: the first in fallbacks[want] wins
      took[T[want]] = T[rmqueueBuddy(k, z, 2, want, false) === 144 ? a : b];
    }
    expect(took).toEqual({ U: 'R', M: 'R', R: 'U' });
  });
});


// Written after the mutation run (reports/mutation/page_alloc.json) against the survivors it left.
describe('list ends, pcp lists per type, CMA order in __rmqueue', () => {
  it('expand() puts the split-off halves at the list heads; pages freed from a pcp list, or past a disabled one, too', () => {
    const k = createKernel('tiny', 'mainline');
    const z = empty(k, 1);
    put(k, 152, 2);
    put(k, 128, 4);
    delFromFreeList(k, z, 128);
    expand(k, z, 128, 0, 4, MIGRATE_MOVABLE);
    expect(lists(k, 1)).toEqual(['0M: 129', '1M: 130', '2M: 132 152', '3M: 136']);
    put(k, 150, 0);
    freeUnrefPage(k, z, 145);
    drainPagesZone(k, z, 0);
    z.pcpDisabled = 1;
    freeUnrefPage(k, z, 157);
    expect(lists(k, 1)[0]).toBe('0M: 157 145 150 129'); // none of them likely to merge: heads
  });

  it('free_unref_page: each pcp type has its list; HIGHATOMIC and CMA pages go on the MOVABLE one', () => {
    const k = createKernel('tiny', 'mainline');
    const z = empty(k, 1);
    for (const [pfn, mt] of [[128, MIGRATE_UNMOVABLE], [132, MIGRATE_RECLAIMABLE], [136, MIGRATE_HIGHATOMIC]]) {
      k.pb.set(pfn, mt);
      freeUnrefPage(k, z, pfn);
    }
    expect(pcp(k, 1)).toEqual(['U: 128U', 'M: 136H', 'R: 132R']);
    drainPagesZone(k, z, 0);
    k.pb.set(140, MIGRATE_CMA);
    freeUnrefPage(k, z, 140);
    expect(pcp(k, 1)).toEqual(['M: 140C']);
  });

  it('__rmqueue: CMA first only when it has a block of the order; CMA before the fallbacks; fallbacks when CMA is empty', () => {
    const k = createKernel('tiny', 'mainline');
    const z = empty(k, 0);
    for (const p of [64, 68, 72, 76]) put(k, p, 1); // 8 CMA pages in order-1 pieces
    put(k, 16, 2);
    expect([z.freePages, z.freeCma]).toEqual([12, 8]); // more than half CMA, but no order-2 CMA block
    expect(rmqueueBuddy(k, z, 2, MIGRATE_MOVABLE, true)).toBe(16);
    const k2 = createKernel('tiny', 'mainline');
    const z2 = empty(k2, 0);
    k2.pb.set(16, MIGRATE_UNMOVABLE);
    k2.pb.set(20, MIGRATE_UNMOVABLE);
    put(k2, 64, 2);
    put(k2, 16, 3); // 4 CMA of 12 free; no MOVABLE page at all
    expect(rmqueueBuddy(k2, z2, 2, MIGRATE_MOVABLE, true)).toBe(64);
    expect(rmqueueBuddy(k2, z2, 2, MIGRATE_MOVABLE, true)).toBe(16); // CMA empty: steal from UNMOVABLE
    expect(blocks(k2, 16, 24)).toBe('MM');
  });

  it('a failed allocation changes no counter (<= v6.9 accounts at the call site); an empty pcp list with nothing to refill returns -1', () => {
    const k = createKernel('tiny', 'v5.11');
    const z = empty(k, 1);
    expect(rmqueueBuddy(k, z, 0, MIGRATE_UNMOVABLE, false)).toBe(-1);
    expect(rmqueuePcplist(k, z, 0, MIGRATE_MOVABLE, true)).toBe(-1);
    expect([counters(z), z.pcpCount[0]]).toEqual([[0, 0, [0, 0, 0, 0, 0]], 0]);
  });
});

describe('more of __rmqueue_fallback', () => {
  const fallbackProfiles = ['v5.19', 'mainline'];
  it('a movable request that may claim takes the largest fallback block, not the smallest', () => {
    onEachFallback('tiny', (k, z) => {
      k.pb.set(128, MIGRATE_UNMOVABLE);
      for (let p = 144; p < 160; p += 4) k.pb.set(p, MIGRATE_UNMOVABLE);
      put(k, 130, 1);
      put(k, 144, 4);
      expect(rmqueueBuddy(k, z, 0, MIGRATE_MOVABLE, false)).toBe(144);
      expect(blocks(k, 128, 160)).toBe('UMMMMMMM');
    });
  });

  it('find_smallest takes the first fallback type with a block at the smallest order, which may differ from the largest one\'s', () => {
    onEachFallback(PB3, (k, z) => {
      k.pb.set(128, MIGRATE_RECLAIMABLE);
      k.pb.set(136, MIGRATE_UNMOVABLE);
      put(k, 130, 1);
      put(k, 137, 0);
      expect(rmqueueBuddy(k, z, 0, MIGRATE_MOVABLE, false)).toBe(137);
      expect([blocks(k, 128, 144), lists(k, 1)]).toEqual(['RU', ['1R: 130']]);
    });
  });

  it('find_smallest goes up from the requested order until it finds a block', () => {
    const seen = perProfile(fallbackProfiles, (k, z) => {
      k.pb.set(128, MIGRATE_UNMOVABLE);
      put(k, 130, 1);
      expect(rmqueueBuddy(k, z, 0, MIGRATE_MOVABLE, false)).toBe(130);
      return [blocks(k, 128, 136), lists(k, 1)];
    }, PB3);
    expect(seen).toEqual({ 'v5.19': ['U', ['0M: 131']], mainline: ['U', ['0U: 131']] });
  });

  it('a movable request that may not claim never claims, however much of the block is free', () => {
    onEachFallback('tiny', (k, z) => {
      k.pb.set(128, MIGRATE_UNMOVABLE);
      busy(k, 128, 1, true);
      busy(k, 130, 1, true);
      put(k, 129, 0);
      put(k, 131, 0); // 2 free + 2 LRU of 4, but order 0 < pageblock_order / 2
      expect(rmqueueBuddy(k, z, 0, MIGRATE_MOVABLE, false)).toBe(131);
      expect([blocks(k, 128, 132), lists(k, 1)]).toEqual(['U', ['0U: 129']]);
    });
  });

  it('the count of a pageblock stops at its end', () => {
    onEachFallback(PB3, (k, z) => {
      busy(k, 128, 2, false);
      busy(k, 132, 4, true);
      busy(k, 136, 1, true); // the next pageblock's first page: not counted
      put(k, 130, 1); // 2 free + 2 alike = 4 = half of 8
      expect(rmqueueBuddy(k, z, 0, MIGRATE_UNMOVABLE, false)).toBe(130);
      expect(blocks(k, 128, 136)).toBe('U');
    });
  });
});

describe('more of __free_one_page, __isolate_free_page, boot and the free path', () => {
  it('below pageblock_order buddies merge whatever type the freed page carries (a stale pcp type, <= v6.9)', () => {
    const k = createKernel('tiny', 'v5.19');
    const z = empty(k, 1);
    k.pb.set(128, MIGRATE_CMA);
    put(k, 129, 0);
    clearPage(k, 128, 0);
    freeOnePage(k, z, 128, 0, MIGRATE_MOVABLE, false);
    expect(lists(k, 1)).toEqual(['1M: 128']);
  });

  it('v5.10 with isolated pageblocks in the zone still merges two different types that are not ISOLATE', () => {
    const k = createKernel('tiny', 'v5.11');
    const z = empty(k, 1);
    z.nrIsolatePageblock = 1;
    k.pb.set(132, MIGRATE_UNMOVABLE);
    put(k, 132, 2);
    put(k, 128, 2);
    expect(lists(k, 1)).toEqual(['3M: 128']);
  });

  for (const profile of ['mainline', 'v5.11']) {
    it(`${profile}: __isolate_free_page re-types only the pageblocks the page covers; v6.10 moves their other free pages along`, () => {
      const k = createKernel('tiny', profile);
      const z = empty(k, 1);
      k.pb.set(128, MIGRATE_RECLAIMABLE);
      k.pb.set(144, MIGRATE_UNMOVABLE);
      put(k, 129, 0);
      put(k, 130, 1);
      put(k, 136, 3);
      isolateFreePage(k, z, 130, 1);
      isolateFreePage(k, z, 136, 3);
      expect(blocks(k, 128, 148)).toBe('MMMMU');
      expect(lists(k, 1)).toEqual([profile === 'mainline' ? '0M: 129' : '0R: 129']);
    });
  }

  it('freeing a page twice, or a pfn outside every zone, is a kernel bug', () => {
    const k = createKernel('tiny', 'mainline');
    expect(() => clearPage(k, 16, 0)).toThrow(/freeing pfn 16 which is already free/);
    expect(() => freePages(k, 300, 0)).toThrow(/freeing pfn 300 outside every zone/);
  });

  it('boot leaves holes bare even inside reserved and boot-allocated ranges', () => {
    const cfg = resolveConfig({ base: 'tiny-holes', name: 'tiny-holes-reserved', reserved: [{ startPfn: 0, endPfn: 4 }, { startPfn: 96, endPfn: 104 }], bootUnmovable: [{ startPfn: 4, endPfn: 8 }, { startPfn: 100, endPfn: 102 }] });
    const k = createKernel(cfg, 'mainline');
    expect([k.mm.flags[100], k.mm.refcount[100], k.mm.flags[101], k.mm.owner[101]]).toEqual([0, 0, 0, 0]);
    expect([k.zones[0].presentPages, k.zones[0].managedPages]).toEqual([126, 116]);
  });
});

describe('free_pcppages_bulk: which pcp list gives how many pages (Switches.pcpBulkFree)', () => {
  // tiny with room for six pages on a pcp list: pfns 4-6 are boot allocations in an UNMOVABLE block.
  const CFG = resolveConfig({ base: 'tiny', name: 'tiny-pcp64', pcpHigh: 64 });

  /** n bare pages of zone 0 in a MOVABLE pageblock, taken off the free lists (the rest of their block goes back). */
  function movablePages(k: Kernel, n: number): number[] {
    const z = k.zones[0];
    let h = -1;
    for (let p = z.start; p < z.end && h < 0; p++) if (k.mm.flags[p] & PG_buddy && k.mm.order[p] >= 2 && k.pb.get(p) === MIGRATE_MOVABLE) h = p;
    expect(h).toBeGreaterThanOrEqual(0);
    const o = k.mm.order[h];
    expect(isolateFreePage(k, z, h, o)).toBe(true);
    for (let p = h + n; p < h + (1 << o); p++) freeOnePage(k, z, p, 0, MIGRATE_MOVABLE, false);
    return Array.from({ length: n }, (_, i) => h + i);
  }

  /** Boot allocations of the UNMOVABLE block [4, 8) freed to cpu 0's pcp list. */
  function freeUnmovable(k: Kernel, pfns: number[]): void {
    for (const p of pfns) {
      k.dropAllocation(k.mm.owner[p]);
      clearPage(k, p, 0);
      freeUnrefPage(k, k.zones[0], p);
    }
  }

  /** Three UNMOVABLE then three MOVABLE order-0 pages onto cpu 0's pcp lists; their pfns. */
  function fillPcp(k: Kernel): { u: number[]; m: number[] } {
    k.current = 0;
    const u = [4, 5, 6];
    freeUnmovable(k, u);
    const m = movablePages(k, 3);
    for (const p of m) freeUnrefPage(k, k.zones[0], p);
    return { u, m };
  }

  /** The pfns that leave a pcp list during fn, in order. */
  function drained(k: Kernel, fn: () => void): number[] {
    const out: number[] = [];
    const del = k.mm.listDel.bind(k.mm);
    k.mm.listDel = (p: number) => {
      if (k.mm.flags[p] & PG_pcp) out.push(p);
      return del(p);
    };
    fn();
    return out;
  }

  // pcp lists take a freed page at the head and free_pcppages_bulk takes the tail: oldest first.
  for (const [profile, order] of [
    ['v5.13', 'M U U M U M'], // batch_free over 3 lists: 1 from MOVABLE, 2 from UNMOVABLE (an empty list between), ...
    ['v5.16', 'M U U U M M'], // batch_free over 15 lists: the 12 empty high-order lists make UNMOVABLE give all it has
    ['mainline', 'U U U M M M'], // the requested list (0 for a drain) first, each drained whole
  ] as const) {
    it(`${profile}: drain_pages_zone frees ${order}`, () => {
      const k = createKernel(CFG, profile);
      const { u, m } = fillPcp(k);
      const got = drained(k, () => drainPagesZone(k, k.zones[0], 0));
      const name = (p: number) => (u.includes(p) ? 'U' : 'M');
      expect(got.map(name).join(' ')).toBe(order);
      // each list from its tail: the pages in the order they were freed
      expect(got.filter((p) => u.includes(p))).toEqual(u);
      expect(got.filter((p) => m.includes(p))).toEqual(m);
      expect(k.zones[0].pcpCount[0]).toBe(0);
      expect(checkConservation(k)).toBeNull();
    });
  }

  it('a pcp->count the lists do not hold is a kernel bug, not an endless loop', () => {
    for (const profile of ['v5.13', 'mainline']) {
      const k = createKernel(CFG, profile);
      fillPcp(k);
      k.zones[0].pcpCount[0] += 2;
      expect(() => drainPagesZone(k, k.zones[0], 0)).toThrow('free_pcppages_bulk: pcp->count 8 but 6 pages on cpu 0');
    }
  });

  it('v5.18+: a bulk free on reaching pcp->high starts with the freed page\'s list; v5.17 and before with MOVABLE after list 0', () => {
    for (const [profile, first] of [['v5.19', 'U'], ['v5.16', 'M']] as const) {
      const k = createKernel(resolveConfig({ base: 'tiny', name: 'tiny-pcp6', pcpHigh: 6 }), profile);
      const z = k.zones[0];
      k.current = 0;
      // three MOVABLE pages, then UNMOVABLE ones until the sixth page triggers a bulk free of pcp->batch (2)
      for (const p of movablePages(k, 3)) freeUnrefPage(k, z, p);
      freeUnmovable(k, [4, 5]);
      k.dropAllocation(k.mm.owner[6]);
      clearPage(k, 6, 0);
      const u = [4, 5, 6];
      const got = drained(k, () => freeUnrefPage(k, z, 6));
      expect([profile, got.length, u.includes(got[0]) ? 'U' : 'M']).toEqual([profile, 2, first]);
    }
  });
});

describe('nr_pcp_free: the bulk free on pcp->high (Switches.pcpFreeFactor, v5.14-v6.6)', () => {
  /** The sizes of the bulk frees while `n` order-0 pages of ZONE_MOVABLE are freed one by one on cpu 0 (one pcp allocation before the page `allocAfter`). */
  function bulkSizes(profile: string, n: number, allocAfter = -1): number[] {
    const k = createKernel('small', profile);
    const z = k.zones[1];
    k.current = 0;
    const start = z.start;
    const taken: number[] = [];
    for (let p = start; p < start + n; p += 1 << k.maxOrder) {
      expect(isolateFreePage(k, z, p, k.maxOrder)).toBe(true);
      taken.push(p);
    }
    const sizes: number[] = [];
    for (let i = 0; i < n; i++) {
      if (i === allocAfter) expect(rmqueuePcplist(k, z, 0, MIGRATE_MOVABLE, false)).toBeGreaterThanOrEqual(0);
      const before = z.pcpCount[0];
      freeUnrefPage(k, z, start + i);
      if (z.pcpCount[0] <= before) sizes.push(before + 1 - z.pcpCount[0]);
    }
    expect(checkFreelistCounters(k)).toBeNull();
    return sizes;
  }

  it('v5.14-v6.6: each bulk free without an allocation in between doubles, up to high - batch (186 - 31)', () => {
    expect(bulkSizes('v5.19', 1024).slice(0, 6)).toEqual([31, 62, 124, 155, 155, 155]);
    expect(bulkSizes('v5.16', 1024).slice(0, 4)).toEqual([31, 62, 124, 155]);
  });

  it('an allocation from the pcp list halves the factor', () => {
    // three bulk frees (factor 3), one allocation (factor 1): the next bulk free is 62
    const sizes = bulkSizes('v5.19', 700, 186 + 31 + 62 + 10);
    expect(sizes.slice(0, 4)).toEqual([31, 62, 124, 62]);
  });

  it('before v5.14 (and from v6.7, whose free_count is not modelled) every bulk free is pcp->batch', () => {
    expect(bulkSizes('v5.13', 1024).slice(0, 4)).toEqual([31, 31, 31, 31]);
    expect(bulkSizes('mainline', 1024).slice(0, 4)).toEqual([31, 31, 31, 31]);
  });
});
