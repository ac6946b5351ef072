/**
 * Constants shared by every simulated mechanism: migratetypes (include/linux/mmzone.h),
 * per-pfn flag bits (a subset of include/linux/page-flags.h plus hugetlb folio flags),
 * kernel error names.
 */

// enum migratetype: the order matters (MIGRATE_PCPTYPES == MIGRATE_HIGHATOMIC).
export const MIGRATE_UNMOVABLE = 0;
export const MIGRATE_MOVABLE = 1;
export const MIGRATE_RECLAIMABLE = 2;
export const MIGRATE_PCPTYPES = 3;
export const MIGRATE_HIGHATOMIC = 3;
export const MIGRATE_CMA = 4;
export const MIGRATE_ISOLATE = 5;
export const MIGRATE_TYPES = 6;

/** Names as /proc/pagetypeinfo prints them. */
export const MIGRATETYPE_NAMES = ['Unmovable', 'Movable', 'Reclaimable', 'HighAtomic', 'CMA', 'Isolate'] as const;
/** Names as programs spell them (snake_case). */
export const MIGRATETYPE_ARG: Record<string, number> = {
  unmovable: MIGRATE_UNMOVABLE,
  movable: MIGRATE_MOVABLE,
  reclaimable: MIGRATE_RECLAIMABLE,
  highatomic: MIGRATE_HIGHATOMIC,
  cma: MIGRATE_CMA,
};

/** migratetype_is_mergeable(): only the three pcp types may merge with each other. */
export function isMergeable(mt: number): boolean {
  return mt < MIGRATE_PCPTYPES;
}

// Per-pfn flags (Uint16 per pfn).
export const PG_valid = 1 << 0; // pfn has a memmap and is not a hole
export const PG_buddy = 1 << 1; // head of a free buddy block (PageBuddy)
export const PG_reserved = 1 << 2; // PageReserved: boot allocations, never movable
export const PG_lru = 1 << 3; // on an LRU: a movable user page
export const PG_pinned = 1 << 4; // long-term pinned (FOLL_LONGTERM): migration fails
export const PG_head = 1 << 5; // compound head
export const PG_tail = 1 << 6; // compound tail; next[] holds the head pfn
export const PG_hugetlb = 1 << 7; // hugetlb folio (on the head)
export const PG_pcp = 1 << 8; // free, on a per-cpu list (refcount 0, not PageBuddy)
export const PG_offline = 1 << 9; // PageOffline: owned by a driver (virtio-mem) or offlined
export const PG_hugetlb_freed = 1 << 10; // HPageFreed: on an hstate free list
export const PG_hugetlb_migratable = 1 << 11; // HPageMigratable: in use, may be isolated
export const PG_hugetlb_temporary = 1 << 12; // HPageTemporary: migration target, not in the pool
export const PG_isolated = 1 << 13; // taken off the LRU / active list onto a migrate list
export const PG_vmemmap_optimized = 1 << 14; // HPageVmemmapOptimized (HVO, v5.14+)
export const PG_movable_ops = 1 << 15; // non-LRU __PageMovable (balloon, zsmalloc)

/** Kernel error names, as results of operations. */
export type Errno = '0' | '-EBUSY' | '-ENOMEM' | '-EINTR' | '-EAGAIN' | '-EINVAL' | '-ENOENT' | '-EPERM';
export const EBUSY = '-EBUSY';
export const ENOMEM = '-ENOMEM';

/** Raised for impossible geometry, unknown profiles and malformed programs: exit code 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Raised inside the simulated kernel where the real kernel would BUG()/VM_BUG_ON(). A finding. */
export class KernelBug extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KernelBug';
  }
}
