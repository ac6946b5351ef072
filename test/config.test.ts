/**
 * Machine geometry (src/kernel/config.ts): the named machines keep the relations the checks rely on,
 * and every impossible geometry is refused with the one-line error that names the problem.
 */
import { describe, expect, it } from 'vitest';
import { CONFIGS, describeConfig, resolveConfig, type MachineConfig } from '../src/kernel/config.js';

const MiB = 256;
const GiB = 1024 * MiB;
const pages = (c: MachineConfig) => c.nodes.flatMap((n) => n.zones).reduce((s, z) => s + z.endPfn - z.startPfn, 0);
const zones = (c: MachineConfig) => c.nodes.map((n) => n.zones.map((z) => `${n.id}:${z.name}[${z.startPfn},${z.endPfn})`).join(' ')).join(' ');

describe('named machines', () => {
  it('tiny: x86-64 relations at a small scale (pageblock 2, max order 4, huge 2, gigantic 5)', () => {
    const c = resolveConfig('tiny');
    expect([c.pageblockOrder, c.maxOrder, c.hstates.map((h) => `${h.name}=${h.order}`)]).toEqual([2, 4, ['2M=2', '1G=5']]);
    expect(zones(c)).toBe('0:Normal[0,128) 0:Movable[128,256)');
    expect([c.reserved, c.bootUnmovable]).toEqual([[{ startPfn: 0, endPfn: 4 }], [{ startPfn: 4, endPfn: 8 }]]);
    expect(c.cma).toEqual([{ name: 'reserved', basePfn: 64, count: 32, orderPerBit: 0 }]);
    expect([c.memoryBlockPages, c.cpus, c.pcpBatch, c.pcpHigh, c.virtioMem]).toEqual([32, 2, 2, 4, { startPfn: 192, endPfn: 256 }]);
    expect(resolveConfig('tiny-holes').holes).toEqual([{ startPfn: 100, endPfn: 102 }]);
    expect(resolveConfig('tiny-hugetlb-cma').cma[1]).toEqual({ name: 'hugetlb0', basePfn: 96, count: 32, orderPerBit: 2, hugetlbNode: 0 });
  });

  it('small: real x86-64 orders, 64 MiB, a CMA area and a virtio-mem region', () => {
    const c = resolveConfig('small');
    expect([c.pageblockOrder, c.maxOrder, c.hstates.map((h) => h.order), pages(c)]).toEqual([9, 10, [9, 18], 64 * MiB]);
    expect(zones(c)).toBe(`0:Normal[0,${48 * MiB}) 0:Movable[${48 * MiB},${64 * MiB})`);
    expect([c.reserved[0].endPfn, c.bootUnmovable[0].endPfn, c.cma[0].basePfn, c.cma[0].count]).toEqual([2 * MiB, 6 * MiB, 32 * MiB, 8 * MiB]);
    expect([c.memoryBlockPages, c.pcpBatch, c.pcpHigh, c.virtioMem]).toEqual([16 * MiB, 31, 186, { startPfn: 48 * MiB, endPfn: 64 * MiB }]);
  });

  it('vm-5g: seed 001\'s VM, 4 GiB ZONE_NORMAL + 1 GiB virtio-mem in ZONE_MOVABLE', () => {
    const c = resolveConfig('vm-5g');
    expect(zones(c)).toBe(`0:Normal[0,${4 * GiB}) 0:Movable[${4 * GiB},${5 * GiB})`);
    expect(c.holes).toEqual([{ startPfn: 0xa0, endPfn: 0x100 }]);
    expect(c.reserved.map((r) => r.endPfn)).toEqual([0xa0, 177 * MiB]);
    expect(c.bootUnmovable).toEqual([{ startPfn: 177 * MiB, endPfn: 854 * MiB }]);
    expect([c.memoryBlockPages, c.pcpBatch, c.pcpHigh, c.cma.length, c.virtioMem]).toEqual([128 * MiB, 63, 378, 0, { startPfn: 4 * GiB, endPfn: 5 * GiB }]);
  });

  it('big-64g: two nodes, 64 GiB, for the boot benchmark', () => {
    const c = resolveConfig('big-64g');
    expect(zones(c)).toBe(`0:Normal[0,${32 * GiB}) 1:Normal[${32 * GiB},${48 * GiB}) 1:Movable[${48 * GiB},${64 * GiB})`);
    expect([pages(c), c.reserved, c.bootUnmovable, c.cma, c.holes, c.memoryBlockPages, c.virtioMem]).toEqual([64 * GiB, [{ startPfn: 0, endPfn: 256 * MiB }], [], [], [], 128 * MiB, undefined]);
  });

  it('every named machine validates, and describeConfig shows its geometry', () => {
    for (const [name, c] of Object.entries(CONFIGS)) {
      expect(c.name).toBe(name);
      expect(resolveConfig({ ...c })).toEqual(c);
    }
    expect(describeConfig(resolveConfig('tiny-hugetlb-cma'))).toEqual({
      name: 'tiny-hugetlb-cma', maxOrder: 4, pageblockOrder: 2,
      nodes: [{ id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 128 }, { name: 'Movable', startPfn: 128, endPfn: 256 }] }],
      holes: [], hstates: [{ name: '2M', order: 2 }, { name: '1G', order: 5 }],
      cma: [{ name: 'reserved', basePfn: 64, count: 32, orderPerBit: 0 }, { name: 'hugetlb0', basePfn: 96, count: 32, orderPerBit: 2 }],
      memoryBlockPages: 32, cpus: 2, virtioMem: { startPfn: 192, endPfn: 256 },
    });
    expect(describeConfig(resolveConfig('big-64g')).virtioMem).toBeNull();
  });
});

describe('inline configs', () => {
  const minimal = { maxOrder: 4, pageblockOrder: 2, memoryBlockPages: 32, nodes: [{ id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 64 }] }] };

  it('defaults: name inline, 2 cpus, pcp batch 2 / high 4, no holes, reservations, hstates or CMA', () => {
    const c = resolveConfig(minimal);
    expect([c.name, c.cpus, c.pcpBatch, c.pcpHigh]).toEqual(['inline', 2, 2, 4]);
    expect([c.holes, c.reserved, c.bootUnmovable, c.hstates, c.cma]).toEqual([[], [], [], [], []]);
    expect(resolveConfig({ base: 'tiny', name: 'mine', cpus: 4 })).toMatchObject({ name: 'mine', cpus: 4, maxOrder: 4, memoryBlockPages: 32 });
  });

  it('the limits themselves are accepted', () => {
    expect(() => resolveConfig({ ...minimal, maxOrder: 20, pageblockOrder: 20, memoryBlockPages: 1 << 20, nodes: [{ id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 1 << 20 }] }] })).not.toThrow();
    expect(() => resolveConfig({ ...minimal, maxOrder: 1, pageblockOrder: 1, memoryBlockPages: 2 })).not.toThrow();
    expect(() => resolveConfig({ ...minimal, memoryBlockPages: 4, cpus: 64, pcpBatch: 1, pcpHigh: 1 })).not.toThrow();
    const eight = Array.from({ length: 8 }, (_, i) => ({ id: i, zones: [{ name: 'Normal', startPfn: i * 32, endPfn: i * 32 + 32 }] }));
    expect(() => resolveConfig({ ...minimal, nodes: eight })).not.toThrow();
    expect(() => resolveConfig({ ...minimal, nodes: [{ id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 1 << 26 }] }] })).not.toThrow();
    expect(() => resolveConfig({ ...minimal, hstates: [{ name: 'x', order: 20 }, { name: 'y', order: 1 }] })).not.toThrow();
    expect(() => resolveConfig({ ...minimal, cma: [{ name: 'c', basePfn: 0, count: 64, orderPerBit: 4 + 10 - 8 }] })).not.toThrow();
    expect(() => resolveConfig({ ...minimal, virtioMem: { startPfn: 32, endPfn: 64 } })).not.toThrow();
  });

  const z = (name: string, startPfn: number, endPfn: number) => ({ name, startPfn, endPfn });
  const bad: [string, Record<string, unknown>, string][] = [
    ['maxOrder 0', { maxOrder: 0 }, 'maxOrder must be an integer in 1..20'],
    ['maxOrder 21', { maxOrder: 21 }, 'maxOrder must be an integer in 1..20'],
    ['maxOrder 2.5', { maxOrder: 2.5 }, 'maxOrder must be an integer in 1..20'],
    ['pageblockOrder 0', { pageblockOrder: 0 }, 'pageblockOrder must be in 1..maxOrder'],
    ['pageblockOrder > maxOrder', { pageblockOrder: 5 }, 'pageblockOrder must be in 1..maxOrder'],
    ['no nodes', { nodes: [] }, 'nodes must be a list of 1..8 nodes'],
    ['nodes not a list', { nodes: {} }, 'nodes must be a list of 1..8 nodes'],
    ['nine nodes', { nodes: Array.from({ length: 9 }, (_, i) => ({ id: i, zones: [z('Normal', i * 32, i * 32 + 32)] })) }, 'nodes must be a list of 1..8 nodes'],
    ['memory block not a power of two', { memoryBlockPages: 48 }, 'memoryBlockPages must be a power of two >= a pageblock'],
    ['memory block below a pageblock', { memoryBlockPages: 2 }, 'memoryBlockPages must be a power of two >= a pageblock'],
    ['0 cpus', { cpus: 0 }, 'cpus must be in 1..64'],
    ['65 cpus', { cpus: 65 }, 'cpus must be in 1..64'],
    ['pcp batch 0', { pcpBatch: 0 }, 'pcpHigh must be >= pcpBatch >= 1'],
    ['pcp high below batch', { pcpBatch: 4, pcpHigh: 3 }, 'pcpHigh must be >= pcpBatch >= 1'],
    ['duplicate node id', { nodes: [{ id: 0, zones: [z('Normal', 0, 32)] }, { id: 0, zones: [z('Normal', 32, 64)] }] }, 'node ids must be distinct integers'],
    ['node without zones', { nodes: [{ id: 3, zones: [] }] }, 'node 3 has no zones'],
    ['zone name', { nodes: [{ id: 0, zones: [z('DMA32', 0, 64)] }] }, 'node 0: zone name must be Normal or Movable'],
    ['empty zone', { nodes: [{ id: 0, zones: [z('Normal', 64, 64)] }] }, 'node 0 zone Normal needs integer startPfn < endPfn'],
    ['negative zone start', { nodes: [{ id: 0, zones: [z('Normal', -4, 64)] }] }, 'node 0 zone Normal needs integer startPfn < endPfn'],
    ['unaligned zone start', { nodes: [{ id: 0, zones: [z('Normal', 2, 64)] }] }, 'node 0 zone Normal must be pageblock aligned (4 pages)'],
    ['unaligned zone end', { nodes: [{ id: 0, zones: [z('Normal', 0, 62)] }] }, 'node 0 zone Normal must be pageblock aligned (4 pages)'],
    ['overlapping zones', { nodes: [{ id: 0, zones: [z('Movable', 32, 96), z('Normal', 0, 64)] }] }, 'zones overlap'],
    ['over 256 GiB', { nodes: [{ id: 0, zones: [z('Normal', 0, (1 << 26) + 4)] }] }, 'memory larger than 256 GiB is not supported'],
    ['holes not a list', { holes: 3 }, 'holes must be a list'],
    ['hole outside the zones', { holes: [{ startPfn: 60, endPfn: 68 }] }, 'hole [60, 68) is not inside one zone'],
    ['inverted reserved range', { reserved: [{ startPfn: 8, endPfn: 4 }] }, 'reserved range needs integer startPfn < endPfn'],
    ['boot range outside', { bootUnmovable: [{ startPfn: 64, endPfn: 70 }] }, 'bootUnmovable range [64, 70) is not inside one zone'],
    ['duplicate hstate', { hstates: [{ name: '2M', order: 2 }, { name: '2M', order: 3 }] }, 'hstate names must be distinct strings'],
    ['hstate order 0', { hstates: [{ name: '2M', order: 0 }] }, 'hstate 2M: order must be in 1..20'],
    ['hstate order 21', { hstates: [{ name: '2M', order: 21 }] }, 'hstate 2M: order must be in 1..20'],
    ['unnamed CMA area', { cma: [{ basePfn: 0, count: 8, orderPerBit: 0 }] }, 'CMA area needs a name'],
    ['empty CMA area', { cma: [{ name: 'c', basePfn: 8, count: 0, orderPerBit: 0 }] }, 'CMA area c needs integer startPfn < endPfn'],
    ['CMA orderPerBit too large', { cma: [{ name: 'c', basePfn: 0, count: 64, orderPerBit: 15 }] }, 'CMA area c: bad orderPerBit'],
    ['CMA count vs orderPerBit', { cma: [{ name: 'c', basePfn: 0, count: 12, orderPerBit: 3 }] }, 'CMA area c: count must be a multiple of 2^orderPerBit'],
    ['CMA area outside the zones', { cma: [{ name: 'c', basePfn: 60, count: 8, orderPerBit: 0 }] }, 'CMA area c must lie in one zone'],
    ['unaligned CMA area', { cma: [{ name: 'c', basePfn: 2, count: 8, orderPerBit: 0 }] }, 'CMA area c must be pageblock aligned (4 pages)'],
    ['unaligned CMA count', { cma: [{ name: 'c', basePfn: 0, count: 6, orderPerBit: 0 }] }, 'CMA area c must be pageblock aligned (4 pages)'],
    ['empty virtio-mem region', { virtioMem: { startPfn: 32, endPfn: 32 } }, 'virtioMem needs integer startPfn < endPfn'],
    ['virtio-mem outside the zones', { virtioMem: { startPfn: 32, endPfn: 96 } }, 'virtioMem region must lie in one zone'],
    ['unaligned virtio-mem start', { virtioMem: { startPfn: 16, endPfn: 64 } }, 'virtioMem region must be memory-block aligned'],
    ['unaligned virtio-mem end', { virtioMem: { startPfn: 0, endPfn: 48 } }, 'virtioMem region must be memory-block aligned'],
  ];
  for (const [what, change, msg] of bad) {
    it(`refuses: ${what}`, () => {
      expect(() => resolveConfig({ ...minimal, name: 'bad', ...change })).toThrow(`config 'bad': ${msg}`);
    });
  }

  it('refuses what is not a config at all, and unknown names', () => {
    expect(() => resolveConfig(42)).toThrow('config must be a name or an object');
    expect(() => resolveConfig(null)).toThrow('config must be a name or an object');
    expect(() => resolveConfig('huge')).toThrow("unknown config 'huge' (known: tiny, tiny-holes, tiny-hugetlb-cma, small, vm-5g, big-64g)");
    expect(() => resolveConfig({ base: 'huge' })).toThrow("unknown config 'huge'");
  });
});
