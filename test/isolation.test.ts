/**
 * Page isolation (src/kernel/page_isolation.ts): has_unmovable_pages, set/unset in replace and
 * bit mode, start/undo_isolate_page_range at each granularity, test_pages_isolated.
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/machine.js';
import type { KGen } from '../src/kernel/sched.js';
import { allocFromZonelist, drainPagesZone, prepNewPage, zonelist } from '../src/kernel/page_alloc.js';
import {
  hasUnmovablePages, setMigratetypeIsolate, startIsolatePageRange, testPagesIsolated, undoIsolatePageRange,
  unsetMigratetypeIsolate,
} from '../src/kernel/page_isolation.js';
import { checkConservation } from '../properties/page-conservation.js';
import { checkFreelistCounters } from '../properties/freelist-counters.js';
import { checkNoCrossMerge } from '../properties/no-cross-migratetype-merge.js';
import {
  MIGRATE_CMA, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, PG_buddy, PG_lru,
} from '../src/kernel/types.js';

function drive<T>(g: KGen<T>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

function alloc(k: Kernel, order: number, mt: number, flags = 0): number {
  const pfn = allocFromZonelist(k, zonelist(k, { order, migratetype: mt }), { order, migratetype: mt });
  expect(pfn).toBeGreaterThanOrEqual(0);
  prepNewPage(k, pfn, order, 99, flags, 7);
  return pfn;
}

function isolatedBlocks(k: Kernel): number[] {
  const out: number[] = [];
  for (let p = 0; p < k.nrPfns; p += 1 << k.pageblockOrder) if (k.pb.get(p) === MIGRATE_ISOLATE) out.push(p);
  return out;
}

function sound(k: Kernel): void {
  expect(checkConservation(k)).toBeNull();
  expect(checkFreelistCounters(k)).toBeNull();
  expect(checkNoCrossMerge(k)).toBeNull();
}

/** A free pageblock typed UNMOVABLE: an unmovable allocation steals a whole MAX_ORDER-1 block. */
function unmovableFreeBlock(k: Kernel): { stolen: number; page: number } {
  const page = alloc(k, 0, MIGRATE_UNMOVABLE);
  const stolen = page & ~((1 << k.maxOrder) - 1);
  expect(k.pb.get(stolen + 4)).toBe(MIGRATE_UNMOVABLE);
  return { stolen, page };
}

describe('has_unmovable_pages', () => {
  it('reports reserved pages, trusts ZONE_MOVABLE, refuses CMA blocks unless isolating for CMA', () => {
    const k = createKernel('tiny', 'mainline');
    const normal = k.zones[0];
    const movable = k.zones[1];
    expect(hasUnmovablePages(k, normal, 0, 4, MIGRATE_MOVABLE, 0)).toBe(0); // PageReserved
    expect(hasUnmovablePages(k, normal, 4, 8, MIGRATE_MOVABLE, 0)).toBe(4); // boot unmovable (slab)
    expect(hasUnmovablePages(k, normal, 16, 20, MIGRATE_MOVABLE, 0)).toBe(-1); // free
    expect(hasUnmovablePages(k, normal, 64, 68, MIGRATE_MOVABLE, 0)).toBe(64); // CMA, not for CMA
    expect(hasUnmovablePages(k, normal, 64, 68, MIGRATE_CMA, 0)).toBe(-1);
    const u = alloc(k, 0, MIGRATE_UNMOVABLE);
    expect(hasUnmovablePages(k, normal, u & ~3, (u & ~3) + 4, MIGRATE_MOVABLE, 0)).toBe(u);
    // An unmovable-looking page in ZONE_MOVABLE is trusted to be movable.
    const m = alloc(k, 0, MIGRATE_MOVABLE);
    expect(movable.contains(m)).toBe(true);
    k.mm.flags[m] &= ~PG_lru;
    expect(hasUnmovablePages(k, movable, m & ~3, (m & ~3) + 4, MIGRATE_MOVABLE, 0)).toBe(-1);
  });

  it('judges a compound page by its head, even from a tail in another pageblock', () => {
    const k = createKernel('tiny', 'mainline');
    const normal = k.zones[0];
    const head = alloc(k, 3, MIGRATE_UNMOVABLE); // unmovable compound page over two pageblocks
    expect(normal.contains(head)).toBe(true);
    expect(hasUnmovablePages(k, normal, head + 4, head + 8, MIGRATE_MOVABLE, 0)).toBe(head + 4);
    k.mm.flags[head] |= PG_lru; // a THP: movable
    expect(hasUnmovablePages(k, normal, head + 4, head + 8, MIGRATE_MOVABLE, 0)).toBe(-1);
  });
});

describe('set/unset_migratetype_isolate', () => {
  it('refuses an already isolated block (the only exclusion between isolators)', () => {
    const k = createKernel('tiny', 'v5.19');
    expect(setMigratetypeIsolate(k, 16, MIGRATE_MOVABLE, 0, 16, 20)).toBe('0');
    expect(setMigratetypeIsolate(k, 16, MIGRATE_MOVABLE, 0, 16, 20)).toBe('-EBUSY');
    expect(k.zones[0].nrIsolatePageblock).toBe(1);
    unsetMigratetypeIsolate(k, 16, MIGRATE_MOVABLE);
    expect(isolatedBlocks(k)).toEqual([]);
    sound(k);
  });

  it('replace mode restores what the caller passes; bit mode restores the original type', () => {
    for (const [profile, expected] of [['v5.19', MIGRATE_MOVABLE], ['v6.10', MIGRATE_MOVABLE], ['mainline', MIGRATE_UNMOVABLE]] as const) {
      const k = createKernel('tiny', profile);
      const { stolen } = unmovableFreeBlock(k);
      const blk = stolen + 8;
      expect(setMigratetypeIsolate(k, blk, MIGRATE_MOVABLE, 0, blk, blk + 4)).toBe('0');
      expect(k.pb.get(blk)).toBe(MIGRATE_ISOLATE);
      unsetMigratetypeIsolate(k, blk, MIGRATE_MOVABLE);
      expect(k.pb.get(blk), profile).toBe(expected);
      expect(k.zones[0].nrIsolatePageblock).toBe(0);
      sound(k);
    }
  });

  it('<= v6.9 moves a free buddy larger than the block whole onto the ISOLATE list; v6.10 splits it', () => {
    const old = createKernel('tiny', 'v5.19');
    // pfn 16: a free MAX_ORDER-1 (order 4) block spanning four MOVABLE pageblocks
    expect(old.mm.flags[16] & PG_buddy).toBeTruthy();
    expect(old.mm.order[16]).toBe(4);
    setMigratetypeIsolate(old, 16, MIGRATE_MOVABLE, 0, 16, 20);
    expect(old.mm.order[16]).toBe(4);
    expect(checkNoCrossMerge(old)).toMatch(/spans a Isolate pageblock and a Movable pageblock/);
    expect(checkFreelistCounters(old)).toBeNull(); // the whole buddy is un-counted, as the kernel did
    unsetMigratetypeIsolate(old, 16, MIGRATE_MOVABLE);
    sound(old);

    const hyg = createKernel('tiny', 'v6.10');
    setMigratetypeIsolate(hyg, 20, MIGRATE_MOVABLE, 0, 20, 24); // a tail block of the order-4 buddy
    expect(hyg.mm.order[16]).toBe(2);
    expect(hyg.mm.order[20]).toBe(2);
    expect(hyg.mm.order[24]).toBe(3);
    expect(hyg.pb.get(20)).toBe(MIGRATE_ISOLATE);
    expect(checkFreelistCounters(hyg)).toBeNull();
    expect(checkNoCrossMerge(hyg)).toBeNull();
    unsetMigratetypeIsolate(hyg, 20, MIGRATE_MOVABLE);
    expect(hyg.mm.order[16]).toBe(4); // re-merged
    sound(hyg);
  });
});

describe('start_isolate_page_range', () => {
  it('v5.19 splits a free MAX_ORDER-1 page of which only one pageblock is isolated (seed 004)', () => {
    const k = createKernel('tiny', 'v5.19');
    expect(drive(startIsolatePageRange(k, 52, 56, MIGRATE_MOVABLE, 0))).toBe('0');
    expect(isolatedBlocks(k)).toEqual([52]);
    expect([k.mm.order[48], k.mm.order[52], k.mm.order[56]]).toEqual([2, 2, 3]);
    expect(checkNoCrossMerge(k)).toBeNull();
    expect(checkFreelistCounters(k)).toBeNull();
    expect(testPagesIsolated(k, 52, 56, 0)).toBe('0');
    drive(undoIsolatePageRange(k, 52, 56, MIGRATE_MOVABLE));
    expect(k.mm.order[48]).toBe(4);
    sound(k);
  });

  it('pageblock-naive leaves the straddling buddy on the MOVABLE list across the isolated block', () => {
    const k = createKernel('tiny', 'pageblock-naive');
    expect(drive(startIsolatePageRange(k, 52, 56, MIGRATE_MOVABLE, 0))).toBe('0');
    expect(k.mm.order[48]).toBe(4); // not split: pages of the ISOLATE block are still allocatable
    expect(checkNoCrossMerge(k)).toMatch(/order-4 block at pfn 48 spans a Movable pageblock and a Isolate pageblock \(pfn 52\)/);
    // test_pages_isolated from the buddy's head sees the non-isolated head block.
    expect(testPagesIsolated(k, 48, 56, 0)).toBe('-EBUSY');
    drive(undoIsolatePageRange(k, 52, 56, MIGRATE_MOVABLE));
    sound(k);
  });

  it('max-order granularity insists on pageblock-aligned input', () => {
    const k = createKernel('tiny', 'v5.18');
    expect(() => drive(startIsolatePageRange(k, 17, 32, MIGRATE_MOVABLE, 0))).toThrow(/not pageblock aligned/);
  });

  it('undoes its own blocks when a later block fails, at every granularity', () => {
    for (const profile of ['v5.11', 'v5.19', 'pageblock-naive', 'v6.10', 'mainline']) {
      const k = createKernel('tiny', profile);
      const { stolen } = unmovableFreeBlock(k); // stolen..stolen+16: first block has the page
      // [stolen+4, stolen+16): blocks 2..4 of the stolen block; put an unmovable page in the last one
      const pages: number[] = [];
      let p = -1;
      while (p < stolen + 12) {
        p = alloc(k, 0, MIGRATE_UNMOVABLE);
        pages.push(p);
      }
      expect(p).toBeLessThan(stolen + 16);
      const r = drive(startIsolatePageRange(k, stolen + 4, stolen + 16, MIGRATE_MOVABLE, 0));
      expect(r, profile).toBe('-EBUSY');
      expect(isolatedBlocks(k), profile).toEqual([]);
      expect(k.zones[0].nrIsolatePageblock).toBe(0);
      drainPagesZone(k, k.zones[0], 0);
      sound(k);
    }
  });
});

describe('test_pages_isolated', () => {
  it('needs every block ISOLATE and every pfn a free buddy', () => {
    const k = createKernel('tiny', 'mainline');
    expect(testPagesIsolated(k, 16, 32, 0)).toBe('-EBUSY'); // not isolated
    expect(drive(startIsolatePageRange(k, 16, 32, MIGRATE_MOVABLE, 0))).toBe('0');
    expect(testPagesIsolated(k, 16, 32, 0)).toBe('0');
    drive(undoIsolatePageRange(k, 16, 32, MIGRATE_MOVABLE));
    const m = alloc(k, 0, MIGRATE_MOVABLE, PG_lru);
    const blk = m & ~3;
    expect(drive(startIsolatePageRange(k, blk, blk + 4, MIGRATE_MOVABLE, 0))).toBe('0');
    expect(testPagesIsolated(k, blk, blk + 4, 0)).toBe('-EBUSY'); // an in-use page
    drive(undoIsolatePageRange(k, blk, blk + 4, MIGRATE_MOVABLE));
    expect(isolatedBlocks(k)).toEqual([]);
  });
});
