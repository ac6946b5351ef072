/**
 * /proc/meminfo and /proc/pagetypeinfo views (src/kernel/meminfo.ts), written against the
 * survivors of a mutation run: the hugetlb lines of hugetlb_report_meminfo() (default hstate only,
 * "Hugetlb:" summed over every hstate), a machine without hstates, pagetypeinfo_showfree() rows
 * (orders 0..MAX_ORDER-1) and pagetypeinfo_showblockcount() per zone with a pageblock that is a
 * hole, and the text layout of both files (checked against 6.1 fs/proc/meminfo.c, mm/hugetlb.c,
 * mm/vmstat.c).
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import { resolveConfig } from '../src/kernel/config.js';
import { formatMeminfo, formatPagetypeinfo, meminfo, pagetypeinfo } from '../src/kernel/meminfo.js';
import { hstateByName, setMaxHugePages } from '../src/kernel/hugetlb.js';
import { offlineBlock } from '../src/kernel/memory_hotplug.js';
import { MIGRATETYPE_NAMES } from '../src/kernel/types.js';
import { driveThread } from './helpers.js';

describe('hugetlb_report_meminfo', () => {
  it('HugePages_* and Hugepagesize describe the default hstate; Hugetlb: sums nr * size of every hstate (v5.x+)', () => {
    const k = createKernel('tiny', 'mainline');
    const h2 = hstateByName(k, '2M')!;
    const h1g = hstateByName(k, '1G')!;
    driveThread(k, setMaxHugePages(k, h2, 3));
    driveThread(k, setMaxHugePages(k, h1g, 1));
    expect([h2.nr, h1g.nr]).toEqual([3, 1]);
    h2.resv = 1; // as hugetlb_acct_memory leaves it: shown as HugePages_Rsvd of the default hstate only
    h2.surplus = 2;
    h1g.surplus = 1;
    const m = meminfo(k);
    // tiny: default hstate order 2 -> 4 pages of 4 kB; gigantic order 5 -> 32 pages.
    expect(m).toMatchObject({ HugePages_Total: 3, HugePages_Free: 3, HugePages_Rsvd: 1, HugePages_Surp: 2, Hugepagesize: 16 });
    // Hugetlb: 3 * 16 kB + 1 * 128 kB (total_hugetlb_pages_kb over for_each_hstate).
    expect(m.Hugetlb).toBe(3 * 16 + 128);
  });

  it('a machine without hstates shows empty hugetlb lines and a one-page Hugepagesize', () => {
    const k = createKernel(resolveConfig({ base: 'tiny', name: 'tiny-nohuge', hstates: [] }), 'mainline');
    const m = meminfo(k);
    expect(m).toMatchObject({ HugePages_Total: 0, HugePages_Free: 0, HugePages_Rsvd: 0, HugePages_Surp: 0, Hugetlb: 0 });
    // No default hstate and no config order: order 0, one 4 kB page.
    expect(m.Hugepagesize).toBe(4);
  });

  it('formatMeminfo: "%-16s%8lu kB" lines, HugePages_ counts without the kB unit (show_val_kb, hugetlb_report_meminfo)', () => {
    const k = createKernel('tiny', 'mainline');
    driveThread(k, setMaxHugePages(k, hstateByName(k, '2M')!, 2));
    const m = meminfo(k);
    const lines = formatMeminfo(m).split('\n');
    expect(lines).toHaveLength(Object.keys(m).length);
    expect(lines).toContain(`MemTotal:       ${String(m.MemTotal).padStart(8)} kB`);
    expect(lines).toContain('CmaTotal:            128 kB');
    expect(lines).toContain('HugePages_Total:       2');
    expect(lines).toContain('HugePages_Surp:        0');
    expect(lines).toContain('Hugepagesize:         16 kB');
    expect(lines).toContain('Hugetlb:              32 kB');
  });
});

describe('pagetypeinfo', () => {
  // tiny with the pageblock [100, 104) a hole: ZONE_NORMAL has 31 pageblocks with memory.
  const holed = () => createKernel(resolveConfig({ base: 'tiny', name: 'tiny-hole-block', holes: [{ startPfn: 100, endPfn: 104 }] }), 'mainline');

  it('free rows: one count per order 0..MAX_ORDER-1 per migratetype, read from the free lists (pagetypeinfo_showfree_print)', () => {
    const k = holed();
    const info = pagetypeinfo(k);
    expect(info.pageblockOrder).toBe(2);
    expect(info.pagesPerBlock).toBe(4);
    expect(info.zones.map((z) => `${z.node}:${z.zone}`)).toEqual(['0:Normal', '0:Movable']);
    for (const [zi, z] of info.zones.entries()) {
      expect(Object.keys(z.free)).toEqual([...MIGRATETYPE_NAMES]);
      for (const [mt, row] of MIGRATETYPE_NAMES.entries()) {
        expect(z.free[row]).toHaveLength(k.maxOrder + 1);
        for (let o = 0; o <= k.maxOrder; o++) expect(z.free[row][o]).toBe(k.mm.listLen[k.zones[zi].freeList(o, mt)]);
      }
    }
    // ZONE_MOVABLE [128, 256) boots as 8 free MAX_ORDER-1 (order 4) movable blocks.
    expect(info.zones[1].free.Movable).toEqual([0, 0, 0, 0, 8]);
  });

  it('block counts: every pageblock of its own zone once, a block that is all hole not at all (pagetypeinfo_showblockcount_print)', () => {
    const info = pagetypeinfo(holed());
    const [normal, movable] = info.zones;
    // [0, 128): 32 blocks less the hole block; the CMA area [64, 96) is 8 blocks; the first block
    // holds the boot-time unmovable allocations.
    expect(normal.blocks).toEqual({ Unmovable: 1, Movable: 22, Reclaimable: 0, HighAtomic: 0, CMA: 8, Isolate: 0 });
    // [128, 256): 32 movable blocks, none counted twice nor borrowed from ZONE_NORMAL.
    expect(movable.blocks).toEqual({ Unmovable: 0, Movable: 32, Reclaimable: 0, HighAtomic: 0, CMA: 0, Isolate: 0 });
    // Without the hole the block at 100 counts again.
    expect(pagetypeinfo(createKernel('tiny', 'mainline')).zones[0].blocks.Movable).toBe(23);
  });

  it('a pageblock with only part of it a hole is still counted (its memmap has valid pages)', () => {
    const k = createKernel(resolveConfig({ base: 'tiny', name: 'tiny-part-hole', holes: [{ startPfn: 100, endPfn: 103 }] }), 'mainline');
    expect(pagetypeinfo(k).zones[0].blocks.Movable).toBe(23);
  });

  it('formatPagetypeinfo: mm/vmstat.c\'s layout, field widths and trailing spaces included', () => {
    const info = pagetypeinfo(holed());
    const lines = formatPagetypeinfo(info).split('\n');
    expect(lines.slice(0, 4)).toEqual(['Page block order: 2', 'Pages per block:  4', '', 'Free pages count per migrate type at order       0      1      2      3      4 ']);
    // 2 zones * 6 migratetypes free lines
    expect(lines.slice(4, 16).every((l) => /^Node    0, zone +(Normal|Movable), type +\w+ ( +\d+ ){5}$/.test(l))).toBe(true);
    expect(lines[5]).toBe('Node    0, zone   Normal, type      Movable      0      0      1      2      4 ');
    expect(lines[16]).toBe('');
    expect(lines[17]).toBe(`Number of blocks type  ${MIGRATETYPE_NAMES.map((n) => `${n.padStart(12)} `).join('')}`);
    expect(lines[18]).toBe('Node 0, zone   Normal            1           22            0            0            8            0 ');
    expect(lines[19]).toBe('Node 0, zone  Movable            0           32            0            0            0            0 ');
    expect(lines.slice(20)).toEqual(['']);
  });

  it('formatPagetypeinfo: a free list counted to 100000 prints ">100000"; each node its own table', () => {
    const info = pagetypeinfo(holed());
    info.zones[0].free.Movable[0] = 123456;
    info.zones[1] = { ...info.zones[1], node: 1 };
    const text = formatPagetypeinfo(info);
    expect(text).toContain('Node    0, zone   Normal, type      Movable >100000      0      1      2      4 \n');
    expect(text.split('Page block order: 2\n')).toHaveLength(3);
    expect(text).toContain('\nNode 1, zone  Movable            0           32 ');
  });

  it('formatPagetypeinfo of a machine without zones prints nothing (no node has memory)', () => {
    expect(formatPagetypeinfo({ pageblockOrder: 9, pagesPerBlock: 512, zones: [] })).toBe('');
  });

  it('the pageblocks of an offline memory block are not counted (pfn_to_online_page)', () => {
    const k = createKernel('tiny', 'mainline');
    expect(driveThread(k, offlineBlock(k, 5))).toBe('0'); // [160, 192): 8 Movable pageblocks
    // (offline_pages leaves them ISOLATE: counted, they would show as 8 Isolate blocks)
    expect(pagetypeinfo(k).zones[1].blocks).toMatchObject({ Movable: 24, Isolate: 0 });
  });
});
