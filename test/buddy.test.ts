import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import { resolveConfig } from '../src/kernel/config.js';
import { getProfile, withSwitches } from '../src/kernel/profiles.js';
import {
  allocFromZonelist, clearPage, drainPagesZone, freeBlock, freePages, moveFreepagesBlock, prepNewPage, zonelist,
} from '../src/kernel/page_alloc.js';
import { meminfo, pagetypeinfo } from '../src/kernel/meminfo.js';
import { checkConservation } from '../properties/page-conservation.js';
import { checkFreelistCounters } from '../properties/freelist-counters.js';
import { checkNoCrossMerge } from '../properties/no-cross-migratetype-merge.js';
import {
  MIGRATE_CMA, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, PG_buddy, PG_pcp, PG_valid,
} from '../src/kernel/types.js';
import type { Kernel } from '../src/kernel/machine.js';

function alloc(k: Kernel, order: number, mt: number, pinned = false): number {
  const pfn = allocFromZonelist(k, zonelist(k, { order, migratetype: mt, pinned }), { order, migratetype: mt, pinned });
  if (pfn >= 0) prepNewPage(k, pfn, order, 99, 0, 0);
  return pfn;
}

function free(k: Kernel, pfn: number, order: number): void {
  clearPage(k, pfn, order);
  freePages(k, pfn, order);
}

function freeBlocks(k: Kernel): number[][] {
  return pagetypeinfo(k).zones.map((z) => Object.values(z.free).flat());
}

function sound(k: Kernel): void {
  expect(checkConservation(k)).toBeNull();
  expect(checkFreelistCounters(k)).toBeNull();
  expect(checkNoCrossMerge(k)).toBeNull();
}

describe('boot', () => {
  it('frees everything but reserved and boot allocations, in max-order blocks', () => {
    const k = createKernel('tiny', 'mainline');
    sound(k);
    const movable = k.zones[1];
    // ZONE_MOVABLE of tiny: 128 pages = 8 free order-4 blocks, nothing else.
    expect(movable.nrFree[4]).toBe(8);
    expect(movable.freePages).toBe(128);
    const m = meminfo(k);
    expect(m.MemTotal).toBe((256 - 4) * 4);
    expect(m.MemFree).toBe((256 - 8) * 4);
    expect(m.CmaTotal).toBe(32 * 4);
    expect(m.CmaFree).toBe(32 * 4);
  });

  it('vm-5g: MemTotal about 5 GiB, MemFree well below it', () => {
    const k = createKernel('vm-5g', 'mainline');
    const m = meminfo(k);
    expect(m.MemTotal).toBeGreaterThan(4.8 * 1024 * 1024);
    expect(m.MemTotal).toBeLessThanOrEqual(5 * 1024 * 1024);
    expect(m.MemFree).toBeLessThan(m.MemTotal - 500 * 1024);
  });

  it('rejects impossible geometry with one line', () => {
    expect(() => resolveConfig({ base: 'tiny', pageblockOrder: 5 })).toThrow(/pageblockOrder must be in 1..maxOrder/);
    expect(() => resolveConfig({ base: 'tiny', holes: [{ startPfn: 250, endPfn: 300 }] })).toThrow(/not inside one zone/);
    expect(() => resolveConfig({ base: 'tiny', cma: [{ name: 'x', basePfn: 1, count: 4, orderPerBit: 0 }] })).toThrow(/pageblock aligned/);
    expect(() => resolveConfig('nope')).toThrow(/unknown config 'nope'/);
  });
});

describe('merge and split', () => {
  it('splits a max-order block down (expand) and merges it back on free', () => {
    const k = createKernel('tiny', 'mainline');
    const before = freeBlocks(k);
    const pfn = alloc(k, 1, MIGRATE_MOVABLE);
    expect(pfn).toBeGreaterThanOrEqual(0);
    sound(k);
    expect(freeBlocks(k)).not.toEqual(before);
    free(k, pfn, 1);
    sound(k);
    expect(freeBlocks(k)).toEqual(before);
  });

  it('order-0 pages go through the pcp lists and merge back after drain', () => {
    const k = createKernel('tiny', 'mainline');
    const before = freeBlocks(k);
    const a = alloc(k, 0, MIGRATE_MOVABLE);
    const z = k.zoneOf(a)!;
    // rmqueue_bulk took a batch: the rest waits on this cpu's pcp list.
    expect(z.pcpCount[0]).toBe(k.cfg.pcpBatch - 1);
    free(k, a, 0);
    expect(k.mm.flags[a] & PG_pcp).toBeTruthy();
    expect(freeBlocks(k)).not.toEqual(before);
    drainPagesZone(k, z, 0);
    sound(k);
    expect(freeBlocks(k)).toEqual(before);
  });

  it('pcp high watermark frees a batch to buddy', () => {
    const k = createKernel('tiny', 'mainline');
    const pfns = Array.from({ length: 6 }, () => alloc(k, 0, MIGRATE_MOVABLE));
    const z = k.zoneOf(pfns[0])!;
    for (const p of pfns) free(k, p, 0);
    expect(z.pcpCount[0]).toBeLessThan(k.cfg.pcpHigh);
    sound(k);
  });

  it('never merges across a hole (tiny-holes)', () => {
    const k = createKernel('tiny-holes', 'mainline');
    sound(k);
    // pfns 100..101 are a hole: the order-4 block at 96 can not be whole.
    expect(k.mm.flags[100] & PG_valid).toBe(0);
    for (let p = 96; p < 112; p++) if (k.mm.flags[p] & PG_buddy) expect(p + (1 << k.mm.order[p]) <= 100 || p >= 102).toBe(true);
  });

  it('the v5.18 rule keeps CMA and MOVABLE apart; v5.10 merges them (the latent bug)', () => {
    // A CMA area of one pageblock [60, 64) inside the MAX_ORDER-1 block [48, 64): only legal with
    // pageblock alignment (v5.19+), and exactly what made the v5.10 rule a latent bug.
    const cfg = { ...resolveConfig('tiny'), cma: [{ name: 'c', basePfn: 60, count: 4, orderPerBit: 0 }] };
    for (const [profile, merges] of [[withSwitches('v5.11', { cmaAlign: 'pageblock' }), true], [withSwitches('v5.18', { cmaAlign: 'pageblock' }), false]] as const) {
      const k = createKernel(cfg as never, profile);
      const heads: number[] = [];
      for (let p = 48; p < 64; p++) if (k.mm.flags[p] & PG_buddy) heads.push(p);
      expect(heads.length === 1).toBe(merges);
      if (merges) expect(checkNoCrossMerge(k)).toMatch(/spans a Movable pageblock and a CMA pageblock/);
      else sound(k);
    }
  });
});

describe('fallback and stealing', () => {
  it('an unmovable request with no unmovable free pages steals a whole MOVABLE block', () => {
    for (const profile of ['v5.11', 'v6.10']) {
      const k = createKernel('tiny', profile);
      const typesBefore = pagetypeinfo(k).zones[1].blocks;
      const pfn = alloc(k, 4, MIGRATE_UNMOVABLE);
      // Unmovable requests never use ZONE_MOVABLE or CMA: it comes from a MOVABLE block of Normal.
      expect(k.zoneOf(pfn)!.name).toBe('Normal');
      expect(k.pb.get(pfn)).toBe(MIGRATE_UNMOVABLE);
      expect(pagetypeinfo(k).zones[1].blocks).toEqual(typesBefore);
      sound(k);
    }
  });

  it('a small unmovable request claims the pageblock when enough of it is free (v5.10 and v6.10)', () => {
    for (const profile of ['v5.11', 'v6.10']) {
      const k = createKernel('tiny', profile);
      const pfn = alloc(k, 0, MIGRATE_UNMOVABLE);
      // boot left [4,8) unmovable but busy: the first unmovable page comes from a stolen MOVABLE block
      expect(k.pb.get(pfn)).toBe(MIGRATE_UNMOVABLE);
      drainPagesZone(k, k.zoneOf(pfn)!, 0);
      sound(k);
    }
  });

  it('movable allocations may use CMA (more than half of free is CMA, or nothing else left); pinned never', () => {
    const k = createKernel('tiny', 'mainline');
    // Exhaust MOVABLE and everything else: pinned allocations stop before touching CMA.
    const got: number[] = [];
    for (;;) {
      const p = alloc(k, 0, MIGRATE_MOVABLE, true);
      if (p < 0) break;
      got.push(p);
    }
    expect(got.length).toBeGreaterThan(0);
    for (const p of got) {
      expect(k.pb.get(p)).not.toBe(MIGRATE_CMA);
      expect(k.zoneOf(p)!.name).toBe('Normal');
    }
    const cma = alloc(k, 0, MIGRATE_MOVABLE, false);
    expect(cma).toBeGreaterThanOrEqual(0);
    sound(k);
  });

  it('v5.10 move_freepages_block cuts a block that starts before the zone (the real bug); v6.10 refuses', () => {
    const cfg = { ...resolveConfig('tiny'), nodes: [{ id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 128 }, { name: 'Movable', startPfn: 128, endPfn: 256 }] }] };
    const old = createKernel(cfg as never, 'v5.11');
    const neu = createKernel(cfg as never, 'v6.10');
    // A pageblock inside one zone moves all its free pages in both.
    expect(moveFreepagesBlock(old, old.zones[1], 130, MIGRATE_UNMOVABLE)).toBeGreaterThanOrEqual(0);
    expect(moveFreepagesBlock(neu, neu.zones[1], 130, MIGRATE_UNMOVABLE)).toBeGreaterThanOrEqual(0);
    expect(neu.pb.get(128)).toBe(MIGRATE_UNMOVABLE);
    expect(old.pb.get(128)).toBe(MIGRATE_MOVABLE); // v5.10 leaves the type to its caller
  });
});

describe('counters and views', () => {
  it('a freed high-order block lands on its pageblock type list (v6.10 split_large_buddy)', () => {
    const k = createKernel('tiny', 'v6.10');
    const z = k.zones[1];
    const pfn = alloc(k, 4, MIGRATE_MOVABLE);
    expect(z.contains(pfn)).toBe(true);
    clearPage(k, pfn, 4);
    k.pb.set(pfn, MIGRATE_UNMOVABLE); // one pageblock re-typed while allocated
    freeBlock(k, z, pfn, 4, MIGRATE_MOVABLE, false);
    expect(checkNoCrossMerge(k)).toBeNull();
    expect(checkFreelistCounters(k)).toBeNull();
  });

  it('the checks catch a planted inconsistency', () => {
    const k = createKernel('tiny', 'mainline');
    k.zones[1].freePages += 1;
    expect(checkFreelistCounters(k)).toMatch(/NR_FREE_PAGES/);
    const k2 = createKernel('tiny', 'mainline');
    const p = k2.mm.listHead[k2.zones[1].freeList(4, MIGRATE_MOVABLE)];
    k2.mm.owner[p + 3] = 7; // a page inside a free block is also owned
    expect(checkConservation(k2)).toMatch(/inside the free block/);
    const k3 = createKernel('tiny', 'mainline');
    k3.pb.set(k3.mm.listHead[k3.zones[1].freeList(4, MIGRATE_MOVABLE)] + 4, MIGRATE_CMA);
    expect(checkNoCrossMerge(k3)).toMatch(/spans|list but its pageblock/);
  });

  it('profiles differ where they should', () => {
    expect(getProfile('v5.11').switches.mergeRule).toBe('v5.10');
    expect(getProfile('mainline').switches.isolateMode).toBe('bit');
    expect(() => getProfile('v9.99')).toThrow(/unknown profile 'v9.99'/);
  });
});
