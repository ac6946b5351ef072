/**
 * Views as the kernel shows them: /proc/meminfo (fs/proc/meminfo.c, hugetlb_report_meminfo),
 * /proc/pagetypeinfo (mm/vmstat.c), sysfs nr_hugepages. Read without locks in the kernel; here a
 * view is taken between two atomic sections, which is what a lockless reader can see.
 */
import type { Kernel } from './machine.js';
import { pfnOnline } from './page_isolation.js';
import { MIGRATE_TYPES, MIGRATETYPE_NAMES } from './types.js';

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
      // pagetypeinfo_showblockcount_print: pfn_to_online_page() of the block's first pfn, which has
      // a memmap when any pfn of the block has one (a hole inside a section is PageReserved), and
      // none in an offline memory block
      if (!firstOnline(k, p, pbPages)) continue;
      blocks[MIGRATETYPE_NAMES[k.pb.get(p)]]++;
    }
    zones.push({ node: z.node, zone: z.name, free, blocks });
  }
  return { pageblockOrder: k.pageblockOrder, pagesPerBlock: pbPages, zones };
}

/** Some pfn of [start, start + n) has a memmap and is online (the pageblock lies in one memory block). */
function firstOnline(k: Kernel, start: number, n: number): boolean {
  for (let p = start; p < start + n; p++) if (pfnOnline(k, p)) return true;
  return false;
}

/**
 * /proc/pagetypeinfo as mm/vmstat.c (6.1) prints it: per node with memory, pagetypeinfo_show's
 * header, pagetypeinfo_showfree ("%-43s " header, "%6d " per order; "Node %4d, zone %8s, type %12s "
 * and "%6lu " per order, a list counted no further than 100000: ">100000") and
 * pagetypeinfo_showblockcount ("\n%-23s" header, "%12s " per type; "Node %d, zone %8s " and
 * "%12lu " per type). Trailing spaces are the kernel's. (No PAGE_OWNER: no mixed-block table.)
 */
export function formatPagetypeinfo(info: Pagetypeinfo): string {
  const out: string[] = [];
  for (const node of [...new Set(info.zones.map((z) => z.node))]) {
    const zones = info.zones.filter((z) => z.node === node);
    const types = Object.keys(zones[0].free);
    out.push(`Page block order: ${info.pageblockOrder}\n`, `Pages per block:  ${info.pagesPerBlock}\n`, '\n');
    out.push(`${'Free pages count per migrate type at order'.padEnd(43)} ${zones[0].free[types[0]].map((_, o) => `${String(o).padStart(6)} `).join('')}\n`);
    for (const z of zones) {
      for (const t of types) {
        const counts = z.free[t].map((n) => `${n >= FREECOUNT_CAP ? '>' : ''}${String(Math.min(n, FREECOUNT_CAP)).padStart(6)} `).join('');
        out.push(`Node ${String(node).padStart(4)}, zone ${z.zone.padStart(8)}, type ${t.padStart(12)} ${counts}\n`);
      }
    }
    out.push(`\n${'Number of blocks type '.padEnd(23)}${Object.keys(zones[0].blocks).map((t) => `${t.padStart(12)} `).join('')}\n`);
    for (const z of zones) out.push(`Node ${node}, zone ${z.zone.padStart(8)} ${Object.values(z.blocks).map((n) => `${String(n).padStart(12)} `).join('')}\n`);
  }
  return out.join('');
}

/** pagetypeinfo_showfree_print stops counting a free list here (a hard-lockup guard) */
const FREECOUNT_CAP = 100000;

export function formatMeminfo(m: Meminfo): string {
  return Object.entries(m)
    .map(([key, v]) => (key.startsWith('HugePages_') ? `${(key + ':').padEnd(16)}${String(v).padStart(8)}` : `${(key + ':').padEnd(16)}${String(v).padStart(8)} kB`))
    .join('\n');
}
