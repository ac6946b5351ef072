/**
 * Pageblock flags (mm/page_alloc.c get/set_pageblock_migratetype, include/linux/pageblock-flags.h).
 *
 * Two ways of recording isolation, switched by profile:
 *  - `replace` (<= 2025): MIGRATE_ISOLATE overwrites the migratetype bits; whoever un-isolates
 *    passes the type to restore, and a wrong argument silently re-types the block (80e2b584f3ab).
 *  - `bit` (Zi Yan 2025, David's proposal (a) in seed 004): PB_migrate_isolate is a separate bit;
 *    get_pageblock_migratetype() reports ISOLATE while it is set, the original type is preserved.
 */
import { MIGRATE_ISOLATE } from './types.js';

export class Pageblocks {
  /** the migratetype bits */
  readonly mt: Uint8Array;
  /** PB_migrate_isolate (used only in `bit` mode) */
  readonly isolate: Uint8Array;

  constructor(readonly nr: number, readonly order: number, readonly isolateBit: boolean) {
    this.mt = new Uint8Array(nr);
    this.isolate = new Uint8Array(nr);
  }

  /** get_pageblock_migratetype(pfn) */
  get(pfn: number): number {
    const b = pfn >>> this.order;
    return this.isolate[b] ? MIGRATE_ISOLATE : this.mt[b];
  }

  isIsolated(pfn: number): boolean {
    return this.get(pfn) === MIGRATE_ISOLATE;
  }

  /** set_pageblock_migratetype(): in bit mode ISOLATE toggles the bit and keeps the type. */
  set(pfn: number, mt: number): void {
    const b = pfn >>> this.order;
    if (this.isolateBit) {
      if (mt === MIGRATE_ISOLATE) this.isolate[b] = 1;
      else {
        this.isolate[b] = 0;
        this.mt[b] = mt;
      }
    } else this.mt[b] = mt;
  }

  /** Bit mode: clear the isolate bit and keep the preserved type (toggle_pageblock_isolate). */
  clearIsolate(pfn: number): void {
    this.isolate[pfn >>> this.order] = 0;
  }

  /** The type an isolated block had before (bit mode), or undefined (replace mode: lost). */
  preserved(pfn: number): number | undefined {
    return this.isolateBit ? this.mt[pfn >>> this.order] : undefined;
  }
}
