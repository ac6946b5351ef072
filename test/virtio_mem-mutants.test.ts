/**
 * virtio-mem Sub Block Mode edge cases (src/kernel/virtio_mem.ts, drivers/virtio/virtio_mem.c
 * 6.1 / 6.12), written against the survivors of a mutation run: the retry count of
 * virtio_mem_fake_offline() outside ZONE_MOVABLE, the extent of virtio_mem_set_fake_offline() /
 * virtio_mem_fake_online(), which blocks and subblocks an unplug request tries and in which order,
 * -ENOMEM from a single subblock, the memory notifier when offlining is vetoed after (or before)
 * virtio-mem's MEM_GOING_OFFLINE (virtio_mem_sbm_notify_cancel_offline), MEM_GOING_OFFLINE of one
 * block next to another block's unplugged subblocks, and virtio_mem_online_page_cb() for memory outside the device.
 *
 * tiny: device region [192, 256) in ZONE_MOVABLE, memory blocks of 32 pages (6 and 7). Subblocks
 * are MAX_ORDER-1 pages (16, two per block) up to v5.18 and a pageblock (4 pages) from v5.19.
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import { resolveConfig } from '../src/kernel/config.js';
import type { Kernel } from '../src/kernel/machine.js';
import { meminfo } from '../src/kernel/meminfo.js';
import { hstateByName, setMaxHugePages } from '../src/kernel/hugetlb.js';
import { blockState, hotplugState, offlineBlock, onlineBlock, type MemAction } from '../src/kernel/memory_hotplug.js';
import { virtioMemPlug, virtioMemPluggedBytes, virtioMemState, virtioMemUnplug } from '../src/kernel/virtio_mem.js';
import { allocFromZonelist, clearPage, freePages, prepNewPage } from '../src/kernel/page_alloc.js';
import { Scheduler, type KGen } from '../src/kernel/sched.js';
import { checkConservation } from '../properties/page-conservation.js';
import { ConfigError, MIGRATE_MOVABLE, PG_buddy, PG_lru, PG_offline, PG_pinned } from '../src/kernel/types.js';
import { driveThread as drive, vetoing } from './helpers.js';

const KiB = 1024;
/** one MAX_ORDER-1 subblock (<= v5.18): 16 pages of 4 KiB */
const SB16 = 64 * KiB;
/** one pageblock subblock (v5.19+): 4 pages */
const SB4 = 16 * KiB;

function movable(k: Kernel) {
  return k.zones.find((z) => z.isMovable())!;
}

/** A long-term pinned user page at exactly `pfn` (the other pages taken on the way are freed again). */
function pinAt(k: Kernel, pfn: number): void {
  const z = k.zoneOf(pfn)!;
  const others: number[] = [];
  for (let p; (p = allocFromZonelist(k, [z], { order: 0, migratetype: MIGRATE_MOVABLE })) !== pfn;) {
    expect(p).toBeGreaterThanOrEqual(0);
    others.push(p);
  }
  const al = k.newAllocation({ id: `pin${pfn}`, kind: 'pages', pfn, nrPages: 1, order: 0, migratetype: MIGRATE_MOVABLE, pinned: true });
  prepNewPage(k, pfn, 0, al.handle, PG_lru | PG_pinned, k.nextToken++);
  for (const p of others) {
    clearPage(k, p, 0);
    freePages(k, p, 0);
  }
}

/** The unpin + put_page of pinAt's page. */
function unpin(k: Kernel, pfn: number): void {
  k.dropAllocation(k.lookup(`pin${pfn}`)!.handle);
  clearPage(k, pfn, 0);
  freePages(k, pfn, 0);
}

function pagesHave(k: Kernel, from: number, to: number, flag: number): boolean[] {
  const out: boolean[] = [];
  for (let p = from; p < to; p++) out.push((k.mm.flags[p] & flag) !== 0);
  return out;
}

describe('virtio_mem_fake_offline / virtio_mem_set_fake_offline / virtio_mem_fake_online', () => {
  it('outside ZONE_MOVABLE one alloc_contig_range attempt per range, and PageOffline stops at the subblock end', () => {
    // The device region 96..128 in ZONE_NORMAL, the block below ZONE_MOVABLE; a boot slab page in its
    // first subblock (96..112) makes that subblock, and the whole block, unmovable.
    const cfg = resolveConfig({
      base: 'tiny', name: 'tiny-virtio-normal', virtioMem: { startPfn: 96, endPfn: 128 }, cma: [],
      bootUnmovable: [{ startPfn: 4, endPfn: 8 }, { startPfn: 100, endPfn: 101 }],
    });
    const k = createKernel(cfg, 'v5.13');
    const r = drive(k, virtioMemUnplug(k, 2 * SB16));
    // the whole block once, the top subblock (taken), the bottom subblock once; one subblock short
    // of the request: -EBUSY (virtio_mem_sbm_unplug_request: `return nb_sb ? -EBUSY : 0`)
    expect(r).toMatchObject({ result: '-EBUSY', unpluggedBytes: SB16 });
    expect(r.stats.attempts).toBe(3);
    expect(r.stats.failures).toEqual({ '-EBUSY': 2 });
    expect(r.stats.busyRanges).toEqual(['[60, 80)', '[60, 70)']);
    expect(Array.from(virtioMemState(k).plugged)).toEqual([1, 0]);
    expect(pagesHave(k, 112, 128, PG_offline).every(Boolean)).toBe(true);
    expect(k.mm.flags[128] & PG_offline).toBe(0); // ZONE_MOVABLE's first page is not the driver's
  });

  it('fake-online of one subblock clears PageOffline of that subblock only (v5.19, 4-page subblocks)', () => {
    const k = createKernel('tiny', 'v5.19');
    const s = virtioMemState(k);
    // Two single-subblock requests take the top two subblocks, 252..256 and then 248..252.
    expect(drive(k, virtioMemUnplug(k, SB4)).unpluggedBytes).toBe(SB4);
    expect(drive(k, virtioMemUnplug(k, SB4)).unpluggedBytes).toBe(SB4);
    expect(s.held.slice(14)).toEqual(['@virtio-mem:1', '@virtio-mem:0']);
    // A one-subblock plug fake-onlines the lowest unplugged subblock only.
    expect(drive(k, virtioMemPlug(k, SB4))).toEqual({ result: '0', pluggedBytes: SB4 });
    expect(Array.from(s.plugged.slice(12))).toEqual([1, 1, 1, 0]);
    expect(pagesHave(k, 248, 256, PG_offline)).toEqual([false, false, false, false, true, true, true, true]);
    expect(k.mm.refcount[252]).toBe(1);
    expect(checkConservation(k)).toBeNull();
  });
});

describe('virtio_mem_sbm_unplug_request: which blocks and subblocks', () => {
  it('subblocks already unplugged are not tried again; a block unplugged subblock by subblock is removed', () => {
    const k = createKernel('tiny', 'v5.13');
    expect(drive(k, virtioMemUnplug(k, SB16)).stats.attempts).toBe(1); // subblock 3 (240..256)
    // Two subblocks' worth: block 7 is no longer fully plugged, so no whole-block attempt there;
    // subblock 3 is skipped, 2 is taken; then block 6, with one subblock to go, gives subblock 1.
    const r = drive(k, virtioMemUnplug(k, 2 * SB16));
    expect(r).toMatchObject({ result: '0', unpluggedBytes: 2 * SB16 });
    expect(r.stats.attempts).toBe(2);
    expect(r.stats.busyRanges).toEqual([]);
    expect(Array.from(virtioMemState(k).plugged)).toEqual([1, 0, 0, 0]);
    // virtio_mem_sbm_try_remove_unplugged_mb(): offline_and_remove_memory of the now empty block 7.
    expect(blockState(k, 7)).toBe('offline');
    expect(hotplugState(k).removed.has(7)).toBe(true);
    expect(virtioMemState(k).held.slice(2)).toEqual([null, null]);
    expect(k.events.filter((e) => e.startsWith('virtio-mem:'))).toEqual([]);
  });

  it('a request for less than a subblock unplugs nothing and succeeds (nb_sb = 0)', () => {
    const k = createKernel('tiny', 'v5.13');
    const r = drive(k, virtioMemUnplug(k, SB16 / 2));
    expect(r).toMatchObject({ result: '0', unpluggedBytes: 0 });
    expect(r.stats.attempts).toBe(0);
    expect(virtioMemPluggedBytes(k)).toBe(4 * SB16);
  });

  it('every subblock busy: -EBUSY with nothing unplugged, after 5 tries of each range on ZONE_MOVABLE', () => {
    const k = createKernel('tiny', 'v5.13');
    for (const pfn of [200, 220, 230, 250]) pinAt(k, pfn); // one pinned page in each 16-page subblock
    const r = drive(k, virtioMemUnplug(k, 4 * SB16));
    expect(r).toMatchObject({ result: '-EBUSY', unpluggedBytes: 0 });
    // per block: the whole block, then its two subblocks, 5 alloc_contig_range attempts each
    expect(r.stats.failures).toEqual({ '-EBUSY': 2 * 3 * 5 });
    expect(Array.from(virtioMemState(k).plugged)).toEqual([1, 1, 1, 1]);
  });

  it('-ENOMEM on a single subblock ends the request at once (no other block is tried)', () => {
    const k = createKernel('tiny', 'v5.13');
    // Free huge pages everywhere and no free memory to replace them with (as virtio_mem.test.ts).
    drive(k, setMaxHugePages(k, hstateByName(k, '2M')!, 1000));
    const r = drive(k, virtioMemUnplug(k, SB16)); // less than a block: subblocks only
    expect(r).toMatchObject({ result: '-ENOMEM', unpluggedBytes: 0 });
    expect(r.stats.attempts).toBe(1);
    expect(r.stats.failures).toEqual({ '-ENOMEM': 1 });
    expect(Array.from(virtioMemState(k).plugged)).toEqual([1, 1, 1, 1]);
  });

  it('the fingerprint the model checker dedups on records the plugged bitmap', () => {
    const k = createKernel('tiny', 'v5.13');
    const part = () => k.fingerprintParts.map((f) => f()).find((p) => p.startsWith('virtio-mem'));
    expect(part()).toBe('virtio-mem{1111}');
    drive(k, virtioMemUnplug(k, SB16));
    expect(part()).toBe('virtio-mem{1110}');
  });
});

describe('MEM_GOING_OFFLINE of one block next to another block\'s unplugged subblock', () => {
  /** v5.13: subblock 2 (224..240) unplugged and held, subblock 3 plugged (a pinned page), block 6 removed. */
  function partlyUnplugged(): Kernel {
    const k = createKernel('tiny', 'v5.13');
    pinAt(k, 250);
    const r = drive(k, virtioMemUnplug(k, 3 * SB16));
    expect(r).toMatchObject({ result: '0', unpluggedBytes: 3 * SB16 });
    expect(Array.from(virtioMemState(k).plugged)).toEqual([0, 0, 0, 1]);
    expect(hotplugState(k).removed.has(6)).toBe(true);
    return k;
  }

  it('removing block 6 leaves block 7\'s unplugged subblock held: references, allocation, managed pages', () => {
    const boot = movable(createKernel('tiny', 'v5.13')).managedPages;
    const k = partlyUnplugged();
    const s = virtioMemState(k);
    const id = s.held[2]!;
    const al = k.lookup(id)!;
    expect(al).toMatchObject({ kind: 'virtio-mem', pfn: 224, nrPages: 16 });
    for (let p = 224; p < 240; p++) expect([k.mm.refcount[p], k.mm.owner[p]]).toEqual([1, al.handle]);
    // block 6's own allocations ended with its removal
    expect([...k.allocs.values()].filter((a) => a.kind === 'virtio-mem').map((a) => a.pfn)).toEqual([224]);
    // block 6 left with its memmap (present and managed pages are per zone); 224..240 is fake-offline
    expect(movable(k).managedPages).toBe(boot - 16 - 32);
  });

  it('plugging the removed block onlines exactly its subblocks, the neighbour\'s unplugged subblock is fake-onlined', () => {
    const k = partlyUnplugged();
    // Three subblocks' worth: block 6 added and onlined, and block 7's subblock 2 fake-onlined (the
    // kernel does the partly plugged block 7 first, then block 6: the same end state).
    expect(drive(k, virtioMemPlug(k, 3 * SB16))).toEqual({ result: '0', pluggedBytes: 3 * SB16 });
    const s = virtioMemState(k);
    expect(Array.from(s.plugged)).toEqual([1, 1, 1, 1]);
    expect(s.held).toEqual([null, null, null, null]);
    expect(blockState(k, 6)).toBe('online');
    unpin(k, 250);
    expect(checkConservation(k)).toBeNull();
  });

  it('an admin offline + online of block 7 keeps the unplugged subblock fake-offline and frees the next one', () => {
    const k = createKernel('tiny', 'v5.19');
    pinAt(k, 252);
    // 4-page subblocks: the top one (252..256) is pinned, the next one down (248..252) is taken.
    expect(drive(k, virtioMemUnplug(k, SB4)).unpluggedBytes).toBe(SB4);
    unpin(k, 252);
    expect(drive(k, offlineBlock(k, 7))).toBe('0');
    expect(drive(k, onlineBlock(k, 7, 'Movable'))).toBe('0');
    // virtio_mem_online_page_cb: 248..252 fake-offline again (the memmap init reference), 252.. freed.
    expect(pagesHave(k, 248, 253, PG_offline)).toEqual([true, true, true, true, false]);
    expect([k.mm.refcount[251], k.mm.refcount[252]]).toEqual([1, 0]);
    expect(k.mm.flags[252] & PG_buddy).toBe(PG_buddy);
    expect(checkConservation(k)).toBeNull();
  });
});

describe('offlining vetoed by another memory notifier', () => {
  it('after virtio-mem\'s MEM_GOING_OFFLINE: MEM_CANCEL_OFFLINE takes a reference per subblock again', () => {
    const boot = movable(createKernel('tiny', 'v5.13')).managedPages;
    const k = createKernel('tiny', 'v5.13');
    vetoing(k, 'MEM_GOING_OFFLINE', 'after');
    const r = drive(k, virtioMemUnplug(k, 2 * SB16));
    // The block was unplugged (fake-offline) whole; only its removal failed: "not critical".
    expect(r).toMatchObject({ result: '0', unpluggedBytes: 2 * SB16 });
    expect(blockState(k, 7)).toBe('online');
    expect(k.events).toContain('virtio-mem: offline_and_remove_memory of [224, 256) failed (-EBUSY)');
    const s = virtioMemState(k);
    // virtio_mem_fake_offline_cancel_offline(): one reference per subblock (one allocation each here).
    expect(s.held).toEqual([null, null, '@virtio-mem:1', '@virtio-mem:2']);
    for (const [i, id] of [[2, '@virtio-mem:1'], [3, '@virtio-mem:2']] as const) {
      const al = k.lookup(id)!;
      expect(al).toMatchObject({ kind: 'virtio-mem', pfn: 192 + 16 * i, nrPages: 16, order: 4, pinned: false });
      for (let p = al.pfn; p < al.pfn + 16; p++) expect([k.mm.refcount[p], k.mm.owner[p]]).toEqual([1, al.handle]);
    }
    expect(pagesHave(k, 224, 256, PG_offline).every(Boolean)).toBe(true);
    expect(movable(k).managedPages).toBe(boot - 32);
    expect([s.lock.owner, s.wq.owner]).toEqual([-1, -1]);
    expect(checkConservation(k)).toBeNull();
    // Plug gives both subblocks back, one fake-online each.
    expect(drive(k, virtioMemPlug(k, 2 * SB16))).toEqual({ result: '0', pluggedBytes: 2 * SB16 });
    expect(movable(k).managedPages).toBe(boot);
    expect(checkConservation(k)).toBeNull();
  });

  it('before virtio-mem sees MEM_GOING_OFFLINE: the whole-block unplug stays one held range, plugged back whole', () => {
    const boot = movable(createKernel('tiny', 'v5.13')).managedPages;
    const k = createKernel('tiny', 'v5.13');
    vetoing(k, 'MEM_GOING_OFFLINE', 'before');
    expect(drive(k, virtioMemUnplug(k, 2 * SB16)).unpluggedBytes).toBe(2 * SB16);
    const s = virtioMemState(k);
    // virtio_mem_set_fake_offline over the block: the head subblock names the range, the rest ''.
    expect(s.held).toEqual([null, null, '@virtio-mem:0', '']);
    expect(k.lookup('@virtio-mem:0')).toMatchObject({ pfn: 224, nrPages: 32, order: 5 }); // 32 = 2^5 pages
    expect(movable(k).managedPages).toBe(boot - 32);
    expect(drive(k, virtioMemPlug(k, 2 * SB16))).toEqual({ result: '0', pluggedBytes: 2 * SB16 });
    expect(Array.from(s.plugged)).toEqual([1, 1, 1, 1]);
    expect(s.held).toEqual([null, null, null, null]);
    expect(movable(k).managedPages).toBe(boot);
    expect(checkConservation(k)).toBeNull();
  });

  it('a vetoed removal of block 6 re-takes block 6\'s subblocks only, not those of the removed block 7', () => {
    const k = createKernel('tiny', 'v5.13');
    expect(drive(k, virtioMemUnplug(k, 2 * SB16)).unpluggedBytes).toBe(2 * SB16); // block 7, removed
    vetoing(k, 'MEM_GOING_OFFLINE', 'after');
    expect(drive(k, virtioMemUnplug(k, 2 * SB16)).unpluggedBytes).toBe(2 * SB16);
    const s = virtioMemState(k);
    expect(s.held).toEqual(['@virtio-mem:2', '@virtio-mem:3', null, null]);
    for (let p = 224; p < 256; p++) expect(k.mm.refcount[p]).toBe(0);
  });

  it('a plug of one block\'s worth adds the lowest removed block only', () => {
    const k = createKernel('tiny', 'v5.13');
    drive(k, virtioMemUnplug(k, 4 * SB16));
    expect(drive(k, virtioMemPlug(k, 2 * SB16))).toEqual({ result: '0', pluggedBytes: 2 * SB16 });
    expect([blockState(k, 6), blockState(k, 7)]).toEqual(['online', 'offline']);
    expect(Array.from(virtioMemState(k).plugged)).toEqual([1, 1, 0, 0]);
    // The request (vm->wq) and hotplug_mutex are free again: a second plug adds block 7.
    expect([virtioMemState(k).lock.owner, virtioMemState(k).wq.owner]).toEqual([-1, -1]);
    expect(drive(k, virtioMemPlug(k, 2 * SB16)).pluggedBytes).toBe(2 * SB16);
    expect(blockState(k, 7)).toBe('online');
  });
});

describe('the device and memory outside it', () => {
  it('an admin offline + online of a ZONE_MOVABLE block outside the device goes through generic_online_page', () => {
    const k = createKernel('tiny', 'v5.13');
    const free0 = meminfo(k).MemFree;
    expect(drive(k, offlineBlock(k, 5))).toBe('0'); // 160..192, just below the device
    expect(drive(k, onlineBlock(k, 5, 'Movable'))).toBe('0');
    expect(meminfo(k).MemFree).toBe(free0);
    expect(pagesHave(k, 160, 192, PG_offline).some(Boolean)).toBe(false);
    expect(Array.from(virtioMemState(k).plugged)).toEqual([1, 1, 1, 1]);
  });

  it('a machine without a device: no virtio-mem state, and asking for it is a ConfigError', () => {
    const k = createKernel(resolveConfig({ base: 'tiny', name: 'tiny-no-virtio', virtioMem: undefined }), 'mainline');
    expect(k.ext.virtioMem).toBeUndefined();
    expect(() => virtioMemState(k)).toThrow("config 'tiny-no-virtio' has no virtio-mem device");
  });

  it('a memory block smaller than a subblock is refused (8-page blocks, 16-page subblocks up to v5.18)', () => {
    const cfg = resolveConfig({ base: 'tiny', name: 'tiny-small-blocks', memoryBlockPages: 8 });
    expect(() => createKernel(cfg, 'v5.13')).toThrow(ConfigError);
    expect(() => createKernel(cfg, 'v5.13')).toThrow("config 'tiny-small-blocks': memory block smaller than a virtio-mem subblock");
    expect(virtioMemState(createKernel(cfg, 'v5.19')).sbPages).toBe(4);
  });

  it('two requests are serialised by the driver work item: the second waits on virtio_mem_wq', () => {
    const k = createKernel('tiny', 'v5.13');
    const s = new Scheduler(k);
    s.spawn(virtioMemUnplug(k, SB16));
    s.spawn(virtioMemPlug(k, SB16));
    expect(s.run([0, 1]).end).toBe('done');
    const waits = s.trace.filter((r) => r.at.startsWith('wait:')).map((r) => `${r.thread}:${r.at}`);
    expect(waits).toEqual(['1:wait:virtio_mem_wq']);
    expect(virtioMemPluggedBytes(k)).toBe(4 * SB16);
  });
});
