/**
 * struct zone (include/linux/mmzone.h): its pfn span, free_area[order].free_list[migratetype]
 * (list ids into the memmap's lists), nr_free, vmstat counters, the per-cpu lists and the
 * isolated-pageblock count. All of it is protected by zone->lock in the kernel; here every
 * critical section is atomic by construction (see sched.ts).
 */
import { MIGRATE_PCPTYPES, MIGRATE_TYPES } from './types.js';
import type { ZoneName } from './config.js';

export class Zone {
  /** free-list ids: listBase + order * MIGRATE_TYPES + migratetype */
  readonly listBase: number;
  /** pcp list ids: pcpBase + cpu * MIGRATE_PCPTYPES + migratetype */
  readonly pcpBase: number;
  /** free_area[order].nr_free (all migratetypes) */
  readonly nrFree: Int32Array;
  /** NR_FREE_PAGES: pages on non-ISOLATE free lists */
  freePages = 0;
  /** NR_FREE_CMA_PAGES */
  freeCma = 0;
  /** pages on pcp lists, per cpu */
  readonly pcpCount: Int32Array;
  /** pcp->free_factor, per cpu (v5.14-v6.6: Switches.pcpFreeFactor) */
  readonly pcpFreeFactor: Int32Array;
  /** nr_isolate_pageblock */
  nrIsolatePageblock = 0;
  managedPages = 0;
  presentPages = 0;
  /** zone_pcp_disable(): frees bypass the pcp lists (memory offline, v5.11+) */
  pcpDisabled = 0;

  constructor(
    readonly idx: number,
    readonly name: ZoneName,
    readonly node: number,
    readonly start: number,
    readonly end: number,
    maxOrder: number,
    cpus: number,
    firstList: number,
  ) {
    this.listBase = firstList;
    this.pcpBase = firstList + (maxOrder + 1) * MIGRATE_TYPES;
    this.nrFree = new Int32Array(maxOrder + 1);
    this.pcpCount = new Int32Array(cpus);
    this.pcpFreeFactor = new Int32Array(cpus);
  }

  static listsNeeded(maxOrder: number, cpus: number): number {
    return (maxOrder + 1) * MIGRATE_TYPES + cpus * MIGRATE_PCPTYPES;
  }

  freeList(order: number, mt: number): number {
    return this.listBase + order * MIGRATE_TYPES + mt;
  }

  pcpList(cpu: number, mt: number): number {
    return this.pcpBase + cpu * MIGRATE_PCPTYPES + mt;
  }

  isMovable(): boolean {
    return this.name === 'Movable';
  }

  contains(pfn: number): boolean {
    return pfn >= this.start && pfn < this.end;
  }
}
