import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/machine.js';
import { meminfo } from '../src/kernel/meminfo.js';
import { hstateByName, hugetlbPages, setMaxHugePages } from '../src/kernel/hugetlb.js';
import { blockState, hotplugState, offlineBlock, onlineBlock, removeMemory } from '../src/kernel/memory_hotplug.js';
import { virtioMemPlug, virtioMemPluggedBytes, virtioMemState, virtioMemUnplug } from '../src/kernel/virtio_mem.js';
import { allocFromZonelist, prepNewPage, zonelist } from '../src/kernel/page_alloc.js';
import { MIGRATE_MOVABLE, PG_lru, PG_offline, PG_pinned } from '../src/kernel/types.js';
import { checkConservation } from '../properties/page-conservation.js';
import { runCase, formatTable } from '../scenarios/virtio-mem-unplug.js';
import { runProgram } from '../src/harness/executor.js';
import { parseProgram } from '../src/harness/program.js';
import { PROPERTIES } from '../properties/index.js';

import { Scheduler, mutexLock, mutexUnlock, type KGen } from '../src/kernel/sched.js';
import { driveThread as drive, op, vetoing } from './helpers.js';

const KiB = 1024;

describe('virtio-mem unplug (tiny: region [192, 256), memory blocks of 32 pages)', () => {
  /**
   * fill() with ZONE_MOVABLE below `from` taken (the free lists ascend after boot, so allocations
   * start at 128): what it allocates lands at `from` and up (block 7, the top one). The low memory
   * is free again afterwards, for migration targets and replacements.
   */
  function inTopBlock<T>(k: Kernel, fill: () => T, from = 224): T {
    expect(op(k, { op: 'alloc_contig_range', id: 'low', start: 128, end: from, migratetype: 'movable' }).result).toBe('0');
    const r = fill();
    expect(op(k, { op: 'free_contig_range', id: 'low' }).result).toBe('0');
    return r;
  }

  it('v5.13 takes the top block whole, replacing its free huge pages; v5.11 fails on every subblock', () => {
    const k = createKernel('tiny', 'v5.13');
    inTopBlock(k, () => drive(k, setMaxHugePages(k, hstateByName(k, '2M')!, 8))); // all in block 7, the top one
    for (const p of hugetlbPages(k)) expect(p.pfn >= 224).toBe(true);
    const r = drive(k, virtioMemUnplug(k, 128 * KiB));
    expect(r.result).toBe('0');
    expect(r.unpluggedBytes).toBe(128 * KiB);
    expect(r.stats.attempts).toBe(1);
    expect(blockState(k, 7)).toBe('offline');
    expect(meminfo(k).HugePages_Total).toBe(8);
    for (const p of hugetlbPages(k)) expect(p.pfn < 224).toBe(true);
    expect(virtioMemPluggedBytes(k)).toBe(128 * KiB);
    expect(checkConservation(k)).toBeNull();
    // The block was removed (offline_and_remove_memory): the admin cannot online it, plug can.
    expect(drive(k, onlineBlock(k, 7, 'Movable'))).toBe('-EINVAL');
    expect(drive(k, virtioMemPlug(k, 128 * KiB)).pluggedBytes).toBe(128 * KiB);
    expect(blockState(k, 7)).toBe('online');

    const old = createKernel('tiny', 'v5.11');
    inTopBlock(old, () => drive(old, setMaxHugePages(old, hstateByName(old, '2M')!, 8)));
    const o = drive(old, virtioMemUnplug(old, 128 * KiB));
    // Block 7 (the huge pages): 5 tries of the whole block, then 5 of each of its two 16-page
    // subblocks, all -EBUSY; the request moves on to block 6, which is free and goes whole.
    expect(o.stats.failures['-EBUSY']).toBe(15);
    expect(o.unpluggedBytes).toBe(128 * KiB);
    expect([blockState(old, 7), blockState(old, 6)]).toEqual(['online', 'offline']);
    expect(meminfo(old).HugePages_Total).toBe(8);
  });

  it('a block with a pinned page: the whole-block attempt fails (5 tries), the other subblock is taken', () => {
    const k = createKernel('tiny', 'v5.13');
    const zl = zonelist(k, { order: 0, migratetype: MIGRATE_MOVABLE });
    // (in the top subblock, the first one the request tries)
    const p = inTopBlock(k, () => allocFromZonelist(k, zl, { order: 0, migratetype: MIGRATE_MOVABLE }), 240);
    const al = k.newAllocation({ id: 'pin', kind: 'pages', pfn: p, nrPages: 1, order: 0, migratetype: MIGRATE_MOVABLE, pinned: true });
    prepNewPage(k, p, 0, al.handle, PG_lru | PG_pinned, k.nextToken++);
    expect(p >= 224).toBe(true);
    const r = drive(k, virtioMemUnplug(k, 64 * KiB));
    expect(r.unpluggedBytes).toBe(64 * KiB);
    expect(r.stats.failures['-EBUSY']).toBeGreaterThanOrEqual(5);
    const s = virtioMemState(k);
    expect(Array.from(s.plugged)).toEqual(p >= 240 ? [1, 1, 0, 1] : [1, 1, 1, 0]);
    const taken = p >= 240 ? 224 : 240;
    for (let q = taken; q < taken + 16; q++) expect(k.mm.flags[q] & PG_offline).toBe(PG_offline);
    expect(blockState(k, 7)).toBe('online');
    // plug gives it back
    const free0 = meminfo(k).MemFree;
    expect(drive(k, virtioMemPlug(k, 64 * KiB)).pluggedBytes).toBe(64 * KiB);
    expect(k.mm.flags[taken] & PG_offline).toBe(0);
    expect(meminfo(k).MemFree).toBeGreaterThan(free0);
    expect(Array.from(s.plugged)).toEqual([1, 1, 1, 1]);
    expect(checkConservation(k)).toBeNull();
  });

  it('-ENOMEM (no replacement for a free huge page) gives up at once, the pool stays as configured', () => {
    const k = createKernel('tiny', 'v5.13');
    const h = hstateByName(k, '2M')!;
    drive(k, setMaxHugePages(k, h, 1000));
    const n = h.nr;
    const r = drive(k, virtioMemUnplug(k, 256 * KiB));
    expect(r.result).toBe('-ENOMEM');
    expect(r.stats.attempts).toBe(1);
    expect(r.unpluggedBytes).toBe(0);
    expect(h.nr).toBe(n);
  });

  it('v5.19 uses pageblock-sized subblocks', () => {
    const k = createKernel('tiny', 'v5.19');
    expect(virtioMemState(k).sbPages).toBe(4);
    const r = drive(k, virtioMemUnplug(k, 16 * KiB));
    expect(r.unpluggedBytes).toBe(16 * KiB);
    expect(virtioMemState(k).plugged.filter((b) => b === 0).length).toBe(1);
  });

  it('plugging a removed block onlines it to ZONE_MOVABLE again', () => {
    const prog = parseProgram({
      config: 'tiny', profile: 'v5.13',
      threads: [[{ op: 'virtio_mem_unplug', bytes: '128K' }, { op: 'virtio_mem_plug', bytes: '128K' }]],
    });
    const out = runProgram(prog);
    expect(out.results.map((r) => [r.result.result, r.result.unplugged ?? r.result.plugged])).toEqual([['0', 128 * KiB], ['0', 128 * KiB]]);
    expect(blockState(out.kernel, 7)).toBe('online');
    const boot = createKernel('tiny', 'v5.13');
    expect(meminfo(out.kernel).MemTotal).toBe(meminfo(boot).MemTotal);
  });
});

describe('scenario virtio-mem-unplug (seed 001, vm-5g)', () => {
  it('(a) free huge pages: v5.11 unplugs nothing, v5.13 all of it with HugePages_Total unchanged', () => {
    const old = runCase('v5.11', 'a');
    expect(old.unpluggedMiB).toBe(0);
    expect(old.pfnsBusy).toBeGreaterThan(0);
    expect(old.hugePagesInMovable).toBeGreaterThan(0);
    const cur = runCase('v5.13', 'a');
    expect(cur.unpluggedMiB).toBe(1024);
    expect([cur.totalBefore, cur.totalAfter, cur.freeBefore, cur.freeAfter]).toEqual([512, 512, 512, 512]);
    expect(formatTable([old, cur])).toMatch(/\(a\) 512 free huge pages\s+v5\.13\s+1024\/1024 MiB/);
  });

  it('(c) a busy page: one transient failure the driver retries past; (d) no room: the pool stays at 2048', () => {
    const c = runCase('v5.13', 'c');
    expect(c.unpluggedMiB).toBe(1024);
    expect(c.pfnsBusy).toBe(1);
    const d = runCase('v5.13', 'd');
    expect(d.totalBefore).toBe(2048);
    expect(d.totalAfter).toBe(2048);
    expect(d.unpluggedMiB).toBeLessThan(1024);
    expect(d.failures['-ENOMEM']).toBe(1);
  });
});

describe('memory notifier + online_page callback (fuzz finding v5.13-and-rfc page-conservation 8d0c88b0)', () => {
  // Simulator bug (fixed): the driver dropped its references to a fully unplugged block *before*
  // offline_and_remove_memory took the hotplug lock; an admin offline_pages of that block ran in
  // the gap, the driver's offline then failed (-EINVAL, already offline) and its "cancel" took
  // references on offline memory; onlining the block freed pages virtio-mem still held. In the
  // kernel the references are dropped by virtio-mem's MEM_GOING_OFFLINE notifier, inside
  // offline_pages, for whoever offlines the block; offline_and_remove_memory skips blocks already
  // offline; onlining goes through virtio_mem_online_page_cb, which keeps unplugged subblocks.
  const threads = [
    [{ op: 'offline_pages', block: 7, signal_after: 1 }, { op: 'offline_pages', block: 6, signal_after: 1 }],
    [{ op: 'virtio_mem_unplug', bytes: 262144 }],
    [{ op: 'online_pages', block: 6, zone: 'Movable' }],
  ];
  for (const profile of ['rfc-2021-02', 'v5.13']) {
    it(`${profile}: the admin offlines the driver's unplugged block; the driver removes it; it cannot be onlined`, () => {
      const out = runProgram(parseProgram({ config: 'tiny', profile, threads, schedule: [0, 0, 1] }, 'finding'), { properties: PROPERTIES });
      expect(out.violations).toEqual([]);
      const res = out.results.map((r) => r.result.result);
      // (block 7 went offline under the admin: the request gets only block 6, and a request left
      // short is -EBUSY, virtio_mem_sbm_unplug_request's `nb_sb ? -EBUSY : 0`)
      expect(res).toEqual(['0', '0', '-EBUSY', '-EINVAL']);
      const k = out.kernel;
      expect([blockState(k, 6), blockState(k, 7)]).toEqual(['offline', 'offline']);
      expect(hotplugState(k).removed.has(6)).toBe(true);
      expect(hotplugState(k).removed.has(7)).toBe(false);
      for (let p = 192; p < 256; p++) expect(k.mm.refcount[p], `pfn ${p}`).toBe(0);
      expect(checkConservation(k)).toBeNull();
    });
  }

  const offlineOnline = [{ op: 'virtio_mem_unplug', bytes: '64K' }, { op: 'offline_pages', block: 7 }, { op: 'online_pages', block: 7, zone: 'Movable' }];
  // (mainline with the patch: online_pages un-isolates the block's plugged MAX_ORDER chunk through
  // the known unset_migratetype_isolate hole on tiny, see the next test)
  for (const profile of ['v5.13', 'v5.19', 'mainline+unset-isolate-pageblock-buddy']) {
    it(`${profile}: an admin offline + online of a partly unplugged block keeps the unplugged subblock fake-offline`, () => {
      const boot = meminfo(createKernel('tiny', profile)).MemTotal;
      const ops = offlineOnline;
      const out = runProgram(parseProgram({ config: 'tiny', profile, threads: [ops] }, 'notifier'), { properties: PROPERTIES });
      expect(out.violations).toEqual([]);
      expect(out.results.map((r) => r.result.result)).toEqual(['0', '0', '0']);
      const k = out.kernel;
      expect(blockState(k, 7)).toBe('online');
      const s = virtioMemState(k);
      const unplugged = [...s.plugged.keys()].filter((i) => !s.plugged[i]);
      expect(unplugged.length * s.sbPages).toBe(16);
      for (const i of unplugged) {
        for (let p = s.start + i * s.sbPages; p < s.start + (i + 1) * s.sbPages; p++) {
          expect(k.mm.flags[p] & PG_offline, `pfn ${p}`).toBe(PG_offline);
          expect(k.mm.refcount[p], `pfn ${p}`).toBe(1);
        }
      }
      expect(meminfo(k).MemTotal).toBe(boot - 64);
      // The driver can plug it back: fake-online frees it.
      expect(drive(k, virtioMemPlug(k, 64 * KiB)).pluggedBytes).toBe(64 * KiB);
      expect(meminfo(k).MemTotal).toBe(boot);
      expect(Array.from(s.plugged).every((b) => b === 1)).toBe(true);
      expect(checkConservation(k)).toBeNull();
    });
  }

  it('fake-online hands subblocks the online_page callback kept (PageDirty) to generic_online_page, and subblocks taken with alloc_contig_range to free_contig_range', () => {
    for (const readd of [false, true]) {
      const k = createKernel('tiny', 'v5.19');
      const s = virtioMemState(k);
      expect(drive(k, virtioMemUnplug(k, 64 * KiB)).result).toBe('0');
      const unplugged = [...s.plugged.keys()].filter((i) => !s.plugged[i]);
      expect(unplugged.length).toBe(4);
      if (readd) {
        // offline + online: the callback keeps the unplugged subblocks fake-offline (PageDirty)
        expect(drive(k, offlineBlock(k, 7))).toBe('0');
        expect(drive(k, onlineBlock(k, 7, 'Movable'))).toBe('0');
      }
      expect(Array.from(s.kept)).toEqual(Array.from(s.plugged, (p, i) => (readd && !p && i >= 8 ? 1 : 0)));
      const z = k.zones[1];
      const pcp = z.pcpCount[0] + z.pcpCount[1];
      const managed = z.managedPages;
      expect(drive(k, virtioMemPlug(k, 64 * KiB)).pluggedBytes).toBe(64 * KiB);
      expect(z.managedPages).toBe(managed + 16);
      expect(Array.from(s.kept).every((b) => b === 0)).toBe(true);
      // __free_pages_core bypasses the pcp lists; free_contig_range's __free_page goes through them
      const viaPcp = z.pcpCount[0] + z.pcpCount[1] - pcp;
      if (readd) expect(viaPcp).toBe(0);
      else expect(viaPcp).toBeGreaterThan(0);
      expect(checkConservation(k)).toBeNull();
    }
  });

  it('mainline: online_pages frees a plugged MAX_ORDER chunk onto the ISOLATE list, and its undo reaches the known unset_migratetype_isolate hole on tiny', () => {
    // pageblock_order 2 < MAX_PAGE_ORDER - 1: undoing the third block takes its order-3 buddy, which
    // still covers the ISOLATE fourth block, and merges it into a MOVABLE order-4 block (finding
    // mainline-no-cross-migratetype-merge-38d97ce0, reached here without a signal).
    const out = runProgram(parseProgram({ config: 'tiny', profile: 'mainline', threads: [offlineOnline] }, 'notifier'), { properties: PROPERTIES });
    expect(out.violations.map((v) => [v.property, out.trace[v.step - 1]?.at])).toEqual([['no-cross-migratetype-merge', 'unset_migratetype_isolate']]);
    expect(out.violations[0].message).toBe('free order-4 block at pfn 224 spans a Movable pageblock and a Isolate pageblock (pfn 236)');
  });
});

// Regression: the fuzz counterexamples of the offline_and_remove_memory window. The driver drops
// hotplug_mutex around offline_and_remove_memory, but plug and unplug requests both run from the
// one non-reentrant work item (virtio_mem_run_wq), so a plug request can never run in that window.
// Modelled without that serialisation, a plug re-onlined (freed) subblocks of the block being
// removed: set_nr_hugepages took one as a huge page that offline_pages then dissolved (pool 14 -> 13),
// or alloc_contig_range took one and offline_pages spun on the unmovable page (bounded-progress).
describe('virtio-mem requests are serialised by the driver work item (small, mainline)', () => {
  it('a plug request waits for the unplug request: the pool is not dissolved by its offline', () => {
    const threads = [
      [{ op: 'offline_pages', block: 1, signal_after: 1 }, { op: 'virtio_mem_plug', bytes: 2097152 }, { op: 'drain_all_pages' }],
      [{ op: 'set_nr_hugepages', hstate: '2M', count: 512 }],
      [{ op: 'virtio_mem_unplug', bytes: 4194304 }, { op: 'virtio_mem_unplug', bytes: 12582912 }],
    ];
    const out = runProgram(parseProgram({ config: 'small', profile: 'mainline', threads, schedule: [2, 1, 1, 2, 2] }, 'wq-hugetlb'), { properties: PROPERTIES });
    expect(out.violations).toEqual([]);
    const k = out.kernel;
    const set = out.results.find((r) => r.result.nr_hugepages !== undefined)!;
    const unplugs = out.results.filter((r) => r.result.unplugged !== undefined);
    expect(unplugs.map((r) => r.result.result)).toEqual(['0', '0']);
    expect(meminfo(k).HugePages_Total).toBe(Number(set.result.nr_hugepages));
    expect(checkConservation(k)).toBeNull();
  });

  it('a plug request waits for the unplug request: offline_and_remove_memory does not spin on a re-plugged block', () => {
    const threads = [
      [{ op: 'virtio_mem_plug', bytes: 2097152 }],
      [{ op: 'virtio_mem_unplug', bytes: 16777216 }],
      [{ op: 'offline_pages', block: 3, signal_after: 1 }, { op: 'alloc_contig_range', id: 't2.0', start: 12288, end: 13312, migratetype: 'movable' }],
    ];
    const out = runProgram(parseProgram({ config: 'small', profile: 'mainline', threads, schedule: [1, 1, 0, 2] }, 'wq-livelock'), { properties: PROPERTIES, maxSteps: 20_000 });
    expect(out.violations).toEqual([]);
    const res = out.results.map((r) => r.result.result);
    expect(res).toHaveLength(4);
    expect(checkConservation(out.kernel)).toBeNull();
  });
});

// drivers/virtio/virtio_mem.c (6.1 l. 826 and l. 1009, the same in 6.12):
// virtio_mem_sbm_notify_going_online() lets MEM_GOING_ONLINE through only for a block whose
// sbm.mb_states is OFFLINE or OFFLINE_PARTIAL, NOTIFY_BAD ("memory block onlining denied", -EPERM
// from online_pages via notifier_to_errno) otherwise. virtio_mem_sbm_unplug_any_sb_offline()
// (l. 1870) marks a fully unplugged offline block UNUSED *before* dropping hotplug_mutex around
// remove_memory, "to hinder the block from getting onlined": an admin online_pages already holding
// the hotplug lock and waiting for hotplug_mutex is refused, and remove_memory (BUG_ON(rc)) finds
// the block still offline. The simulator used to let that online through: the admin's online
// returned '0' and the driver's removal offlined the block again.
describe('virtio_mem_sbm_notify_going_online: a block being removed is not onlined (tiny, v5.19)', () => {
  // Thread 0: block 7 partly unplugged (MOVABLE_PARTIAL), block 6 offlined by the admin (OFFLINE),
  // a plug request fake-onlining block 7's subblock (hotplug_mutex held across the yield), then an
  // unplug request whose offline pass unplugs all of block 6 and removes it. Thread 1: the admin
  // onlines block 6; scheduled at the fake-online yield, it takes mem_hotplug_lock and waits for
  // hotplug_mutex, which it gets once the driver dropped it around remove_memory.
  const threads = [
    [{ op: 'virtio_mem_unplug', bytes: '16K' }, { op: 'offline_pages', block: 6 }, { op: 'virtio_mem_plug', bytes: '16K' }, { op: 'virtio_mem_unplug', bytes: '128K' }],
    [{ op: 'online_pages', block: 6, zone: 'Movable' }],
  ];
  const schedule = [...Array(23).fill(0), 1, 0];

  it('the admin online waiting in MEM_GOING_ONLINE is refused (-EPERM); remove_memory removes the offline block', () => {
    const out = runProgram(parseProgram({ config: 'tiny', profile: 'v5.19', threads, schedule }, 'going-online'), { properties: PROPERTIES });
    expect(out.violations).toEqual([]);
    // the schedule reaches the window: thread 1 waits for hotplug_mutex inside online_pages, the
    // driver then waits for mem_hotplug_lock in remove_memory
    const at = out.trace.map((t) => `${t.thread}:${t.at}`);
    expect(at.indexOf('1:wait:virtio_mem_hotplug_mutex')).toBeLessThan(at.indexOf('0:wait:mem_hotplug_lock(write)'));
    expect(out.results.map((r) => r.result.result)).toEqual(['0', '0', '0', '0', '-EPERM']);
    const k = out.kernel;
    expect(k.events).toContain('virtio-mem: memory block onlining denied [192, 224)');
    expect(blockState(k, 6)).toBe('offline');
    expect(hotplugState(k).removed.has(6)).toBe(true);
    const s = virtioMemState(k);
    expect(Array.from(s.plugged.subarray(0, 8))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(s.mbUnused)).toEqual([0, 0]);
    // MEM_CANCEL_ONLINE released hotplug_mutex (vm->hotplug_active was set by the refused MEM_GOING_ONLINE)
    expect([s.lock.owner, s.wq.owner, s.hotplugActive]).toEqual([-1, -1, false]);
    expect(checkConservation(k)).toBeNull();
    // the driver can plug it back
    expect(drive(k, virtioMemPlug(k, 128 * KiB)).pluggedBytes).toBe(128 * KiB);
    expect(blockState(k, 6)).toBe('online');
  });
});

describe('virtio_mem_memory_notifier_cb: MEM_GOING_ONLINE refusal and vm->hotplug_active (tiny, v5.13)', () => {
  it('a block marked UNUSED while still added (the remove_memory window) is refused; OFFLINE / OFFLINE_PARTIAL are not', () => {
    const k = createKernel('tiny', 'v5.13');
    expect(drive(k, offlineBlock(k, 6))).toBe('0');
    expect(drive(k, offlineBlock(k, 7))).toBe('0');
    const s = virtioMemState(k);
    s.mbUnused[1] = 1; // block 7: what virtio_mem_sbm_unplug_any_sb_offline sets before remove_memory
    expect(drive(k, onlineBlock(k, 7, 'Movable'))).toBe('-EPERM');
    expect(blockState(k, 7)).toBe('offline');
    expect([s.lock.owner, s.hotplugActive]).toEqual([-1, false]);
    expect(k.events).toContain('virtio-mem: memory block onlining denied [224, 256)');
    // remove_memory of the still offline block succeeds (the driver's next step)
    expect(drive(k, removeMemory(k, 224, 32))).toBe('0');
    expect(hotplugState(k).removed.has(7)).toBe(true);
    // OFFLINE (block 6, all plugged) is onlined
    expect(drive(k, onlineBlock(k, 6, 'Movable'))).toBe('0');
    expect(s.lock.owner).toBe(-1);
  });

  it('remove_memory removes offline blocks only: an online one is -EBUSY (check_memblock_offlined_cb)', () => {
    const k = createKernel('tiny', 'v5.13');
    expect(drive(k, removeMemory(k, 224, 32))).toBe('-EBUSY');
    expect(hotplugState(k).removed.has(7)).toBe(false);
    expect(drive(k, removeMemory(k, 224, 16))).toBe('-EINVAL');
    expect(drive(k, offlineBlock(k, 7))).toBe('0');
    expect(drive(k, removeMemory(k, 224, 32))).toBe('0');
    expect(drive(k, removeMemory(k, 224, 32))).toBe('-EINVAL');
  });

  // Another notifier that vetoes MEM_GOING_* ahead of virtio-mem: the chain stops before
  // virtio-mem, which then sees only MEM_CANCEL_*; vm->hotplug_active is false, so it must not
  // release hotplug_mutex, which may be held by the driver's own request meanwhile.
  for (const action of ['MEM_GOING_ONLINE', 'MEM_GOING_OFFLINE'] as const) {
    it(`${action} vetoed before virtio-mem: MEM_CANCEL_* leaves hotplug_mutex with its holder`, () => {
      const k = createKernel('tiny', 'v5.13');
      if (action === 'MEM_GOING_ONLINE') expect(drive(k, offlineBlock(k, 7))).toBe('0');
      vetoing(k, action, 'before');
      const s = virtioMemState(k);
      const sched = new Scheduler(k);
      const res: string[] = [];
      // thread 0 holds hotplug_mutex across a yield (as the driver does in alloc_contig_range)
      sched.spawn((function* (): KGen<void> {
        yield* mutexLock(k, s.lock);
        yield 'holder';
        res.push(`owner after the admin op: ${s.lock.owner}`);
        mutexUnlock(s.lock);
      })());
      sched.spawn((function* (): KGen<void> {
        res.push(action === 'MEM_GOING_ONLINE' ? yield* onlineBlock(k, 7, 'Movable') : yield* offlineBlock(k, 7));
      })());
      expect(sched.run([0, 1]).end).toBe('done');
      expect(res).toEqual(['-EBUSY', 'owner after the admin op: 0']);
      expect([s.lock.owner, s.hotplugActive]).toEqual([-1, false]);
      expect(checkConservation(k)).toBeNull();
    });
  }
});
