import { stateless } from './property.js';
import type { Kernel } from '../src/kernel/machine.js';
import { hugetlbOf } from './hugetlb-util.js';
import { firstWithFlags } from './memmap-scan.js';
import { PG_buddy, PG_hugetlb, PG_hugetlb_freed, PG_head, PG_pcp } from '../src/kernel/types.js';

/**
 * HugePages_Total/Free/Rsvd/Surp match the pool's pages per node and hstate: nr = free-list pages
 * + in-use pages, free = free-list pages (each a PG_hugetlb head marked HPageFreed with refcount 0,
 * never in buddy), surplus <= nr, resv <= free, nothing negative; and every hugetlb head in the
 * memmap is accounted by exactly one pool.
 *
 * At quiescence only: the kernel updates counters and lists together under hugetlb_lock, but a page
 * being freed to buddy or restored (update_and_free_page, HVO) is counted out before its flags are
 * cleared, between sections (kernel-spec §17: meminfo may observe intermediate states).
 */
export function checkHugetlbCounters(k: Kernel): string | null {
  const hs = hugetlbOf(k);
  if (!hs) return null;
  const seen = new Set<number>();
  for (const h of hs.hstates) {
    let nr = 0;
    let free = 0;
    let surplus = 0;
    for (const n of h.nodes) {
      if (n.nr < 0 || n.free < 0 || n.surplus < 0) return `hstate ${h.name} node ${n.id}: negative counter (nr ${n.nr}, free ${n.free}, surplus ${n.surplus})`;
      let listed = 0;
      for (const p of n.freeList) {
        listed++;
        const f = k.mm.flags[p];
        if ((f & (PG_hugetlb | PG_hugetlb_freed | PG_head)) !== (PG_hugetlb | PG_hugetlb_freed | PG_head) || (f & (PG_buddy | PG_pcp))) return `hstate ${h.name}: free-list page ${p} is not a free hugetlb head (flags ${f})`;
        if (k.mm.refcount[p] !== 0) return `hstate ${h.name}: free-list page ${p} has refcount ${k.mm.refcount[p]}`;
        if (k.mm.order[p] !== h.order) return `hstate ${h.name}: free-list page ${p} has order ${k.mm.order[p]}`;
        seen.add(p);
      }
      if (listed !== n.free) return `hstate ${h.name} node ${n.id}: free_huge_pages_node = ${n.free} but its free list holds ${listed} pages`;
      nr += n.nr;
      free += n.free;
      surplus += n.surplus;
    }
    for (const p of h.inUse) {
      if (!(k.mm.flags[p] & PG_hugetlb)) return `hstate ${h.name}: in-use page ${p} is not a hugetlb page`;
      if (k.mm.flags[p] & PG_hugetlb_freed) return `hstate ${h.name}: in-use page ${p} is marked free`;
      seen.add(p);
    }
    if (h.nr < 0 || h.free < 0 || h.surplus < 0 || h.resv < 0) return `hstate ${h.name}: negative counter (Total ${h.nr}, Free ${h.free}, Rsvd ${h.resv}, Surp ${h.surplus})`;
    if (nr !== h.nr || free !== h.free || surplus !== h.surplus) return `hstate ${h.name}: global counters (Total ${h.nr}, Free ${h.free}, Surp ${h.surplus}) != sum over nodes (${nr}, ${free}, ${surplus})`;
    const pages = free + h.inUse.size;
    if (pages !== h.nr) return `hstate ${h.name}: HugePages_Total = ${h.nr} but the pool holds ${pages} pages (${free} free, ${h.inUse.size} in use)`;
    if (h.surplus > h.nr) return `hstate ${h.name}: HugePages_Surp ${h.surplus} > HugePages_Total ${h.nr}`;
    if (h.resv > h.free) return `hstate ${h.name}: HugePages_Rsvd ${h.resv} > HugePages_Free ${h.free}`;
  }
  // Every hugetlb head of the memmap belongs to a pool (no page both in buddy and in the pool,
  // none leaked out of the accounting).
  const HEAD = PG_hugetlb | PG_head;
  const n = k.nrPfns;
  for (let p = firstWithFlags(k.mm, 0, n, HEAD); p >= 0; p = firstWithFlags(k.mm, p + 1, n, HEAD)) {
    if (!seen.has(p)) return `hugetlb page at pfn ${p} is in no pool (neither on a free list nor in use)`;
  }
  return null;
}

export default stateless(
  {
    name: 'hugetlb-counters',
    statement: 'HugePages_Total/Free/Rsvd/Surp match the pool\'s pages per node and hstate, none negative, Rsvd <= Free, every hugetlb page in exactly one pool',
    kernelRef: 'mm/hugetlb.c enqueue_huge_page, remove_hugetlb_page, __prep_account_new_huge_page, hugetlb_acct_memory; kernel-spec §11.1, §15.12',
    guards: 'counter drift on dissolve / replacement / demote / surplus paths, pages leaked from or double-counted in the pool',
    when: 'quiescence',
    stateless: true,
  },
  (k) => checkHugetlbCounters(k),
);
