import type { Property } from './property.js';
import type { Kernel } from '../src/kernel/machine.js';
import { onOpFinished } from './op-tracking.js';
import { hugetlbOf } from './hugetlb-util.js';
import {
  PG_buddy, PG_hugetlb, PG_hugetlb_freed, PG_lru, PG_offline, PG_pcp, PG_pinned, PG_reserved, PG_tail, PG_valid,
} from '../src/kernel/types.js';
import { freeBlockHead } from '../models/abstraction.js';
import { offlineTargetNodes } from '../src/kernel/memory_hotplug.js';

/**
 * offline-completeness: offlining a memory block that holds only movable memory (free pages,
 * movable unpinned user pages, free or migratable huge pages) in ZONE_MOVABLE, with room for its
 * pages elsewhere, succeeds. This is what ZONE_MOVABLE promises memory hot-unplug (and virtio-mem
 * unplug of whole blocks) and what seed 001 is about: hugetlb pages in the block must be migrated
 * or dissolved, not make offline_pages fail.
 *
 * Judged when offline_pages ends with an error after running alone (no other thread had an op in
 * flight meanwhile: a concurrent allocation may legitimately steal the room or pin a page), with
 * the precondition evaluated on the block as it is after the failed attempt rolled back.
 * Cost: O(block) at that point.
 */
export function offlinePrecondition(k: Kernel, start: number, end: number, opts: { result?: string } = {}): string | null {
  const { mm } = k;
  let used = 0;
  const freeHuge = new Map<number, number>();
  let inUseHuge = 0;
  for (let p = start; p < end; p++) {
    const z = k.zoneOf(p);
    if (!z) return 'outside every zone';
    if (!z.isMovable()) return 'not in ZONE_MOVABLE';
    const f = mm.flags[p];
    if (!(f & PG_valid) || (f & PG_offline)) return 'holes or offline pages';
    if (f & (PG_buddy | PG_pcp)) continue;
    if (f & PG_tail) {
      const h = mm.next[p];
      if (!(mm.flags[h] & PG_hugetlb)) used++;
      continue;
    }
    if (f & PG_hugetlb) {
      if (!(f & PG_hugetlb_freed)) {
        used += 1 << mm.order[p];
        inUseHuge++;
      }
      else freeHuge.set(mm.order[p], (freeHuge.get(mm.order[p]) ?? 0) + 1);
      continue;
    }
    if (mm.refcount[p] === 0 && mm.owner[p] === 0 && freeBlockHead(k, p) >= 0) continue;
    if ((f & PG_reserved) || (f & PG_pinned) || !(f & PG_lru)) return `pfn ${p} is not movable`;
    used++;
  }
  // dissolve_free_huge_page refuses a free page the pool's reservations need (free - resv == 0):
  // offline then fails by design.
  for (const h of hugetlbOf(k)?.hstates ?? []) {
    const n = freeHuge.get(h.order) ?? 0;
    if (n > 0 && h.free - h.resv < n) return `free huge pages of ${h.name} in the block are reserved`;
  }
  // An in-use huge page needs a huge target (alloc_migration_target): free pages elsewhere are not
  // room for it unless some free block of its order exists; -ENOMEM is then the kernel's answer.
  // Dissolving a free one needs its vmemmap back first (HVO, v5.14+): both can fail with -ENOMEM.
  if ((inUseHuge > 0 || freeHuge.size > 0) && opts.result === '-ENOMEM') return 'huge pages need a target or vmemmap memory';
  // do_migrate_range's targets come from the other nodes when there are any (mtc.nmask), else
  // from the block's own node, whose free pages in the block itself are no room for its pages.
  const nid = k.zoneOf(start)!.node;
  const targets = offlineTargetNodes(k, nid);
  let room = 0;
  for (const z of k.zones) if (targets.includes(z.node)) room += z.freePages;
  if (targets.includes(nid)) for (let p = start; p < end; p++) if ((mm.flags[p] & PG_buddy)) room -= 1 << mm.order[p];
  if (room < used + (1 << k.pageblockOrder)) return `not enough free memory elsewhere (${room} pages for ${used})`;
  return null;
}

const offlineCompleteness: Property = {
  name: 'offline-completeness',
  statement: 'offline/unplug of movable-only memory with room elsewhere succeeds',
  kernelRef: 'mm/memory_hotplug.c offline_pages (do_migrate_range, dissolve_free_huge_pages), ZONE_MOVABLE semantics; seed 001; kernel-spec §12',
  guards: 'huge pages (free or in use) that make offline of ZONE_MOVABLE memory fail, isolation that refuses movable pages',
  when: 'step',
  wakes: { finished: true },
  stateless: true,
  create(k) {
    return onOpFinished((f, ops) => {
      if (f.op.op !== 'offline_pages' || f.result.result === '0' || f.result.result === '-EINVAL') return null;
      if (ops.overlapped(f.thread)) return null;
      // A pending fatal signal is the loop's documented way out (signal_after in programs).
      if (f.op.signal_after !== undefined && f.result.result === '-EINTR') return null;
      const start = (f.op.block as number) * k.cfg.memoryBlockPages;
      const why = offlinePrecondition(k, start, Math.min(k.nrPfns, start + k.cfg.memoryBlockPages), { result: f.result.result });
      if (why) return null;
      return `offline_pages of block ${f.op.block} [${start}, ${start + k.cfg.memoryBlockPages}) failed with ${f.result.result}, but it holds only movable memory and there is room elsewhere`;
    });
  },
};

export default offlineCompleteness;
