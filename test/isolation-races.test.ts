/**
 * Races between page isolators found by short fuzz runs, each as an explicit program + schedule
 * run through runProgram with the PROPERTIES catalogue, triaged against the kernel source
 * (6.1.192, 6.12.117, mainline patches):
 *  - REAL (kept): alloc_contig_range's `goto done` after a failed start_isolate_page_range runs
 *    undo_isolate_page_range over its whole range and un-isolates blocks another isolator holds
 *    (v5.19+; contig.ts). Consequences: the other isolator's VM_BUG_ON in isolate_single_pageblock,
 *    offline_pages spinning on test_pages_isolated, a CMA block re-typed MOVABLE (contig.test.ts),
 *    and, when the stolen block is then offlined under the first isolator, its pfn_to_page() paths
 *    touch offline memory (counter underflow; freed memmap after virtio-mem removed the block).
 *  - REAL (kept, latent on x86-64): unset_migratetype_isolate puts back a buddy larger than a
 *    pageblock that covers still-ISOLATE blocks onto the MOVABLE list (page_isolation.ts).
 *  - SIMULATOR BUG (fixed): __first_valid_page ignored offlined memory blocks, so an undo over an
 *    offlined block un-isolated it again and nr_isolate_pageblock went to -1.
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import type { KGen } from '../src/kernel/sched.js';
import { runProgram, type RunOutcome } from '../src/harness/executor.js';
import { parseProgram } from '../src/harness/program.js';
import { PROPERTIES } from '../properties/index.js';
import { checkNoCrossMerge } from '../properties/no-cross-migratetype-merge.js';
import { checkFreelistCounters } from '../properties/freelist-counters.js';
import { firstValidPage, testPagesIsolated, undoIsolatePageRange } from '../src/kernel/page_isolation.js';
import { offlineBlock, blockState } from '../src/kernel/memory_hotplug.js';
import { MIGRATE_ISOLATE, MIGRATE_MOVABLE } from '../src/kernel/types.js';

function drive<T>(g: KGen<T>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

function run(profile: string, threads: unknown[][], schedule: number[] = []): RunOutcome {
  return runProgram(parseProgram({ config: 'tiny', profile, threads, schedule }, 'race'), { properties: PROPERTIES });
}

const result = (o: RunOutcome, thread: number, index = 0) => o.results.find((r) => r.thread === thread && r.index === index)?.result;
const props = (o: RunOutcome) => o.violations.map((v) => v.property);

describe('simulator bug fixed: an undo never touches an offlined memory block (pfn_to_online_page)', () => {
  // Thread 0 isolates pageblock 224 (first isolate_single_pageblock of a one-block range); thread 1's
  // alloc_contig_range(224, 232) fails on it and its `goto done` un-isolates it (the real race);
  // thread 1 then offlines block 7 (224..256, its blocks stay ISOLATE); thread 0 resumes, fails and
  // runs its own undo over 224..228. The kernel's __first_valid_page() returns NULL for the offline
  // section, so that undo does nothing; before the fix it un-isolated the offlined block a second
  // time: "zone Movable nr_isolate_pageblock = -1 but 0 pageblocks are ISOLATE".
  const threads = [
    [{ op: 'alloc_contig_range', id: 'a', start: 224, end: 228, migratetype: 'movable' }],
    [{ op: 'alloc_contig_range', id: 'b', start: 224, end: 232, migratetype: 'movable' }, { op: 'offline_pages', block: 7 }],
  ];
  for (const profile of ['v5.19', 'v6.10', 'mainline']) {
    it(`${profile}: nr_isolate_pageblock stays 0 after the block is offlined under alloc_contig_range`, () => {
      const out = run(profile, threads, [0, 0, 1]);
      expect(out.violations).toEqual([]);
      expect(result(out, 0)?.result).toBe('-EBUSY');
      expect(result(out, 1, 0)?.result).toBe('-EBUSY');
      expect(result(out, 1, 1)?.result).toBe('0');
      expect(blockState(out.kernel, 7)).toBe('offline');
      expect(out.kernel.zones[1].nrIsolatePageblock).toBe(0);
      expect(out.kernel.pb.get(224)).toBe(MIGRATE_ISOLATE); // offline memory keeps its blocks ISOLATE, as in the kernel
    });
  }

  it('after offline_pages, undo_isolate_page_range / test_pages_isolated see no page there', () => {
    const k = createKernel('tiny', 'v6.10');
    expect(drive(offlineBlock(k, 7))).toBe('0');
    const z = k.zones[1];
    expect(z.nrIsolatePageblock).toBe(0);
    expect(firstValidPage(k, 224, 4)).toBe(-1);
    expect(firstValidPage(k, 220, 8)).toBe(220); // block 6 is online
    drive(undoIsolatePageRange(k, 224, 256, MIGRATE_MOVABLE));
    expect(z.nrIsolatePageblock).toBe(0);
    expect(k.pb.get(224)).toBe(MIGRATE_ISOLATE);
    expect(testPagesIsolated(k, 224, 256, 0)).toBe('-EBUSY');
    expect(checkFreelistCounters(k)).toBeNull();
  });
});

describe('real (kept): an isolator whose blocks were stolen and then offlined touches offline memory', () => {
  // The fuzz finding "nr_isolate_pageblock = -1" (v6.10, tiny): as above, but thread 0's range has
  // two blocks. After the offline, isolate_single_pageblock(232, before) calls
  // set_migratetype_isolate(pfn_to_page(228)) -> -EBUSY (offline blocks stay ISOLATE) and
  // start_isolate_page_range undoes with unset_migratetype_isolate(pfn_to_page(224)): no
  // pfn_to_online_page() on that path, so the offlined block is un-isolated and the (unsigned)
  // counter underflows, as on a production kernel with its stale memmap.
  const offline = [
    [{ op: 'alloc_contig_range', id: 'a', start: 224, end: 232, migratetype: 'movable' }],
    [{ op: 'alloc_contig_range', id: 'b', start: 224, end: 256, migratetype: 'movable' }, { op: 'offline_pages', block: 7 }],
  ];
  it('v6.10: offline_pages (memmap kept): nr_isolate_pageblock underflows', () => {
    const out = run('v6.10', offline, [0, 0, 1]);
    expect(result(out, 1, 1)?.result).toBe('0');
    expect(result(out, 0)?.result).toBe('-EBUSY');
    expect(props(out)).toEqual(['freelist-counters']);
    expect(out.violations[0].message).toMatch(/nr_isolate_pageblock = -1/);
  });
  // With virtio-mem the block is offlined AND removed (offline_and_remove_memory frees the memmap):
  // the resumed isolator's first pfn_to_page() read faults.
  it('v6.10 / mainline: virtio-mem removed the block: the resumed isolator reads a freed memmap', () => {
    for (const [profile, threads, schedule, pfn] of [
      ['v6.10', [[{ op: 'alloc_contig_range', id: 'a', start: 224, end: 228, migratetype: 'movable' }], [{ op: 'virtio_mem_unplug', bytes: '128K' }], [{ op: 'drain_all_pages' }]], [1, 2, 0, 1], 224],
      ['mainline', [[{ op: 'virtio_mem_unplug', bytes: 131072 }], [{ op: 'demote', hstate: '2M' }], [{ op: 'alloc_contig_range', id: 'c', start: 224, end: 232, migratetype: 'movable' }]], [1, 1, 0, 1], 228],
    ] as const) {
      const out = run(profile, threads as unknown as unknown[][], [...schedule]);
      const bug = out.violations.find((v) => v.property === 'kernel-bug');
      expect(bug?.message, profile).toMatch(new RegExp(`pfn_to_page\\(${pfn}\\)\\) reads the freed memmap of hot-removed memory block 7`));
      expect(props(out), profile).not.toContain('freelist-counters');
    }
  });
});

describe('real race (kept): alloc_contig_range `goto done` un-isolates another isolator\'s blocks (v5.19+)', () => {
  // Thread 0: alloc_contig_range(32, 36), one pageblock: isolate_single_pageblock(32) isolates it,
  // then isolate_single_pageblock(36, before, skip_isolation) only checks it. In between, thread 2's
  // gigantic page (alloc_contig_pages -> alloc_contig_range(32, 64)) fails on block 32 and its undo
  // un-isolates it: 6.12 `VM_BUG_ON(!is_migrate_isolate(mt))` fires on a CONFIG_DEBUG_VM kernel.
  const threads = [
    [{ op: 'alloc_contig_range', id: 'a', start: 32, end: 36, migratetype: 'movable' }],
    [{ op: 'set_nr_hugepages', hstate: '2M', count: 4 }],
    [{ op: 'set_nr_hugepages', hstate: '1G', count: 4 }],
  ];
  for (const profile of ['v5.19', 'v6.10', 'mainline']) {
    it(`${profile}: the skip_isolation VM_BUG_ON in isolate_single_pageblock fires`, () => {
      const out = run(profile, threads, [0, 0, 1, 1]);
      const bug = out.violations.find((v) => v.property === 'kernel-bug');
      expect(bug?.message).toMatch(/VM_BUG_ON\(!is_migrate_isolate\(mt\)\): block 32 should already be isolated/);
    });
  }
  it('v5.18 (MAX_ORDER-1 granularity, `return ret`) is clean under the same schedule', () => {
    const out = run('v5.18', threads, [0, 0, 1, 1]);
    expect(out.violations).toEqual([]);
    expect(result(out, 0)?.result).toBe('0');
  });

  // Thread 0 offlines block 7 and has isolated all of it; thread 1's alloc_contig_range(228, 232)
  // fails on block 228 and un-isolates it. offline_pages' do { ... } while (test_pages_isolated())
  // can never succeed again: it spins until a signal (here after 6 passes; without one the
  // bounded-progress property reports the livelock).
  const offline = [
    [{ op: 'offline_pages', block: 7, signal_after: 6 }],
    [{ op: 'alloc_contig_range', id: 'a', start: 228, end: 232, migratetype: 'movable' }],
  ];
  for (const profile of ['v5.19', 'v6.10', 'mainline']) {
    it(`${profile}: offline_pages loses block 228 and only a signal ends it`, () => {
      const out = run(profile, offline, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
      expect(result(out, 1)?.result).toBe('-EBUSY');
      expect(result(out, 0)?.result).toBe('-EINTR');
      expect(out.kernel.events).toContain('offline_pages: [224, 256) signal backoff');
      expect(out.kernel.pb.get(228)).toBe(MIGRATE_MOVABLE); // undone by offline_pages' own failure path
    });
  }
  it('v5.18: the failed alloc_contig_range leaves offline_pages alone and the block goes offline', () => {
    const out = run('v5.18', offline, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(result(out, 1)?.result).toBe('-EBUSY');
    expect(result(out, 0)?.result).toBe('0');
    expect(blockState(out.kernel, 7)).toBe('offline');
    expect(out.violations).toEqual([]);
  });
});

describe('real, latent on x86-64 (kept): unset_migratetype_isolate puts back a multi-block buddy over ISOLATE blocks', () => {
  // v6.10+: offline of block 4 migrates thread 0's order-4 page (at 128, the lowest free block of
  // ZONE_MOVABLE) away; its pages merge into one order-4 ISOLATE buddy; the signal aborts; the undo
  // un-isolates block by block. At block 136 the free buddy is order 3 (136 + 140, both ISOLATE) and
  // its buddy 128 is MOVABLE: __isolate_free_page + set_pageblock_migratetype(136) +
  // __putback_isolated_page(order 3, MOVABLE) merges it into an order-4 MOVABLE buddy while block 140
  // is still ISOLATE. The next unset (140) repairs it. Needs pageblock_order <= MAX_PAGE_ORDER - 2
  // (tiny: 2 and 4). (The unplug is incidental: it was the setup of the saved finding.)
  const threads = [
    [{ op: 'alloc_pages', id: 'a', order: 4, migratetype: 'movable' }],
    [{ op: 'virtio_mem_unplug', bytes: '128K' }, { op: 'offline_pages', block: 4, signal_after: 1 }],
  ];
  for (const profile of ['v6.10', 'mainline']) {
    it(`${profile}: transient cross-type buddy during the undo, sound once the undo is done`, () => {
      const out = run(profile, threads);
      expect(result(out, 1, 1)?.result).toBe('-EINTR');
      expect(out.violations).toHaveLength(1);
      expect(out.violations[0]).toMatchObject({ property: 'no-cross-migratetype-merge' });
      expect(out.violations[0].message).toMatch(/free order-4 block at pfn 128 spans a Movable pageblock and a Isolate pageblock \(pfn 140\)/);
      const k = out.kernel;
      for (let p = 128; p < 160; p += 4) expect(k.pb.get(p), `block ${p}`).toBe(MIGRATE_MOVABLE);
      expect(k.zones[1].nrIsolatePageblock).toBe(0);
      expect(checkNoCrossMerge(k)).toBeNull();
      expect(checkFreelistCounters(k)).toBeNull();
    });
  }
  it('v6.10: the undo of a failed alloc_contig_range hits the same path (huge pages dissolved inside the range)', () => {
    // Fuzz finding, no preemption: the dissolved 2M pages (128..144, the lowest free blocks) merge
    // into an order-4 ISOLATE buddy at 128; the range fails at the fake-offline subblocks the unplug
    // left at its top; the undo splits the buddy at block 128, then unset of block 136 takes the
    // order-3 buddy 136+140.
    const seq = [
      [{ op: 'set_nr_hugepages', hstate: '2M', count: 4 }],
      [{ op: 'virtio_mem_unplug', bytes: 65536 }, { op: 'alloc_contig_range', id: 'c', start: 128, end: 256, migratetype: 'movable' }],
    ];
    const out = run('v6.10', seq);
    expect(result(out, 1, 1)?.result).toBe('-EBUSY');
    expect(props(out)).toEqual(['no-cross-migratetype-merge']);
    expect(out.violations[0].message).toMatch(/free order-4 block at pfn 128 spans a Movable pageblock and a Isolate pageblock \(pfn 140\)/);
    expect(checkNoCrossMerge(out.kernel)).toBeNull(); // repaired by the end of the undo
    const pb3 = { ...createKernel('tiny', 'v6.10').cfg, name: 'tiny-pb3', pageblockOrder: 3 };
    const clean = runProgram(parseProgram({ config: pb3, profile: 'v6.10', threads: seq }, 'race'), { properties: PROPERTIES });
    expect(props(clean)).not.toContain('no-cross-migratetype-merge');
  });
  it('with pageblock_order = MAX_PAGE_ORDER - 1 (the x86-64 shape) the same program is clean', () => {
    const tiny = createKernel('tiny', 'v6.10').cfg;
    const cfg = { ...tiny, name: 'tiny-pb3', pageblockOrder: 3 };
    const out = runProgram(parseProgram({ config: cfg, profile: 'v6.10', threads }, 'race'), { properties: PROPERTIES });
    expect(result(out, 1, 1)?.result).toBe('-EINTR');
    expect(props(out)).not.toContain('no-cross-migratetype-merge');
    expect(out.violations).toEqual([]);
  });
});
