import type { Property } from './property.js';
import { dirtyTracker } from './dirty.js';
import type { Kernel } from '../src/kernel/machine.js';
import { NIL } from '../src/kernel/memmap.js';
import { MIGRATETYPE_NAMES, PG_buddy, isMergeable } from '../src/kernel/types.js';
import { listMigratetype } from '../src/kernel/page_alloc.js';

/**
 * No free buddy at or above pageblock_order spans pageblocks of different types unless both are
 * mergeable (UNMOVABLE/MOVABLE/RECLAIMABLE, which the kernel lets merge before v6.10). With
 * freelist hygiene (v6.10+) the promise is stronger: a free block sits on the list of its
 * pageblock's type, and every pageblock it spans has that type.
 */
export function checkNoCrossMerge(k: Kernel): string | null {
  const { mm } = k;
  const pbo = k.pageblockOrder;
  const hyg = k.sw.hygiene;
  for (const z of k.zones) {
    for (let o = 0; o <= k.maxOrder; o++) {
      if (!hyg && o <= pbo) continue;
      for (let mt = 0; mt < 6; mt++) {
        // (mm.listPfns' walk without a generator per list)
        for (let p = mm.listHead[z.freeList(o, mt)]; p !== NIL; p = mm.next[p]) {
          const m = checkNoCrossMergeAt(k, p);
          if (m) return m;
        }
      }
    }
  }
  return null;
}

/** The same rule for one free block head (what a step touched). */
export function checkNoCrossMergeAt(k: Kernel, p: number): string | null {
  const { mm } = k;
  if (!(mm.flags[p] & PG_buddy)) return null;
  const o = mm.order[p];
  const pbo = k.pageblockOrder;
  const hyg = k.sw.hygiene;
  if (!hyg && o <= pbo) return null;
  const first = k.pb.get(p);
  if (hyg && first !== listMigratetype(k, p)) {
    return `free order-${o} block at pfn ${p} is on the ${MIGRATETYPE_NAMES[listMigratetype(k, p)]} list but its pageblock is ${MIGRATETYPE_NAMES[first]}`;
  }
  for (let q = p + (1 << pbo); q < p + (1 << o); q += 1 << pbo) {
    const t = k.pb.get(q);
    if (t !== first && (hyg || !isMergeable(t) || !isMergeable(first))) {
      return `free order-${o} block at pfn ${p} spans a ${MIGRATETYPE_NAMES[first]} pageblock and a ${MIGRATETYPE_NAMES[t]} pageblock (pfn ${q})`;
    }
  }
  return null;
}

/**
 * When: with freelist hygiene (v6.10+) the kernel keeps the promise at the end of every zone->lock
 * section, so it is checked per step on the free blocks the step touched. Before v6.10 there is a
 * real window between isolating a pageblock and moving/splitting a buddy that straddles it
 * (start_isolate_page_range drops zone->lock between pageblocks), so only quiescence is sound.
 */
const noCrossMerge: Property = {
  name: 'no-cross-migratetype-merge',
  statement: 'no free buddy at >= pageblock_order spans pageblocks of different non-mergeable types; with freelist hygiene a free block sits on its pageblock\'s list',
  kernelRef: 'mm/page_alloc.c __free_one_page (1dd214b8f21c, v5.18), move_freepages_block_isolate (v6.10); seed 004',
  guards: 'CMA/ISOLATE pages leaking into MOVABLE/UNMOVABLE free lists through merges or partially isolated MAX_ORDER-1 blocks',
  when: 'step',
  wakes: { dirty: true, quiescent: true },
  stateless: true,
  create(k) {
    const tracker = dirtyTracker(k);
    return {
      check(ctx) {
        if (ctx.quiescent) return checkNoCrossMerge(k);
        if (!k.sw.hygiene) return null;
        const r = tracker.ranges(ctx.step);
        for (let i = 0; i < r.length; i += 2) {
          // (a head that starts the range before as well was just judged: pages freed one by one
          // make runs of operations on one head)
          if (i > 0 && r[i] === r[i - 2]) continue;
          const m = checkNoCrossMergeAt(k, r[i]);
          if (m) return m;
        }
        return null;
      },
    };
  },
};

export default noCrossMerge;
