import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import { resolveConfig } from '../src/kernel/config.js';
import type { Kernel } from '../src/kernel/machine.js';
import { meminfo } from '../src/kernel/meminfo.js';
import { withSwitches } from '../src/kernel/profiles.js';
import { hstateByName, hugetlbFault, hugetlbMmap, hugetlbPages, setMaxHugePages } from '../src/kernel/hugetlb.js';
import { blockState, offlineBlock, onlineBlock } from '../src/kernel/memory_hotplug.js';
import { allocFromZonelist, prepNewPage, zonelist } from '../src/kernel/page_alloc.js';
import { MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, PG_lru, PG_offline, PG_pinned } from '../src/kernel/types.js';
import { checkConservation } from '../properties/page-conservation.js';
import { offlinePrecondition } from '../properties/offline-completeness.js';
import { runProgram } from '../src/harness/executor.js';
import { parseProgram } from '../src/harness/program.js';

import { driveThread as drive } from './helpers.js';

/** A movable user page in the block at `pfn`'s position (taken straight off the free lists). */
function userPage(k: Kernel, id: string, pinned = false): number {
  const zl = zonelist(k, { order: 0, migratetype: MIGRATE_MOVABLE });
  const p = allocFromZonelist(k, zl, { order: 0, migratetype: MIGRATE_MOVABLE });
  const al = k.newAllocation({ id, kind: 'pages', pfn: p, nrPages: 1, order: 0, migratetype: MIGRATE_MOVABLE, pinned });
  prepNewPage(k, p, 0, al.handle, PG_lru | (pinned ? PG_pinned : 0), k.nextToken++);
  return p;
}

const BLOCK = 32; // tiny: memory block of 32 pages; block 7 = [224, 256) in ZONE_MOVABLE

describe('offline_pages', () => {
  it('dissolves the free huge pages of the block (the pool shrinks, max too), migrates the in-use ones', () => {
    // v6.10: migration targets are not taken from the isolated block (see the ping-pong test below).
    const k = createKernel('tiny', 'v6.10');
    const h = hstateByName(k, '2M')!;
    drive(k, setMaxHugePages(k, h, 12)); // the Movable zone first: blocks 7 and 6 are full of them
    drive(k, hugetlbMmap(k, 'm', h, 1));
    const f = drive(k, hugetlbFault(k, 'm', 0));
    const block = Math.floor(f.pfn! / BLOCK);
    const inBlock = hugetlbPages(k).filter((p) => Math.floor(p.pfn / BLOCK) === block && p.state === 'free').length;
    expect(inBlock).toBeGreaterThan(0);
    const user = userPage(k, 'u');
    const ublock = Math.floor(user / BLOCK);
    const r = drive(k, offlineBlock(k, block));
    expect(r).toBe('0');
    expect(blockState(k, block)).toBe('offline');
    // The in-use page moved into a free pool page elsewhere; its old page was freed into the pool
    // inside the block and dissolved with the others: every huge page of the block leaves the pool.
    expect(h.nr).toBe(12 - inBlock - 1);
    expect(h.max).toBe(12 - inBlock - 1);
    const al = k.lookup('m[0]')!;
    expect(Math.floor(al.pfn / BLOCK)).not.toBe(block);
    expect(k.mm.token[al.pfn]).toBe(f.token);
    for (let p = block * BLOCK; p < (block + 1) * BLOCK; p++) expect(k.mm.flags[p] & PG_offline).toBe(PG_offline);
    expect(checkConservation(k)).toBeNull();
    // A user page elsewhere is untouched unless it sat in the block.
    if (ublock !== block) expect(k.lookup('u')!.pfn).toBe(user);
    // Online again: the block's pages are free movable memory.
    const free0 = meminfo(k).MemFree;
    expect(drive(k, onlineBlock(k, block, 'Movable'))).toBe('0');
    expect(meminfo(k).MemFree).toBe(free0 + BLOCK * 4);
    expect(k.pb.get(block * BLOCK)).toBe(MIGRATE_MOVABLE);
    expect(checkConservation(k)).toBeNull();
  });

  it('rejects what the kernel rejects: twice, onlining an online block, a wrong zone', () => {
    const k = createKernel('tiny', 'v5.13');
    expect(drive(k, offlineBlock(k, 7))).toBe('0');
    expect(drive(k, offlineBlock(k, 7))).toBe('-EINVAL');
    expect(drive(k, onlineBlock(k, 6, 'Movable'))).toBe('-EINVAL');
    expect(drive(k, onlineBlock(k, 7, 'Normal'))).toBe('-EINVAL');
    expect(drive(k, offlineBlock(k, 99))).toBe('-EINVAL');
    // ZONE_NORMAL block with reserved pages: isolation fails
    expect(drive(k, offlineBlock(k, 0))).toBe('-EBUSY');
  });

  it('a page that never migrates loops until the modelled signal: -EINTR, isolation undone', () => {
    const k = createKernel('tiny', 'v5.13');
    // fill the Movable zone so the pinned page lands there, in block 7 or 6
    const p = userPage(k, 'pin', true);
    const block = Math.floor(p / BLOCK);
    expect(drive(k, offlineBlock(k, block, { signalAfter: 20 }))).toBe('-EINTR');
    expect(k.events.some((e) => /signal backoff/.test(e))).toBe(true);
    expect(blockState(k, block)).toBe('online');
    for (let q = block * BLOCK; q < (block + 1) * BLOCK; q += 4) expect(k.pb.get(q)).not.toBe(MIGRATE_ISOLATE);
    expect(k.lookup('pin')!.pfn).toBe(p);
    // Without a signal the kernel loops for ever: the executor reports it as a bounded-progress finding.
    const prog = parseProgram({ config: 'tiny', profile: 'v5.13', threads: [[{ op: 'alloc_pages', id: 'pin', order: 0, migratetype: 'movable', pinned: true }, { op: 'offline_pages', block: 3 }]] });
    expect(runProgram(prog, { maxSteps: 3000 }).results.length).toBeGreaterThan(0);
  });

  it('an in-use huge page whose migration target comes from the same block ping-pongs on v5.13; v6.10 skips isolated free pages', () => {
    for (const [profile, want] of [['v5.13', '-EINTR'], ['v6.10', '0']] as const) {
      const k = createKernel('tiny', profile);
      const h = hstateByName(k, '2M')!;
      drive(k, setMaxHugePages(k, h, 16));
      drive(k, hugetlbMmap(k, 'm', h, 1));
      const f = drive(k, hugetlbFault(k, 'm', 0));
      const block = Math.floor(f.pfn! / BLOCK);
      expect(drive(k, offlineBlock(k, block, { signalAfter: 40 }))).toBe(want);
      expect(k.mm.token[k.lookup('m[0]')!.pfn]).toBe(f.token);
    }
  });

  it("David's proposal (offlineReplacesFreeHuge): the pool keeps its size when replacements exist, shrinks with a warning when not", () => {
    const prof = withSwitches('v5.13', { offlineReplacesFreeHuge: true }, 'v5.13+offline-replace');
    const k = createKernel('tiny', prof);
    const h = hstateByName(k, '2M')!;
    drive(k, setMaxHugePages(k, h, 8)); // block 4 only (the lowest of ZONE_MOVABLE)
    expect(drive(k, offlineBlock(k, 4))).toBe('0');
    expect([h.nr, h.max]).toEqual([8, 8]);
    for (const p of hugetlbPages(k)) expect(Math.floor(p.pfn / BLOCK)).not.toBe(4);

    const full = createKernel('tiny', prof);
    const hf = hstateByName(full, '2M')!;
    drive(full, setMaxHugePages(full, hf, 200));
    const n = hf.nr;
    const inBlock = hugetlbPages(full).filter((p) => Math.floor(p.pfn / BLOCK) === 4).length;
    expect(drive(full, offlineBlock(full, 4))).toBe('0');
    expect(hf.nr).toBe(n - inBlock);
    expect(full.events.some((e) => /WARN offline: no replacement/.test(e))).toBe(true);

    // Merged behaviour for comparison: the pool shrinks even with room.
    const plain = createKernel('tiny', 'v5.13');
    drive(plain, setMaxHugePages(plain, hstateByName(plain, '2M')!, 8));
    expect(drive(plain, offlineBlock(plain, 4))).toBe('0');
    expect(hstateByName(plain, '2M')!.nr).toBe(0);
  });

  it('the offline_pages / online_pages ops run from a program', () => {
    const prog = parseProgram({
      config: 'tiny', profile: 'v5.13',
      threads: [[{ op: 'set_nr_hugepages', hstate: '2M', count: 8 }, { op: 'offline_pages', block: 4 }, { op: 'online_pages', block: 4, zone: 'movable' }]],
    });
    const out = runProgram(prog);
    expect(out.results.map((r) => r.result.result)).toEqual(['0', '0', '0']);
    expect(meminfo(out.kernel).HugePages_Total).toBe(0);
  });
});

// do_migrate_range (6.1 mm/memory_hotplug.c:1694-1714, 6.12 :1856-1876): mtc.nid is the first
// page's node and mtc.nmask is node_states[N_MEMORY] without it ("try to allocate from a different
// node but reuse this node if there are no other online nodes"), for base and hugetlb targets
// (alloc_migration_target -> __folio_alloc(.., nid, nmask) / alloc_huge_page_nodemask(h, nid,
// nmask, ..): dequeue and fresh page alike). The simulator used to prefer another node for base
// pages but fall back to the source node, and to take hugetlb targets from the source node first.
describe('offline_pages on two nodes: migration targets only from the other nodes (mtc.nmask)', () => {
  const TWO = resolveConfig({
    base: 'tiny', name: 'tiny-2node',
    nodes: [{ id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 128 }] }, { id: 1, zones: [{ name: 'Normal', startPfn: 128, endPfn: 256 }] }],
  });

  for (const profile of ['v5.19', 'mainline']) {
    it(`${profile}: an in-use huge page of block 4 (node 1) takes node 0's free pool page, not node 1's`, () => {
      const k = createKernel(TWO, profile);
      const h = hstateByName(k, '2M')!;
      drive(k, setMaxHugePages(k, h, 1, 1));
      drive(k, hugetlbMmap(k, 'm', h, 1));
      const f = drive(k, hugetlbFault(k, 'm', 0));
      expect(f.pfn).toBe(128); // node 1's lowest block: the free lists ascend after boot
      drive(k, setMaxHugePages(k, h, 9, 1)); // the rest of block 4 and 160 (block 5), on node 1
      drive(k, setMaxHugePages(k, h, 1, 0)); // 8, on node 0
      expect(hugetlbPages(k).map((p) => p.pfn)).toEqual([8, 128, 132, 136, 140, 144, 148, 152, 156, 160]);
      expect(drive(k, offlineBlock(k, 4, { signalAfter: 40 }))).toBe('0');
      expect(k.lookup('m[0]')!.pfn).toBe(8);
      expect(k.mm.token[8]).toBe(f.token);
      expect(hugetlbPages(k).map((p) => `${p.pfn}:${p.state}`)).toEqual(['8:in-use', '160:free']);
    });
  }

  it('a base page of block 4 (node 1) has no target when node 0 is full: offline retries until the signal', () => {
    const k = createKernel(TWO, 'mainline');
    const z1 = k.zones.find((z) => z.node === 1)!;
    const p = allocFromZonelist(k, [z1], { order: 0, migratetype: MIGRATE_MOVABLE });
    expect(Math.floor(p / BLOCK)).toBe(4);
    const al = k.newAllocation({ id: 'u', kind: 'pages', pfn: p, nrPages: 1, order: 0, migratetype: MIGRATE_MOVABLE, pinned: false });
    prepNewPage(k, p, 0, al.handle, PG_lru, k.nextToken++);
    const z0 = k.zones.find((z) => z.node === 0)!;
    for (const mt of [MIGRATE_MOVABLE, MIGRATE_UNMOVABLE]) {
      for (let q; (q = allocFromZonelist(k, [z0], { order: 0, migratetype: mt })) >= 0;) k.mm.refcount[q] = 1;
    }
    expect(drive(k, offlineBlock(k, 4, { signalAfter: 5 }))).toBe('-EINTR');
    expect(k.lookup('u')!.pfn).toBe(p);
    expect(blockState(k, 4)).toBe('online');
    // with room on node 0 it goes there
    const k2 = createKernel(TWO, 'mainline');
    const p2 = allocFromZonelist(k2, [k2.zones.find((z) => z.node === 1)!], { order: 0, migratetype: MIGRATE_MOVABLE });
    const al2 = k2.newAllocation({ id: 'u', kind: 'pages', pfn: p2, nrPages: 1, order: 0, migratetype: MIGRATE_MOVABLE, pinned: false });
    prepNewPage(k2, p2, 0, al2.handle, PG_lru, k2.nextToken++);
    expect(drive(k2, offlineBlock(k2, 4))).toBe('0');
    expect(k2.lookup('u')!.pfn).toBeLessThan(128);
    expect(checkConservation(k2)).toBeNull();
  });
});

// offline-completeness's precondition counts as room only what do_migrate_range may take: the
// other nodes' free pages when there are other nodes (mtc.nmask), else the node's own outside the block.
describe('offline-completeness precondition on two nodes (mtc.nmask)', () => {
  const TWO_MOVABLE = resolveConfig({
    base: 'tiny', name: 'tiny-2node-movable',
    nodes: [{ id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 128 }] }, { id: 1, zones: [{ name: 'Movable', startPfn: 128, endPfn: 256 }] }],
  });
  const withUserPage = (): [Kernel, number] => {
    const k = createKernel(TWO_MOVABLE, 'mainline');
    const p = allocFromZonelist(k, [k.zones.find((z) => z.node === 1)!], { order: 0, migratetype: MIGRATE_MOVABLE });
    const al = k.newAllocation({ id: 'u', kind: 'pages', pfn: p, nrPages: 1, order: 0, migratetype: MIGRATE_MOVABLE, pinned: false });
    prepNewPage(k, p, 0, al.handle, PG_lru, k.nextToken++);
    return [k, p];
  };

  it('room on the block\'s own node is no room when node 0 is full', () => {
    const [k, p] = withUserPage();
    const start = Math.floor(p / BLOCK) * BLOCK;
    expect(offlinePrecondition(k, start, start + BLOCK)).toBeNull();
    const z0 = k.zones.find((z) => z.node === 0)!;
    for (const mt of [MIGRATE_MOVABLE, MIGRATE_UNMOVABLE]) {
      for (let q; (q = allocFromZonelist(k, [z0], { order: 0, migratetype: mt })) >= 0;) k.mm.refcount[q] = 1;
    }
    expect(k.zones.find((z) => z.node === 1)!.freePages).toBeGreaterThan(64);
    expect(offlinePrecondition(k, start, start + BLOCK)).toMatch(/^not enough free memory elsewhere/);
  });
});
