/**
 * Page migration (src/kernel/migrate.ts, mm/migrate.c as alloc_contig_range and offline_pages use
 * it), written against the survivors of a mutation run: where alloc_migration_target() may place
 * the new page, unmap_and_move() on pages freed under us and on hugetlb pages without a hugetlb
 * migration hook, the migrate_pages() -ENOMEM bail-out (what stays on the caller's list), and
 * putback_movable_pages() on pages freed while isolated.
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import { resolveConfig } from '../src/kernel/config.js';
import type { Kernel } from '../src/kernel/machine.js';
import type { Zone } from '../src/kernel/mmzone.js';
import { allocFromZonelist, clearPage, freePages, prepNewPage } from '../src/kernel/page_alloc.js';
import {
  NR_MAX_MIGRATE_PAGES_RETRY, allocMigrationTarget, isolateMovablePage, migratePages, putbackMovablePages, unmapAndMove,
} from '../src/kernel/migrate.js';
import { ENOMEM, MIGRATE_MOVABLE, PG_hugetlb, PG_isolated, PG_lru, PG_pinned, PG_valid } from '../src/kernel/types.js';
import type { KGen } from '../src/kernel/sched.js';
import { drive } from './helpers.js';

const MOVABLE0 = { order: 0, migratetype: MIGRATE_MOVABLE };

/** An order-0 LRU page of allocation `id` taken from `z` (a user page: movable, refcount 1). */
function lruPage(k: Kernel, z: Zone, id: string, extra = 0): number {
  const pfn = allocFromZonelist(k, [z], MOVABLE0);
  expect(pfn).toBeGreaterThanOrEqual(0);
  const al = k.newAllocation({ id, kind: 'pages', pfn, nrPages: 1, order: 0, migratetype: MIGRATE_MOVABLE, pinned: false });
  prepNewPage(k, pfn, 0, al.handle, PG_lru | extra, k.nextToken++);
  return pfn;
}

/** The same page taken off the LRU onto a migrate list (isolate_lru_page). */
function isolatedLruPage(k: Kernel, z: Zone, id: string, list: number[], extra = 0): number {
  const pfn = lruPage(k, z, id, extra);
  isolateMovablePage(k, pfn, list);
  return pfn;
}

/** Take every free page of zone `z` (pcp and buddy), so that only what is freed later is free there. */
function exhaust(k: Kernel, z: Zone): number[] {
  const taken: number[] = [];
  for (let p; (p = allocFromZonelist(k, [z], MOVABLE0)) >= 0;) taken.push(p);
  return taken;
}

/** A hugetlb migration hook answering `rc` for every page (hugetlb.ts plugs in unmap_and_move_huge_page). */
function hugeMigrationAnswers(k: Kernel, rc: string): void {
  k.hooks.migrateHugePage = function* (): KGen<string> {
    yield 'unmap_and_move_huge_page';
    return rc;
  };
}

describe('alloc_migration_target (v5.11+ mm/migrate.c): __GFP_HIGHMEM only for a ZONE_MOVABLE source', () => {
  it('a ZONE_NORMAL page is migrated within ZONE_NORMAL, a ZONE_MOVABLE page within ZONE_MOVABLE', () => {
    const k = createKernel('tiny', 'mainline');
    const [normal, movable] = k.zones;
    const n = lruPage(k, normal, 'n');
    const m = lruPage(k, movable, 'm');
    expect(normal.contains(allocMigrationTarget(k, n, 0, 0))).toBe(true);
    expect(movable.contains(allocMigrationTarget(k, m, 0, 0))).toBe(true);
  });

  it('ZONE_NORMAL full: the ZONE_NORMAL page has no target even though ZONE_MOVABLE is free', () => {
    const k = createKernel('tiny', 'mainline');
    const [normal] = k.zones;
    const list: number[] = [];
    const n = isolatedLruPage(k, normal, 'n', list);
    exhaust(k, normal);
    expect(drive(unmapAndMove(k, n, 0))).toBe(ENOMEM);
    expect(k.lookup('n')!.pfn).toBe(n);
  });

  it('pfn 0 is a valid target (only a negative pfn means "no page")', () => {
    // tiny with nothing reserved at pfn 0 (boot slab at 8..12): pfn 0 is an ordinary free page.
    const cfg = resolveConfig({ base: 'tiny', name: 'tiny-free0', reserved: [], bootUnmovable: [{ startPfn: 8, endPfn: 12 }] });
    const k = createKernel(cfg, 'mainline');
    const [normal] = k.zones;
    const list: number[] = [];
    const n = isolatedLruPage(k, normal, 'n', list);
    const taken = exhaust(k, normal);
    expect(taken).toContain(0);
    clearPage(k, 0, 0);
    freePages(k, 0, 0); // the one free page of ZONE_NORMAL
    expect(drive(unmapAndMove(k, n, 0))).toBe('0');
    expect(k.lookup('n')!.pfn).toBe(0);
    expect(k.mm.flags[0] & PG_lru).toBe(PG_lru);
  });
});

describe('unmap_and_move', () => {
  it('a page its owner freed while it sat on our list counts as migrated, and is left alone', () => {
    const k = createKernel('tiny', 'mainline');
    const list: number[] = [];
    const p = isolatedLruPage(k, k.zones[1], 'p', list);
    k.dropAllocation(k.lookup('p')!.handle);
    clearPage(k, p, 0); // the owner's put_page: no PG_isolated any more
    expect(drive(unmapAndMove(k, p, 0))).toBe('0');
    expect([k.mm.flags[p], k.mm.refcount[p]]).toEqual([PG_valid, 0]);
  });

  it('moved: "0", the allocation follows; a page of no tracked allocation moves too', () => {
    const k = createKernel('tiny', 'mainline');
    const list: number[] = [];
    const p = isolatedLruPage(k, k.zones[1], 'p', list);
    expect(drive(unmapAndMove(k, p, 0))).toBe('0');
    expect(k.lookup('p')!.pfn).not.toBe(p);
    // An anonymous page the harness does not track (owner handle 99 has no Allocation).
    const q = allocFromZonelist(k, [k.zones[1]], MOVABLE0);
    prepNewPage(k, q, 0, 99, PG_lru, k.nextToken++);
    isolateMovablePage(k, q, list);
    expect(drive(unmapAndMove(k, q, 0))).toBe('0');
    expect(k.mm.owner[q]).toBe(0);
  });

  it('a hugetlb page with no hugetlb migration support is -EBUSY (permanent), and put back isolated-free', () => {
    const k = createKernel('tiny', 'mainline');
    delete k.hooks.migrateHugePage;
    delete k.hooks.putbackHugePage;
    const list: number[] = [];
    const h = isolatedLruPage(k, k.zones[1], 'h', list);
    k.mm.flags[h] = (k.mm.flags[h] & ~PG_lru) | PG_hugetlb;
    expect(drive(unmapAndMove(k, h, 0))).toBe('-EBUSY');
    // migrate_pages: -EBUSY is a failure of this page, not the -ENOMEM abort; no retry pass.
    const seen: string[] = [];
    expect(drive(migratePages(k, list, 0), seen)).toBe(1);
    expect(seen).toEqual(['migrate_pages']);
    expect(list).toEqual([h]);
    drive(putbackMovablePages(k, list));
    expect(k.mm.flags[h] & (PG_isolated | PG_lru | PG_hugetlb)).toBe(PG_hugetlb);
  });
});

describe('migrate_pages (MIGRATE_SYNC, MR_CONTIG_RANGE)', () => {
  it('-ENOMEM aborts: the pages already migrated leave the list, the rest stay for putback', () => {
    const k = createKernel('tiny', 'mainline');
    hugeMigrationAnswers(k, ENOMEM);
    const mz = k.zones[1];
    const list: number[] = [];
    isolatedLruPage(k, mz, 'a', list);
    const h = isolatedLruPage(k, mz, 'h', list);
    k.mm.flags[h] = (k.mm.flags[h] & ~PG_lru) | PG_hugetlb | PG_isolated;
    const c = isolatedLruPage(k, mz, 'c', list);
    expect(drive(migratePages(k, list, 0))).toBe(ENOMEM);
    expect(list).toEqual([h, c]);
  });

  it('a pinned page is retried NR_MAX_MIGRATE_PAGES_RETRY passes, then reported as not migrated', () => {
    const k = createKernel('tiny', 'mainline');
    const list: number[] = [];
    const p = isolatedLruPage(k, k.zones[1], 'p', list, PG_pinned);
    const seen: string[] = [];
    expect(drive(migratePages(k, list, 0), seen)).toBe(1);
    expect(seen.length).toBe(NR_MAX_MIGRATE_PAGES_RETRY);
    expect(list).toEqual([p]);
  });
});

describe('putback_movable_pages', () => {
  it('a page freed while on the list is skipped: it does not come back as an LRU page', () => {
    const k = createKernel('tiny', 'mainline');
    const list: number[] = [];
    const p = isolatedLruPage(k, k.zones[1], 'p', list);
    const q = isolatedLruPage(k, k.zones[1], 'q', list);
    clearPage(k, p, 0);
    drive(putbackMovablePages(k, list));
    expect(k.mm.flags[p]).toBe(PG_valid);
    expect(k.mm.flags[q] & (PG_lru | PG_isolated)).toBe(PG_lru);
    expect(list).toEqual([]);
  });
});
