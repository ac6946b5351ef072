/**
 * Which blocks and subblocks a virtio-mem request works on, and what it returns, as
 * drivers/virtio/virtio_mem.c (6.1) does it:
 *  - virtio_mem_sbm_unplug_request: partially plugged blocks first (ZONE_MOVABLE, then the kernel
 *    zones), then fully plugged ones, each pass from the highest block down; hotplug_mutex is
 *    dropped between blocks (cond_resched); a request left short returns -EBUSY;
 *  - virtio_mem_sbm_plug_request: subblocks of partially plugged online blocks first (lowest
 *    first unplugged subblock, runs no longer than the request), then unused (removed) blocks,
 *    each plugged with min(nb_sb, sbs_per_mb) subblocks and added back; more than the device
 *    region holds ends with -ENOSPC.
 *
 * tiny on v5.19: device region [192, 256) in ZONE_MOVABLE, blocks 6 [192, 224) and 7 [224, 256),
 * subblocks of one pageblock (4 pages, 8 per block).
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import { blockState, hotplugState, offlineBlock, onlineBlock } from '../src/kernel/memory_hotplug.js';
import { virtioMemPlug, virtioMemState, virtioMemUnplug } from '../src/kernel/virtio_mem.js';
import { checkConservation } from '../properties/page-conservation.js';
import { PG_offline } from '../src/kernel/types.js';
import { drive, driveThread, vetoing } from './helpers.js';

/** one subblock: 4 pages of 4 KiB */
const SB = 16 * 1024;

function unpluggedSubblocks(k: ReturnType<typeof createKernel>): number[] {
  const s = virtioMemState(k);
  return [...s.plugged.keys()].filter((i) => !s.plugged[i]);
}

/**
 * Block 6 partially plugged (its top subblock, 220..224, unplugged), block 7 fully plugged: an
 * admin offlines block 6, a request unplugs at the device from the offline block first, the
 * admin onlines it again.
 */
function partialBelowFull() {
  const k = createKernel('tiny', 'v5.19');
  expect(driveThread(k, offlineBlock(k, 6))).toBe('0');
  expect(driveThread(k, virtioMemUnplug(k, SB))).toMatchObject({ result: '0', unpluggedBytes: SB });
  expect(unpluggedSubblocks(k)).toEqual([7]);
  expect(virtioMemState(k).stats.attempts).toBe(0); // offline memory: no alloc_contig_range
  expect(driveThread(k, onlineBlock(k, 6, 'Movable'))).toBe('0');
  expect(k.mm.flags[220] & PG_offline).toBe(PG_offline); // the online_page callback kept it
  return k;
}

describe('virtio_mem_sbm_unplug_request', () => {
  it('takes from a partially plugged block before a fully plugged one above it', () => {
    const k = partialBelowFull();
    expect(driveThread(k, virtioMemUnplug(k, SB))).toMatchObject({ result: '0', unpluggedBytes: SB });
    // block 6's next subblock from the top (216..220), not block 7's top one
    expect(unpluggedSubblocks(k)).toEqual([6, 7]);
    expect(k.mm.flags[216] & PG_offline).toBe(PG_offline);
    expect(k.mm.flags[252] & PG_offline).toBe(0);
  });

  it('a request left short is -EBUSY, with what it did unplug reported', () => {
    const k = createKernel('tiny', 'v5.19');
    // 20 subblocks wanted, the device has 16
    const r = driveThread(k, virtioMemUnplug(k, 20 * SB));
    expect(r).toMatchObject({ result: '-EBUSY', unpluggedBytes: 16 * SB });
    expect([hotplugState(k).removed.has(6), hotplugState(k).removed.has(7)]).toEqual([true, true]);
  });

  it('an offline block is unplugged at the device first, then removed when none is left plugged', () => {
    const k = createKernel('tiny', 'v5.19');
    expect(driveThread(k, offlineBlock(k, 6))).toBe('0');
    // 10 wanted: the offline block 6 whole (no alloc_contig_range), then block 7's top two
    const r = driveThread(k, virtioMemUnplug(k, 10 * SB));
    expect(r).toMatchObject({ result: '0', unpluggedBytes: 10 * SB });
    expect(hotplugState(k).removed.has(6)).toBe(true);
    expect(unpluggedSubblocks(k)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 14, 15]);
    expect(r.stats.attempts).toBe(2);
    expect(checkConservation(k)).toBeNull();
  });

  it('drops hotplug_mutex between blocks (a preemption point), not inside one', () => {
    const k = createKernel('tiny', 'v5.19');
    const seen: string[] = [];
    const r = drive(virtioMemUnplug(k, 10 * SB), seen);
    expect(r.result).toBe('0');
    expect(seen.filter((s) => s === 'virtio_mem_sbm_unplug_request:cond_resched')).toHaveLength(1);
    expect(checkConservation(k)).toBeNull();
  });
});

describe('virtio_mem_sbm_plug_request', () => {
  it('plugs a partially plugged online block before adding an unused one', () => {
    const k = createKernel('tiny', 'v5.19');
    // block 7 unplugged whole and removed, then block 6's top subblock: an unused block above a
    // partially plugged one
    expect(driveThread(k, virtioMemUnplug(k, 8 * SB)).result).toBe('0');
    expect(hotplugState(k).removed.has(7)).toBe(true);
    expect(driveThread(k, virtioMemUnplug(k, SB)).result).toBe('0');
    expect(unpluggedSubblocks(k)).toEqual([7, 8, 9, 10, 11, 12, 13, 14, 15]);
    // 8 wanted: block 6's one first, then block 7 added back with the 7 still wanted
    expect(driveThread(k, virtioMemPlug(k, 8 * SB))).toEqual({ result: '0', pluggedBytes: 8 * SB });
    expect(unpluggedSubblocks(k)).toEqual([15]);
    expect(k.mm.flags[220] & PG_offline).toBe(0);
    expect(blockState(k, 7)).toBe('online');
    expect(k.mm.flags[252] & PG_offline).toBe(PG_offline);
  });

  it('adds an unused block with as many subblocks as the request wants; the rest stay fake-offline', () => {
    const k = createKernel('tiny', 'v5.19');
    expect(driveThread(k, virtioMemUnplug(k, 8 * SB)).result).toBe('0');
    expect(hotplugState(k).removed.has(7)).toBe(true);
    expect(driveThread(k, virtioMemPlug(k, 2 * SB))).toEqual({ result: '0', pluggedBytes: 2 * SB });
    expect(blockState(k, 7)).toBe('online');
    expect(unpluggedSubblocks(k)).toEqual([10, 11, 12, 13, 14, 15]);
    for (const p of [224, 231]) expect(k.mm.flags[p] & PG_offline).toBe(0);
    for (const p of [232, 255]) {
      expect(k.mm.flags[p] & PG_offline).toBe(PG_offline);
      expect(k.mm.refcount[p]).toBe(1);
    }
    expect(checkConservation(k)).toBeNull();
  });

  it('asking for more than the device region holds plugs what it can and ends with -ENOSPC', () => {
    const k = createKernel('tiny', 'v5.19');
    expect(driveThread(k, virtioMemUnplug(k, 3 * SB)).result).toBe('0');
    expect(driveThread(k, virtioMemPlug(k, 5 * SB))).toEqual({ result: '-ENOSPC', pluggedBytes: 3 * SB });
    expect(unpluggedSubblocks(k)).toEqual([]);
  });

  it('plugging part of a range the driver holds whole frees that part and holds the rest per subblock', () => {
    // v5.13: 16-page subblocks, two per block. A removal vetoed before virtio-mem's notifier ran
    // leaves block 7 online with its two subblocks held as one range (one alloc_contig_range).
    const k = createKernel('tiny', 'v5.13');
    vetoing(k, 'MEM_GOING_OFFLINE', 'before');
    expect(driveThread(k, virtioMemUnplug(k, 128 * 1024)).unpluggedBytes).toBe(128 * 1024);
    const s = virtioMemState(k);
    expect(s.held).toEqual([null, null, '@virtio-mem:0', '']);
    const managed = k.zones.find((z) => z.isMovable())!.managedPages;
    // one subblock wanted: the first unplugged one, 224..240
    expect(driveThread(k, virtioMemPlug(k, 64 * 1024))).toEqual({ result: '0', pluggedBytes: 64 * 1024 });
    expect(Array.from(s.plugged)).toEqual([1, 1, 1, 0]);
    expect(k.lookup('@virtio-mem:0')).toBeUndefined();
    expect(s.held[2]).toBeNull();
    const rest = k.lookup(s.held[3]!)!;
    expect(rest).toMatchObject({ kind: 'virtio-mem', pfn: 240, nrPages: 16 });
    for (let p = 224; p < 240; p++) expect([k.mm.flags[p] & PG_offline, k.mm.owner[p]]).toEqual([0, 0]);
    for (let p = 240; p < 256; p++) expect([k.mm.flags[p] & PG_offline, k.mm.refcount[p], k.mm.owner[p]]).toEqual([PG_offline, 1, rest.handle]);
    expect(k.zones.find((z) => z.isMovable())!.managedPages).toBe(managed + 16);
    expect(checkConservation(k)).toBeNull();
  });

  it('a vetoed online of an added block leaves it added, offline and plugged; the request goes on', () => {
    const k = createKernel('tiny', 'v5.19');
    expect(driveThread(k, virtioMemUnplug(k, 16 * SB)).result).toBe('0');
    expect([hotplugState(k).removed.has(6), hotplugState(k).removed.has(7)]).toEqual([true, true]);
    vetoing(k, 'MEM_GOING_ONLINE', 'after');
    // add_memory succeeds for both blocks; onlining fails and is not add_memory's result
    expect(driveThread(k, virtioMemPlug(k, 12 * SB))).toEqual({ result: '0', pluggedBytes: 12 * SB });
    expect([blockState(k, 6), blockState(k, 7)]).toEqual(['offline', 'offline']);
    expect([hotplugState(k).removed.has(6), hotplugState(k).removed.has(7)]).toEqual([false, false]);
    expect(unpluggedSubblocks(k)).toEqual([12, 13, 14, 15]);
    expect(k.events.filter((e) => e.includes('stays offline'))).toHaveLength(2);
    // the admin onlines block 7 once the veto is gone: only its plugged subblocks become free memory
    hotplugState(k).notifiers.pop();
    expect(driveThread(k, onlineBlock(k, 7, 'Movable'))).toBe('0');
    for (const p of [224, 239]) expect(k.mm.flags[p] & PG_offline).toBe(0);
    for (const p of [240, 255]) expect(k.mm.flags[p] & PG_offline).toBe(PG_offline);
    expect(checkConservation(k)).toBeNull();
  });

  it('an offline, partially plugged block is plugged at the device; onlining frees what is plugged', () => {
    const k = createKernel('tiny', 'v5.19');
    expect(driveThread(k, offlineBlock(k, 7))).toBe('0');
    expect(driveThread(k, virtioMemUnplug(k, 3 * SB)).result).toBe('0');
    expect(unpluggedSubblocks(k)).toEqual([13, 14, 15]);
    // the offline block is the only partial one: its first unplugged subblocks, no fake-online
    expect(driveThread(k, virtioMemPlug(k, 2 * SB))).toEqual({ result: '0', pluggedBytes: 2 * SB });
    expect(unpluggedSubblocks(k)).toEqual([15]);
    expect(blockState(k, 7)).toBe('offline');
    expect(driveThread(k, onlineBlock(k, 7, 'Movable'))).toBe('0');
    expect(k.mm.flags[248] & PG_offline).toBe(0);
    expect(k.mm.flags[252] & PG_offline).toBe(PG_offline);
    expect(checkConservation(k)).toBeNull();
  });
});
