/**
 * Page migration as alloc_contig_range and memory offline use it (mm/migrate.c): migrate_pages
 * with alloc_migration_target, unmap_and_move for movable (LRU / __PageMovable) pages,
 * putback_movable_pages. hugetlb pages go through k.hooks.migrateHugePage /
 * k.hooks.putbackHugePage (hugetlb.ts: unmap_and_move_huge_page, putback_active_hugetlb).
 *
 * A page on a migrate list is a head pfn with PG_isolated set (isolate_lru_page cleared PG_lru).
 * The list is a plain array, as cc->migratepages is a list_head. If the owner frees the page while
 * it sits on our list (the kernel's isolation reference would keep it alive until we drop it;
 * here the free path clears the page), migration finds PG_isolated gone and counts it as done,
 * which is what the kernel does for a page whose last other reference vanished.
 *
 * Profile switches: none directly (the -ENOMEM bail-out of the caller is sw.contigErrnos). The
 * caller's migrate reason (MR_CONTIG_RANGE, MR_MEMORY_HOTPLUG) is passed down to the hugetlb target
 * allocation, where sw.hugetlbMigrateThisNode (v6.9) reads it.
 * Not modelled: reclaim_clean_pages_from_list, writeback/locked pages, MIGRATE_SYNC lock forcing.
 */
import type { Kernel } from './machine.js';
import type { KGen } from './sched.js';
import { allocFromZonelist, clearPage, freePages, prepNewPage, zonelistOf } from './page_alloc.js';
import {
  ENOMEM, MIGRATE_MOVABLE, PG_head, PG_hugetlb, PG_isolated, PG_lru, PG_movable_ops, PG_pinned, type Errno,
} from './types.js';

/**
 * enum migrate_reason (include/linux/migrate_mode.h) of the migrate_pages callers modelled:
 * offline_pages' do_migrate_range and alloc_contig_range's __alloc_contig_migrate_range. It reaches
 * the target allocation through migration_target_control.reason: from v6.9 a hugetlb target
 * allocated fresh is __GFP_THISNODE unless the reason allows fallback (hugetlb.ts).
 */
export type MigrateReason = 'MR_MEMORY_HOTPLUG' | 'MR_CONTIG_RANGE';

/** NR_MAX_MIGRATE_PAGES_RETRY */
export const NR_MAX_MIGRATE_PAGES_RETRY = 10;

/**
 * isolate_lru_page / isolate_movable_page: off the LRU onto the caller's list. An LRU page loses
 * PG_lru while isolated (so a concurrent has_unmovable_pages sees it as unmovable, as in the
 * kernel); putback gives it back unless it is a non-LRU __PageMovable page.
 */
export function isolateMovablePage(k: Kernel, head: number, list: number[]): void {
  const mm = k.mm;
  mm.flags[head] = (mm.flags[head] & ~PG_lru) | PG_isolated;
  list.push(head);
}

/** The compound order of a page (0 for a base page). */
function pageOrder(k: Kernel, head: number): number {
  return k.mm.flags[head] & PG_head ? k.mm.order[head] : 0;
}

/**
 * alloc_migration_target() for a base or THP-like page: GFP_USER | __GFP_MOVABLE, preferred node
 * `nid`, only the nodes of `nmask` when given (mtc->nmask); __GFP_HIGHMEM (i.e. ZONE_MOVABLE
 * allowed) only when the source is in ZONE_MOVABLE, so a ZONE_NORMAL page is never migrated into
 * ZONE_MOVABLE. May use CMA (movable, not pinned).
 * Pages of ISOLATE blocks are on ISOLATE lists and are never handed out (pcp leaks aside).
 */
export function allocMigrationTarget(k: Kernel, src: number, order: number, nid: number, nmask?: readonly number[]): number {
  const srcZone = k.zoneOf(src);
  const req = { order, migratetype: MIGRATE_MOVABLE, node: nid };
  // zonelist(req) without ZONE_MOVABLE unless the source is there: the built list of that choice.
  const zl = zonelistOf(k, nid, srcZone?.isMovable() === true);
  return allocFromZonelist(k, nmask ? zl.filter((z) => nmask.includes(z.node)) : zl, req);
}

/**
 * unmap_and_move() of one movable page: '0' (moved, or freed under us), '-EAGAIN' (busy: pinned
 * or extra references; retried by the next pass), '-ENOMEM' (no target), '-EBUSY' (permanent).
 */
export function* unmapAndMove(k: Kernel, head: number, nid: number, reason: MigrateReason = 'MR_CONTIG_RANGE', nmask?: readonly number[]): KGen<Errno> {
  const mm = k.mm;
  const f = mm.flags[head];
  if (!(f & PG_isolated)) return '0'; // freed (and maybe reused) while on our list
  if (f & PG_hugetlb) {
    if (!k.hooks.migrateHugePage) return '-EBUSY';
    return (yield* k.hooks.migrateHugePage(k, head, reason, nmask)) as Errno;
  }
  // Long-term pins hold extra references: folio_migrate_mapping() sees the count mismatch.
  if ((f & PG_pinned) || mm.refcount[head] > 1) return '-EAGAIN';
  const order = pageOrder(k, head);
  const target = allocMigrationTarget(k, head, order, nid, nmask);
  if (target < 0) return ENOMEM;
  // Copy: the content token, the owner and the user's allocation follow the new page.
  const owner = mm.owner[head];
  const keep = f & (PG_movable_ops | PG_pinned);
  prepNewPage(k, target, order, owner, keep | (f & PG_movable_ops ? 0 : PG_lru), mm.token[head]);
  const al = k.allocs.get(owner);
  if (al && al.pfn === head) al.pfn = target;
  clearPage(k, head, order);
  freePages(k, head, order);
  return '0';
}

/**
 * migrate_pages(list, alloc_migration_target, mode, reason): up to 10 passes
 * while pages return -EAGAIN; -ENOMEM aborts the whole call. Migrated pages leave the list; the
 * ones that failed stay on it for the caller's putback. Returns the number of pages not migrated,
 * or '-ENOMEM'. One page per atomic section.
 */
export function* migratePages(
  k: Kernel, list: number[], nid: number, reason: MigrateReason = 'MR_CONTIG_RANGE', nmask?: readonly number[],
): KGen<number | '-ENOMEM'> {
  let failed: number[] = [];
  let todo = list.splice(0);
  for (let pass = 0; pass < NR_MAX_MIGRATE_PAGES_RETRY && todo.length > 0; pass++) {
    const again: number[] = [];
    for (let i = 0; i < todo.length; i++) {
      const head = todo[i];
      const r = yield* unmapAndMove(k, head, nid, reason, nmask);
      yield 'migrate_pages';
      if (r === '0') continue;
      if (r === '-EAGAIN') again.push(head);
      else if (r === ENOMEM) {
        list.push(...failed, ...again, ...todo.slice(i));
        return ENOMEM;
      } else failed.push(head);
    }
    todo = again;
  }
  failed = failed.concat(todo);
  list.push(...failed);
  return failed.length;
}

/** putback_movable_pages(): what was not migrated goes back to the LRU (hugetlb: its own putback). */
export function* putbackMovablePages(k: Kernel, list: number[]): KGen<void> {
  const mm = k.mm;
  for (const head of list.splice(0)) {
    const f = mm.flags[head];
    if (!(f & PG_isolated)) continue;
    if (f & PG_hugetlb) {
      if (k.hooks.putbackHugePage) yield* k.hooks.putbackHugePage(k, head);
      else mm.flags[head] &= ~PG_isolated;
      continue;
    }
    mm.flags[head] = (f & ~PG_isolated) | (f & PG_movable_ops ? 0 : PG_lru);
  }
}
