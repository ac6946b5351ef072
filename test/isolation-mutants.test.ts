/**
 * Page isolation edge cases (src/kernel/page_isolation.ts), written against the survivors of a
 * mutation run: zone / pfn 0 / hole / offline-block boundaries, the unset_migratetype_isolate
 * buddy shortcut, has_unmovable_pages page by page, test_pages_isolated with holes and offline
 * pages, the split_free_page window and straddling compound pages. Each test names the kernel
 * function and version whose behaviour it pins (checked against 6.1 / 6.12 mm/page_isolation.c).
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import { resolveConfig } from '../src/kernel/config.js';
import type { Kernel } from '../src/kernel/machine.js';
import type { Zone } from '../src/kernel/mmzone.js';
import { withSwitches } from '../src/kernel/profiles.js';
import { freeOnePage, freeUnrefPage, isolateFreePage, listMigratetype, prepNewPage } from '../src/kernel/page_alloc.js';
import {
  MEMORY_OFFLINE, REPORT_FAILURE, firstValidPage, hasUnmovablePages, setMigratetypeIsolate, startIsolatePageRange,
  testPagesIsolated, undoIsolatePageRange, unsetMigratetypeIsolate,
} from '../src/kernel/page_isolation.js';
import { offlineAndRemoveMemory, offlineBlock } from '../src/kernel/memory_hotplug.js';
import { checkFreelistCounters } from '../properties/freelist-counters.js';
import { checkNoCrossMerge } from '../properties/no-cross-migratetype-merge.js';
import {
  MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, PG_buddy, PG_hugetlb, PG_lru, PG_offline, PG_pinned, PG_valid,
} from '../src/kernel/types.js';
import { drive } from './helpers.js';

const MOV = MIGRATE_MOVABLE;

function isolatedBlocks(k: Kernel): number[] {
  const out: number[] = [];
  for (let p = 0; p < k.nrPfns; p += 1 << k.pageblockOrder) if (k.pb.get(p) === MIGRATE_ISOLATE) out.push(p);
  return out;
}

/** The free buddies in [a, b) as "pfn:order". */
function buddies(k: Kernel, a: number, b: number): string[] {
  const out: string[] = [];
  for (let p = a; p < b; p++) if (k.mm.flags[p] & PG_buddy) out.push(`${p}:${k.mm.order[p]}`);
  return out;
}

/**
 * Take the free buddy at `head` off the lists (__isolate_free_page) and lay its pfns out again, one
 * character per pfn: 'f' freed back to buddy (order 0, merging as __free_one_page does), 'p' freed
 * to the pcp list, 'u' in use unmovable (slab), 'm' in use on the LRU, 'o' PageOffline held by its
 * driver (virtio-mem fake-offline), 'H' the head of an order-1 LRU compound page (its tail follows,
 * written 't').
 */
function layout(k: Kernel, head: number, order: number, pattern: string): Zone {
  const z = k.zoneOf(head)!;
  expect(k.mm.flags[head] & PG_buddy).toBeTruthy();
  expect(k.mm.order[head]).toBe(order);
  expect(pattern.length).toBe(1 << order);
  isolateFreePage(k, z, head, order);
  const mm = k.mm;
  for (let i = 0; i < pattern.length; i++) {
    const p = head + i;
    mm.flags[p] &= ~PG_buddy;
    mm.order[p] = 0;
    mm.refcount[p] = 0;
  }
  for (let i = 0; i < pattern.length; i++) {
    const p = head + i;
    const c = pattern[i];
    if (c === 'u') prepNewPage(k, p, 0, 99, 0, 7);
    else if (c === 'm') prepNewPage(k, p, 0, 99, PG_lru, 7);
    else if (c === 'o') prepNewPage(k, p, 0, 99, PG_offline, 0);
    else if (c === 'H') prepNewPage(k, p, 1, 99, PG_lru, 7);
  }
  for (let i = 0; i < pattern.length; i++) {
    const p = head + i;
    if (pattern[i] === 'f') freeOnePage(k, z, p, 0, k.pb.get(p), false);
    else if (pattern[i] === 'p') freeUnrefPage(k, z, p);
  }
  return z;
}

/** A movable, LRU compound page of `order` at `pfn` (carved out of the free buddy at `from`), owned by an allocation `id`. */
function thpAt(k: Kernel, from: number, fromOrder: number, pfn: number, order: number, id: string): void {
  const pattern = [...Array(1 << fromOrder)].map((_, i) => (from + i >= pfn && from + i < pfn + (1 << order) ? 'x' : 'f')).join('');
  layout(k, from, fromOrder, pattern);
  const al = k.newAllocation({ id, kind: 'pages', pfn, nrPages: 1 << order, order, migratetype: MOV, pinned: false });
  prepNewPage(k, pfn, order, al.handle, PG_lru, k.nextToken++);
}

/** tiny without boot reservations at pfn 0, so that pfn 0 is free (or, with unmovableAt0, in use). */
function pfn0Config(unmovableAt0: boolean) {
  return resolveConfig({
    base: 'tiny', name: unmovableAt0 ? 'tiny-slab0' : 'tiny-free0', reserved: [],
    bootUnmovable: [unmovableAt0 ? { startPfn: 0, endPfn: 4 } : { startPfn: 8, endPfn: 12 }],
  });
}

/** tiny with one pageblock (100..104) that has no memmap at all. */
const holeBlock = resolveConfig({ base: 'tiny', name: 'tiny-hole-block', holes: [{ startPfn: 100, endPfn: 104 }] });

describe('has_unmovable_pages, page by page (6.12 mm/page_isolation.c)', () => {
  it('free buddies are skipped whole, pcp pages one by one; the page after them is still looked at', () => {
    const k = createKernel('tiny', 'v6.10');
    const z = layout(k, 48, 4, 'ffuu' + 'puuu' + 'f'.repeat(8));
    expect(buddies(k, 48, 52)).toEqual(['48:1']);
    expect(hasUnmovablePages(k, z, 48, 52, MOV, 0)).toBe(50); // pfn += (1 << buddy_order) - 1, then 50
    // A pcp page has refcount 0 and no PageBuddy: skipped alone (its cached migratetype is no order).
    expect(k.mm.order[52]).toBe(MOV);
    expect(hasUnmovablePages(k, z, 52, 56, MOV, 0)).toBe(53);
  });

  it('a compound page is skipped to its end, and the pfn right after it is checked', () => {
    const k = createKernel('tiny', 'v6.10');
    const z = layout(k, 48, 4, 'Htuu' + 'f'.repeat(12));
    expect(hasUnmovablePages(k, z, 48, 52, MOV, 0)).toBe(50);
  });

  it('LRU pages are movable; PageOffline pages count as movable only for MEMORY_OFFLINE', () => {
    const k = createKernel('tiny', 'mainline');
    const z = layout(k, 48, 4, 'mmff' + 'ooff' + 'uoff' + 'ffff');
    expect(hasUnmovablePages(k, z, 48, 52, MOV, 0)).toBe(-1);
    // "We treat all PageOffline() pages as movable when offlining" (MEMORY_OFFLINE only).
    expect(hasUnmovablePages(k, z, 52, 56, MOV, MEMORY_OFFLINE)).toBe(-1);
    expect(hasUnmovablePages(k, z, 52, 56, MOV, 0)).toBe(52);
    // MEMORY_OFFLINE does not excuse an ordinary unmovable page.
    expect(hasUnmovablePages(k, z, 56, 60, MOV, MEMORY_OFFLINE)).toBe(56);
  });

  it('PageReserved is unmovable even in ZONE_MOVABLE (bootmem there, e.g. movablecore)', () => {
    const cfg = resolveConfig({ base: 'tiny', name: 'tiny-movable-reserved', reserved: [{ startPfn: 0, endPfn: 4 }, { startPfn: 130, endPfn: 131 }] });
    const k = createKernel(cfg, 'v6.10');
    expect(hasUnmovablePages(k, k.zones[1], 128, 132, MOV, 0)).toBe(130);
    expect(setMigratetypeIsolate(k, 128, MOV, 0, 128, 132)).toBe('-EBUSY');
  });

  it('v5.19 (844fbae63e1f): only [start, end) of the block is scanned; v5.18 scans the whole block', () => {
    for (const [profile, want] of [['v5.19', '0'], ['v6.10', '0'], ['v5.18', '-EBUSY']] as const) {
      const k = createKernel('tiny', profile);
      layout(k, 48, 4, 'fffu' + 'f'.repeat(12));
      expect(setMigratetypeIsolate(k, 48, MOV, 0, 48, 51), profile).toBe(want);
    }
  });

  it('set_migratetype_isolate with REPORT_FAILURE dumps the unmovable page (pfn 0 included); silent otherwise', () => {
    const k = createKernel('tiny', 'v6.10');
    expect(setMigratetypeIsolate(k, 4, MOV, 0, 4, 8)).toBe('-EBUSY');
    expect(k.events).toEqual([]);
    expect(setMigratetypeIsolate(k, 0, MOV, REPORT_FAILURE, 0, 4)).toBe('-EBUSY'); // PageReserved at pfn 0
    expect(k.events).toEqual(['page_isolation: unmovable page at pfn 0']);
    expect(k.zones[0].nrIsolatePageblock).toBe(0);
    expect(k.pb.get(0)).toBe(MOV);
  });
});

describe('set/unset_migratetype_isolate', () => {
  it('unset on a block that is not isolated does nothing (6.12: `if (!is_migrate_isolate_page(page)) goto out`)', () => {
    const k = createKernel('tiny', 'v6.10');
    unsetMigratetypeIsolate(k, 16, MIGRATE_UNMOVABLE);
    expect(k.pb.get(16)).toBe(MOV);
    expect(k.zones[0].nrIsolatePageblock).toBe(0);
    expect(checkFreelistCounters(k)).toBeNull();
  });

  it('v6.10 unset moves the block back through move_freepages_block_isolate without a zone-edge warning', () => {
    const k = createKernel('tiny', 'v6.10');
    expect(setMigratetypeIsolate(k, 48, MOV, 0, 48, 52)).toBe('0');
    unsetMigratetypeIsolate(k, 48, MOV);
    expect(k.events).toEqual([]);
    expect(k.pb.get(48)).toBe(MOV);
    expect(buddies(k, 48, 64)).toEqual(['48:4']);
    // A block that does not start with a free page: its free pages are moved back, still no warning.
    const m = createKernel('tiny', 'v6.10');
    layout(m, 48, 4, 'mfff' + 'f'.repeat(12));
    expect(setMigratetypeIsolate(m, 48, MOV, 0, 48, 52)).toBe('0');
    unsetMigratetypeIsolate(m, 48, MOV);
    expect(m.events).toEqual([]);
    expect([listMigratetype(m, 49), listMigratetype(m, 50)]).toEqual([MOV, MOV]);
    expect(checkFreelistCounters(m)).toBeNull();
  });

  it('<= v6.9 move_freepages_block puts the block\'s free pages on the ISOLATE list and takes them out of NR_FREE_PAGES', () => {
    const k = createKernel('tiny', 'v5.19');
    const z = k.zones[0];
    const before = z.freePages;
    expect(setMigratetypeIsolate(k, 16, MOV, 0, 16, 20)).toBe('0');
    expect(listMigratetype(k, 16)).toBe(MIGRATE_ISOLATE);
    expect(z.freePages).toBe(before - 16);
  });

  it('a block after a small free buddy: its own free pages move (find_large_buddy finds no buddy covering it)', () => {
    // 48..51 is a free order-2 buddy that ends where block 52 starts: it is no "large buddy" of 52.
    for (const profile of ['v5.19', 'v6.10']) {
      const k = createKernel('tiny', profile);
      layout(k, 48, 4, 'ffff' + 'mfff' + 'f'.repeat(8));
      expect(buddies(k, 48, 56), profile).toEqual(['48:2', '53:0', '54:1']);
      expect(setMigratetypeIsolate(k, 52, MOV, 0, 52, 56)).toBe('0');
      expect(listMigratetype(k, 48), profile).toBe(MOV);
      expect(listMigratetype(k, 53), profile).toBe(MIGRATE_ISOLATE);
      expect(listMigratetype(k, 54), profile).toBe(MIGRATE_ISOLATE);
      expect(checkFreelistCounters(k), profile).toBeNull();
    }
  });

  it('unset with a free page below pageblock order at the block start: every free page of the block moves back', () => {
    // 5.10: the __isolate_free_page shortcut is only for order >= pageblock_order.
    const k = createKernel('tiny', 'v5.11');
    layout(k, 48, 4, 'fmff' + 'f'.repeat(12));
    expect(setMigratetypeIsolate(k, 48, MOV, 0, 48, 52)).toBe('0');
    expect(buddies(k, 48, 52)).toEqual(['48:0', '50:1']);
    unsetMigratetypeIsolate(k, 48, MOV);
    expect(listMigratetype(k, 48)).toBe(MOV);
    expect(listMigratetype(k, 50)).toBe(MOV);
    expect(checkFreelistCounters(k)).toBeNull();
  });

  it('5.10 takes the buddy shortcut when the buddy pfn is merely valid; v5.19+ only when it is a free buddy (find_buddy_page_pfn)', () => {
    // An order-3 free page 48..55 spans block 48 and a block 52 typed UNMOVABLE (typed by an
    // earlier fallback steal; mergeable types merged across blocks before 6.10); 56..63 is in use.
    // __isolate_free_page re-types every mergeable block it covers MOVABLE: only the 5.10 path
    // goes through it here.
    for (const [profile, want] of [['v5.11', MOV], ['v5.19', MIGRATE_UNMOVABLE]] as const) {
      const k = createKernel('tiny', profile);
      const z = k.zones[0];
      isolateFreePage(k, z, 48, 4);
      k.pb.set(52, MIGRATE_UNMOVABLE);
      for (let p = 56; p < 64; p++) prepNewPage(k, p, 0, 99, 0, 7);
      for (let p = 48; p < 56; p++) freeOnePage(k, z, p, 0, k.pb.get(p), false);
      expect(buddies(k, 48, 64), profile).toEqual(['48:3']);
      expect(setMigratetypeIsolate(k, 48, MOV, 0, 48, 52)).toBe('0');
      unsetMigratetypeIsolate(k, 48, MOV);
      expect(k.pb.get(52), profile).toBe(want);
      expect(buddies(k, 48, 64), profile).toEqual(['48:3']);
      expect(k.pb.get(48)).toBe(MOV);
      expect(z.nrIsolatePageblock).toBe(0);
    }
  });

  it('patch unset-isolate-pageblock-buddy: the shortcut (and merge) stays for order == pageblock_order, a larger buddy is split per block', () => {
    const patched = withSwitches('v6.10', { unsetIsolateLargeBuddy: false });
    const k = createKernel('tiny', patched);
    setMigratetypeIsolate(k, 52, MOV, 0, 52, 56);
    expect(buddies(k, 48, 64)).toEqual(['48:2', '52:2', '56:3']);
    unsetMigratetypeIsolate(k, 52, MOV);
    expect(buddies(k, 48, 64)).toEqual(['48:4']); // put back and merged
    // Two isolated blocks merge (same type) into an order-3 ISOLATE buddy at 48 when a page is freed there.
    for (const [profile, cross] of [[patched, false], ['v6.10', true]] as const) {
      const m = createKernel('tiny', profile);
      const z = layout(m, 48, 4, 'm' + 'f'.repeat(15));
      expect(drive(startIsolatePageRange(m, 48, 56, MOV, 0))).toBe('0');
      m.mm.flags[48] &= ~PG_lru;
      m.mm.refcount[48] = 0;
      freeUnrefPage(m, z, 48); // straight to buddy: ISOLATE block
      expect(buddies(m, 48, 64)).toEqual(['48:3', '56:3']);
      unsetMigratetypeIsolate(m, 48, MOV);
      if (cross) expect(checkNoCrossMerge(m)).toMatch(/spans a Movable pageblock and a Isolate pageblock/); // the latent upstream hole
      else {
        expect(buddies(m, 48, 64)).toEqual(['48:2', '52:2', '56:3']);
        expect(checkNoCrossMerge(m)).toBeNull();
      }
    }
  });
});

describe('memmap of hot-removed memory (offline_and_remove_memory)', () => {
  it('set/unset_migratetype_isolate and isolate_single_pageblock each report their own page_zone() read', () => {
    const k = createKernel('tiny', 'v6.10');
    expect(drive(offlineAndRemoveMemory(k, 224, 32))).toBe('0');
    expect(() => setMigratetypeIsolate(k, 224, MOV, 0, 224, 228)).toThrow(/^set_migratetype_isolate: page_zone\(pfn_to_page\(224\)\) reads the freed memmap/);
    expect(() => unsetMigratetypeIsolate(k, 228, MOV)).toThrow(/^unset_migratetype_isolate: page_zone\(pfn_to_page\(228\)\)/);
    expect(() => drive(startIsolatePageRange(k, 232, 236, MOV, 0))).toThrow(/^isolate_single_pageblock: page_zone\(pfn_to_page\(232\)\)/);
  });

  it('without memory hotplug (no hotplug state) every pfn with a memmap is online', () => {
    const k = createKernel('tiny', 'v5.19');
    delete k.ext.hotplug; // CONFIG_MEMORY_HOTPLUG=n: pfn_to_online_page() is pfn_valid()
    expect(firstValidPage(k, 52, 4)).toBe(52);
    expect(drive(startIsolatePageRange(k, 52, 56, MOV, 0))).toBe('0');
    expect(buddies(k, 48, 64)).toEqual(['48:2', '52:2', '56:3']);
    expect(testPagesIsolated(k, 52, 56, 0)).toBe('0');
    drive(undoIsolatePageRange(k, 52, 56, MOV));
    expect(buddies(k, 48, 64)).toEqual(['48:4']);
  });
});

describe('pfn 0, hole blocks and offline blocks', () => {
  it('v5.19 split_free_page of a free buddy that starts at pfn 0 (no __ffs(0): the first piece is cut by the offset)', () => {
    const k = createKernel(pfn0Config(false), 'v5.19');
    expect(buddies(k, 0, 8)).toEqual(['0:3']);
    expect(drive(startIsolatePageRange(k, 4, 8, MOV, 0))).toBe('0');
    expect(buddies(k, 0, 8)).toEqual(['0:2', '4:2']);
    expect(isolatedBlocks(k)).toEqual([4]);
  });

  it('pageblock 0 is isolated, tested and un-isolated like any other', () => {
    const k = createKernel(pfn0Config(false), 'v6.10');
    expect(testPagesIsolated(k, 0, 4, 0)).toBe('-EBUSY'); // not isolated yet
    expect(drive(startIsolatePageRange(k, 0, 4, MOV, 0))).toBe('0');
    expect(isolatedBlocks(k)).toEqual([0]);
    expect(testPagesIsolated(k, 0, 4, 0)).toBe('0');
    drive(undoIsolatePageRange(k, 0, 4, MOV));
    expect(isolatedBlocks(k)).toEqual([]);
    expect(k.zones[0].nrIsolatePageblock).toBe(0);
  });

  it('an unmovable page in pageblock 0 fails start_isolate_page_range (max-order and naive paths)', () => {
    for (const profile of ['v5.11', 'pageblock-naive']) {
      const k = createKernel(pfn0Config(true), profile);
      expect(drive(startIsolatePageRange(k, 0, 16, MOV, 0)), profile).toBe('-EBUSY');
      expect(isolatedBlocks(k), profile).toEqual([]);
    }
  });

  it('a pageblock without any memmap is skipped by start/undo (__first_valid_page() is NULL)', () => {
    for (const profile of ['v5.11', 'v5.19', 'pageblock-naive']) {
      const k = createKernel(holeBlock, profile);
      expect(drive(startIsolatePageRange(k, 96, 112, MOV, 0)), profile).toBe('0');
      expect(isolatedBlocks(k), profile).toEqual([96, 104, 108]);
      expect(testPagesIsolated(k, 96, 112, 0), profile).toBe('0');
      drive(undoIsolatePageRange(k, 96, 112, MOV));
      expect(isolatedBlocks(k), profile).toEqual([]);
    }
  });

  it('v6.10 isolate_single_pageblock scans only up to the boundary, not the free page that starts at it', () => {
    // Range [100, 104): the block before the end boundary has no memmap; 104 starts a free order-3 page.
    const k = createKernel(holeBlock, 'v6.10');
    expect(buddies(k, 104, 112)).toEqual(['104:3']);
    expect(drive(startIsolatePageRange(k, 100, 104, MOV, 0))).toBe('0');
    expect(k.events.filter((e) => e.startsWith('WARN'))).toEqual([]);
    expect(buddies(k, 104, 112)).toEqual(['104:3']);
  });

  it('tiny-holes (pre-5.14): test_pages_isolated steps over pfn_valid_within() holes inside a free range', () => {
    const k = createKernel('tiny-holes', 'v5.11');
    expect(drive(startIsolatePageRange(k, 96, 112, MOV, 0))).toBe('0');
    expect(buddies(k, 96, 112)).toEqual(['96:2', '102:1', '104:3']);
    expect(testPagesIsolated(k, 96, 112, 0)).toBe('0');
  });

  it('test_pages_isolated over an offlined memory block: no online page is -EBUSY, and offline blocks inside an isolated range are skipped', () => {
    const k = createKernel('tiny', 'v6.10');
    expect(drive(offlineBlock(k, 5))).toBe('0'); // 160..192
    expect(setMigratetypeIsolate(k, 192, MOV, 0, 192, 196)).toBe('0');
    // 6.12: `page = __first_valid_page(start_pfn, end_pfn - start_pfn); if (... || !page) ret = -EBUSY`
    expect(testPagesIsolated(k, 160, 192, MEMORY_OFFLINE)).toBe('-EBUSY');
    expect(testPagesIsolated(k, 188, 192, MEMORY_OFFLINE)).toBe('-EBUSY'); // the isolated block after it does not count
    // The walk over [160, 196): offline blocks have no online page to check; block 192 is isolated and free.
    expect(testPagesIsolated(k, 160, 196, MEMORY_OFFLINE)).toBe('0');
  });

  it('test_pages_isolated(MEMORY_OFFLINE): a PageOffline page passes once its driver dropped the reference', () => {
    const k = createKernel('tiny', 'mainline');
    layout(k, 48, 4, 'offf' + 'f'.repeat(12));
    expect(setMigratetypeIsolate(k, 48, MOV, MEMORY_OFFLINE, 48, 52)).toBe('0');
    expect(testPagesIsolated(k, 48, 52, MEMORY_OFFLINE)).toBe('-EBUSY'); // page_count() still 1
    k.mm.refcount[48] = 0; // MEM_GOING_OFFLINE: the driver drops its reference
    expect(testPagesIsolated(k, 48, 52, MEMORY_OFFLINE)).toBe('0');
    expect(testPagesIsolated(k, 48, 52, 0)).toBe('-EBUSY'); // only memory offline skips PageOffline pages
  });
});

describe('start_isolate_page_range failure paths', () => {
  it('v5.19: a middle block that fails undoes the first blocks and the last one', () => {
    const k = createKernel('tiny', 'v5.19');
    layout(k, 48, 4, 'ffff' + 'ffff' + 'fuff' + 'ffff');
    expect(drive(startIsolatePageRange(k, 48, 64, MOV, 0))).toBe('-EBUSY');
    expect(isolatedBlocks(k)).toEqual([]);
    expect(k.zones[0].nrIsolatePageblock).toBe(0);
    expect(checkFreelistCounters(k)).toBeNull();
  });
});

describe('the zone->lock sections of the range functions (one per pageblock, kernel-spec §17)', () => {
  it('each path yields its own sections in order', () => {
    const seen = (profile: string, f: (k: Kernel) => Generator<string, unknown, unknown>, prep?: (k: Kernel) => void) => {
      const k = createKernel('tiny', profile);
      prep?.(k);
      const s: string[] = [];
      drive(f(k) as never, s);
      return s;
    };
    const iso = (a: number, b: number) => (k: Kernel) => startIsolatePageRange(k, a, b, MOV, 0) as never;
    expect(seen('v5.11', iso(16, 24))).toEqual(['set_migratetype_isolate', 'set_migratetype_isolate']);
    expect(seen('v5.19', iso(16, 32))).toEqual(['isolate_single_pageblock', 'isolate_single_pageblock', 'set_migratetype_isolate', 'set_migratetype_isolate']);
    expect(seen('v5.19', iso(52, 56))).toEqual(['split_free_page', 'isolate_single_pageblock', 'isolate_single_pageblock']);
    expect(seen('v6.10', (k) => undoIsolatePageRange(k, 16, 24, MOV) as never, (k) => drive(startIsolatePageRange(k, 16, 24, MOV, 0))))
      .toEqual(['unset_migratetype_isolate', 'unset_migratetype_isolate']);
    // v5.11's failure path (before the v5.16 undo fix) un-isolates block by block too.
    expect(seen('v5.11', iso(48, 64), (k) => layout(k, 48, 4, 'f'.repeat(12) + 'uuuu')))
      .toEqual(['set_migratetype_isolate', 'set_migratetype_isolate', 'set_migratetype_isolate',
        'unset_migratetype_isolate', 'unset_migratetype_isolate', 'unset_migratetype_isolate']);
  });
});

describe('isolate_single_pageblock and pages crossing the boundary (v5.19-v6.9)', () => {
  it('split_free_page finds the buddy changed (-ENOENT): the pfn is looked at again', () => {
    // Between the scan and split_free_page's zone->lock, another CPU allocates the whole free
    // order-4 page as an unmovable compound page: the rescan sees it straddling and fails.
    const k = createKernel('tiny', 'v5.19');
    const z = k.zones[0];
    const g = startIsolatePageRange(k, 52, 56, MOV, 0);
    for (let r = g.next(); r.value !== 'split_free_page'; r = g.next()) expect(r.done).toBe(false);
    isolateFreePage(k, z, 48, 4);
    prepNewPage(k, 48, 4, 99, 0, 7);
    expect(drive(g)).toBe('-EBUSY');
    expect(isolatedBlocks(k)).toEqual([]);
    expect(z.nrIsolatePageblock).toBe(0);
    expect(k.mm.flags[48] & PG_buddy).toBe(0);
  });

  it('after -ENOENT the changed page is handled: a THP allocated in the window is migrated out of the range', () => {
    const k = createKernel('tiny', 'v5.19');
    const z = k.zones[0];
    const g = startIsolatePageRange(k, 52, 64, MOV, 0);
    for (let r = g.next(); r.value !== 'split_free_page'; r = g.next()) expect(r.done).toBe(false);
    isolateFreePage(k, z, 48, 4);
    const al = k.newAllocation({ id: 'thp', kind: 'pages', pfn: 48, nrPages: 16, order: 4, migratetype: MOV, pinned: false });
    prepNewPage(k, 48, 4, al.handle, PG_lru, k.nextToken++);
    expect(drive(g)).toBe('0');
    expect(k.lookup('thp')!.pfn).not.toBe(48);
    expect(isolatedBlocks(k)).toEqual([52, 56, 60]);
    expect(buddies(k, 48, 52)).toEqual(['48:2']);
  });

  it('a THP starting in the isolated end block is migrated without isolating its block a second time', () => {
    const k = createKernel('tiny', 'v5.19');
    thpAt(k, 48, 4, 48, 3, 'thp');
    const s: string[] = [];
    expect(drive(startIsolatePageRange(k, 48, 52, MOV, 0), s)).toBe('0');
    expect(s).toContain('isolate_single_pageblock:migrate');
    expect(k.lookup('thp')!.pfn).not.toBe(48);
    expect(isolatedBlocks(k)).toEqual([48]);
    expect(k.zones[0].nrIsolatePageblock).toBe(1);
    expect(testPagesIsolated(k, 48, 52, 0)).toBe('0');
    expect(checkNoCrossMerge(k)).toBeNull();
  });

  it('a THP straddling the start boundary: after migration the free page holding it (head further down) is split', () => {
    const k = createKernel('tiny', 'v5.19');
    thpAt(k, 48, 4, 56, 3, 'thp');
    // Re-free 8..15 so that the migration target comes from there, not from 48..55.
    isolateFreePage(k, k.zones[0], 8, 3);
    freeOnePage(k, k.zones[0], 8, 3, MOV, false);
    expect(drive(startIsolatePageRange(k, 60, 64, MOV, 0))).toBe('0');
    expect(k.lookup('thp')!.pfn).toBe(8);
    expect(isolatedBlocks(k)).toEqual([60]);
    expect(buddies(k, 48, 64)).toEqual(['48:3', '56:2', '60:2']);
    expect(checkNoCrossMerge(k)).toBeNull();
    expect(testPagesIsolated(k, 60, 64, 0)).toBe('0');
  });
});

describe('pages crossing the boundary: what fails, what is skipped', () => {
  it('v6.10 refuses an LRU compound page straddling the start boundary and un-isolates the block it isolated', () => {
    const k = createKernel('tiny', 'v6.10');
    thpAt(k, 48, 4, 56, 3, 'thp');
    expect(drive(startIsolatePageRange(k, 60, 64, MOV, 0))).toBe('-EBUSY');
    expect(isolatedBlocks(k)).toEqual([]);
    expect(k.zones[0].nrIsolatePageblock).toBe(0);
    expect(k.lookup('thp')!.pfn).toBe(56);
  });

  it('6.12 skips a hugetlb folio straddling the boundary (`|| PageHuge(page)`): no migration, no failure', () => {
    // An order-3 hugetlb folio (an hstate larger than a pageblock) at 56..63; the range is [60, 64).
    const k = createKernel('tiny', 'v6.10');
    layout(k, 48, 4, 'f'.repeat(8) + 'xxxxxxxx');
    prepNewPage(k, 56, 3, 99, PG_hugetlb, 7);
    expect(drive(startIsolatePageRange(k, 60, 64, MOV, 0))).toBe('0');
    expect(isolatedBlocks(k)).toEqual([60]);
    expect(k.mm.flags[56] & PG_hugetlb).toBeTruthy();
  });

  it('v5.19: a pinned THP straddling the boundary stays; no free page holds its pfn afterwards: -EBUSY, nothing left isolated', () => {
    // isolate_migratepages skips the pinned page, so the migration "succeeds" without moving it;
    // the search for the free page that now holds pfn ("stop if we cannot find the free page",
    // ++order >= MAX_ORDER) fails because 48..55 is in use.
    const k = createKernel('tiny', 'v5.19');
    layout(k, 48, 4, 'uuuuuuuu' + 'xxxxxxxx');
    const al = k.newAllocation({ id: 'thp', kind: 'pages', pfn: 56, nrPages: 8, order: 3, migratetype: MOV, pinned: true });
    prepNewPage(k, 56, 3, al.handle, PG_lru | PG_pinned, k.nextToken++);
    expect(drive(startIsolatePageRange(k, 60, 64, MOV, 0))).toBe('-EBUSY');
    expect(isolatedBlocks(k)).toEqual([]);
    expect(k.zones[0].nrIsolatePageblock).toBe(0);
    expect(k.lookup('thp')!.pfn).toBe(56);
  });

  it('v5.19: a straddling compound page that is neither hugetlb nor LRU nor movable_ops fails (ZONE_MOVABLE lets it past has_unmovable_pages)', () => {
    const k = createKernel('tiny', 'v5.19');
    layout(k, 128, 4, 'f'.repeat(8) + 'xxxxxxxx');
    prepNewPage(k, 136, 3, 99, 0, 7);
    expect(drive(startIsolatePageRange(k, 140, 144, MOV, 0))).toBe('-EBUSY');
    expect(isolatedBlocks(k)).toEqual([]);
    expect(k.zones[1].nrIsolatePageblock).toBe(0);
  });

  it('v6.10: a free page that ends at the boundary is no crossing page (no VM_WARN_ON_ONCE)', () => {
    const k = createKernel('tiny', 'v6.10');
    expect(drive(startIsolatePageRange(k, 52, 56, MOV, 0))).toBe('0');
    expect(buddies(k, 48, 64)).toEqual(['48:2', '52:2', '56:3']);
    expect(k.events).toEqual([]);
  });

  it('pageblock-naive takes unaligned ranges and isolates exactly the pageblocks they touch', () => {
    const k = createKernel('tiny', 'pageblock-naive');
    expect(drive(startIsolatePageRange(k, 50, 54, MOV, 0))).toBe('0');
    expect(isolatedBlocks(k)).toEqual([48, 52]);
  });

  it('test_pages_isolated with no online page fails even when the pfns below it are all free (no walk from pfn -1)', () => {
    const bare = resolveConfig({ base: 'tiny', name: 'tiny-bare', reserved: [], bootUnmovable: [] });
    const k = createKernel(bare, 'v6.10');
    expect(drive(offlineBlock(k, 3))).toBe('0'); // 96..128
    expect(testPagesIsolated(k, 96, 128, MEMORY_OFFLINE)).toBe('-EBUSY');
  });
});

describe('test_pages_isolated window', () => {
  // 6.1 / 6.12 test_pages_isolated(): the migratetype loop asks
  // `__first_valid_page(pfn, pageblock_nr_pages)` for every step, even the last one, which may look
  // past end_pfn into the rest of the pageblock. tiny-holes: 100, 101 have no memmap, 102 has.
  it('checks a whole pageblock per step, also past end_pfn ([96, 102) with block 100 not isolated: -EBUSY)', () => {
    const k = createKernel('tiny-holes', 'v6.10');
    expect(k.mm.flags[100] & PG_valid).toBe(0);
    expect(k.mm.flags[102] & PG_valid).not.toBe(0);
    k.pb.set(96, MIGRATE_ISOLATE);
    for (let pfn = 96; pfn < 100; pfn++) expect(k.mm.flags[pfn] & PG_valid).not.toBe(0);
    expect(k.pb.isIsolated(100)).toBe(false);
    expect(testPagesIsolated(k, 96, 102, 0)).toBe('-EBUSY');
  });
});
