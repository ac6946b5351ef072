/**
 * The abstraction function: simulator state of one pfn -> the abstract page state of
 * models/page-model.ts. Cheap (O(MAX_ORDER) for a pfn inside a free block, O(1) otherwise), so the
 * refinement check can run it on the pfns a step touched.
 *
 * `prev` (the pfn's previous abstract state) is used for one thing only: a free page whose last
 * non-free state was a huge page is `dissolved` (dissolve_free_huge_page / update_and_free_page
 * handed it back to buddy) until something takes it again. The model needs that history to tell
 * "a huge page was dissolved" from "a free page stayed free".
 */
import type { Kernel } from '../src/kernel/machine.js';
import {
  MIGRATE_ISOLATE, MIGRATE_TYPES, PG_buddy, PG_hugetlb, PG_hugetlb_freed, PG_isolated, PG_lru, PG_movable_ops, PG_offline, PG_pcp, PG_pinned,
  PG_reserved, PG_tail, PG_valid,
} from '../src/kernel/types.js';
import { STATE_INDEX, type PageState } from './page-model.js';

export const A = STATE_INDEX;
/** "no state yet" (before the first abstraction of a pfn) */
export const A_NONE = 255;

/** The head of the free buddy block covering pfn, or -1. */
const BUDDY = PG_buddy;
const MOVABLE = PG_lru | PG_isolated | PG_movable_ops;
export function freeBlockHead(k: Kernel, pfn: number): number {
  const { flags, order } = k.mm;
  if (flags[pfn] & BUDDY) return pfn;
  const max = k.cfg.maxOrder;
  for (let o = 1; o <= max; o++) {
    const h = pfn & ~((1 << o) - 1);
    if ((flags[h] & BUDDY) && order[h] >= o) return h;
  }
  return -1;
}

/** Abstract state of a held page (refcount or owner or compound tail): by its head's allocation. */
function heldState(k: Kernel, head: number): number {
  const { flags, owner } = k.mm;
  const f = flags[head];
  if (f & PG_offline) return A.offline;
  if (f & PG_hugetlb) return f & PG_hugetlb_freed ? A['huge-free'] : A['huge-in-use'];
  const h = owner[head];
  const al = h ? k.allocs.get(h) : undefined;
  if (al) {
    // The vmemmap pages HVO restores for huge pages (hugetlb_vmemmap_restore).
    if (al.id === '@vmemmap') return A.vmemmap;
    switch (al.kind) {
      case 'contig': return A['contig-taken'];
      case 'cma': return A['cma-taken'];
      case 'virtio-mem': return A['contig-taken'];
      case 'hugetlb': return A['contig-taken'];
      default: break;
    }
    if (f & PG_pinned) return A.pinned;
    // Movable: on the LRU, or taken off it onto a migrate list (isolate_lru_page clears PG_lru),
    // or a non-LRU movable page (__PageMovable).
    if (f & MOVABLE) return A['allocated-movable'];
    return A['allocated-unmovable'];
  }
  if (f & PG_pinned) return A.pinned;
  if (f & PG_reserved) return A['allocated-unmovable'];
  if (f & MOVABLE) return A['allocated-movable'];
  // Held without an owner: taken off the free lists (__isolate_free_page, isolate_freepages_range)
  // and not yet handed to a caller; or an unowned kernel page with a reference.
  return A['contig-taken'];
}

export function abstractState(k: Kernel, pfn: number, prev: number): number {
  const { flags, onList, next } = k.mm;
  const f = flags[pfn];
  if (!(f & PG_valid)) return A.hole;
  if (f & PG_offline) return A.offline;
  if (f & PG_pcp) return A.pcp;
  if (f & PG_tail) return heldState(k, next[pfn]);
  const head = (f & PG_buddy) ? pfn : (k.mm.refcount[pfn] === 0 && k.mm.owner[pfn] === 0 && !(f & (PG_hugetlb | PG_reserved)) ? freeBlockHead(k, pfn) : -1);
  if (head >= 0) {
    const mt = (onList[head] - 1) % MIGRATE_TYPES;
    if (mt === MIGRATE_ISOLATE) return A.isolated;
    const wasHuge = prev === A['huge-free'] || prev === A['huge-in-use'] || prev === A.dissolved;
    return wasHuge ? A.dissolved : A.free;
  }
  return heldState(k, pfn);
}

export function stateName(i: number): PageState | 'none' {
  return i === A_NONE ? 'none' : (Object.keys(A) as PageState[]).find((s) => A[s] === i)!;
}
