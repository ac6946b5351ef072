/**
 * Contiguous allocation edge cases (src/kernel/contig.ts), written against the survivors of a
 * mutation run: argument checks of alloc_contig_range, drain_all_pages(zone) once per cpu, the
 * outer_start search over a free MAX_ORDER-1 buddy, the order recorded for the allocation, the
 * scheduling points between the steps, free_contig_range's busy count, pfn_range_valid_contig per
 * profile, zone_spans_last_pfn at a zone's first pfn, and get_online_mems() with the patch
 * contig-get-online-mems. Checked against 6.1 / 6.12 mm/page_alloc.c.
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/machine.js';
import { allocContigPages, allocContigRange, drainAllPagesZone, freeContigRange, pfnRangeValidContig } from '../src/kernel/contig.js';
import { hotplugState } from '../src/kernel/memory_hotplug.js';
import { hstateByName, hugetlbPages, setMaxHugePages } from '../src/kernel/hugetlb.js';
import { checkConservation } from '../properties/page-conservation.js';
import { freeBlockHead } from '../models/abstraction.js';
import { MIGRATE_ISOLATE, MIGRATE_MOVABLE, PG_buddy } from '../src/kernel/types.js';
import { drainPagesZone } from '../src/kernel/page_alloc.js';
import { drive, driveThread } from './helpers.js';

const MOV = MIGRATE_MOVABLE;

function isolatedBlocks(k: Kernel): number[] {
  const out: number[] = [];
  for (let p = 0; p < k.nrPfns; p += 1 << k.pageblockOrder) if (k.pb.get(p) === MIGRATE_ISOLATE) out.push(p);
  return out;
}

/** alloc_contig_range(start, end, MIGRATE_MOVABLE) for `id`, with the yield labels it passed. */
function contig(k: Kernel, start: number, end: number, id: string, seen: string[] = []): string {
  return drive(allocContigRange(k, start, end, MOV, { id }), seen);
}

describe('alloc_contig_range: arguments', () => {
  it('an empty or inverted range is -EINVAL, nothing isolated', () => {
    const k = createKernel('tiny', 'mainline');
    expect(contig(k, 40, 40, 'a')).toBe('-EINVAL');
    expect(contig(k, 44, 40, 'b')).toBe('-EINVAL');
    expect([k.lookup('a'), k.lookup('b')]).toEqual([undefined, undefined]);
    expect(isolatedBlocks(k)).toEqual([]);
    expect(k.maxContigDepth).toBe(0);
  });

  it('a start pfn outside every zone is -EINVAL', () => {
    const k = createKernel('tiny', 'mainline');
    expect(contig(k, k.nrPfns, k.nrPfns + 4, 'a')).toBe('-EINVAL');
  });

  it('an owner id already held is refused before anything is isolated', () => {
    const k = createKernel('tiny', 'mainline');
    expect(contig(k, 16, 32, 'c')).toBe('0');
    const held = k.lookup('c');
    expect(contig(k, 32, 48, 'c')).toBe('-EINVAL');
    expect(k.lookup('c')).toBe(held);
    expect(k.mm.owner[32]).toBe(0);
    expect(k.maxContigDepth).toBe(1);
  });
});

describe('alloc_contig_range: the steps', () => {
  it('drain_all_pages(zone) drains each of the cpus once, then lru_add_drain_all, test_pages_isolated, the excess freed', () => {
    const k = createKernel('tiny', 'v5.13');
    const seen: string[] = [];
    // v5.13 isolates MAX_ORDER-1 aligned blocks: [24, 28) lies in the free order-4 buddy 16..32.
    expect(contig(k, 24, 28, 'c', seen)).toBe('0');
    const steps = ['drain_pages_zone', 'lru_add_drain_all', 'test_pages_isolated', 'free_contig_range'];
    expect(seen.filter((s) => steps.includes(s))).toEqual([
      ...Array(k.cfg.cpus).fill('drain_pages_zone'), 'lru_add_drain_all', 'test_pages_isolated', 'free_contig_range',
    ]);
  });

  it('outer_start: a range inside a free MAX_ORDER-1 buddy is taken out of it, the rest goes back', () => {
    const k = createKernel('tiny', 'v5.13');
    const z = k.zones[0];
    const free0 = z.freePages;
    expect(k.mm.flags[16] & PG_buddy).toBe(PG_buddy);
    expect(k.mm.order[16]).toBe(k.maxOrder);
    // The search from 24 reaches the buddy head 16 only at order MAX_ORDER-1 (24 & ~7 = 24).
    expect(contig(k, 24, 28, 'c')).toBe('0');
    const al = k.lookup('c')!;
    for (let p = 24; p < 28; p++) expect(k.mm.owner[p]).toBe(al.handle);
    // free_contig_range(outer_start, start - outer_start) and (end, outer_end - end): __free_page each.
    for (const p of [16, 23, 28, 31]) expect([k.mm.owner[p], k.mm.refcount[p]]).toEqual([0, 0]);
    for (let cpu = 0; cpu < k.cfg.cpus; cpu++) drainPagesZone(k, z, cpu);
    expect(z.freePages).toBe(free0 - 4);
    expect(k.mm.flags[16] & PG_buddy).toBe(PG_buddy); // 16..24 merged again
    expect(checkConservation(k)).toBeNull();
    expect(isolatedBlocks(k)).toEqual([]);
  });

  it('the allocation records the order of a power-of-two range, -1 otherwise; pages are not pinned', () => {
    const k = createKernel('tiny', 'mainline');
    expect(contig(k, 16, 32, 'p2')).toBe('0');
    expect(k.lookup('p2')).toMatchObject({ kind: 'contig', pfn: 16, nrPages: 16, order: 4, migratetype: MOV, pinned: false });
    expect(contig(k, 32, 36, 'one-block')).toBe('0');
    expect(k.lookup('one-block')!.order).toBe(k.pageblockOrder);
    expect(contig(k, 40, 52, 'three-blocks')).toBe('0');
    expect(k.lookup('three-blocks')!.order).toBe(-1);
  });
});

describe('drain_all_pages(zone)', () => {
  it('one zone->lock hold per cpu: every cpu\'s pcp pages of the zone go back to buddy', () => {
    const k = createKernel('tiny', 'mainline');
    const z = k.zones[1];
    const seen: string[] = [];
    drive(drainAllPagesZone(k, z), seen);
    expect(seen).toEqual(Array(k.cfg.cpus).fill('drain_pages_zone'));
  });
});

describe('free_contig_range', () => {
  it('returns how many pages had a refcount other than 1, and WARNs only then', () => {
    const k = createKernel('tiny', 'mainline');
    expect(contig(k, 16, 32, 'a')).toBe('0');
    expect(contig(k, 32, 48, 'b')).toBe('0');
    k.dropAllocation(k.lookup('a')!.handle);
    expect(freeContigRange(k, 16, 16)).toBe(0);
    expect(k.events.filter((e) => e.startsWith('WARN'))).toEqual([]);
    k.mm.refcount[40] = 2; // someone else still holds a reference (a speculative get_page)
    k.dropAllocation(k.lookup('b')!.handle);
    expect(freeContigRange(k, 32, 16)).toBe(1);
    expect(k.events.filter((e) => e.startsWith('WARN'))).toEqual(['WARN: free_contig_range: 1 of 16 pages had refcount != 1']);
    // __free_page() dropped our reference only: the page waits for the other holder's put_page()
    expect(k.mm.refcount[40]).toBe(1);
    expect(freeBlockHead(k, 40)).toBe(-1);
    expect(freeBlockHead(k, 41)).toBeGreaterThanOrEqual(0); // its neighbours went back to buddy
    expect(checkConservation(k)).toBeNull();
  });
});

describe('pfn_range_valid_contig', () => {
  it('a pfn without memmap, a PageReserved pfn, a range leaving the zone: not a candidate (every profile)', () => {
    for (const profile of ['v5.11', 'v5.13', 'mainline']) {
      const k = createKernel('tiny-holes', profile); // hole 100..102, reserved 0..4
      const normal = k.zones[0];
      expect(pfnRangeValidContig(k, normal, 96, 4), profile).toBe(true);
      expect(pfnRangeValidContig(k, normal, 96, 8), profile).toBe(false);
      expect(pfnRangeValidContig(k, normal, 0, 4), profile).toBe(false);
      expect(pfnRangeValidContig(k, normal, 124, 8), profile).toBe(false);
    }
  });

  it('in-use pages: rejected by v5.11 (page_count), tried by v5.13+', () => {
    const got = ['v5.11', 'v5.13', 'mainline'].map((p) => {
      const k = createKernel('tiny', p);
      return pfnRangeValidContig(k, k.zones[0], 4, 4); // the boot slab pages 4..8
    });
    expect(got).toEqual([false, true, true]);
  });

  it('hugetlb pages: rejected by v5.11 and again by v6.x (PageHuge), tried by v5.13', () => {
    const got = ['v5.11', 'v5.13', 'v6.10'].map((p) => {
      const k = createKernel('tiny', p);
      driveThread(k, setMaxHugePages(k, hstateByName(k, '2M')!, 1));
      const h = hugetlbPages(k)[0].pfn;
      // a range that starts at the huge page's tail: PageHuge() of a tail page is true too
      return pfnRangeValidContig(k, k.zoneOf(h)!, h + 1, 1);
    });
    expect(got).toEqual([false, true, false]);
  });
});

describe('alloc_contig_pages', () => {
  it('nr_pages 0 is no allocation (-1)', () => {
    const k = createKernel('tiny', 'mainline');
    expect(drive(allocContigPages(k, 0, 0, { id: 'z' }, true))).toBe(-1);
    expect(k.lookup('z')).toBeUndefined();
  });

  it('the first candidate is the zone\'s first pfn: a one-page range at zone_start spans the zone', () => {
    const k = createKernel('tiny', 'mainline');
    const movable = k.zones[1];
    const seen: string[] = [];
    expect(drive(allocContigPages(k, 1, 0, { id: 'one' }, true), seen)).toBe(movable.start);
    // zone->lock is dropped before alloc_contig_range: a scheduling point ahead of its isolation.
    expect(seen.slice(0, 2)).toEqual(['alloc_contig_pages', 'isolate_single_pageblock']);
  });

  it('no candidate succeeds in any zone: -1 once the last aligned range would leave the zone', { timeout: 10_000 }, () => {
    const k = createKernel('tiny', 'mainline');
    // GFP without __GFP_MOVABLE: ZONE_NORMAL only, candidates 0 (PageReserved) and 64 (CMA: a
    // MOVABLE isolator fails on it); 128 would end past the zone.
    const seen: string[] = [];
    expect(drive(allocContigPages(k, 64, 0, { id: 'big' }), seen)).toBe(-1);
    expect(seen.filter((s) => s === 'alloc_contig_pages')).toHaveLength(1);
    expect(isolatedBlocks(k)).toEqual([]);
  });

  it('with contig-get-online-mems, mem_hotplug_lock is read-held for the call and released after', () => {
    const k = createKernel('tiny', 'mainline+contig-get-online-mems');
    const lock = hotplugState(k).lock;
    let readersInside = 0;
    const pfn = driveThread(k, (function* () {
      const g = allocContigPages(k, 16, 0, { id: 'g' }, true);
      for (let r = g.next(); ; r = g.next()) {
        if (r.done) return r.value;
        readersInside = Math.max(readersInside, lock.readers);
        yield r.value;
      }
    })());
    expect(pfn % 16).toBe(0);
    expect(k.lookup('g')).toMatchObject({ pfn, nrPages: 16 });
    expect(readersInside).toBe(1);
    expect(lock.readers).toBe(0);
  });
});
