import { stateless } from './property.js';
import type { Kernel } from '../src/kernel/machine.js';
import { NIL } from '../src/kernel/memmap.js';
import { MIGRATE_CMA, MIGRATE_ISOLATE, MIGRATE_TYPES, PG_buddy, PG_offline } from '../src/kernel/types.js';

/**
 * nr_free per order equals the list lengths; NR_FREE_PAGES equals the pages on non-ISOLATE lists;
 * NR_FREE_CMA_PAGES the pages on CMA lists; nr_isolate_pageblock the ISOLATE pageblocks of the zone.
 * Every list entry is a PageBuddy head of the list's order.
 */
/** Is pfn in a memory block that offline_pages took offline? */
export function offlineBlock(k: Kernel, pfn: number): boolean {
  const hp = k.ext.hotplug as { blocks?: Map<number, string> } | undefined;
  if (hp?.blocks) return hp.blocks.get(Math.floor(pfn / k.cfg.memoryBlockPages)) === 'offline';
  return (k.mm.flags[pfn] & PG_offline) !== 0 && k.mm.refcount[pfn] === 0;
}

export function checkFreelistCounters(k: Kernel): string | null {
  const { mm } = k;
  const pbPages = 1 << k.pageblockOrder;
  for (const z of k.zones) {
    let free = 0;
    let cma = 0;
    for (let o = 0; o <= k.maxOrder; o++) {
      let n = 0;
      for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
        const list = z.freeList(o, mt);
        let len = 0;
        // (mm.listPfns' walk without a generator per list: 132 lists per check on small)
        for (let p = mm.listHead[list]; p !== NIL; p = mm.next[p]) {
          if (!(mm.flags[p] & PG_buddy) || mm.order[p] !== o) return `free list (order ${o}, type ${mt}) of zone ${z.name} holds pfn ${p} which is not a free order-${o} block`;
          len++;
        }
        if (len !== mm.listLen[list]) return `free list (order ${o}, type ${mt}) length ${len} != recorded ${mm.listLen[list]}`;
        n += len;
        if (mt !== MIGRATE_ISOLATE) free += len << o;
        if (mt === MIGRATE_CMA) cma += len << o;
      }
      if (n !== z.nrFree[o]) return `zone ${z.name} nr_free[${o}] = ${z.nrFree[o]} but the lists hold ${n} blocks`;
    }
    if (free !== z.freePages) return `zone ${z.name} NR_FREE_PAGES = ${z.freePages} but the non-isolated free lists hold ${free} pages`;
    if (cma !== z.freeCma) return `zone ${z.name} NR_FREE_CMA_PAGES = ${z.freeCma} but the CMA free lists hold ${cma} pages`;
    // Online ranges only: offline_pages leaves its pageblocks ISOLATE and takes them out of
    // nr_isolate_pageblock (__offline_isolated_pages).
    let iso = 0;
    for (let p = z.start; p < z.end; p += pbPages) if (k.pb.get(p) === MIGRATE_ISOLATE && !offlineBlock(k, p)) iso++;
    if (iso !== z.nrIsolatePageblock) return `zone ${z.name} nr_isolate_pageblock = ${z.nrIsolatePageblock} but ${iso} pageblocks are ISOLATE`;
  }
  return null;
}

export default stateless(
  {
    name: 'freelist-counters',
    statement: 'nr_free, NR_FREE_PAGES, NR_FREE_CMA_PAGES and nr_isolate_pageblock match the free lists and pageblocks',
    kernelRef: 'mm/page_alloc.c __mod_zone_freepage_state / account_freepages (v6.10); kernel-spec §15.3, §15.5',
    guards: 'counter drift from moving pages between lists without accounting, merges across CMA and non-CMA blocks',
    when: 'quiescence',
    stateless: true,
  },
  (k) => checkFreelistCounters(k),
);
