import { stateless } from './property.js';
import type { Kernel } from '../src/kernel/machine.js';
import { PG_buddy, PG_hugetlb, PG_offline, PG_pcp, PG_tail, PG_valid } from '../src/kernel/types.js';

/**
 * Every valid pfn is in exactly one place: inside one free buddy block (on exactly one free list of
 * its own zone, naturally aligned, not crossing a hole or the zone end), on a pcp list, or held
 * (refcount, owner, compound tail, hugetlb, offline). Holes carry no state.
 */
export function checkConservation(k: Kernel): string | null {
  const { mm } = k;
  for (const z of k.zones) {
    for (let p = z.start; p < z.end;) {
      const f = mm.flags[p];
      if (!(f & PG_valid)) {
        if (f !== 0 || mm.onList[p] !== 0) return `hole pfn ${p} carries state (flags ${f})`;
        p++;
        continue;
      }
      if (f & PG_buddy) {
        const o = mm.order[p];
        const list = mm.onList[p] - 1;
        if (list < z.listBase || list >= z.pcpBase) return `free block at pfn ${p} (order ${o}) is not on a free list of its zone`;
        if (Math.floor((list - z.listBase) / 6) !== o) return `free block at pfn ${p} has order ${o} but sits on an order-${Math.floor((list - z.listBase) / 6)} list`;
        if (p & ((1 << o) - 1)) return `free block at pfn ${p} is not aligned to its order ${o}`;
        if (p + (1 << o) > z.end) return `free block at pfn ${p} (order ${o}) crosses the end of zone ${z.name}`;
        if (mm.refcount[p] !== 0 || mm.owner[p] !== 0) return `free block at pfn ${p} is also held (refcount ${mm.refcount[p]}, owner ${mm.owner[p]})`;
        for (let q = p + 1; q < p + (1 << o); q++) {
          if (mm.flags[q] !== PG_valid || mm.refcount[q] !== 0 || mm.owner[q] !== 0) {
            return mm.flags[q] & PG_valid
              ? `pfn ${q} is inside the free block at ${p} (order ${o}) but is also ${describe(k, q)}`
              : `free block at pfn ${p} (order ${o}) covers hole pfn ${q}`;
          }
        }
        p += 1 << o;
        continue;
      }
      if (f & PG_pcp) {
        const list = mm.onList[p] - 1;
        if (list < z.pcpBase || list >= z.pcpBase + k.cfg.cpus * 3) return `pcp page ${p} is not on a pcp list of its zone`;
        if (mm.refcount[p] !== 0 || mm.owner[p] !== 0) return `pcp page ${p} is also held`;
        p++;
        continue;
      }
      if (mm.onList[p] !== 0) return `pfn ${p} is on a list but neither free nor pcp`;
      if (mm.refcount[p] === 0 && mm.owner[p] === 0 && !(f & (PG_tail | PG_hugetlb | PG_offline))) {
        return `pfn ${p} is lost: not free, not on a pcp list, not held`;
      }
      p++;
    }
  }
  return null;
}

function describe(k: Kernel, p: number): string {
  const m = k.mm;
  return `flags ${m.flags[p]}, refcount ${m.refcount[p]}, owner ${m.owner[p]}`;
}

export default stateless(
  {
    name: 'page-conservation',
    statement: 'every valid pfn is in exactly one place: one free buddy block, a pcp list, or held; nothing both free and owned',
    kernelRef: 'mm/page_alloc.c __free_one_page, expand, del_page_from_free_list; kernel-spec §15.1',
    guards: 'double free, lost pages, free blocks crossing holes or zones, pages handed out while still on a list',
    when: 'step',
  },
  (k) => checkConservation(k),
);
