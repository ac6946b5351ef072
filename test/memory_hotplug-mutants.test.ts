/**
 * Memory offline/online (src/kernel/memory_hotplug.ts) as the zone sees it, written against the
 * survivors of a mutation run: offline_pages' checks in their kernel order (alignment, online
 * blocks, holes, one zone), zone_pcp_disable, the notifier chain (MEM_GOING_OFFLINE vetoes undo the
 * isolation and send MEM_CANCEL_OFFLINE; MEM_GOING_ONLINE vetoes send MEM_CANCEL_ONLINE),
 * scan_movable_pages (PageOffline pages a driver still holds are "unmovable page"), do_migrate_range
 * preferring another node, __offline_isolated_pages' counters (managed, present, NR_FREE_PAGES,
 * nr_isolate_pageblock), online_pages_range's MAX_ORDER chunks through the online_page callback,
 * offline_and_remove_memory, and the hotplug fingerprint part. Checked against
 * mm/memory_hotplug.c of v6.1 (offline_pages, online_pages, online_pages_range,
 * scan_movable_pages, do_migrate_range).
 *
 * Mutants judged equivalent (checked by hand): scan_movable_pages' `Math.min(end, memmap size)` (a
 * range past the memmap is refused earlier) and its skips over free buddies and free huge pages, and
 * do_migrate_range's skip over compound tails (speed only); do_migrate_range's `!list.length` return;
 * online_pages_range's alignment test (memory blocks are aligned to their size); onlineBlock's
 * block check (onlinePagesRange refuses the same); the test_pages_isolated retry (with the pcp lists
 * disabled only another thread can make it fail); dissolve_free_huge_pages' PageHuge and
 * no-hstate guards (dissolving a non-huge pfn is a no-op); the hash form's trailing count.
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import { resolveConfig, type MachineConfig } from '../src/kernel/config.js';
import type { Kernel } from '../src/kernel/machine.js';
import type { KGen } from '../src/kernel/sched.js';
import { Hasher } from '../src/kernel/fingerprint.js';
import { hstateByName, hugetlbPages, setMaxHugePages } from '../src/kernel/hugetlb.js';
import { allocFromZonelist, clearPage, expand, freeUnrefPage, isolateFreePage, prepNewPage, zonelist } from '../src/kernel/page_alloc.js';
import {
  blockState, hotplugState, offlineAndRemoveMemory, offlineBlock, offlinePagesRange, onlineBlock, onlinePagesRange, type MemAction,
} from '../src/kernel/memory_hotplug.js';
import { MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, PG_buddy, PG_isolated, PG_lru, PG_movable_ops, PG_offline, PG_pinned, PG_valid } from '../src/kernel/types.js';
import { allocContigRange } from '../src/kernel/contig.js';
import { checkConservation } from '../properties/page-conservation.js';
import { checkFreelistCounters } from '../properties/freelist-counters.js';
import { drive as plainDrive, driveThread as drive, vetoing } from './helpers.js';

/** tiny without virtio-mem: no driver on the notifier chain or the online_page callback. Memory blocks of 32 pages. */
const PLAIN = resolveConfig({ base: 'tiny', name: 'tiny-plain', virtioMem: undefined });

/** [managed, present, NR_FREE_PAGES, nr_isolate_pageblock, pcp pages] of a zone. */
function zoneState(k: Kernel, zi: number): number[] {
  const z = k.zones[zi];
  return [z.managedPages, z.presentPages, z.freePages, z.nrIsolatePageblock, z.pcpCount[0] + z.pcpCount[1]];
}

/** The memory notifier actions seen, as "ACTION start nr". */
function recordNotifier(k: Kernel): string[] {
  const seen: string[] = [];
  hotplugState(k).notifiers.push(function* (_k: Kernel, a: MemAction, start: number, nr: number): KGen<string> {
    seen.push(`${a} ${start} ${nr}`);
    return '0';
  });
  return seen;
}

/** The pageblock types of [start, end): letters U M R H C I. */
function blocks(k: Kernel, start: number, end: number): string {
  let s = '';
  for (let p = start; p < end; p += 1 << k.pageblockOrder) s += 'UMRHCI'[k.pb.get(p)];
  return s;
}

/** An in-use movable (LRU) page of 2^order pages from the zones a movable request may use, recorded as `id`. */
function userPage(k: Kernel, id: string, order = 0, node?: number): number {
  const req = { order, migratetype: MIGRATE_MOVABLE, node };
  const p = allocFromZonelist(k, zonelist(k, req), req);
  const al = k.newAllocation({ id, kind: 'pages', pfn: p, nrPages: 1 << order, order, migratetype: MIGRATE_MOVABLE, pinned: false });
  prepNewPage(k, p, order, al.handle, PG_lru, k.nextToken++);
  return p;
}

/**
 * Allocates an order-0 movable page on `cpu` and frees it again: the pcp refill leaves two pages on
 * that cpu's list. Returns [the page's memory block, the cpu's pcp count].
 */
function pcpPages(k: Kernel, cpu: number): number[] {
  k.current = cpu;
  const p = userPage(k, `pcp${cpu}`);
  k.dropAllocation(k.lookup(`pcp${cpu}`)!.handle);
  clearPage(k, p, 0);
  freeUnrefPage(k, k.zones[1], p);
  k.current = 0;
  return [Math.floor(p / 32), k.zones[1].pcpCount[cpu]];
}

/** Like userPage(), carved out of the free buddy block at `head` (mainline accounting: the list helpers count). */
function userPageAt(k: Kernel, id: string, head: number, order: number, flags = PG_lru): number {
  const z = k.zoneOf(head)!;
  expect(k.mm.flags[head] & PG_buddy).toBe(PG_buddy);
  const o = k.mm.order[head];
  isolateFreePage(k, z, head, o);
  expand(k, z, head, order, o, MIGRATE_MOVABLE);
  const al = k.newAllocation({ id, kind: 'pages', pfn: head, nrPages: 1 << order, order, migratetype: MIGRATE_MOVABLE, pinned: false });
  prepNewPage(k, head, order, al.handle, flags, k.nextToken++);
  return head;
}

function sound(k: Kernel): void {
  expect(checkConservation(k)).toBeNull();
  expect(checkFreelistCounters(k)).toBeNull();
}

describe('offline_pages / online_pages of a free block', () => {
  for (const profile of ['mainline', 'v5.11']) {
    it(`${profile}: managed, present and free pages leave and come back; the notifier chain sees each step`, () => {
      const k = createKernel(PLAIN, profile);
      const seen = recordNotifier(k);
      // Two pcp pages of each cpu in block 4 (the lowest of ZONE_MOVABLE: the free lists ascend after boot): zone_pcp_disable drains every cpu's lists before isolating.
      expect([pcpPages(k, 0), pcpPages(k, 1)]).toEqual([[4, 2], [4, 2]]);
      expect(zoneState(k, 1)).toEqual([128, 128, 124, 0, 4]);
      expect(drive(k, offlineBlock(k, 4))).toBe('0');
      expect(blockState(k, 4)).toBe('offline');
      expect(zoneState(k, 1)).toEqual([96, 96, 96, 0, 0]);
      expect(k.zones[1].pcpDisabled).toBe(0);
      expect(k.zones[1].nrFree[4]).toBe(6);
      // The pageblocks stay isolated (their flags are stale until online re-initialises them).
      expect(blocks(k, 128, 160)).toBe('IIIIIIII');
      for (let q = 128; q < 160; q++) expect([q, k.mm.flags[q], k.mm.refcount[q]]).toEqual([q, PG_valid | PG_offline, 0]);
      expect(seen).toEqual(['MEM_GOING_OFFLINE 128 32', 'MEM_OFFLINE 128 32']);
      sound(k);

      expect(drive(k, onlineBlock(k, 4, 'Movable'))).toBe('0');
      expect(blockState(k, 4)).toBe('online');
      expect(zoneState(k, 1)).toEqual([128, 128, 128, 0, 0]);
      expect(blocks(k, 128, 160)).toBe('MMMMMMMM');
      expect([k.mm.flags[128], k.mm.order[128], k.mm.flags[144], k.mm.order[144], k.mm.flags[129]]).toEqual([PG_valid | PG_buddy, 4, PG_valid | PG_buddy, 4, PG_valid]);
      expect(seen.slice(2)).toEqual(['MEM_GOING_ONLINE 128 32', 'MEM_ONLINE 128 32']);
      sound(k);
    });
  }

  it('online_pages_range hands the block to the online_page callback in MAX_ORDER chunks; managed grows by what reached buddy', () => {
    for (const [mbp, chunks] of [[64, ['192:4', '208:4', '224:4', '240:4']], [8, ['248:3']]] as const) {
      const cfg: MachineConfig = resolveConfig({ base: 'tiny', name: `tiny-mb${mbp}`, virtioMem: undefined, memoryBlockPages: mbp });
      const k = createKernel(cfg, 'mainline');
      const block = 248 / mbp | 0;
      const start = block * mbp;
      expect(drive(k, offlineBlock(k, block))).toBe('0');
      const calls: string[] = [];
      // A driver keeping the first chunk to itself (as virtio-mem does for unplugged memory).
      hotplugState(k).onlinePage = (kk, pfn, order) => {
        calls.push(`${pfn}:${order}`);
        if (calls.length === 1) return 0;
        kk.mm.flags.fill(PG_valid, pfn, pfn + (1 << order));
        prepNewPage(kk, pfn, order, 0, 0, 0);
        return 0;
      };
      expect(drive(k, onlineBlock(k, block))).toBe('0');
      expect(calls).toEqual(chunks);
      expect(zoneState(k, 1)).toEqual([128 - mbp, 128, 128 - mbp, 0, 0]);
      expect(blocks(k, start, start + mbp)).toBe('M'.repeat(mbp / 4));
    }
  });
});

describe('offline_pages and online_pages refuse', () => {
  it('unaligned or empty ranges, blocks not online, ranges with holes or in two zones; nothing changes', () => {
    const k = createKernel(PLAIN, 'mainline');
    const before = [zoneState(k, 0), zoneState(k, 1)];
    const off = (start: number, nr: number) => drive(k, offlinePagesRange(k, start, nr, {}));
    expect(off(161, 32)).toBe('-EINVAL');
    expect(off(160, 16)).toBe('-EINVAL');
    expect(off(160, 0)).toBe('-EINVAL');
    expect(off(96, 64)).toBe('-EINVAL'); // Normal 96..128 and Movable 128..160: "multizone range"
    expect(drive(k, offlineBlock(k, 8))).toBe('-EINVAL'); // no such memory block
    expect([zoneState(k, 0), zoneState(k, 1)]).toEqual(before);
    expect([...hotplugState(k).blocks.values()].every((s) => s === 'online')).toBe(true);
    expect(blocks(k, 96, 160)).toBe('MMMMMMMMMMMMMMMM');
    // The lock was released and pcp re-enabled every time: a good request goes through.
    expect(k.zones.map((z) => z.pcpDisabled)).toEqual([0, 0]);
    expect(off(160, 64)).toBe('0');
    expect([blockState(k, 5), blockState(k, 6)]).toEqual(['offline', 'offline']);
    expect(zoneState(k, 1)).toEqual([64, 64, 64, 0, 0]);
    expect(off(160, 32)).toBe('-EINVAL'); // already offline
    expect(off(128, 64)).toBe('-EINVAL'); // block 5 of the two is offline
    expect(blockState(k, 4)).toBe('online');

    const on = (start: number, nr: number, zone?: string) => drive(k, onlinePagesRange(k, start, nr, zone as never));
    expect(on(161, 32)).toBe('-EINVAL');
    expect(on(160, 0)).toBe('-EINVAL');
    expect(on(128, 64)).toBe('-EINVAL'); // block 4 is online
    expect(on(160, 32, 'Normal')).toBe('-EINVAL'); // the zone holding it is ZONE_MOVABLE
    expect(drive(k, onlineBlock(k, 8))).toBe('-EINVAL');
    expect([blockState(k, 5), zoneState(k, 1)]).toEqual(['offline', [64, 64, 64, 0, 0]]);
    expect(on(160, 64, 'Movable')).toBe('0');
    expect(zoneState(k, 1)).toEqual([128, 128, 128, 0, 0]);
    sound(k);
  });

  it('a memory block shared by two zones is listed but never offlined ("multizone range")', () => {
    const cfg = resolveConfig({
      base: 'tiny', name: 'tiny-zone-136', virtioMem: undefined,
      nodes: [{ id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 136 }, { name: 'Movable', startPfn: 136, endPfn: 256 }] }],
    });
    const k = createKernel(cfg, 'mainline');
    expect([...hotplugState(k).blocks]).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((b) => [b, 'online']));
    expect(drive(k, offlineBlock(k, 4))).toBe('-EINVAL');
    expect(drive(k, offlineBlock(k, 5))).toBe('0');
  });

  it('online_pages refuses a range in two zones, each block of it offline', () => {
    const k = createKernel(PLAIN, 'mainline');
    expect(drive(k, offlineBlock(k, 3))).toBe('0'); // ZONE_NORMAL's last block
    expect(drive(k, offlineBlock(k, 4))).toBe('0'); // ZONE_MOVABLE's first
    expect(drive(k, onlinePagesRange(k, 96, 64))).toBe('-EINVAL');
    expect([blockState(k, 3), blockState(k, 4), zoneState(k, 0)[0], zoneState(k, 1)[0]]).toEqual(['offline', 'offline', 92, 96]);
    expect(drive(k, onlinePagesRange(k, 96, 32, 'Normal'))).toBe('0');
    expect(drive(k, onlinePagesRange(k, 128, 32, 'Movable'))).toBe('0');
    expect([zoneState(k, 0), zoneState(k, 1)]).toEqual([[124, 128, 120, 0, 0], [128, 128, 128, 0, 0]]);
  });

  it('a block with a hole is not offlined ("memory holes")', () => {
    const k = createKernel(resolveConfig({ base: 'tiny-holes', name: 'tiny-holes-plain', virtioMem: undefined }), 'mainline');
    expect(drive(k, offlineBlock(k, 3))).toBe('-EINVAL');
    expect(blockState(k, 3)).toBe('online');
    expect(blocks(k, 96, 128)).toBe('MMMMMMMM');
  });

  it('a block with unmovable pages fails to isolate: -EBUSY, nothing isolated', () => {
    const k = createKernel(PLAIN, 'mainline');
    const seen = recordNotifier(k);
    expect(drive(k, offlineBlock(k, 0))).toBe('-EBUSY'); // reserved and boot pages
    expect(k.events.some((e) => e.includes('[0, 32) failure to isolate range'))).toBe(true);
    expect(seen).toEqual([]);
    expect([blockState(k, 0), zoneState(k, 0), k.zones[0].pcpDisabled]).toEqual(['online', [124, 128, 120, 0, 0], 0]);
  });
});

describe('the memory notifier chain', () => {
  it('a MEM_GOING_OFFLINE veto undoes the isolation and sends MEM_CANCEL_OFFLINE', () => {
    const k = createKernel(PLAIN, 'mainline');
    const seen = recordNotifier(k);
    vetoing(k, 'MEM_GOING_OFFLINE', 'after');
    expect(drive(k, offlineBlock(k, 6))).toBe('-EBUSY');
    expect(k.events.some((e) => e.includes('[192, 224) notifier failure'))).toBe(true);
    expect(seen).toEqual(['MEM_GOING_OFFLINE 192 32', 'MEM_CANCEL_OFFLINE 192 32']);
    expect([blockState(k, 6), zoneState(k, 1), blocks(k, 192, 224)]).toEqual(['online', [128, 128, 128, 0, 0], 'MMMMMMMM']);
    sound(k);
  });

  it('a MEM_GOING_ONLINE veto sends MEM_CANCEL_ONLINE and leaves the block offline; the first veto stops the chain', () => {
    const k = createKernel(PLAIN, 'mainline');
    expect(drive(k, offlineBlock(k, 6))).toBe('0');
    vetoing(k, 'MEM_GOING_ONLINE', 'before');
    const seen = recordNotifier(k);
    expect(drive(k, onlineBlock(k, 6))).toBe('-EBUSY');
    expect(seen).toEqual(['MEM_CANCEL_ONLINE 192 32']); // after the vetoing one: never asked MEM_GOING_ONLINE
    expect([blockState(k, 6), zoneState(k, 1)]).toEqual(['offline', [96, 96, 96, 0, 0]]);
    hotplugState(k).notifiers.shift();
    expect(drive(k, onlineBlock(k, 6))).toBe('0');
    expect(seen.slice(1)).toEqual(['MEM_GOING_ONLINE 192 32', 'MEM_ONLINE 192 32']);
  });
});

describe('scan_movable_pages and do_migrate_range', () => {
  it('a PageOffline page its driver still holds is an "unmovable page": -EBUSY; unheld ones go offline with the block', () => {
    const k = createKernel(PLAIN, 'mainline');
    // Take two pages of block 6 off the free lists as a driver's fake-offline pages (PageOffline, refcount 1).
    const a = userPage(k, 'a');
    const b = userPage(k, 'b');
    const block = Math.floor(a / 32);
    expect(Math.floor(b / 32)).toBe(block);
    const driver = k.newAllocation({ id: 'driver', kind: 'virtio-mem', pfn: a, nrPages: 2, order: 0, migratetype: MIGRATE_MOVABLE, pinned: false });
    for (const p of [a, b]) {
      k.dropAllocation(k.mm.owner[p]);
      k.mm.flags[p] = PG_valid | PG_offline;
      k.mm.owner[p] = driver.handle;
    }
    expect(drive(k, offlineBlock(k, block))).toBe('-EBUSY');
    expect(k.events.some((e) => e.endsWith('unmovable page'))).toBe(true);
    expect([blockState(k, block), k.zones[1].nrIsolatePageblock, blocks(k, block * 32, block * 32 + 32)]).toEqual(['online', 0, 'MMMMMMMM']);
    // MEM_GOING_OFFLINE: the driver drops its references; the pages are skipped and go offline.
    k.mm.refcount[a] = 0;
    k.mm.refcount[b] = 0;
    expect(drive(k, offlineBlock(k, block))).toBe('0');
    expect(zoneState(k, 1)).toEqual([96, 96, 96, 0, 0]);
    // The block's memmap is reset: no owner, no token left on the offline pages.
    for (const p of [a, b]) expect([k.mm.flags[p], k.mm.refcount[p], k.mm.owner[p], k.mm.token[p]]).toEqual([PG_valid | PG_offline, 0, 0, 0]);
  });

  it('in-use pages migrate, compound ones whole, to another node when there is one', () => {
    const cfg = resolveConfig({
      base: 'tiny', name: 'tiny-2node-plain', virtioMem: undefined, cma: [],
      nodes: [{ id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 128 }] }, { id: 1, zones: [{ name: 'Normal', startPfn: 128, endPfn: 256 }] }],
    });
    for (const [node, other, head] of [[0, 1, 96], [1, 0, 160]]) {
      const k = createKernel(cfg, 'mainline');
      const big = userPageAt(k, 'b', head, 2);
      const small = userPageAt(k, 's', head + 4, 0);
      const tokens = [k.mm.token[small], k.mm.token[big]];
      const block = Math.floor(big / 32);
      expect(Math.floor(small / 32)).toBe(block);
      expect(drive(k, offlineBlock(k, block))).toBe('0');
      const s = k.lookup('s')!;
      const bb = k.lookup('b')!;
      expect([k.zoneOf(s.pfn)!.node, k.zoneOf(bb.pfn)!.node]).toEqual([other, other]);
      expect([k.mm.token[s.pfn], k.mm.token[bb.pfn], k.mm.order[bb.pfn], bb.pfn % 4]).toEqual([...tokens, 2, 0]);
      expect(k.zones[node].managedPages).toBe((node === 0 ? 124 : 128) - 32);
      for (const q of [big, big + 1, small]) expect([k.mm.owner[q], k.mm.token[q], k.mm.order[q], k.mm.flags[q]]).toEqual([0, 0, 0, PG_valid | PG_offline]);
      sound(k);
    }
  });

  it('non-LRU movable pages (__PageMovable: balloon, zsmalloc) are found and migrated too', () => {
    const k = createKernel(PLAIN, 'mainline');
    userPageAt(k, 'z', 192, 0, PG_movable_ops);
    expect(drive(k, offlinePagesRange(k, 192, 32, { signalAfter: 5 }))).toBe('0');
    const now = k.lookup('z')!.pfn;
    expect([Math.floor(now / 32) !== 6, k.mm.flags[now] & (PG_movable_ops | PG_isolated)]).toEqual([true, PG_movable_ops]);
  });

  it('a page someone else isolated is left to them: the loop runs until the signal, the page untouched', () => {
    const k = createKernel(PLAIN, 'mainline');
    const p = userPageAt(k, 'z', 192, 0, PG_movable_ops | PG_isolated);
    expect(drive(k, offlinePagesRange(k, 192, 32, { signalAfter: 3 }))).toBe('-EINTR');
    expect([k.lookup('z')!.pfn, k.mm.flags[p] & (PG_movable_ops | PG_isolated), blockState(k, 6)]).toEqual([p, PG_movable_ops | PG_isolated, 'online']);
    expect(k.events.filter((e) => e.includes('[192, 224) signal backoff'))).toHaveLength(1);
  });

  it('a page that fails to migrate (pinned) goes back to the LRU after each pass (putback_movable_pages)', () => {
    const k = createKernel(PLAIN, 'mainline');
    const p = userPageAt(k, 'pin', 192, 0, PG_lru | PG_pinned);
    expect(drive(k, offlinePagesRange(k, 192, 32, { signalAfter: 2 }))).toBe('-EINTR');
    expect([k.lookup('pin')!.pfn, k.mm.flags[p] & (PG_lru | PG_isolated)]).toEqual([p, PG_lru]);
    expect([blocks(k, 192, 224), zoneState(k, 1)]).toEqual(['MMMMMMMM', [128, 128, 127, 0, 0]]);
  });

  it('offline_pages yields at cond_resched on every pass and before test_pages_isolated', () => {
    const k = createKernel(PLAIN, 'mainline');
    userPageAt(k, 'u', 192, 0);
    const seen: string[] = [];
    expect(plainDrive(offlinePagesRange(k, 192, 32, {}), seen)).toBe('0');
    const mine = seen.filter((l) => l.startsWith('offline_pages:'));
    expect(mine).toEqual(['offline_pages:cond_resched', 'offline_pages:cond_resched', 'offline_pages:test_pages_isolated']);
  });

  it('a signal already pending fails the offline before the first pass, free block or not', () => {
    const k = createKernel(PLAIN, 'mainline');
    const seen = recordNotifier(k);
    expect(drive(k, offlinePagesRange(k, 192, 32, { signalAfter: 0 }))).toBe('-EINTR');
    expect(seen).toEqual(['MEM_GOING_OFFLINE 192 32', 'MEM_CANCEL_OFFLINE 192 32']);
    expect([blockState(k, 6), zoneState(k, 1), blocks(k, 192, 224)]).toEqual(['online', [128, 128, 128, 0, 0], 'MMMMMMMM']);
    expect(drive(k, offlinePagesRange(k, 192, 32, { signalAfter: 1 }))).toBe('0');
  });

  it('on a one-node machine the target is the same node, outside the isolated block', () => {
    const k = createKernel(PLAIN, 'mainline');
    const p = userPage(k, 'u', 1);
    const block = Math.floor(p / 32);
    expect(drive(k, offlineBlock(k, block))).toBe('0');
    const now = k.lookup('u')!.pfn;
    expect(Math.floor(now / 32)).not.toBe(block);
    expect(k.mm.flags[now] & PG_lru).toBe(PG_lru);
    sound(k);
  });
});

describe('dissolve_free_huge_pages in offline_pages', () => {
  it('a free huge page that cannot be dissolved (no memory to restore its vmemmap, HVO) fails the offline', () => {
    const k = createKernel(PLAIN, 'mainline');
    const h = hstateByName(k, '2M')!;
    expect(drive(k, setMaxHugePages(k, h, 1)).nr).toBe(1);
    const [page] = hugetlbPages(k);
    const block = Math.floor(page.pfn / 32);
    expect(k.zoneOf(page.pfn)!.name).toBe('Movable');
    // ZONE_NORMAL, where the vmemmap pages would come from, is full.
    const zl = zonelist(k, { order: 0, migratetype: MIGRATE_UNMOVABLE });
    while (allocFromZonelist(k, zl, { order: 0, migratetype: MIGRATE_UNMOVABLE }) >= 0);
    const seen = recordNotifier(k);
    expect(drive(k, offlineBlock(k, block))).toBe('-ENOMEM');
    expect(k.events.some((e) => e.endsWith('failure to dissolve huge pages'))).toBe(true);
    expect(seen).toEqual([`MEM_GOING_OFFLINE ${block * 32} 32`, `MEM_CANCEL_OFFLINE ${block * 32} 32`]);
    expect([blockState(k, block), h.nr, hugetlbPages(k).map((p) => p.pfn), k.zones[1].nrIsolatePageblock]).toEqual(['online', 1, [page.pfn], 0]);
    expect(blocks(k, block * 32, block * 32 + 32)).toBe('MMMMMMMM');
  });

  it('without HVO the free huge pages of the block are dissolved and the block goes offline', () => {
    const k = createKernel(PLAIN, 'v5.13');
    const h = hstateByName(k, '2M')!;
    expect(drive(k, setMaxHugePages(k, h, 1)).nr).toBe(1);
    const block = Math.floor(hugetlbPages(k)[0].pfn / 32);
    expect(drive(k, offlineBlock(k, block))).toBe('0');
    expect([h.nr, hugetlbPages(k), zoneState(k, 1)]).toEqual([0, [], [96, 96, 96, 0, 0]]);
  });
});

describe('offline_and_remove_memory', () => {
  it('offlines block by block, skips blocks already offline, removes them from sysfs; only add_memory brings them back', () => {
    const k = createKernel(PLAIN, 'mainline');
    expect(drive(k, offlineAndRemoveMemory(k, 200, 32))).toBe('-EINVAL');
    expect(drive(k, offlineAndRemoveMemory(k, 192, 0))).toBe('-EINVAL');
    expect(drive(k, offlineBlock(k, 7))).toBe('0'); // an admin offlined it meanwhile
    expect(drive(k, offlineAndRemoveMemory(k, 192, 64))).toBe('0');
    const st = hotplugState(k);
    expect([blockState(k, 6), blockState(k, 7), [...st.removed]]).toEqual(['offline', 'offline', [6, 7]]);
    expect(zoneState(k, 1)).toEqual([64, 64, 64, 0, 0]);
    expect(drive(k, offlineAndRemoveMemory(k, 224, 32))).toBe('-EINVAL'); // already removed
    expect(drive(k, onlineBlock(k, 7))).toBe('-EINVAL');
    expect(drive(k, onlinePagesRange(k, 224, 32, 'Movable', true))).toBe('0');
    expect([blockState(k, 7), [...st.removed], zoneState(k, 1)]).toEqual(['online', [6], [96, 96, 96, 0, 0]]);
  });

  it('stops at the first block that fails, leaving earlier ones offline and nothing removed', () => {
    const k = createKernel(PLAIN, 'mainline');
    hotplugState(k).notifiers.push(function* (_k, a, start) {
      return a === 'MEM_GOING_OFFLINE' && start === 224 ? '-EBUSY' : '0';
    });
    expect(drive(k, offlineAndRemoveMemory(k, 192, 64))).toBe('-EBUSY');
    expect([blockState(k, 6), blockState(k, 7), [...hotplugState(k).removed]]).toEqual(['offline', 'online', []]);
  });

  it('the fingerprint part names the offline blocks and their removed bit; its hash form tells the same states apart', () => {
    const states: Record<string, number> = {};
    const part = (k: Kernel) => k.fingerprintParts.find((f) => f().startsWith('hotplug{'))! as (() => string) & { hash: (h: Hasher) => void };
    const record = (k: Kernel) => {
      const h = new Hasher();
      part(k).hash(h);
      states[part(k)()] = h.value();
    };
    const k = createKernel(PLAIN, 'mainline');
    record(k);
    expect(drive(k, offlineBlock(k, 6))).toBe('0');
    record(k);
    const k2 = createKernel(PLAIN, 'mainline');
    expect(drive(k2, offlineBlock(k2, 7))).toBe('0');
    record(k2);
    expect(drive(k2, offlineBlock(k2, 6))).toBe('0');
    record(k2);
    const k3 = createKernel(PLAIN, 'mainline');
    expect(drive(k3, offlineAndRemoveMemory(k3, 224, 32))).toBe('0');
    record(k3);
    expect(Object.keys(states).sort()).toEqual(['hotplug{6,7}', 'hotplug{6}', 'hotplug{7}', 'hotplug{r7}', 'hotplug{}']);
    expect(new Set(Object.values(states)).size).toBe(5);
    // The same state reached twice hashes the same.
    const k4 = createKernel(PLAIN, 'v5.11');
    expect(drive(k4, offlineBlock(k4, 6))).toBe('0');
    const h = new Hasher();
    part(k4).hash(h);
    expect(h.value()).toBe(states['hotplug{6}']);
  });
});

describe('online_pages onlines with the pageblocks MIGRATE_ISOLATE (v5.10 b30c59279d20)', () => {
  /** The pfns on zone 1's free list of (order, migratetype), head first. */
  const freeList = (k: Kernel, order: number, mt: number) => [...k.mm.listPfns(k.zones[1].listBase + order * 6 + mt)];

  for (const profile of ['v5.19', 'mainline']) {
    it(`${profile}: MEM_GOING_ONLINE sees the blocks isolated; the pages reach buddy on the ISOLATE lists and are then moved to the tail of the MOVABLE lists`, () => {
      const k = createKernel(PLAIN, profile);
      expect(drive(k, offlineBlock(k, 7))).toBe('0');
      const seen: string[] = [];
      hotplugState(k).notifiers.push(function* (kk: Kernel, a: MemAction): KGen<string> {
        seen.push(`${a} ${blocks(kk, 224, 256)} ${kk.zones[1].nrIsolatePageblock}`);
        return '0';
      });
      const before = freeList(k, 4, MIGRATE_MOVABLE);
      expect(before).not.toContain(224);
      const labels: string[] = [];
      expect(plainDrive(onlineBlock(k, 7, 'Movable'), labels)).toBe('0');
      // isolated before the notifier chain runs, counted only once it agreed; MOVABLE by MEM_ONLINE
      expect(seen).toEqual(['MEM_GOING_ONLINE IIIIIIII 0', 'MEM_ONLINE MMMMMMMM 0']);
      expect(labels.filter((l) => l === 'unset_migratetype_isolate')).toHaveLength(8);
      expect(zoneState(k, 1)).toEqual([128, 128, 128, 0, 0]);
      // v5.19: __free_pages_core (FPI_TO_TAIL) and move_to_free_list, the onlined memory is handed
      // out last. mainline on tiny (pageblock_order 2 < MAX_PAGE_ORDER - 1): the last block's undo
      // finds its block inside a MAX_ORDER buddy, which split_large_buddy re-frees (FPI_NONE) whole
      // at the head; on x86-64 orders the last undo is a __putback_isolated_page, to the tail.
      expect(freeList(k, 4, MIGRATE_MOVABLE)).toEqual(profile === 'mainline' ? [240, 224, ...before] : [...before, 224, 240]);
      sound(k);
    });
  }

  it('a vetoed MEM_GOING_ONLINE leaves the blocks offline, isolated and not counted', () => {
    const k = createKernel(PLAIN, 'mainline');
    expect(drive(k, offlineBlock(k, 7))).toBe('0');
    vetoing(k, 'MEM_GOING_ONLINE', 'after');
    expect(drive(k, onlineBlock(k, 7, 'Movable'))).not.toBe('0');
    expect([blockState(k, 7), blocks(k, 224, 256), k.zones[1].nrIsolatePageblock]).toEqual(['offline', 'IIIIIIII', 0]);
    sound(k);
  });

  it('an alloc_contig_range of the block while it is being onlined fails at isolation: the pages are not handed out before undo_isolate_page_range', () => {
    const k = createKernel(PLAIN, 'v5.19');
    expect(drive(k, offlineBlock(k, 7))).toBe('0');
    const out: string[] = [];
    hotplugState(k).notifiers.push(function* (kk: Kernel, a: MemAction): KGen<string> {
      if (a !== 'MEM_GOING_ONLINE') return '0';
      // (another thread runs here: online_pages is blocked in the notifier chain)
      const r = plainDrive(allocContigRange(kk, 224, 256, MIGRATE_MOVABLE, { id: 'c' }));
      out.push(`${r} ${blocks(kk, 224, 256)}`);
      yield 'notifier';
      return '0';
    });
    expect(drive(k, onlineBlock(k, 7, 'Movable'))).toBe('0');
    expect(out).toEqual(['-EBUSY IIIIIIII']);
    expect(blocks(k, 224, 256)).toBe('MMMMMMMM');
    sound(k);
  });
});
