/**
 * Ops of the page allocator: alloc_pages, free_pages, drain_all_pages.
 */
import {
  allocFromZonelist, clearPage, drainPagesZone, freePages, prepNewPage, zonelist,
} from '../../kernel/page_alloc.js';
import type { KGen } from '../../kernel/sched.js';
import type { Kernel } from '../../kernel/machine.js';
import { MIGRATE_MOVABLE, MIGRATETYPE_ARG, PG_hugetlb, PG_lru, PG_pinned } from '../../kernel/types.js';
import { defineOp, type OpResult } from './registry.js';

/** alloc_pages(): one zone->lock (or pcp) section. */
export function* allocPagesOp(k: Kernel, a: Record<string, any>): KGen<OpResult> {
  if (k.lookup(a.id)) return { result: '-EINVAL', reason: `id '${a.id}' is held` };
  const mt = MIGRATETYPE_ARG[a.migratetype];
  const pinned = !!a.pinned;
  const order: number = a.order;
  if (order > k.maxOrder) return { result: '-EINVAL' };
  const pfn = allocFromZonelist(k, zonelist(k, { order, migratetype: mt, pinned, node: a.node }), { order, migratetype: mt, pinned });
  if (pfn < 0) return { result: '-ENOMEM' };
  const al = k.newAllocation({ id: a.id, kind: 'pages', pfn, nrPages: 1 << order, order, migratetype: mt, pinned });
  // Movable user pages sit on the LRU (migratable); long-term pins make migration fail.
  const flags = (mt === MIGRATE_MOVABLE ? PG_lru : 0) | (pinned ? PG_pinned : 0);
  prepNewPage(k, pfn, order, al.handle, flags, k.nextToken++);
  return { result: '0', pfn, order };
}

/** put_page() of the last reference: back to the pcp lists or buddy. */
export function* freePagesOp(k: Kernel, a: Record<string, any>): KGen<OpResult> {
  const al = k.lookup(a.id);
  if (!al || al.kind !== 'pages') return { result: '-EINVAL', reason: `no pages held as '${a.id}'` };
  // The page may have been migrated meanwhile: the allocation follows its pfn.
  const pfn = al.pfn;
  if (k.mm.flags[pfn] & PG_hugetlb) return { result: '-EINVAL' };
  clearPage(k, pfn, al.order);
  k.dropAllocation(al.handle);
  freePages(k, pfn, al.order);
  return { result: '0', pfn, order: al.order };
}

/** drain_all_pages(NULL): every cpu's pcp lists of every zone, one zone->lock hold per cpu and zone. */
export function* drainAllPages(k: Kernel): KGen<void> {
  for (const z of k.zones) {
    for (let cpu = 0; cpu < k.cfg.cpus; cpu++) {
      drainPagesZone(k, z, cpu);
      yield 'drain_pages_zone';
    }
  }
}

defineOp({
  name: 'alloc_pages',
  summary: 'allocate 2^order pages of a migratetype (pinned: long-term pin, no CMA / ZONE_MOVABLE)',
  takes: true,
  fields: {
    id: { type: 'id' },
    order: { type: 'int', min: 0, max: 20 },
    migratetype: { type: 'migratetype' },
    pinned: { type: 'bool', optional: true },
    node: { type: 'int', optional: true },
  },
  run: allocPagesOp,
});

defineOp({
  name: 'free_pages',
  summary: 'free pages allocated by alloc_pages',
  fields: { id: { type: 'id' } },
  run: freePagesOp,
});

defineOp({
  name: 'drain_all_pages',
  summary: 'return every cpu\'s pcp pages to buddy',
  fields: {},
  *run(k) {
    yield* drainAllPages(k);
    return { result: '0' };
  },
});
