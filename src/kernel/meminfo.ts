/**
 * Views as the kernel shows them: /proc/meminfo (fs/proc/meminfo.c, hugetlb_report_meminfo),
 * /proc/pagetypeinfo (mm/vmstat.c), sysfs nr_hugepages. Read without locks in the kernel; here a
 * view is taken between two atomic sections, which is what a lockless reader can see.
 */
import type { Kernel } from './machine.js';
import { MIGRATE_TYPES, MIGRATETYPE_NAMES, PG_valid } from './types.js';

const KB_PER_PAGE = 4;

export interface Meminfo {
  MemTotal: number;
  MemFree: number;
  CmaTotal: number;
  CmaFree: number;
  HugePages_Total: number;
  HugePages_Free: number;
  HugePages_Rsvd: number;
  HugePages_Surp: number;
  Hugepagesize: number;
  Hugetlb: number;
}

export function meminfo(k: Kernel): Meminfo {
  let total = 0;
  let free = 0;
  let cmaFree = 0;
  for (const z of k.zones) {
    total += z.managedPages;
    free += z.freePages;
    cmaFree += z.freeCma;
  }
  const cmaTotal = k.cfg.cma.reduce((s, a) => s + a.count, 0);
  const hs = k.hstateCounters();
  const d = hs[0];
  const defOrder = d?.order ?? k.cfg.hstates[0]?.order ?? 0;
  return {
    MemTotal: total * KB_PER_PAGE,
    MemFree: free * KB_PER_PAGE,
    CmaTotal: cmaTotal * KB_PER_PAGE,
    CmaFree: cmaFree * KB_PER_PAGE,
    HugePages_Total: d?.nr ?? 0,
    HugePages_Free: d?.free ?? 0,
    HugePages_Rsvd: d?.resv ?? 0,
    HugePages_Surp: d?.surplus ?? 0,
    Hugepagesize: (1 << defOrder) * KB_PER_PAGE,
    Hugetlb: hs.reduce((s, h) => s + h.nr * (2 ** h.order) * KB_PER_PAGE, 0),
  };
}

export interface PagetypeZone {
  node: number;
  zone: string;
  /** free blocks per order, per migratetype name */
  free: Record<string, number[]>;
  /** pageblocks per migratetype name */
  blocks: Record<string, number>;
}
export interface Pagetypeinfo {
  pageblockOrder: number;
  pagesPerBlock: number;
  zones: PagetypeZone[];
}

export function pagetypeinfo(k: Kernel): Pagetypeinfo {
  const zones: PagetypeZone[] = [];
  const pbPages = 1 << k.pageblockOrder;
  for (const z of k.zones) {
    const free: Record<string, number[]> = {};
    for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
      const row: number[] = [];
      for (let o = 0; o <= k.maxOrder; o++) row.push(k.mm.listLen[z.freeList(o, mt)]);
      free[MIGRATETYPE_NAMES[mt]] = row;
    }
    const blocks: Record<string, number> = {};
    for (const n of MIGRATETYPE_NAMES) blocks[n] = 0;
    for (let p = z.start; p < z.end; p += pbPages) {
      // pagetypeinfo_showblockitmixed counts blocks with a valid (online) first page
      if (!firstValid(k, p, pbPages)) continue;
      blocks[MIGRATETYPE_NAMES[k.pb.get(p)]]++;
    }
    zones.push({ node: z.node, zone: z.name, free, blocks });
  }
  return { pageblockOrder: k.pageblockOrder, pagesPerBlock: pbPages, zones };
}

function firstValid(k: Kernel, start: number, n: number): boolean {
  for (let p = start; p < start + n; p++) if (k.mm.flags[p] & PG_valid) return true;
  return false;
}

/** The free-block counts of pagetypeinfo as text, as /proc/pagetypeinfo prints them. */
export function formatPagetypeinfo(info: Pagetypeinfo): string {
  const lines = [`Page block order: ${info.pageblockOrder}`, `Pages per block:  ${info.pagesPerBlock}`, ''];
  for (const z of info.zones) {
    for (const [mt, row] of Object.entries(z.free)) {
      lines.push(`Node ${z.node}, zone ${z.zone.padStart(8)}, type ${mt.padStart(11)} ${row.map((n) => String(n).padStart(6)).join(' ')}`);
    }
  }
  lines.push('');
  lines.push(`Number of blocks type ${Object.keys(info.zones[0]?.blocks ?? {}).map((n) => n.padStart(11)).join(' ')}`);
  for (const z of info.zones) {
    lines.push(`Node ${z.node}, zone ${z.zone.padStart(8)} ${Object.values(z.blocks).map((n) => String(n).padStart(11)).join(' ')}`);
  }
  return lines.join('\n');
}

export function formatMeminfo(m: Meminfo): string {
  return Object.entries(m)
    .map(([key, v]) => (key.startsWith('HugePages_') ? `${(key + ':').padEnd(16)}${String(v).padStart(8)}` : `${(key + ':').padEnd(16)}${String(v).padStart(8)} kB`))
    .join('\n');
}
