/**
 * HugeTLB pool edge cases (src/kernel/hugetlb.ts), written against the survivors of a mutation
 * run: node round-robin of pool growth and shrinking on a two-node machine, per-node nr_hugepages
 * writes, surplus accounting (adjust_pool_surplus both ways, free_huge_page of surplus pages,
 * gather_surplus_pages / return_unused_surplus_pages), dequeue fallback across nodes, migration of
 * in-use pages (targets, Temporary pages, surplus following the data across nodes), dissolve over
 * a range, demote per node, HVO restore failures. Each test names the kernel function whose
 * behaviour it pins (checked against mainline mm/hugetlb.c: set_max_huge_pages,
 * adjust_pool_surplus, remove_pool_huge_page, hstate_next_node_to_{alloc,free}, ...).
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import { resolveConfig } from '../src/kernel/config.js';
import { Kernel } from '../src/kernel/machine.js';
import { getProfile } from '../src/kernel/profiles.js';
import { meminfo } from '../src/kernel/meminfo.js';
import type { KGen } from '../src/kernel/sched.js';
import {
  demoteHugePage, dissolveFreeHugePage, isHugetlbHead, pageHstate, pageHuge, dissolveFreeHugePages, hstateByName, hugetlbCounters, hugetlbFault,
  hugepagesSysfs, hugetlbMmap, hugetlbMunmap, hugetlbPages, hugetlbState, isolateHugePage, isolateOrDissolveHugePage, migrateHugePage,
  putbackActiveHugetlb, replaceOrDissolveFreeHugePage, rfcAllocAndDissolve, setMaxHugePages, type Hstate,
} from '../src/kernel/hugetlb.js';
import { allocFromZonelist, freeOnePage, prepNewPage, zonelist } from '../src/kernel/page_alloc.js';
import { setMigratetypeIsolate } from '../src/kernel/page_isolation.js';
import { allocContigRange } from '../src/kernel/contig.js';
import type { MigrateReason } from '../src/kernel/migrate.js';
import { cmaState } from '../src/kernel/cma.js';
import { KernelBug, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, PG_buddy, PG_hugetlb_migratable, PG_isolated, PG_lru } from '../src/kernel/types.js';
import { checkConservation } from '../properties/page-conservation.js';
import { drive } from './helpers.js';
import { Hasher } from '../src/kernel/fingerprint.js';

/** Two nodes of one zone each: node 0 is tiny's ZONE_NORMAL (0..128), node 1 is 128..256. */
const TWO = resolveConfig({
  base: 'tiny', name: 'tiny-2node',
  nodes: [{ id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 128 }] }, { id: 1, zones: [{ name: 'Normal', startPfn: 128, endPfn: 256 }] }],
});

/** [nr, free, surplus, resv, max] of an hstate, then [nr, free, surplus] per node. */
function pool(k: Kernel, name = '2M'): [number[], number[][]] {
  const c = hugetlbCounters(k).find((x) => x.name === name)!;
  return [[c.nr, c.free, c.surplus, c.resv, c.max], c.nodes.map((n) => [n.nr, n.free, n.surplus])];
}

/** The pool pages as "pfn:node:state". */
function pages(k: Kernel, name = '2M'): string[] {
  return hugetlbPages(k).filter((p) => p.hstate === name).map((p) => `${p.pfn}:${p.node}:${p.state}`);
}

/** The 2M pool's counters (see pool()) and pages (see pages()). */
function expectPool(k: Kernel, counters: [number[], number[][]], list: string[]): void {
  expect({ counters: pool(k), pages: pages(k) }).toEqual({ counters, pages: list });
}

/** A fresh kernel of `cfg` (mainline unless said) and its hstate `name`. */
function boot(cfg: Parameters<typeof createKernel>[0], name = '2M', profile = 'mainline'): { k: Kernel; h: Hstate } {
  const k = createKernel(cfg, profile);
  return { k, h: hstateByName(k, name)! };
}

function resize(k: Kernel, h: Hstate, count: number, nid?: number): number {
  return drive(setMaxHugePages(k, h, count, nid)).nr;
}

/** mmap `n` pages of `id` and fault them all in; the pfns in index order. */
function mapAndFault(k: Kernel, h: Hstate, id: string, n: number): number[] {
  expect(drive(hugetlbMmap(k, id, h, n))).toBe('0');
  return [...Array(n)].map((_, i) => drive(hugetlbFault(k, id, i)).pfn!);
}

/** Whether pfn lies in a free buddy block. */
function inBuddy(k: Kernel, pfn: number): boolean {
  for (let o = 0; o <= k.maxOrder; o++) {
    const head = pfn & ~((1 << o) - 1);
    if (k.mm.flags[head] & PG_buddy && k.mm.order[head] >= o) return true;
  }
  return false;
}

/** Takes every free page of the zones in `zoneIdx` (order 0, both migratetypes); the pfns taken. */
function fill(k: Kernel, zoneIdx: number[]): number[] {
  const taken: number[] = [];
  for (const mt of [MIGRATE_MOVABLE, MIGRATE_UNMOVABLE]) {
    const zl = zonelist(k, { order: 0, migratetype: mt }).filter((z) => zoneIdx.includes(k.zones.indexOf(z)));
    for (let p; (p = allocFromZonelist(k, zl, { order: 0, migratetype: mt })) >= 0;) {
      k.mm.refcount[p] = 1;
      taken.push(p);
    }
  }
  return taken;
}

/**
 * Two-node pool [8 | 128], 8 faulted in by mapping 'm', then nr_hugepages = 0: node 1's free page
 * goes (node 0 has none free), then node 0's in-use page is marked surplus (adjust_pool_surplus).
 */
function surplusOnNode0(k: Kernel, h: Hstate): void {
  resize(k, h, 2);
  expect(mapAndFault(k, h, 'm', 1)).toEqual([8]);
  expect(resize(k, h, 0)).toBe(1);
  expect(pool(k)).toEqual([[1, 0, 1, 0, 0], [[1, 0, 1], [0, 0, 0]]]);
}

/** nr_overcommit_hugepages = 1 and a one-page mapping 'm' faulted in: a surplus page on node 0 (8). */
function overcommitOnNode0(k: Kernel, h: Hstate): void {
  h.overcommit = 1;
  expect(mapAndFault(k, h, 'm', 1)).toEqual([8]);
  expect(pool(k)).toEqual([[1, 0, 1, 0, 0], [[1, 0, 1], [0, 0, 0]]]);
}

describe('alloc_pool_huge_page / remove_pool_huge_page: node round-robin (hstate_next_node_to_{alloc,free})', () => {
  it('growing interleaves the nodes, shrinking frees from next_nid_to_free on, growing again resumes where it stopped', () => {
    const { k, h } = boot(TWO);
    expect(resize(k, h, 3)).toBe(3);
    expectPool(k, [[3, 3, 0, 0, 3], [[2, 2, 0], [1, 1, 0]]], ['8:0:free', '12:0:free', '128:1:free']);
    // next_nid_to_free starts at the first node: node 0 (its list head, the last enqueued), then node 1.
    expect(resize(k, h, 1)).toBe(1);
    expectPool(k, [[1, 1, 0, 0, 1], [[1, 1, 0], [0, 0, 0]]], ['8:0:free']);
    // next_nid_to_alloc is node 1 after three allocations (0, 1, 0).
    expect(resize(k, h, 4)).toBe(4);
    expectPool(k, [[4, 4, 0, 0, 4], [[2, 2, 0], [2, 2, 0]]], ['8:0:free', '12:0:free', '128:1:free', '132:1:free']);
    expect(meminfo(k)).toMatchObject({ HugePages_Total: 4, HugePages_Free: 4, HugePages_Rsvd: 0, HugePages_Surp: 0 });
    expect(checkConservation(k)).toBeNull();
  });

  it('a node that cannot give a page is skipped: the other node takes every allocation', () => {
    const { k, h } = boot(TWO);
    fill(k, [0]);
    expect(resize(k, h, 3)).toBe(3);
    expectPool(k, [[3, 3, 0, 0, 3], [[0, 0, 0], [3, 3, 0]]], ['128:1:free', '132:1:free', '136:1:free']);
    // A node-0 write allocates with __GFP_THISNODE: no fallback to node 1, nothing changes.
    expect(resize(k, h, 1, 0)).toBe(3);
    expect(pool(k)).toEqual([[3, 3, 0, 0, 3], [[0, 0, 0], [3, 3, 0]]]);
  });
});

describe('per-node nr_hugepages (set_max_huge_pages with nid)', () => {
  it('a node write becomes a global target: count += persistent - node persistent; only that node grows or shrinks', () => {
    const { k, h } = boot(TWO);
    expect(resize(k, h, 2, 1)).toBe(2);
    expect(pool(k)).toEqual([[2, 2, 0, 0, 2], [[0, 0, 0], [2, 2, 0]]]);
    expect(resize(k, h, 1, 0)).toBe(3);
    expectPool(k, [[3, 3, 0, 0, 3], [[1, 1, 0], [2, 2, 0]]], ['8:0:free', '128:1:free', '132:1:free']);
    expect(resize(k, h, 0, 1)).toBe(1);
    expectPool(k, [[1, 1, 0, 0, 1], [[1, 1, 0], [0, 0, 0]]], ['8:0:free']);
  });

  it("the node's surplus pages are not persistent: writing the node's in-use count turns its surplus page back", () => {
    const { k, h } = boot(TWO);
    surplusOnNode0(k, h);
    // node1 = 1: count = 1 + persistent 0 - (0 - 0); node 0's surplus is not in the node mask.
    expect(resize(k, h, 1, 1)).toBe(2);
    expect(pool(k)).toEqual([[2, 1, 1, 0, 1], [[1, 0, 1], [1, 1, 0]]]);
    // node0 = 1: count = 1 + 1 - (1 - 1) = 2: the surplus page becomes persistent, nothing allocated.
    expect(resize(k, h, 1, 0)).toBe(2);
    expectPool(k, [[2, 1, 0, 0, 2], [[1, 0, 0], [1, 1, 0]]], ['8:0:in-use', '128:1:free']);
  });
});

describe('adjust_pool_surplus: round-robin over nodes that qualify', () => {
  it('shrinking below the in-use pages marks surplus only where surplus < nr; growing takes surplus back only where there is some', () => {
    const { k, h } = boot(TWO);
    resize(k, h, 3);
    // Faults prefer node 0: its two pages (list head first).
    expect(mapAndFault(k, h, 'm', 2)).toEqual([12, 8]);
    // min_count = resv 0 + in use 2: node 1's free page is freed (node 0 has none free).
    expect(resize(k, h, 2)).toBe(2);
    expect(pool(k)).toEqual([[2, 0, 0, 0, 2], [[2, 0, 0], [0, 0, 0]]]);
    // Two pages to mark: node 0, then node 1 (no pages: 0 < 0 fails), node 0 again.
    expect(resize(k, h, 0)).toBe(2);
    expectPool(k, [[2, 0, 2, 0, 0], [[2, 0, 2], [0, 0, 0]]], ['8:0:in-use', '12:0:in-use']);
    // next_nid_to_alloc is node 1 (it has no surplus): node 0's surplus goes down.
    expect(resize(k, h, 1)).toBe(2);
    expect(pool(k)).toEqual([[2, 0, 1, 0, 1], [[2, 0, 1], [0, 0, 0]]]);
    // The last surplus page turns persistent, then one fresh page, on node 1 (next_nid_to_alloc).
    expect(resize(k, h, 3)).toBe(3);
    expect(pool(k)).toEqual([[3, 1, 0, 0, 3], [[2, 0, 0], [1, 1, 0]]]);
    expect(drive(hugetlbMunmap(k, 'm'))).toBe('0');
    expect(pool(k)).toEqual([[3, 3, 0, 0, 3], [[2, 2, 0], [1, 1, 0]]]);
    expect(checkConservation(k)).toBeNull();
  });

  it('free_huge_page: a page leaves the pool while its own node has surplus pages, and is enqueued otherwise', () => {
    const { k, h } = boot(TWO);
    resize(k, h, 3);
    // Node 0's two pages first, then the fault falls back to node 1.
    expect(mapAndFault(k, h, 'm', 3)).toEqual([12, 8, 128]);
    expect(resize(k, h, 2)).toBe(3);
    expect(pool(k)).toEqual([[3, 0, 1, 0, 2], [[2, 0, 1], [1, 0, 0]]]);
    expect(drive(hugetlbMunmap(k, 'm'))).toBe('0');
    // 12 (node 0, surplus 1) leaves; 8 (node 0, surplus now 0) and 128 (node 1) are enqueued.
    expectPool(k, [[2, 2, 0, 0, 2], [[1, 1, 0], [1, 1, 0]]], ['8:0:free', '128:1:free']);
    expect([inBuddy(k, 8), inBuddy(k, 12), inBuddy(k, 128)]).toEqual([false, true, false]);
    expect(checkConservation(k)).toBeNull();
  });
});

describe('alloc_huge_page / alloc_huge_page_nodemask: the preferred node first, then the others', () => {
  it('a fault takes the reserved page from node 1 when node 0 has none', () => {
    const { k, h } = boot(TWO);
    resize(k, h, 1, 1);
    expect(mapAndFault(k, h, 'm', 1)).toEqual([128]);
    expectPool(k, [[1, 0, 0, 0, 1], [[0, 0, 0], [1, 0, 0]]], ['128:1:in-use']);
  });
});

/**
 * Isolates the in-use page at `pfn` and migrates it (unmap_and_move_huge_page); the result. The
 * reason is memory offline's by default, whose fresh targets may come from any node on every
 * kernel (htlb_allow_alloc_fallback).
 */
function migrate(k: Kernel, pfn: number, reason: MigrateReason = 'MR_MEMORY_HOTPLUG'): string {
  const list: number[] = [];
  expect(isolateHugePage(k, pfn, list)).toBe(true);
  expect(list).toEqual([pfn]);
  return drive(migrateHugePage(k, pfn, reason));
}

describe('hugetlb migration (alloc_migration_target, move_hugetlb_state, free_huge_page of the old page)', () => {
  it('the target is a free pool page of the same node; the old page goes back to the free list; the data follows', () => {
    const { k, h } = boot(TWO);
    resize(k, h, 3);
    expect(mapAndFault(k, h, 'm', 1)).toEqual([12]);
    const token = k.mm.token[12];
    expect(migrate(k, 12)).toBe('0');
    expect(k.lookup('m[0]')!.pfn).toBe(8);
    expect([k.mm.token[8], k.mm.refcount[8], k.mm.owner[8]]).toEqual([token, 1, k.lookup('m[0]')!.handle]);
    expectPool(k, [[3, 2, 0, 0, 3], [[2, 1, 0], [1, 1, 0]]], ['8:0:in-use', '12:0:free', '128:1:free']);
    expect(drive(hugetlbFault(k, 'm', 0))).toEqual({ result: '0', pfn: 8, token });
    // The new page is migratable in turn.
    expect(isolateHugePage(k, 8, [])).toBe(true);
  });

  it('no free page on the node: the target is the free page of node 1', () => {
    const { k, h } = boot(TWO);
    resize(k, h, 2);
    expect(mapAndFault(k, h, 'm', 1)).toEqual([8]);
    expect(migrate(k, 8)).toBe('0');
    expect(k.lookup('m[0]')!.pfn).toBe(128);
    expectPool(k, [[2, 1, 0, 0, 2], [[1, 1, 0], [1, 0, 0]]], ['8:0:free', '128:1:in-use']);
  });

  it('free pages that are all reserved are not targets: a Temporary page from buddy, freed as the old page afterwards', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 2);
    const [old] = mapAndFault(k, h, 'm', 1);
    expect(drive(hugetlbMmap(k, 'r', h, 1))).toBe('0');
    expect(pool(k)).toEqual([[2, 1, 0, 1, 2], [[2, 1, 0]]]);
    const before = pages(k);
    expect(migrate(k, old)).toBe('0');
    const now = k.lookup('m[0]')!.pfn;
    expect(before.some((p) => p.startsWith(`${now}:`))).toBe(false);
    expect(inBuddy(k, old)).toBe(true);
    expect(pool(k)).toEqual([[2, 1, 0, 1, 2], [[2, 1, 0]]]);
    expect(h.temporary.size).toBe(0);
    expect(pages(k)).toEqual([before.find((p) => p.endsWith('free'))!, `${now}:0:in-use`].sort((a, b) => parseInt(a) - parseInt(b)));
  });

  it('a surplus page migrated to another node takes its surplus unit along (move_hugetlb_state)', () => {
    const { k, h } = boot(TWO);
    h.overcommit = 1;
    const [old] = mapAndFault(k, h, 'm', 1);
    expect(pool(k)).toEqual([[1, 0, 1, 0, 0], [[1, 0, 1], [0, 0, 0]]]);
    fill(k, [0]);
    expect(migrate(k, old)).toBe('0');
    const now = k.lookup('m[0]')!.pfn;
    expectPool(k, [[1, 0, 1, 0, 0], [[0, 0, 0], [1, 0, 1]]], [`${now}:1:in-use`]);
    expect(drive(hugetlbMunmap(k, 'm'))).toBe('0');
    expect(pool(k)).toEqual([[0, 0, 0, 0, 0], [[0, 0, 0], [0, 0, 0]]]);
    expect(inBuddy(k, now)).toBe(true);
  });
});

describe('adjust_pool_surplus walks next_nid_to_{alloc,free} as for_each_node_mask_to_{alloc,free} does', () => {
  it('after marking node 0 surplus, the next page freed comes from node 1; after unmarking it, the next page is allocated on node 1', () => {
    const { k, h } = boot(TWO);
    surplusOnNode0(k, h);
    // Unmarked at node 0 (next_nid_to_alloc 0 -> 1), then fresh pages on node 1 and node 0.
    expect(resize(k, h, 3)).toBe(3);
    expectPool(k, [[3, 2, 0, 0, 3], [[2, 1, 0], [1, 1, 0]]], ['8:0:in-use', '12:0:free', '128:1:free']);
    // Marking node 0 surplus moved next_nid_to_free to node 1: its page is the one freed.
    expect(resize(k, h, 2)).toBe(2);
    expectPool(k, [[2, 1, 0, 0, 2], [[2, 1, 0], [0, 0, 0]]], ['8:0:in-use', '12:0:free']);
  });
});

describe('set_max_huge_pages: surplus first, reserved pages kept', () => {
  it('growing first turns a surplus page persistent at next_nid_to_alloc (node 0), which moves on: the fresh page is on node 1', () => {
    const { k, h } = boot(TWO);
    overcommitOnNode0(k, h);
    expect(resize(k, h, 2)).toBe(2);
    expectPool(k, [[2, 1, 0, 0, 2], [[1, 0, 0], [1, 1, 0]]], ['8:0:in-use', '128:1:free']);
  });

  it('shrinking while a surplus page is in use frees free persistent pages and leaves the surplus page alone', () => {
    const { k, h } = boot(TWO);
    overcommitOnNode0(k, h);
    // node1 = 2: node 0's surplus is outside the node mask, two fresh pages on node 1.
    expect(resize(k, h, 2, 1)).toBe(3);
    expect(pool(k)).toEqual([[3, 2, 1, 0, 2], [[1, 0, 1], [2, 2, 0]]]);
    // 1 < persistent 2: no surplus is turned back; one free page of node 1 goes.
    expect(resize(k, h, 1)).toBe(2);
    expectPool(k, [[2, 1, 1, 0, 1], [[1, 0, 1], [1, 1, 0]]], ['8:0:in-use', '128:1:free']);
  });

  it('min_count = resv + in use: reserved free pages are not freed but marked surplus; return_unused_surplus_pages frees them at munmap', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 3);
    expect(drive(hugetlbMmap(k, 'r', h, 2))).toBe('0');
    expect(resize(k, h, 0)).toBe(2);
    expect(pool(k)).toEqual([[2, 2, 2, 2, 0], [[2, 2, 2]]]);
    expect(meminfo(k)).toMatchObject({ HugePages_Total: 2, HugePages_Free: 2, HugePages_Rsvd: 2, HugePages_Surp: 2 });
    expect(drive(hugetlbMunmap(k, 'r'))).toBe('0');
    expect(pool(k)).toEqual([[0, 0, 0, 0, 0], [[0, 0, 0]]]);
    expect(checkConservation(k)).toBeNull();
  });
});

describe('migration targets: gigantic pages, Temporary pages on another node', () => {
  it('a gigantic page with no free pool page has no target (alloc_migrate_huge_page refuses gigantic): -ENOMEM, still isolated', () => {
    const { k, h: g } = boot('tiny', '1G');
    expect(resize(k, g, 1)).toBe(1);
    const [gp] = mapAndFault(k, g, 'g', 1);
    expect(migrate(k, gp)).toBe('-ENOMEM');
    expect(k.mm.refcount[gp]).toBe(2);
    expect(k.lookup('g[0]')!.pfn).toBe(gp);
    expect(pool(k, '1G')).toEqual([[1, 0, 0, 0, 1], [[1, 0, 0]]]);
  });

  it('no free pool page and no memory for a Temporary page: -ENOMEM, the pool as it was', () => {
    const { k, h } = boot('tiny');
    const p = isolatedInUse(k, h, 1);
    fill(k, [0, 1]);
    expect(drive(migrateHugePage(k, p))).toBe('-ENOMEM');
    expectPool(k, [[1, 0, 0, 0, 1], [[1, 0, 0]]], [`${p}:0:in-use`]);
    expect(h.temporary.size).toBe(0);
    // An in-use page is not dissolved.
    expect(drive(dissolveFreeHugePage(k, p))).toBe('-EBUSY');
  });

  it('a persistent page whose Temporary target is on another node carries no surplus over', () => {
    const { k, h } = boot(TWO);
    resize(k, h, 1);
    expect(mapAndFault(k, h, 'm', 1)).toEqual([8]);
    fill(k, [0]);
    expect(migrate(k, 8)).toBe('0');
    const now = k.lookup('m[0]')!.pfn;
    expectPool(k, [[1, 0, 0, 0, 1], [[0, 0, 0], [1, 0, 0]]], [`${now}:1:in-use`]);
    expect(inBuddy(k, 8)).toBe(true);
  });

  // alloc_migration_target -> alloc_hugetlb_folio_nodemask(..., htlb_allow_alloc_fallback(reason))
  // (6.12 mm/migrate.c:2156, mm/hugetlb.c:2438-2458, include/linux/hugetlb.h:939; v6.9): with
  // no free pool page, the fresh Temporary target is __GFP_THISNODE unless the reason is memory
  // offline / failure / a syscall / mbind. 6.1 (mm/hugetlb.c:2538-2553) takes it from any node.
  it('v6.9+: a fresh target for MR_CONTIG_RANGE stays on the node (-ENOMEM when it is full); MR_MEMORY_HOTPLUG and older kernels fall back', () => {
    const run = (profile: string, reason: MigrateReason) => {
      const { k, h } = boot(TWO, '2M', profile);
      resize(k, h, 1);
      expect(mapAndFault(k, h, 'm', 1)).toEqual([8]);
      fill(k, [0]);
      const r = migrate(k, 8, reason);
      return [r, k.lookup('m[0]')!.pfn, h.temporary.size] as const;
    };
    for (const profile of ['v5.19', 'v6.10', 'mainline']) {
      expect(run(profile, 'MR_MEMORY_HOTPLUG'), profile).toEqual(['0', expect.any(Number), 0]);
      const thisNode = profile !== 'v5.19';
      const [r, pfn] = run(profile, 'MR_CONTIG_RANGE');
      expect([r, pfn >= 128], profile).toEqual(thisNode ? ['-ENOMEM', false] : ['0', true]);
    }
    // the pool's free pages are still taken from any node (dequeue_hugetlb_folio_nodemask)
    const { k, h } = boot(TWO);
    resize(k, h, 2);
    expect(mapAndFault(k, h, 'm', 1)).toEqual([8]);
    expect(migrate(k, 8, 'MR_CONTIG_RANGE')).toBe('0');
    expect(k.lookup('m[0]')!.pfn).toBe(128);
  });

  it('alloc_contig_range over an in-use huge page of a full node: v5.19 migrates it to node 1, v6.10 and mainline fail -ENOMEM', () => {
    for (const profile of ['v5.19', 'v6.10', 'mainline']) {
      const { k, h } = boot(TWO, '2M', profile);
      resize(k, h, 1);
      expect(mapAndFault(k, h, 'm', 1)).toEqual([8]);
      fill(k, [0]);
      const r = drive(allocContigRange(k, 8, 12, MIGRATE_MOVABLE, { id: 'c', kind: 'contig' }));
      if (profile === 'v5.19') {
        expect(r).toBe('0');
        expect(k.lookup('m[0]')!.pfn).toBeGreaterThanOrEqual(128);
        expect(k.lookup('c')).toMatchObject({ pfn: 8, nrPages: 4 });
      } else {
        expect(r, profile).toBe('-ENOMEM');
        expect(k.lookup('m[0]')!.pfn).toBe(8);
        expect(k.lookup('c')).toBeUndefined();
        expectPool(k, [[1, 0, 0, 0, 1], [[1, 0, 0], [0, 0, 0]]], ['8:0:in-use']);
      }
    }
  });
});

describe('update_and_free_page when the vmemmap cannot be restored (HVO)', () => {
  it('an unused surplus page returned at munmap cannot be freed: it stays in the pool as a surplus page', () => {
    const { k, h } = boot('tiny');
    h.overcommit = 1;
    expect(drive(hugetlbMmap(k, 'n', h, 1))).toBe('0');
    expect(pool(k)).toEqual([[1, 1, 1, 1, 0], [[1, 1, 1]]]);
    fill(k, [0, 1]);
    expect(drive(hugetlbMunmap(k, 'n'))).toBe('0');
    expect(pool(k)).toEqual([[1, 1, 1, 0, 0], [[1, 1, 1]]]);
    expect(k.events.filter((e) => e.includes('vmemmap restore failed'))).toHaveLength(1);
  });

  it('a page removed by a shrink stays as a free surplus page; the next shrink removes it as persistent and re-adds it as surplus again', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 2);
    fill(k, [0, 1]);
    expect(resize(k, h, 1)).toBe(2);
    expect(pool(k)).toEqual([[2, 2, 1, 0, 1], [[2, 2, 1]]]);
    expect(k.events.filter((e) => e.includes('vmemmap restore failed'))).toHaveLength(1);
    // Dissolving that free surplus page fails the same way: back as surplus, max_huge_pages as it was.
    const head = hugetlbState(k).hstates[0].nodes[0].freeList.head;
    expect(drive(dissolveFreeHugePage(k, head))).toBe('-ENOMEM');
    expect(pool(k)).toEqual([[2, 2, 1, 0, 1], [[2, 2, 1]]]);
    // remove_pool_huge_page(.., acct_surplus=false) takes the list head (the re-added page) as persistent.
    expect(resize(k, h, 0)).toBe(2);
    expect(pool(k)).toEqual([[2, 2, 2, 0, 0], [[2, 2, 2]]]);
    expect(k.events.filter((e) => e.includes('vmemmap restore failed'))).toHaveLength(2);
    expect(meminfo(k)).toMatchObject({ HugePages_Total: 2, HugePages_Free: 2, HugePages_Rsvd: 0, HugePages_Surp: 2 });
  });
});

describe('dissolve_free_huge_pages over a pfn range (memory offline)', () => {
  it('steps by the smallest huge page size and stops at the first error: pages before it are gone, pages after it stay', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 4);
    expect(pages(k)).toEqual(['128:0:free', '132:0:free', '136:0:free', '140:0:free']);
    expect(drive(hugetlbMmap(k, 'r', h, 2))).toBe('0');
    // 128 and 132 go (free 4 -> 2 = resv), then 136 is -EBUSY: every free page left is reserved.
    expect(drive(dissolveFreeHugePages(k, 128, 144))).toBe('-EBUSY');
    expectPool(k, [[2, 2, 0, 2, 2], [[2, 2, 0]]], ['136:0:free', '140:0:free']);
    expect([inBuddy(k, 128), inBuddy(k, 132)]).toEqual([true, true]);
    expect(checkConservation(k)).toBeNull();
  });

  it('a range that covers only the tail of a free gigantic page dissolves the whole page', () => {
    const { k, h: g } = boot('tiny', '1G');
    resize(k, g, 2);
    expect(pages(k, '1G')).toEqual(['32:0:free', '96:0:free']);
    expect(drive(dissolveFreeHugePages(k, 104, 112))).toBe('0');
    expect(pool(k, '1G')).toEqual([[1, 1, 0, 0, 1], [[1, 1, 0]]]);
    expect(pages(k, '1G')).toEqual(['32:0:free']);
    for (const p of [96, 100, 124]) expect(inBuddy(k, p)).toBe(true);
    expect(checkConservation(k)).toBeNull();
  });

  it("dissolve_free_huge_page (2025 fix): the page's own node decides whether it leaves as surplus", () => {
    const { k, h } = boot(TWO);
    overcommitOnNode0(k, h);
    expect(resize(k, h, 1, 1)).toBe(2);
    expect(pool(k)).toEqual([[2, 1, 1, 0, 1], [[1, 0, 1], [1, 1, 0]]]);
    // Node 1 has no surplus: a persistent page leaves and max_huge_pages goes down.
    expect(drive(dissolveFreeHugePage(k, 128))).toBe('0');
    expect(pool(k)).toEqual([[1, 0, 1, 0, 0], [[1, 0, 1], [0, 0, 0]]]);
    expect(inBuddy(k, 128)).toBe(true);
  });
});

describe('demote (demote_store, demote_pool_huge_page, demote_free_huge_page)', () => {
  it('a node write demotes a free gigantic page of that node only, into eight pages of that node; max follows', () => {
    const { k, h: g } = boot(TWO, '1G');
    expect(resize(k, g, 2)).toBe(2);
    expect(pages(k, '1G')).toEqual(['32:0:free', '128:1:free']);
    expect(drive(demoteHugePage(k, g, 1))).toEqual({ result: '0', demoted: 1, pfn: 128 });
    expect(pool(k, '1G')).toEqual([[1, 1, 0, 0, 1], [[1, 1, 0], [0, 0, 0]]]);
    expectPool(k, [[8, 8, 0, 0, 8], [[0, 0, 0], [8, 8, 0]]], [128, 132, 136, 140, 144, 148, 152, 156].map((p) => `${p}:1:free`));
    // Nothing free on node 1 any more: nothing demoted, no error.
    expect(drive(demoteHugePage(k, g, 1))).toEqual({ result: '0', demoted: 0 });
    expect(drive(demoteHugePage(k, g))).toEqual({ result: '0', demoted: 1, pfn: 32 });
    expect(pool(k, '1G')).toEqual([[0, 0, 0, 0, 0], [[0, 0, 0], [0, 0, 0]]]);
    expect(pool(k)).toEqual([[16, 16, 0, 0, 16], [[8, 8, 0], [8, 8, 0]]]);
    expect(checkConservation(k)).toBeNull();
  });

  it('nr_available = free (of the node, for a node write) - resv_huge_pages: reserved pages are not demoted', () => {
    const { k, h: g } = boot(TWO, '1G');
    resize(k, g, 2);
    expect(drive(hugetlbMmap(k, 'r', g, 1))).toBe('0');
    // Node 1: 1 free - 1 reserved = 0.
    expect(drive(demoteHugePage(k, g, 1))).toEqual({ result: '0', demoted: 0 });
    // Globally 2 free - 1 reserved: one page (from next_nid_to_free, node 0).
    expect(drive(demoteHugePage(k, g))).toEqual({ result: '0', demoted: 1, pfn: 32 });
    expect(pool(k, '1G')).toEqual([[1, 1, 0, 1, 1], [[0, 0, 0], [1, 1, 0]]]);
    expect(drive(demoteHugePage(k, g))).toEqual({ result: '0', demoted: 0 });
    expect(pool(k)).toEqual([[8, 8, 0, 0, 8], [[8, 8, 0], [0, 0, 0]]]);
  });

  it('a free surplus page is demoted as if persistent (remove_hugetlb_folio_for_demote(.., false)): the surplus count stays', () => {
    const { k, h: g } = boot('tiny', '1G');
    resize(k, g, 2);
    const taken = fill(k, [0, 1]);
    // The page freed by the shrink cannot get its vmemmap back: it stays as a free surplus page.
    expect(resize(k, g, 1)).toBe(2);
    expect(pool(k, '1G')).toEqual([[2, 2, 1, 0, 1], [[2, 2, 1]]]);
    for (const v of taken) {
      k.mm.refcount[v] = 0;
      freeOnePage(k, k.zoneOf(v)!, v, 0, k.pb.get(v), false);
    }
    expect(drive(demoteHugePage(k, g))).toEqual({ result: '0', demoted: 1, pfn: 96 });
    expect(pool(k, '1G')).toEqual([[1, 1, 1, 0, 0], [[1, 1, 1]]]);
    expect(pool(k)).toEqual([[8, 8, 0, 0, 8], [[8, 8, 0]]]);
  });

  it('no memory for the vmemmap: -ENOMEM, the gigantic page back in the pool as a persistent page', () => {
    const { k, h: g } = boot('tiny', '1G');
    resize(k, g, 1);
    fill(k, [0, 1]);
    expect(drive(demoteHugePage(k, g))).toEqual({ result: '-ENOMEM', demoted: 0 });
    expect(pool(k, '1G')).toEqual([[1, 1, 0, 0, 1], [[1, 1, 0]]]);
    expect(pool(k)).toEqual([[0, 0, 0, 0, 0], [[0, 0, 0]]]);
  });

  it('no smaller hstate, or a kernel without demote: -EINVAL', () => {
    const k = createKernel('tiny', 'mainline');
    resize(k, hstateByName(k, '2M')!, 1);
    expect(drive(demoteHugePage(k, hstateByName(k, '2M')!))).toEqual({ result: '-EINVAL', demoted: 0 });
    expect(pool(k)).toEqual([[1, 1, 0, 0, 1], [[1, 1, 0]]]);
    const old = createKernel('tiny', 'v5.14');
    resize(old, hstateByName(old, '1G')!, 1);
    expect(drive(demoteHugePage(old, hstateByName(old, '1G')!))).toEqual({ result: '-EINVAL', demoted: 0 });
    expect(pool(old, '1G')).toEqual([[1, 1, 0, 0, 1], [[1, 1, 0]]]);
  });
});

describe('gather_surplus_pages / return_unused_surplus_pages', () => {
  it('a surplus page comes from the node that has memory and is counted there', () => {
    const { k, h } = boot(TWO);
    h.overcommit = 1;
    fill(k, [0]);
    expect(drive(hugetlbMmap(k, 'm', h, 1))).toBe('0');
    expect(pool(k)).toEqual([[1, 1, 1, 1, 0], [[0, 0, 0], [1, 1, 1]]]);
    const f = drive(hugetlbFault(k, 'm', 0));
    expect(pages(k)).toEqual([`${f.pfn}:1:in-use`]);
    expect(pool(k)).toEqual([[1, 0, 1, 0, 0], [[0, 0, 0], [1, 0, 1]]]);
    expect(drive(hugetlbMunmap(k, 'm'))).toBe('0');
    expect(pool(k)).toEqual([[0, 0, 0, 0, 0], [[0, 0, 0], [0, 0, 0]]]);
    expect(inBuddy(k, f.pfn!)).toBe(true);
  });

  it('munmap frees min(unused reservations, surplus) pages: the surplus page goes, the persistent page stays', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 1);
    const [persistent] = pages(k);
    h.overcommit = 1;
    expect(drive(hugetlbMmap(k, 'b', h, 2))).toBe('0');
    expect(pool(k)).toEqual([[2, 2, 1, 2, 1], [[2, 2, 1]]]);
    const surplus = pages(k).find((p) => p !== persistent)!;
    expect(drive(hugetlbMunmap(k, 'b'))).toBe('0');
    expectPool(k, [[1, 1, 0, 0, 1], [[1, 1, 0]]], [persistent]);
    expect(inBuddy(k, parseInt(surplus))).toBe(true);
    expect(checkConservation(k)).toBeNull();
  });

  it('more than nr_overcommit_hugepages needed: -ENOMEM, the pages gathered so far are freed, nothing reserved', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 1);
    h.overcommit = 1;
    expect(drive(hugetlbMmap(k, 'b', h, 3))).toBe('-ENOMEM');
    expect(pool(k)).toEqual([[1, 1, 0, 0, 1], [[1, 1, 0]]]);
    expect(drive(hugetlbFault(k, 'b', 0))).toEqual({ result: '-EINVAL' });
    expect(drive(hugetlbMunmap(k, 'b'))).toBe('-EINVAL');
  });
});

// gather_surplus_pages (6.1 mm/hugetlb.c:2578-2660) drops hugetlb_lock while it allocates, then
// recomputes `needed` against free_huge_pages + allocated: what another thread freed into the pool
// meanwhile counts. A failed allocation only fails the reservation when pages are still needed,
// and of the pages gathered only the `needed + allocated` first on the list (the last allocated:
// list_add) enter the pool; the rest go back to buddy (free_huge_page).
describe('gather_surplus_pages with hugetlb_lock dropped: the pool grown meanwhile', () => {
  /** Runs hugetlb_reserve_pages up to its first alloc_surplus_huge_page, then `meanwhile`, then on. */
  const mmapWith = (k: Kernel, h: Hstate, n: number, meanwhile: () => void): string => {
    const g = hugetlbMmap(k, 'b', h, n);
    let r = g.next();
    while (!r.done && r.value !== 'alloc_surplus_huge_page') r = g.next();
    meanwhile();
    while (!r.done) r = g.next();
    return r.value;
  };

  it('a surplus page gathered beyond what is still needed goes back to buddy', () => {
    const { k, h } = boot('tiny');
    h.overcommit = 2;
    expect(mmapWith(k, h, 2, () => expect(resize(k, h, 1)).toBe(1))).toBe('0');
    // 128 persistent; 132 then 136 gathered, 136 (the list's head) kept: Total 2, Free 2, Surp 1, Rsvd 2
    expectPool(k, [[2, 2, 1, 2, 1], [[2, 2, 1]]], ['128:0:free', '136:0:free']);
    expect(inBuddy(k, 132)).toBe(true);
    expect(checkConservation(k)).toBeNull();
  });

  it('an allocation past nr_overcommit_hugepages fails, but the pool grown meanwhile covers the rest: 0', () => {
    const { k, h } = boot('tiny');
    h.overcommit = 1;
    expect(mmapWith(k, h, 2, () => expect(resize(k, h, 1)).toBe(1))).toBe('0');
    expectPool(k, [[2, 2, 1, 2, 1], [[2, 2, 1]]], ['128:0:free', '132:0:free']);
    expect(checkConservation(k)).toBeNull();
  });
});

describe('dissolve and free of gigantic pages', () => {
  it('the range end is exclusive', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 4);
    expect(drive(dissolveFreeHugePages(k, 132, 136))).toBe('0');
    expect(pages(k)).toEqual(['128:0:free', '136:0:free', '140:0:free']);
    expect(pool(k)).toEqual([[3, 3, 0, 0, 3], [[3, 3, 0]]]);
  });

  it('a gigantic page goes back to buddy in MAX_ORDER blocks (free_contig_range)', () => {
    const { k, h: g } = boot('tiny', '1G');
    resize(k, g, 1);
    expect(pages(k, '1G')).toEqual(['32:0:free']);
    expect(resize(k, g, 0)).toBe(0);
    expect([32, 48].map((p) => [k.mm.flags[p] & PG_buddy, k.mm.order[p]])).toEqual([[PG_buddy, 4], [PG_buddy, 4]]);
    for (let p = 32; p < 64; p++) expect(k.mm.refcount[p]).toBe(0);
    expect(checkConservation(k)).toBeNull();
  });
});

describe('hstate_is_gigantic: order > MAX_PAGE_ORDER', () => {
  it('an hstate of exactly the largest buddy order comes from buddy and may overcommit; one order more is gigantic and may not', () => {
    const cfg = resolveConfig({ base: 'tiny', name: 'tiny-maxorder-hstate', hstates: [{ name: '64K', order: 4 }, { name: '1G', order: 5 }] });
    const { k, h } = boot(cfg, '64K');
    h.overcommit = 1;
    expect(drive(hugetlbMmap(k, 'm', h, 1))).toBe('0');
    expect(pool(k, '64K')).toEqual([[1, 1, 1, 1, 0], [[1, 1, 1]]]);
    const g = hstateByName(k, '1G')!;
    g.overcommit = 1;
    expect(drive(hugetlbMmap(k, 'g', g, 1))).toBe('-ENOMEM');
    expect(pool(k, '1G')).toEqual([[0, 0, 0, 0, 0], [[0, 0, 0]]]);
  });
});

describe('demote picks the next smaller hstate (h->demote_order)', () => {
  it('with three sizes, a 1G page becomes four 8M pages, an 8M page two 2M pages', () => {
    const cfg = resolveConfig({ base: 'tiny', name: 'tiny-3hstates', hstates: [{ name: '2M', order: 2 }, { name: '8M', order: 3 }, { name: '1G', order: 5 }] });
    const { k, h: g } = boot(cfg, '1G');
    resize(k, g, 1);
    expect(drive(demoteHugePage(k, g))).toEqual({ result: '0', demoted: 1, pfn: 32 });
    expect(pages(k, '8M')).toEqual(['32:0:free', '40:0:free', '48:0:free', '56:0:free']);
    expect([pool(k, '1G')[0], pool(k, '8M')[0], pool(k)[0]]).toEqual([[0, 0, 0, 0, 0], [4, 4, 0, 0, 4], [0, 0, 0, 0, 0]]);
    expect(drive(demoteHugePage(k, hstateByName(k, '8M')!))).toEqual({ result: '0', demoted: 1, pfn: 56 });
    expect(pages(k)).toEqual(['56:0:free', '60:0:free']);
    expect([pool(k, '8M')[0], pool(k)[0]]).toEqual([[3, 3, 0, 0, 3], [2, 2, 0, 0, 2]]);
  });
});

describe('alloc_gigantic_page: the hugetlb CMA area first, alloc_contig_pages only as fallback', () => {
  it('the first page comes from the CMA area only, the second from alloc_contig_pages; no allocation record is left behind', () => {
    const { k, h: g } = boot('tiny-hugetlb-cma', '1G');
    expect(resize(k, g, 1)).toBe(1);
    expect(pages(k, '1G')).toEqual(['96:0:free']);
    expect(inBuddy(k, 32)).toBe(true);
    expect(k.lookup('@hugetlb:1G:0')).toBeUndefined();
    expect(resize(k, g, 2)).toBe(2);
    expect(pages(k, '1G')).toEqual(['32:0:free', '96:0:free']);
    expect(k.lookup('@hugetlb:1G:1')).toBeUndefined();
    expect([...k.allocs.values()].filter((a) => a.id.startsWith('@hugetlb'))).toEqual([]);
  });
});

describe('hugetlb_fault / alloc_huge_page', () => {
  it('mmap of an id already mapped or owned by another allocation is -EINVAL and reserves nothing; munmap removes the mapping and its pages', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 2);
    expect(mapAndFault(k, h, 'm', 1)).toEqual([132]);
    expect(drive(hugetlbMmap(k, 'm', h, 1))).toBe('-EINVAL');
    expect(drive(hugetlbMmap(k, 'm[0]', h, 1))).toBe('-EINVAL');
    expect(pool(k)).toEqual([[2, 1, 0, 0, 2], [[2, 1, 0]]]);
    expect(drive(hugetlbMunmap(k, 'm'))).toBe('0');
    expect(k.lookup('m[0]')).toBeUndefined();
    expect(drive(hugetlbFault(k, 'm', 0))).toEqual({ result: '-EINVAL' });
    expect(drive(hugetlbMunmap(k, 'm'))).toBe('-EINVAL');
    expect(pool(k)).toEqual([[2, 2, 0, 0, 2], [[2, 2, 0]]]);
  });

  it('an index outside the mapping is -EINVAL; a second fault on an index returns the same page', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 2);
    expect(drive(hugetlbMmap(k, 'm', h, 1))).toBe('0');
    expect(drive(hugetlbFault(k, 'm', 1))).toEqual({ result: '-EINVAL' });
    expect(drive(hugetlbFault(k, 'm', -1))).toEqual({ result: '-EINVAL' });
    expect(drive(hugetlbFault(k, 'x', 0))).toEqual({ result: '-EINVAL' });
    expect(pool(k)).toEqual([[2, 2, 0, 1, 2], [[2, 2, 0]]]);
    const f = drive(hugetlbFault(k, 'm', 0));
    expect(drive(hugetlbFault(k, 'm', 0))).toEqual(f);
    const al = k.lookup('m[0]')!;
    expect({ ...al, handle: 0 }).toMatchObject({ id: 'm[0]', kind: 'hugetlb', pfn: f.pfn, nrPages: 4, order: 2, migratetype: MIGRATE_MOVABLE, pinned: false });
    expect(k.mm.owner[f.pfn!]).toBe(al.handle);
    expect(pool(k)).toEqual([[2, 1, 0, 0, 2], [[2, 1, 0]]]);
  });

  it('v6.10+: the reserved page sits in an isolated pageblock, so the fault takes a fresh surplus page instead', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 1);
    expect(pages(k)).toEqual(['128:0:free']);
    expect(setMigratetypeIsolate(k, 128, MIGRATE_MOVABLE, 0, 128, 132)).toBe('0');
    h.overcommit = 1;
    expect(drive(hugetlbMmap(k, 'm', h, 1))).toBe('0');
    expect(drive(hugetlbFault(k, 'm', 0)).pfn).toBe(132);
    expect(pages(k)).toEqual(['128:0:free', '132:0:surplus']);
    const c = hugetlbCounters(k).find((x) => x.name === '2M')!;
    expect([c.nr, c.free, c.surplus]).toEqual([2, 1, 1]);
    // alloc_huge_page: the fault consumed the mapping's reservation though the page came from buddy
    // (SetHPageRestoreReserve, resv_huge_pages--): Rsvd 0, nothing left reserved in the mapping
    expect(c.resv).toBe(0);
    expect(hugetlbState(k).mappings.get('m')!.resv).toBe(0);
    // Migrated through a Temporary page (the only free page is in an isolated pageblock): the new page is the surplus one.
    expect(migrate(k, 132)).toBe('0');
    const now = k.lookup('m[0]')!.pfn;
    expect(pages(k)).toEqual(['128:0:free', `${now}:0:surplus`]);
    expect(inBuddy(k, 132)).toBe(true);
  });
});

/** The hugetlb part of the kernel's state fingerprint. */
function hugetlbPart(k: Kernel): string {
  return k.fingerprintParts.map((f) => f()).find((x) => x.startsWith('hugetlb{'))!;
}

/** Two tiny kernels with a pool of `n` free pages each: the same hugetlb fingerprint. */
function twins(n: number): Array<{ k: Kernel; h: Hstate }> {
  const both = [boot('tiny'), boot('tiny')];
  for (const { k, h } of both) resize(k, h, n);
  expect(hugetlbPart(both[1].k)).toBe(hugetlbPart(both[0].k));
  return both;
}

/** Runs `g` up to (and including) the yield labelled `label`. */
function runUntil<T>(g: KGen<T>, label: string): KGen<T> {
  for (let r = g.next(); !r.done; r = g.next()) if (r.value === label) return g;
  throw new Error(`no yield ${label}`);
}

/**
 * An eager profile (replacement allocated first): pool [8 | 128], 128's pageblock isolated (as
 * alloc_contig_range does), alloc_and_dissolve of 128 stopped right after the replacement was
 * allocated, then 128 dissolved under it. The generator is left to finish.
 */
function dissolvedWhileReplacing(profile: string): { k: Kernel; g: KGen<string> } {
  const { k, h } = boot(TWO, '2M', profile);
  resize(k, h, 2);
  expect(setMigratetypeIsolate(k, 128, MIGRATE_MOVABLE, 0, 128, 132)).toBe('0');
  const g = runUntil(isolateOrDissolveHugePage(k, 128, []), 'alloc_and_dissolve_huge_page:allocated');
  expect(drive(dissolveFreeHugePage(k, 128))).toBe('0');
  return { k, g };
}

describe('isolate_or_dissolve_huge_page / alloc_and_dissolve_huge_page (alloc_contig_range over a huge page)', () => {
  it('a free page is replaced by a fresh page of the same node (__GFP_THISNODE), the old one goes to buddy', () => {
    for (const profile of ['v5.13', 'mainline']) {
      const { k, h } = boot(TWO, '2M', profile);
      resize(k, h, 2);
      const list: number[] = [];
      expect(drive(isolateOrDissolveHugePage(k, 128, list)), profile).toBe('0');
      expect(list).toEqual([]);
      expectPool(k, [[2, 2, 0, 0, 2], [[1, 1, 0], [1, 1, 0]]], ['8:0:free', '132:1:free']);
      expect(inBuddy(k, 128)).toBe(true);
    }
  });

  it('no memory on the node for a replacement: -ENOMEM, the pool and the page untouched (eager v5.13 and lazy v6.9)', () => {
    for (const profile of ['v5.13', 'mainline']) {
      const { k, h } = boot(TWO, '2M', profile);
      resize(k, h, 2);
      fill(k, [1]);
      expect(drive(isolateOrDissolveHugePage(k, 128, [])), profile).toBe('-ENOMEM');
      expectPool(k, [[2, 2, 0, 0, 2], [[1, 1, 0], [1, 1, 0]]], ['8:0:free', '128:1:free']);
      expect(k.events).toEqual(['hugetlb: no replacement for free huge page 128 on node 1']);
    }
  });

  it('an in-use page is isolated for migration (0), one still being faulted in is not (-EBUSY); gigantic pages are fenced off (-ENOMEM); other pages are 0', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 1);
    resize(k, hstateByName(k, '1G')!, 1);
    expect(drive(hugetlbMmap(k, 'm', h, 1))).toBe('0');
    const fault = runUntil(hugetlbFault(k, 'm', 0), 'hugetlb_no_page');
    const list: number[] = [];
    expect(drive(isolateOrDissolveHugePage(k, 129, list))).toBe('-EBUSY');
    drive(fault);
    expect(drive(isolateOrDissolveHugePage(k, 129, list))).toBe('0');
    expect([list, k.mm.refcount[128]]).toEqual([[128], 2]);
    expect(drive(isolateOrDissolveHugePage(k, 40, list))).toBe('-ENOMEM');
    // pfn 5 is a boot-time slab page, not hugetlb: nothing to do.
    expect(drive(isolateOrDissolveHugePage(k, 5, list))).toBe('0');
    expect(list).toEqual([128]);
    expect(k.events).toEqual([]);
    expect(pool(k, '1G')).toEqual([[1, 1, 0, 0, 1], [[1, 1, 0]]]);
  });

  it('the page was dissolved while the replacement was allocated: the replacement goes back to buddy (v5.13), or none is allocated (v6.9 lazy)', () => {
    // alloc_contig_range has isolated the range first: the dissolved page cannot come back as the replacement.
    const { k: old, g } = dissolvedWhileReplacing('v5.13');
    expect(drive(g)).toBe('0');
    expect([pool(old), pages(old)]).toEqual([[[1, 1, 0, 0, 1], [[1, 1, 0], [0, 0, 0]]], ['8:0:free']]);
    expect([inBuddy(old, 128), inBuddy(old, 132)]).toEqual([true, true]);
    expect(checkConservation(old)).toBeNull();
    // The same race on mainline: nothing was allocated yet (lazy replacement).
    const { k, h } = boot(TWO);
    resize(k, h, 2);
    expect(setMigratetypeIsolate(k, 128, MIGRATE_MOVABLE, 0, 128, 132)).toBe('0');
    const lazy = isolateOrDissolveHugePage(k, 128, []);
    expect(lazy.next().value).toBe('alloc_and_dissolve_huge_page:alloc');
    expect(drive(dissolveFreeHugePage(k, 128))).toBe('0');
    expect(drive(lazy)).toBe('0');
    expectPool(k, [[1, 1, 0, 0, 1], [[1, 1, 0], [0, 0, 0]]], ['8:0:free']);
  });

  it('v5.13: the page was faulted in while the replacement was allocated: it is isolated instead, the replacement dropped', () => {
    const { k, h } = boot(TWO, '2M', 'v5.13');
    resize(k, h, 1, 1);
    expect(drive(hugetlbMmap(k, 'm', h, 1))).toBe('0');
    const list: number[] = [];
    const g = runUntil(isolateOrDissolveHugePage(k, 128, list), 'alloc_and_dissolve_huge_page:allocated');
    expect(drive(hugetlbFault(k, 'm', 0)).pfn).toBe(128);
    expect(drive(g)).toBe('0');
    expect(list).toEqual([128]);
    expectPool(k, [[1, 0, 0, 0, 1], [[0, 0, 0], [1, 0, 0]]], ['128:1:in-use']);
    expect(inBuddy(k, 132)).toBe(true);
  });
});

/** A pool of `n` pages, one faulted in by mapping 'm' and isolated for migration (refcount 2); its pfn. */
function isolatedInUse(k: Kernel, h: Hstate, n: number): number {
  resize(k, h, n);
  const [p] = mapAndFault(k, h, 'm', 1);
  expect(isolateHugePage(k, p, [])).toBe(true);
  expect(k.mm.refcount[p]).toBe(2);
  return p;
}

describe('unmap_and_move_huge_page: references', () => {
  it('a page freed into the pool is no longer migratable and has no owner', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 1);
    const [p] = mapAndFault(k, h, 'm', 1);
    expect(k.mm.flags[p] & PG_hugetlb_migratable).toBe(PG_hugetlb_migratable);
    expect(drive(hugetlbMunmap(k, 'm'))).toBe('0');
    expect([k.mm.flags[p] & PG_hugetlb_migratable, k.mm.owner[p], k.mm.refcount[p]]).toEqual([0, 0, 0]);
    expect(isolateHugePage(k, p, [])).toBe(false);
  });

  it('only the isolation reference left (unmapped meanwhile): put back, freed into the pool, 0', () => {
    const { k, h } = boot('tiny');
    const p = isolatedInUse(k, h, 1);
    expect(drive(hugetlbMunmap(k, 'm'))).toBe('0');
    expect(k.mm.refcount[p]).toBe(1);
    expect(drive(migrateHugePage(k, p))).toBe('0');
    expectPool(k, [[1, 1, 0, 0, 1], [[1, 1, 0]]], [`${p}:0:free`]);
  });

  it('an extra reference: -EAGAIN before a target is taken; one taken while the target was allocated: the target goes back, -EAGAIN', () => {
    const { k, h } = boot('tiny');
    const p = isolatedInUse(k, h, 2);
    k.mm.refcount[p]++;
    expect(drive(migrateHugePage(k, p))).toBe('-EAGAIN');
    expect(pool(k)).toEqual([[2, 1, 0, 0, 2], [[2, 1, 0]]]);
    k.mm.refcount[p]--;
    const g = runUntil(migrateHugePage(k, p), 'unmap_and_move_huge_page');
    expect(pool(k)).toEqual([[2, 0, 0, 0, 2], [[2, 0, 0]]]);
    k.mm.refcount[p]++;
    expect(drive(g)).toBe('-EAGAIN');
    expect(pool(k)).toEqual([[2, 1, 0, 0, 2], [[2, 1, 0]]]);
    expect([k.lookup('m[0]')!.pfn, k.mm.refcount[p]]).toEqual([p, 3]);
  });

  it('isolate_huge_page refuses a page that is free, not migratable yet, or already isolated', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 2);
    const list: number[] = [];
    expect(isolateHugePage(k, 128, list)).toBe(false);
    const [p] = mapAndFault(k, h, 'm', 1);
    expect(isolateHugePage(k, p, list)).toBe(true);
    expect(isolateHugePage(k, p, list)).toBe(false);
    expect([list, k.mm.refcount[p]]).toEqual([[p], 2]);
    drive(putbackActiveHugetlb(k, p));
    expect([k.mm.refcount[p], k.mm.flags[p] & PG_isolated]).toEqual([1, 0]);
    expect(isolateHugePage(k, p + 1, list)).toBe(false);
    expect(isolateHugePage(k, p, list)).toBe(true);
  });
});

describe('HVO (hugetlb_vmemmap_restore / optimize) at real sizes', () => {
  it('a 2 MiB page needs 7 vmemmap pages back before it can be freed; a new page gives them up again', () => {
    const { k, h } = boot('small');
    expect(resize(k, h, 1)).toBe(1);
    const [p] = pages(k);
    expect(drive(dissolveFreeHugePage(k, parseInt(p)))).toBe('0');
    const s = hugetlbState(k);
    expect(s.vmemmap).toHaveLength(7);
    for (const v of s.vmemmap) expect([k.mm.refcount[v], k.mm.owner[v]]).toEqual([1, s.vmemmapOwner]);
    const held = [...s.vmemmap];
    expect(resize(k, h, 1)).toBe(1);
    expect(s.vmemmap).toEqual([]);
    for (const v of held) expect([k.mm.refcount[v], k.mm.owner[v]]).toEqual([0, 0]);
    // Two pages dissolved: 14 held; one new page gives up exactly its 7.
    expect(resize(k, h, 2)).toBe(2);
    for (const q of pages(k)) expect(drive(dissolveFreeHugePage(k, parseInt(q)))).toBe('0');
    expect(s.vmemmap).toHaveLength(14);
    expect(resize(k, h, 1)).toBe(1);
    expect(s.vmemmap).toHaveLength(7);
  });

  it('without HVO (v5.13) nothing is restored', () => {
    const { k, h } = boot('small', '2M', 'v5.13');
    resize(k, h, 1);
    expect(drive(dissolveFreeHugePage(k, parseInt(pages(k)[0])))).toBe('0');
    expect(hugetlbState(k).vmemmap).toEqual([]);
  });

  it('a restore that gets only some of its 7 pages gives them back and fails', () => {
    const { k, h } = boot('small');
    resize(k, h, 1);
    const taken = fill(k, [0, 1]);
    // Three order-0 pages of ZONE_NORMAL (where unmovable vmemmap pages come from) back to buddy.
    const normal = taken.filter((v) => k.zoneOf(v)!.name === 'Normal');
    const some = [normal[0], normal[10], normal[20]];
    for (const v of some) {
      k.mm.refcount[v] = 0;
      freeOnePage(k, k.zoneOf(v)!, v, 0, k.pb.get(v), false);
    }
    expect(some.map((v) => inBuddy(k, v))).toEqual([true, true, true]);
    const [p] = pages(k);
    expect(drive(dissolveFreeHugePage(k, parseInt(p)))).toBe('-ENOMEM');
    expect(hugetlbState(k).vmemmap).toEqual([]);
    // Freed again (to the pcp lists): no reference, no owner.
    for (const v of some) expect([k.mm.refcount[v], k.mm.owner[v]]).toEqual([0, 0]);
    expect(pool(k)).toEqual([[1, 1, 0, 0, 1], [[1, 1, 0]]]);
  });

  it('the replacement page of alloc_and_dissolve gives up its vmemmap, the old page takes it back', () => {
    const { k, h } = boot('small');
    resize(k, h, 2);
    const [a, b] = pages(k).map((q) => parseInt(q));
    expect(drive(dissolveFreeHugePage(k, a))).toBe('0');
    const s = hugetlbState(k);
    expect(s.vmemmap).toHaveLength(7);
    expect(drive(isolateOrDissolveHugePage(k, b, []))).toBe('0');
    expect(s.vmemmap).toHaveLength(7);
    expect(pool(k)).toEqual([[1, 1, 0, 0, 1], [[1, 1, 0]]]);
  });

  it('v5.14: an unused replacement page needs its vmemmap back to be freed; without memory it stays as a surplus page', () => {
    for (const starve of [false, true]) {
      const { k, g } = dissolvedWhileReplacing('v5.14');
      expect(hugetlbState(k).vmemmap).toHaveLength(1);
      if (starve) fill(k, [0, 1]);
      expect(drive(g)).toBe('0');
      if (starve) {
        expectPool(k, [[2, 2, 1, 0, 1], [[1, 1, 0], [1, 1, 1]]], ['8:0:free', '132:1:free']);
        expect(hugetlbState(k).vmemmap).toHaveLength(1);
      } else {
        expectPool(k, [[1, 1, 0, 0, 1], [[1, 1, 0], [0, 0, 0]]], ['8:0:free']);
        expect(hugetlbState(k).vmemmap).toHaveLength(2);
      }
    }
  });
});

describe('views: sysfs, the page list, the state fingerprint', () => {
  it('/sys/kernel/mm/hugepages/hugepages-<size>kB/*: sizes from the orders, the global counters', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 3);
    resize(k, hstateByName(k, '1G')!, 1);
    h.overcommit = 2;
    expect(drive(hugetlbMmap(k, 'm', h, 4))).toBe('0');
    drive(hugetlbFault(k, 'm', 0));
    expect(hugepagesSysfs(k)).toEqual({
      'hugepages-16kB': { nr_hugepages: 4, free_hugepages: 3, resv_hugepages: 3, surplus_hugepages: 1, nr_overcommit_hugepages: 2 },
      'hugepages-128kB': { nr_hugepages: 1, free_hugepages: 1, resv_hugepages: 0, surplus_hugepages: 0, nr_overcommit_hugepages: 0 },
    });
  });

  it('hugetlbPages: every hstate in turn, by pfn; a migration target is "temporary" until the data has moved', () => {
    const { k, h } = boot('tiny');
    const p = isolatedInUse(k, h, 1);
    resize(k, hstateByName(k, '1G')!, 1);
    const g = runUntil(migrateHugePage(k, p), 'unmap_and_move_huge_page');
    const target = hugetlbPages(k).find((x) => x.state === 'temporary')!.pfn;
    expect([p, target]).toEqual([128, 132]);
    expect(hugetlbPages(k).map((x) => `${x.hstate}:${x.pfn}:${x.state}`)).toEqual(['2M:128:in-use', '2M:132:temporary', '1G:32:free']);
    expect(drive(g)).toBe('0');
    expect(hugetlbPages(k).map((x) => `${x.hstate}:${x.pfn}:${x.state}`)).toEqual(['2M:132:in-use', '1G:32:free']);
  });

  it('the fingerprint tells apart two pools that differ only in nr_overcommit_hugepages, or only in which page is in use', () => {
    const [{ k: a, h: ha }, { k: b, h: hb }] = twins(1);
    hb.overcommit = 1;
    expect(hugetlbPart(b)).not.toBe(hugetlbPart(a));
    hb.overcommit = 0;
    expect(mapAndFault(a, ha, 'm', 1)).toEqual([128]);
    // b: 132 in use, 128 freed: the same counters, lists and mapping, another page in use.
    resize(b, hb, 2);
    expect(mapAndFault(b, hb, 'm', 1)).toEqual([132]);
    resize(b, hb, 1);
    expect([pool(b), hugetlbState(b).mappings.get('m')!.handles]).toEqual([pool(a), hugetlbState(a).mappings.get('m')!.handles]);
    expect(hugetlbPart(b)).not.toBe(hugetlbPart(a));
  });

  it('the fingerprint (string and hash) tells apart two pools that differ only in the next node to allocate on', () => {
    const [{ k: a, h: ha }, { k: b }] = twins(1);
    const hashOf = (k: Kernel) => {
      const part = k.fingerprintParts.find((f) => f().startsWith('hugetlb{')) as unknown as { hash: (h: Hasher) => void };
      const h = new Hasher();
      part.hash(h);
      return [h.hi(), h.lo()];
    };
    expect(hashOf(b)).toEqual(hashOf(a));
    ha.nextNidToAlloc = 1; // (one node only on tiny: what a two-node pool's next grow would read)
    expect(hugetlbPart(b)).not.toBe(hugetlbPart(a));
    expect(hashOf(b)).not.toEqual(hashOf(a));
  });

  it('the fingerprint tells apart two mappings that differ only in which index was faulted', () => {
    const [{ k: a, h: ha }, { k: b, h: hb }] = twins(2);
    for (const [k, h, index] of [[a, ha, 0], [b, hb, 1]] as const) {
      expect(drive(hugetlbMmap(k, 'm', h, 2))).toBe('0');
      expect(drive(hugetlbFault(k, 'm', index)).pfn).toBe(132);
    }
    expect(pool(b)).toEqual(pool(a));
    expect(hugetlbPart(b)).not.toBe(hugetlbPart(a));
  });

  it('the fingerprint tells apart two pools that differ only in the order of a free list', () => {
    const [{ k: a }, { k: b, h: hb }] = twins(2);
    // Both pages faulted (head first), then freed in index order: the list is reversed.
    mapAndFault(b, hb, 'm', 2);
    expect(hugetlbPart(b)).not.toBe(hugetlbPart(a));
    expect(drive(hugetlbMunmap(b, 'm'))).toBe('0');
    expect(pool(b)).toEqual(pool(a));
    expect(hugetlbState(b).hstates[0].nodes[0].freeList.head).not.toBe(hugetlbState(a).hstates[0].nodes[0].freeList.head);
    expect(hugetlbPart(b)).not.toBe(hugetlbPart(a));
  });
});

describe('alloc_surplus_huge_page re-checks nr_overcommit_hugepages after the allocation', () => {
  it('lowered meanwhile: the fresh page is marked Temporary and freed, the reservation fails', () => {
    const { k, h } = boot('tiny');
    h.overcommit = 1;
    const mmap = runUntil(hugetlbMmap(k, 'm', h, 1), 'alloc_surplus_huge_page');
    h.overcommit = 0;
    expect(drive(mmap)).toBe('-ENOMEM');
    expect(pool(k)).toEqual([[0, 0, 0, 0, 0], [[0, 0, 0]]]);
    expect(hugetlbPages(k)).toEqual([]);
    expect(checkConservation(k)).toBeNull();
  });
});

describe('dequeue_huge_page_node_exact and isolated pageblocks', () => {
  it('v6.10+ skips a free page in an isolated pageblock for the next one; v5.13 takes the list head regardless', () => {
    for (const [profile, want] of [['mainline', 128], ['v5.13', 132]] as const) {
      const { k, h } = boot('tiny', '2M', profile);
      resize(k, h, 2);
      expect(pages(k)).toEqual(['128:0:free', '132:0:free']);
      expect(hugetlbState(k).hstates[0].nodes[0].freeList.head).toBe(132);
      expect(setMigratetypeIsolate(k, 132, MIGRATE_MOVABLE, 0, 132, 136)).toBe('0');
      expect(mapAndFault(k, h, 'm', 1), profile).toEqual([want]);
    }
  });
});

describe('offline: replace a free huge page before dissolving it (sw.offlineReplacesFreeHuge, seed 000 proposal)', () => {
  it('replaced on its node when possible; dissolved with a warning when not; in-use pages -EBUSY; gigantic pages dissolved outright', () => {
    const { k, h } = boot(TWO);
    resize(k, h, 2);
    expect(drive(replaceOrDissolveFreeHugePage(k, 128))).toBe('0');
    expectPool(k, [[2, 2, 0, 0, 2], [[1, 1, 0], [1, 1, 0]]], ['8:0:free', '132:1:free']);
    expect(k.events).toEqual([]);
    const taken = fill(k, [1]);
    expect(drive(replaceOrDissolveFreeHugePage(k, 132))).toBe('0');
    expectPool(k, [[1, 1, 0, 0, 1], [[1, 1, 0], [0, 0, 0]]], ['8:0:free']);
    expect(k.events).toEqual([
      'hugetlb: no replacement for free huge page 132 on node 1',
      'hugetlb: WARN offline: no replacement for huge page 132, dissolving (pool shrinks)',
    ]);
    expect(taken.length).toBeGreaterThan(0);
    expect(mapAndFault(k, h, 'm', 1)).toEqual([8]);
    expect(drive(replaceOrDissolveFreeHugePage(k, 9))).toBe('-EBUSY');
    expect([k.mm.refcount[8], k.mm.flags[8] & PG_isolated]).toEqual([1, 0]);
    expect(drive(replaceOrDissolveFreeHugePage(k, 5))).toBe('0');
    const g = hstateByName(k, '1G')!;
    k.events.length = 0;
    expect(resize(k, g, 1)).toBe(1);
    const [gp] = pages(k, '1G');
    expect(drive(replaceOrDissolveFreeHugePage(k, parseInt(gp) + 3))).toBe('0');
    expect(pool(k, '1G')[0]).toEqual([0, 0, 0, 0, 0]);
    expect(k.events).toEqual([]);
  });
});

describe("the RFC's alloc_and_dissolve_huge_page (seed 000)", () => {
  it('grows the pool on the node with alloc_pool_huge_page, then dissolve_free_huge_page lowers max_huge_pages', () => {
    const { k, h } = boot(TWO, '2M', 'rfc-2021-02');
    resize(k, h, 2);
    const list: number[] = [];
    expect(drive(rfcAllocAndDissolve(k, 128, list))).toBe('0');
    expectPool(k, [[2, 2, 0, 0, 1], [[1, 1, 0], [1, 1, 0]]], ['8:0:free', '132:1:free']);
    expect(mapAndFault(k, h, 'm', 1)).toEqual([8]);
    expect(drive(rfcAllocAndDissolve(k, 8, list))).toBe('0');
    expect(list).toEqual([8]);
    expect(drive(rfcAllocAndDissolve(k, 5, list))).toBe('0');
  });

  it('no page for the pool on the node: -EBUSY, nothing dissolved; the old page grabbed meanwhile: -EBUSY, the pool keeps both pages', () => {
    const { k, h } = boot(TWO, '2M', 'rfc-2021-02');
    resize(k, h, 1, 1);
    fill(k, [1]);
    expect(drive(rfcAllocAndDissolve(k, 128, []))).toBe('-EBUSY');
    expectPool(k, [[1, 1, 0, 0, 1], [[0, 0, 0], [1, 1, 0]]], ['128:1:free']);
    const r = createKernel(TWO, 'rfc-2021-02');
    const rh = hstateByName(r, '2M')!;
    resize(r, rh, 1, 1);
    const g = runUntil(rfcAllocAndDissolve(r, 128, []), 'alloc_and_dissolve_huge_page:dissolve');
    expect(mapAndFault(r, rh, 'm', 2).sort()).toEqual([128, 132]);
    expect(drive(g)).toBe('-EBUSY');
    expect(r.events).toEqual(['hugetlb: rfc alloc_and_dissolve: dissolve of 128 failed (-EBUSY), replacement 132 stays in the pool']);
    expect(pool(r)).toEqual([[2, 0, 0, 0, 1], [[0, 0, 0], [2, 0, 0]]]);
  });

  it('each profile wires its alloc_contig_range hook', () => {
    expect(createKernel('tiny', 'v5.11').hooks.isolateOrDissolveHugePage).toBeUndefined();
    expect(createKernel('tiny', 'v5.13').hooks.isolateOrDissolveHugePage).toBe(isolateOrDissolveHugePage);
    expect(createKernel('tiny', 'rfc-2021-02').hooks.isolateOrDissolveHugePage).toBe(rfcAllocAndDissolve);
  });
});

describe('PageHuge', () => {
  it('a transparent huge page (compound, not hugetlb) is not a huge page: nothing to dissolve, replace or isolate', () => {
    const { k } = boot('tiny');
    const req = { order: 1, migratetype: MIGRATE_MOVABLE };
    const p = allocFromZonelist(k, zonelist(k, req), req);
    const al = k.newAllocation({ id: 'thp', kind: 'pages', pfn: p, nrPages: 2, order: 1, migratetype: MIGRATE_MOVABLE, pinned: false });
    prepNewPage(k, p, 1, al.handle, PG_lru, k.nextToken++);
    expect([pageHuge(k, p), pageHuge(k, p + 1), isHugetlbHead(k, p)]).toEqual([false, false, false]);
    expect(drive(dissolveFreeHugePage(k, p + 1))).toBe('0');
    expect(drive(dissolveFreeHugePages(k, p & ~15, (p & ~15) + 16))).toBe('0');
    expect(drive(isolateOrDissolveHugePage(k, p, []))).toBe('0');
    expect(k.mm.refcount[p]).toBe(1);
  });
});

describe('hugepage_freelists: LIFO, a page taken from the middle', () => {
  it('dequeue skipping an isolated head takes the next page; the list keeps the others in order', () => {
    const { k, h } = boot('tiny');
    resize(k, h, 3);
    const list = hugetlbState(k).hstates[0].nodes[0].freeList;
    expect([...list]).toEqual([136, 132, 128]);
    expect(setMigratetypeIsolate(k, 136, MIGRATE_MOVABLE, 0, 136, 140)).toBe('0');
    expect(mapAndFault(k, h, 'm', 1)).toEqual([132]);
    expect([[...list], list.head, list.size, list.has(132), list.has(128)]).toEqual([[136, 128], 136, 2, false, true]);
    expect(drive(dissolveFreeHugePage(k, 128))).toBe('0');
    expect([[...list], list.head, list.size]).toEqual([[136], 136, 1]);
    expect(() => list.del(128)).toThrow('hugetlb: pfn 128 is not on the free list');
  });
});

/** Drives `g` to its end; its result and the yield points it passed (where hugetlb_lock is dropped). */
function stops<T>(g: KGen<T>): [T, string[]] {
  const seen: string[] = [];
  const r = drive(g, seen);
  return [r, seen];
}

describe('where hugetlb_lock is dropped: the yield points of each path, in order', () => {
  it('pool resize, surplus reservation, fault, free, shrink, return of unused surplus pages, dissolve, demote', () => {
    const { k, h } = boot('tiny');
    expect(stops(setMaxHugePages(k, h, 2))[1]).toEqual(['set_max_huge_pages:alloc', 'alloc_pool_huge_page', 'set_max_huge_pages:alloc', 'alloc_pool_huge_page']);
    h.overcommit = 2;
    expect(stops(hugetlbMmap(k, 'm', h, 3))).toEqual(['0', ['alloc_surplus_huge_page']]);
    expect(stops(hugetlbFault(k, 'm', 0))[1]).toEqual(['hugetlb_no_page']);
    // The faulted page was the surplus one: it leaves; no surplus is left for the two unused reservations.
    expect(stops(hugetlbMunmap(k, 'm'))).toEqual(['0', ['free_huge_page', 'update_and_free_page']]);
    expect(pool(k)).toEqual([[2, 2, 0, 0, 2], [[2, 2, 0]]]);
    expect(stops(hugetlbMmap(k, 'n', h, 3))).toEqual(['0', ['alloc_surplus_huge_page']]);
    expect(stops(hugetlbMunmap(k, 'n'))).toEqual(['0', ['return_unused_surplus_pages']]);
    expect(pool(k)).toEqual([[2, 2, 0, 0, 2], [[2, 2, 0]]]);
    expect(stops(setMaxHugePages(k, h, 1))[1]).toEqual(['set_max_huge_pages:free']);
    expect(stops(dissolveFreeHugePage(k, parseInt(pages(k)[0])))).toEqual(['0', ['dissolve_free_huge_page']]);
    const g = hstateByName(k, '1G')!;
    resize(k, g, 1);
    expect(stops(demoteHugePage(k, g))).toEqual([{ result: '0', demoted: 1, pfn: 32 }, ['demote_free_huge_page']]);
  });

  it('alloc_and_dissolve (eager v5.13, lazy v6.9), the RFC, and a migration through a Temporary page', () => {
    for (const [profile, first] of [['v5.13', 'alloc_and_dissolve_huge_page:allocated'], ['mainline', 'alloc_and_dissolve_huge_page:alloc']]) {
      const { k, h } = boot('tiny', '2M', profile);
      resize(k, h, 1);
      expect(stops(isolateOrDissolveHugePage(k, 128, [])), profile).toEqual(['0', [first, 'alloc_and_dissolve_huge_page:free_old']]);
    }
    const { k: r, h: rh } = boot('tiny', '2M', 'rfc-2021-02');
    resize(r, rh, 1);
    expect(stops(rfcAllocAndDissolve(r, 128, []))).toEqual(['0', ['alloc_pool_huge_page', 'alloc_and_dissolve_huge_page:dissolve', 'dissolve_free_huge_page']]);
    const { k, h } = boot('tiny');
    const p = isolatedInUse(k, h, 1);
    expect(stops(migrateHugePage(k, p))).toEqual(['0', ['alloc_migrate_huge_page', 'unmap_and_move_huge_page', 'free_huge_page', 'update_and_free_page']]);
  });

  it('v5.13: an in-use page is isolated right away, no replacement is allocated', () => {
    const { k, h } = boot('tiny', '2M', 'v5.13');
    resize(k, h, 1);
    expect(mapAndFault(k, h, 'm', 1)).toEqual([128]);
    const list: number[] = [];
    expect(stops(isolateOrDissolveHugePage(k, 128, list))).toEqual(['0', []]);
    expect(list).toEqual([128]);
  });

  it('v5.13: the page grabbed after the replacement was allocated: isolated, the replacement dropped', () => {
    const { k, h } = boot('tiny', '2M', 'v5.13');
    resize(k, h, 1);
    expect(drive(hugetlbMmap(k, 'm', h, 1))).toBe('0');
    const g = runUntil(isolateOrDissolveHugePage(k, 128, []), 'alloc_and_dissolve_huge_page:allocated');
    drive(hugetlbFault(k, 'm', 0));
    expect(stops(g)).toEqual(['0', ['alloc_and_dissolve_huge_page:isolate', 'alloc_and_dissolve_huge_page:drop_new']]);
  });
});

describe('kernel bugs the model reports instead of corrupting state', () => {
  it('no hugetlb on the machine; a node that does not exist; a page of no hstate size', () => {
    const bare = new Kernel(resolveConfig('tiny'), getProfile('mainline'));
    expect(() => hugetlbState(bare)).toThrow(new KernelBug('hugetlb is not installed'));
    const { k, h } = boot('tiny');
    expect(() => drive(setMaxHugePages(k, h, 1, 7))).toThrow(new KernelBug('hugetlb: no node 7'));
    expect(() => pageHstate(k, 5)).toThrow(new KernelBug('hugetlb: pfn 5 has order 0, no such hstate'));
    resize(k, h, 1);
    expect(pageHstate(k, 128)).toBe(h);
  });
});

describe('hugetlb_cma per node', () => {
  it("node 1's gigantic page comes from node 1's area; its demoted pieces go back there through cma_release", () => {
    const cfg = resolveConfig({
      ...TWO, name: 'tiny-2node-hugetlb-cma1',
      cma: [...TWO.cma, { name: 'hugetlb1', basePfn: 160, count: 32, orderPerBit: 2, hugetlbNode: 1 }],
    });
    const { k, h: g } = boot(cfg, '1G');
    expect(resize(k, g, 2)).toBe(2);
    expect(pages(k, '1G')).toEqual(['32:0:free', '160:1:free']);
    const area = cmaState(k).areas.find((a) => a.name === 'hugetlb1')!;
    expect(Array.from(area.bitmap)).toEqual(new Array(8).fill(1));
    expect(drive(demoteHugePage(k, g, 1))).toEqual({ result: '0', demoted: 1, pfn: 160 });
    expect(pool(k)).toEqual([[8, 8, 0, 0, 8], [[0, 0, 0], [8, 8, 0]]]);
    expect(resize(k, hstateByName(k, '2M')!, 0)).toBe(0);
    expect(Array.from(area.bitmap)).toEqual(new Array(8).fill(0));
    // Node 0's page was never in a hugetlb area: freed with free_contig_range.
    expect(resize(k, g, 0)).toBe(0);
    expect([inBuddy(k, 32), inBuddy(k, 48)]).toEqual([true, true]);
    expect(Array.from(cmaState(k).areas.find((a) => a.name === 'reserved')!.bitmap)).toEqual(new Array(32).fill(0));
    expect(checkConservation(k)).toBeNull();
  });
});

describe('three nodes: the round-robin pointers wrap modulo the node count', () => {
  it('adjust_pool_surplus skips a node without pages and leaves next_nid_to_free after the node it marked', () => {
    const cfg = resolveConfig({
      base: 'tiny', name: 'tiny-3node',
      nodes: [
        { id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 128 }] },
        { id: 1, zones: [{ name: 'Normal', startPfn: 128, endPfn: 192 }] },
        { id: 2, zones: [{ name: 'Normal', startPfn: 192, endPfn: 256 }] },
      ],
    });
    const { k, h } = boot(cfg);
    fill(k, [0]);
    expect(resize(k, h, 2)).toBe(2);
    expect(pages(k)).toEqual(['128:1:free', '192:2:free']);
    expect(mapAndFault(k, h, 'm', 2).sort()).toEqual([128, 192]);
    // Node 0 has no pages (0 < 0 fails): node 1 is marked, then node 2.
    expect(resize(k, h, 0)).toBe(2);
    expect(pool(k)).toEqual([[2, 0, 2, 0, 0], [[0, 0, 0], [1, 0, 1], [1, 0, 1]]]);
    expect(drive(hugetlbMunmap(k, 'm'))).toBe('0');
    expect(resize(k, h, 2)).toBe(2);
    expect(pages(k)).toEqual(['128:1:free', '192:2:free']);
    // next_nid_to_free wrapped to node 0 after node 2 was marked: node 0 has none, node 1's page goes.
    expect(resize(k, h, 1)).toBe(1);
    expect(pages(k)).toEqual(['192:2:free']);
  });
});

describe('return_unused_surplus_pages on two nodes', () => {
  it('remove_pool_huge_page(acct_surplus) frees only from nodes with surplus pages', () => {
    const { k, h } = boot(TWO);
    expect(resize(k, h, 3)).toBe(3); // node 0, node 1, node 0
    expect(resize(k, h, 2)).toBe(2); // next node to free: 0, then 1
    h.overcommit = 1;
    expect(drive(hugetlbMmap(k, 'm', h, 3))).toBe('0'); // one surplus page, on node 0
    expect(pool(k)).toEqual([[3, 3, 1, 3, 2], [[2, 2, 1], [1, 1, 0]]]);
    expect(drive(hugetlbMunmap(k, 'm'))).toBe('0');
    // node 1 is next to free but has no surplus: node 0's surplus page goes (mm/hugetlb.c 6.1)
    expect(pool(k)).toEqual([[2, 2, 0, 0, 2], [[1, 1, 0], [1, 1, 0]]]);
  });
});

describe('round robin after a per-node write', () => {
  it('writing one node leaves next_nid_to_alloc on it (next_node_allowed within a one-node mask)', () => {
    const { k, h } = boot(TWO);
    expect(resize(k, h, 1, 1)).toBe(1); // node 1's nr_hugepages
    expect(resize(k, h, 2)).toBe(2); // the global file: the pointer still names node 1
    expect(pool(k)[1]).toEqual([[0, 0, 0], [2, 2, 0]]);
    // (that global write moved the pointer on to node 0) a one-node shrink of node 1, then two
    // global writes: node 0, then node 1
    expect(resize(k, h, 1, 1)).toBe(1);
    expect(resize(k, h, 2)).toBe(2);
    expect(pool(k)[1]).toEqual([[1, 1, 0], [1, 1, 0]]);
    expect(resize(k, h, 3)).toBe(3);
    expect(pool(k)[1]).toEqual([[1, 1, 0], [2, 2, 0]]);
  });
});

