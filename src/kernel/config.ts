/**
 * Machine geometry: nodes, zones, holes, memory blocks, MAX_ORDER, pageblock_order, hstates, CMA.
 * Geometry is configuration; everything is validated up front so that an impossible machine is a
 * one-line ConfigError (exit 2), never a crash half-way through boot.
 *
 * `maxOrder` is the largest buddy order, inclusive (MAX_PAGE_ORDER since v6.8; MAX_ORDER - 1
 * before v6.4). Sections are modelled at memory-block granularity.
 */
import { ConfigError } from './types.js';

export type ZoneName = 'Normal' | 'Movable';
export interface PfnRange { startPfn: number; endPfn: number }
export interface ZoneConfig extends PfnRange { name: ZoneName }
export interface NodeConfig { id: number; zones: ZoneConfig[] }
export interface HstateConfig { name: string; order: number }
export interface CmaConfig {
  name: string;
  basePfn: number;
  count: number;
  /** one bitmap bit per 2^orderPerBit pages */
  orderPerBit: number;
  /** a hugetlb_cma area of this node (gigantic pages are taken from it first) */
  hugetlbNode?: number;
}
export interface MachineConfig {
  name: string;
  maxOrder: number;
  pageblockOrder: number;
  nodes: NodeConfig[];
  /** pfns with no memmap inside a zone (pfn_valid() false) */
  holes: PfnRange[];
  /** PageReserved at boot (memblock allocations): not managed, never movable */
  reserved: PfnRange[];
  /** in-use unmovable pages the kernel allocated at boot (slab, page tables) */
  bootUnmovable: PfnRange[];
  hstates: HstateConfig[];
  cma: CmaConfig[];
  /** memory block (and section) size in pages: /sys/devices/system/memory/memoryN */
  memoryBlockPages: number;
  /** CPUs, each with its pcp lists */
  cpus: number;
  pcpBatch: number;
  pcpHigh: number;
  /** device-managed virtio-mem region (must lie in one zone) */
  virtioMem?: PfnRange;
}

const MiB = 256; // pages per MiB at 4 KiB pages
const GiB = 1024 * MiB;

function node(id: number, ...zones: ZoneConfig[]): NodeConfig {
  return { id, zones };
}

/** x86-64 relations at a small scale: pageblock 2, max order 4, huge order 2, gigantic 5. */
const tiny: MachineConfig = {
  name: 'tiny',
  maxOrder: 4,
  pageblockOrder: 2,
  nodes: [node(0, { name: 'Normal', startPfn: 0, endPfn: 128 }, { name: 'Movable', startPfn: 128, endPfn: 256 })],
  holes: [],
  reserved: [{ startPfn: 0, endPfn: 4 }],
  bootUnmovable: [{ startPfn: 4, endPfn: 8 }],
  hstates: [{ name: '2M', order: 2 }, { name: '1G', order: 5 }],
  cma: [{ name: 'reserved', basePfn: 64, count: 32, orderPerBit: 0 }],
  memoryBlockPages: 32,
  cpus: 2,
  pcpBatch: 2,
  pcpHigh: 4,
  virtioMem: { startPfn: 192, endPfn: 256 },
};

/** tiny with a hole inside a MAX_ORDER block (pfn_valid_within(), pre-5.14 configs). */
const tinyHoles: MachineConfig = {
  ...tiny,
  name: 'tiny-holes',
  holes: [{ startPfn: 100, endPfn: 102 }],
};

/**
 * tiny with a hugetlb_cma area on node 0 holding exactly one gigantic page (pfns 96..128, order per
 * bit = the 2M huge order, the smallest unit demote can release): for demote-with-CMA (seed 002).
 */
const tinyHugetlbCma: MachineConfig = {
  ...tiny,
  name: 'tiny-hugetlb-cma',
  cma: [...tiny.cma, { name: 'hugetlb0', basePfn: 96, count: 32, orderPerBit: 2, hugetlbNode: 0 }],
};

/** Fuzzing default: real x86-64 orders, 64 MiB, two zones, one CMA area. */
const small: MachineConfig = {
  name: 'small',
  maxOrder: 10,
  pageblockOrder: 9,
  nodes: [node(0, { name: 'Normal', startPfn: 0, endPfn: 48 * MiB }, { name: 'Movable', startPfn: 48 * MiB, endPfn: 64 * MiB })],
  holes: [],
  reserved: [{ startPfn: 0, endPfn: 2 * MiB }],
  bootUnmovable: [{ startPfn: 2 * MiB, endPfn: 6 * MiB }],
  hstates: [{ name: '2M', order: 9 }, { name: '1G', order: 18 }],
  cma: [{ name: 'reserved', basePfn: 32 * MiB, count: 8 * MiB, orderPerBit: 0 }],
  memoryBlockPages: 16 * MiB,
  cpus: 2,
  pcpBatch: 31,
  pcpHigh: 186,
  virtioMem: { startPfn: 48 * MiB, endPfn: 64 * MiB },
};

/**
 * The VM of seed 001: 4 GiB ZONE_NORMAL + 1 GiB virtio-mem memory onlined to ZONE_MOVABLE.
 * The kernel keeps ~177 MiB reserved and ~680 MiB of unmovable boot allocations, which puts
 * MemTotal at the seed's 5061512 kB and MemFree near its 3.3 GiB once 512 huge pages are allocated.
 */
const vm5g: MachineConfig = {
  name: 'vm-5g',
  maxOrder: 10,
  pageblockOrder: 9,
  nodes: [node(0, { name: 'Normal', startPfn: 0, endPfn: 4 * GiB }, { name: 'Movable', startPfn: 4 * GiB, endPfn: 5 * GiB })],
  holes: [{ startPfn: 0xa0, endPfn: 0x100 }],
  reserved: [{ startPfn: 0, endPfn: 0xa0 }, { startPfn: 0x100, endPfn: 177 * MiB }],
  bootUnmovable: [{ startPfn: 177 * MiB, endPfn: 854 * MiB }],
  hstates: [{ name: '2M', order: 9 }, { name: '1G', order: 18 }],
  cma: [],
  memoryBlockPages: 128 * MiB,
  cpus: 2,
  pcpBatch: 63,
  pcpHigh: 378,
  virtioMem: { startPfn: 4 * GiB, endPfn: 5 * GiB },
};

/** A 64 GiB two-node machine: must still boot fast (bench/). */
const big64g: MachineConfig = {
  name: 'big-64g',
  maxOrder: 10,
  pageblockOrder: 9,
  nodes: [
    node(0, { name: 'Normal', startPfn: 0, endPfn: 32 * GiB }),
    node(1, { name: 'Normal', startPfn: 32 * GiB, endPfn: 48 * GiB }, { name: 'Movable', startPfn: 48 * GiB, endPfn: 64 * GiB }),
  ],
  holes: [],
  reserved: [{ startPfn: 0, endPfn: 256 * MiB }],
  bootUnmovable: [],
  hstates: [{ name: '2M', order: 9 }, { name: '1G', order: 18 }],
  cma: [],
  memoryBlockPages: 128 * MiB,
  cpus: 2,
  pcpBatch: 63,
  pcpHigh: 378,
};

export const CONFIGS: Record<string, MachineConfig> = {
  tiny,
  'tiny-holes': tinyHoles,
  'tiny-hugetlb-cma': tinyHugetlbCma,
  small,
  'vm-5g': vm5g,
  'big-64g': big64g,
};

export function getConfig(name: string): MachineConfig {
  const c = CONFIGS[name];
  if (!c) throw new ConfigError(`unknown config '${name}' (known: ${Object.keys(CONFIGS).join(', ')})`);
  return c;
}

function isInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= 0;
}

function need(cond: boolean, what: string, name: string): void {
  if (!cond) throw new ConfigError(`config '${name}': ${what}`);
}

function checkRange(r: PfnRange | undefined, what: string, name: string): void {
  need(!!r && isInt(r.startPfn) && isInt(r.endPfn) && r.startPfn < r.endPfn, `${what} needs integer startPfn < endPfn`, name);
}

/** Accepts a named config or an inline object; returns a validated MachineConfig. */
export function resolveConfig(spec: unknown): MachineConfig {
  if (typeof spec === 'string') return getConfig(spec);
  if (!spec || typeof spec !== 'object') throw new ConfigError('config must be a name or an object');
  const base = (spec as { base?: string }).base ? getConfig((spec as { base: string }).base) : undefined;
  const c = { ...(base ?? {}), ...(spec as object) } as MachineConfig;
  c.name ??= 'inline';
  c.holes ??= [];
  c.reserved ??= [];
  c.bootUnmovable ??= [];
  c.hstates ??= [];
  c.cma ??= [];
  c.cpus ??= 2;
  c.pcpBatch ??= 2;
  c.pcpHigh ??= 4;
  validateConfig(c);
  return c;
}

/** Every check that makes a geometry impossible; one line names the problem. */
export function validateConfig(c: MachineConfig): void {
  const n = c.name;
  need(isInt(c.maxOrder) && c.maxOrder >= 1 && c.maxOrder <= 20, 'maxOrder must be an integer in 1..20', n);
  need(isInt(c.pageblockOrder) && c.pageblockOrder >= 1 && c.pageblockOrder <= c.maxOrder, 'pageblockOrder must be in 1..maxOrder', n);
  need(Array.isArray(c.nodes) && c.nodes.length > 0 && c.nodes.length <= 8, 'nodes must be a list of 1..8 nodes', n);
  need(isInt(c.memoryBlockPages) && (c.memoryBlockPages & (c.memoryBlockPages - 1)) === 0
    && c.memoryBlockPages >= 1 << c.pageblockOrder, 'memoryBlockPages must be a power of two >= a pageblock', n);
  need(isInt(c.cpus) && c.cpus >= 1 && c.cpus <= 64, 'cpus must be in 1..64', n);
  need(isInt(c.pcpBatch) && c.pcpBatch >= 1 && isInt(c.pcpHigh) && c.pcpHigh >= c.pcpBatch, 'pcpHigh must be >= pcpBatch >= 1', n);
  const pb = 1 << c.pageblockOrder;
  const zones: ZoneConfig[] = [];
  const ids = new Set<number>();
  for (const nd of c.nodes) {
    need(isInt(nd.id) && !ids.has(nd.id), 'node ids must be distinct integers', n);
    ids.add(nd.id);
    need(Array.isArray(nd.zones) && nd.zones.length > 0, `node ${nd.id} has no zones`, n);
    for (const z of nd.zones) {
      need(z.name === 'Normal' || z.name === 'Movable', `node ${nd.id}: zone name must be Normal or Movable`, n);
      checkRange(z, `node ${nd.id} zone ${z.name}`, n);
      need(z.startPfn % pb === 0 && z.endPfn % pb === 0, `node ${nd.id} zone ${z.name} must be pageblock aligned (${pb} pages)`, n);
      zones.push(z);
    }
  }
  zones.sort((a, b) => a.startPfn - b.startPfn);
  for (let i = 1; i < zones.length; i++) need(zones[i].startPfn >= zones[i - 1].endPfn, 'zones overlap', n);
  const end = zones[zones.length - 1].endPfn;
  need(end <= 1 << 26, 'memory larger than 256 GiB is not supported', n);
  const inZone = (r: PfnRange) => zones.some((z) => r.startPfn >= z.startPfn && r.endPfn <= z.endPfn);
  for (const [what, list] of [['hole', c.holes], ['reserved range', c.reserved], ['bootUnmovable range', c.bootUnmovable]] as const) {
    need(Array.isArray(list), `${what}s must be a list`, n);
    for (const r of list) {
      checkRange(r, what, n);
      need(inZone(r), `${what} [${r.startPfn}, ${r.endPfn}) is not inside one zone`, n);
    }
  }
  const names = new Set<string>();
  for (const h of c.hstates) {
    need(typeof h.name === 'string' && !names.has(h.name), 'hstate names must be distinct strings', n);
    names.add(h.name);
    need(isInt(h.order) && h.order >= 1 && h.order <= 20, `hstate ${h.name}: order must be in 1..20`, n);
  }
  for (const a of c.cma) {
    need(typeof a.name === 'string', 'CMA area needs a name', n);
    checkRange({ startPfn: a.basePfn, endPfn: a.basePfn + a.count }, `CMA area ${a.name}`, n);
    need(isInt(a.orderPerBit) && a.orderPerBit <= c.maxOrder + 10, `CMA area ${a.name}: bad orderPerBit`, n);
    need(a.count % (1 << a.orderPerBit) === 0, `CMA area ${a.name}: count must be a multiple of 2^orderPerBit`, n);
    need(inZone({ startPfn: a.basePfn, endPfn: a.basePfn + a.count }), `CMA area ${a.name} must lie in one zone`, n);
    need(a.basePfn % pb === 0 && a.count % pb === 0, `CMA area ${a.name} must be pageblock aligned (${pb} pages)`, n);
  }
  if (c.virtioMem) {
    checkRange(c.virtioMem, 'virtioMem', n);
    need(inZone(c.virtioMem), 'virtioMem region must lie in one zone', n);
    need(c.virtioMem.startPfn % c.memoryBlockPages === 0 && c.virtioMem.endPfn % c.memoryBlockPages === 0,
      'virtioMem region must be memory-block aligned', n);
  }
}

/** The `mmcheck configs --json` geometry of one config. */
export function describeConfig(c: MachineConfig) {
  return {
    name: c.name,
    maxOrder: c.maxOrder,
    pageblockOrder: c.pageblockOrder,
    nodes: c.nodes.map((nd) => ({ id: nd.id, zones: nd.zones.map((z) => ({ name: z.name, startPfn: z.startPfn, endPfn: z.endPfn })) })),
    holes: c.holes,
    hstates: c.hstates.map((h) => ({ name: h.name, order: h.order })),
    cma: c.cma.map((a) => ({ name: a.name, basePfn: a.basePfn, count: a.count, orderPerBit: a.orderPerBit })),
    memoryBlockPages: c.memoryBlockPages,
    cpus: c.cpus,
    virtioMem: c.virtioMem ?? null,
  };
}
