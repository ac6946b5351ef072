/**
 * The simulated machine: memmap, pageblocks, zones and the state of every mechanism, built from a
 * MachineConfig and a Profile. This is also the one place where the kernel's call-graph cycle
 * (alloc_contig_range -> isolate_or_dissolve_huge_page -> gigantic replacement -> alloc_contig_pages
 * -> alloc_contig_range) is closed: mechanisms receive each other through the `hooks` below, wired
 * by the mechanism modules' install functions, so the files stay acyclic.
 */
import type { MachineConfig } from './config.js';
import { validateConfig } from './config.js';
import { Memmap } from './memmap.js';
import { Pageblocks } from './pageblock.js';
import { Zone } from './mmzone.js';
import type { Profile, Switches } from './profiles.js';
import type { CurrentThread, KGen } from './sched.js';
import type { MigrateReason } from './migrate.js';
import { ConfigError } from './types.js';

export type AllocKind = 'boot' | 'pages' | 'contig' | 'cma' | 'hugetlb' | 'virtio-mem' | 'migrate';

/** One allocation a caller holds: what `owner[pfn]` points at. */
export interface Allocation {
  handle: number;
  /** the program's id for it (op argument `id`) */
  id: string;
  kind: AllocKind;
  pfn: number;
  nrPages: number;
  order: number;
  migratetype: number;
  pinned: boolean;
}

/** What the contig / hugetlb mechanisms give each other (wired at construction). */
export interface Hooks {
  /** compaction -> hugetlb: isolate_or_dissolve_huge_page (v5.13) or the RFC's alloc_and_dissolve_huge_page */
  isolateOrDissolveHugePage?: (k: Kernel, pfn: number, list: number[]) => KGen<string>;
  /** hugetlb -> contig: alloc_contig_pages for a gigantic page; the cycle closes here */
  allocContigPages?: (k: Kernel, nrPages: number, node: number, id: string) => KGen<number>;
  /** hugetlb -> cma: cma_alloc from a hugetlb_cma area */
  cmaAlloc?: (k: Kernel, area: number, count: number, align: number, id: string) => KGen<number>;
  /** hugetlb -> cma: cma_release; false when the pages are not in the area */
  cmaRelease?: (k: Kernel, area: number, pfn: number, count: number) => boolean;
  /** free path -> hugetlb: free_huge_page when a hugetlb page's last reference is dropped */
  freeHugePage?: (k: Kernel, head: number) => KGen;
  /** migrate_pages -> hugetlb: unmap_and_move_huge_page for an isolated hugetlb page; returns an errno name */
  migrateHugePage?: (k: Kernel, head: number, reason: MigrateReason, nmask?: readonly number[]) => KGen<string>;
  /** migrate_pages -> hugetlb: putback_active_hugetlb for an isolated hugetlb page not migrated */
  putbackHugePage?: (k: Kernel, head: number) => KGen;
}

/** Counters of one hstate, as /proc/meminfo and sysfs show them. */
export interface HstateCounters {
  name: string;
  order: number;
  nr: number;
  free: number;
  resv: number;
  surplus: number;
  max: number;
  overcommit: number;
}

/**
 * The allocations by handle, with the part of a Map's interface their readers use (get, has, size,
 * values in insertion order). Handles are handed out in increasing order and never reused, so an
 * array indexed by handle holds them in insertion order. A Map churned by allocations made and
 * dropped (most alloc_contig_range attempts) is rehashed each time its table fills with deleted
 * entries, and reallocated when emptied and refilled (every snapshot restore).
 */
export class AllocTable {
  /** the allocation of each handle, undefined when none; the last element is live (or none is) */
  readonly slots: (Allocation | undefined)[] = [];
  size = 0;

  get(handle: number): Allocation | undefined {
    return this.slots[handle];
  }

  has(handle: number): boolean {
    return this.slots[handle] !== undefined;
  }

  /** The next allocation: its handle is above every handle added before. */
  add(a: Allocation): void {
    this.slots[a.handle] = a;
    this.size++;
  }

  delete(handle: number): void {
    const slots = this.slots;
    if (slots[handle] === undefined) return;
    slots[handle] = undefined;
    this.size--;
    let n = slots.length;
    while (n > 0 && slots[n - 1] === undefined) n--;
    if (n < slots.length) slots.length = n;
  }

  *values(): Generator<Allocation> {
    const slots = this.slots;
    for (let h = 0; h < slots.length; h++) {
      const a = slots[h];
      if (a !== undefined) yield a;
    }
  }
}

export class Kernel implements CurrentThread {
  readonly sw: Switches;
  readonly mm: Memmap;
  readonly pb: Pageblocks;
  readonly zones: Zone[] = [];
  readonly nrPfns: number;
  readonly allocs = new AllocTable();
  /**
   * The handle held under each program id, 0 once dropped: an id's entry stays (a run uses few
   * ids, and a restore empties the Map) because a Map whose entries come and go is rehashed as
   * deleted entries fill its table.
   */
  readonly byId = new Map<string, number>();
  private nextHandle = 1;
  nextToken = 1;
  /** the running thread (sched.ts); its cpu is current % cpus */
  current = 0;
  readonly hooks: Hooks = {};
  /** alloc_contig_range nesting depth per thread (no-gigantic-recursion) */
  readonly contigDepth: number[] = [];
  maxContigDepth = 0;
  /** kernel-visible events the checker reads (recursion, warnings); never used for decisions */
  readonly events: string[] = [];
  /** list id of the last __rmqueue result (what the kernel caches as the pcp migratetype) */
  lastRmqueueMt = 0;
  /** hugetlb counters provider (hugetlb.ts) */
  hstateCounters: () => HstateCounters[] = () => [];
  /** mechanism states, attached by their modules */
  readonly ext: Record<string, unknown> = {};
  /**
   * Each mechanism with state outside the memmap (hugetlb pools, CMA bitmaps, memory blocks)
   * pushes a function returning a canonical string of it: the model checker's state fingerprint.
   */
  readonly fingerprintParts: Array<() => string> = [];

  constructor(readonly cfg: MachineConfig, readonly profile: Profile) {
    validateConfig(cfg);
    this.sw = profile.switches;
    const zs = cfg.nodes.flatMap((n) => n.zones.map((z) => ({ ...z, node: n.id }))).sort((a, b) => a.startPfn - b.startPfn);
    this.nrPfns = zs[zs.length - 1].endPfn;
    const perZone = Zone.listsNeeded(cfg.maxOrder, cfg.cpus);
    if (perZone * zs.length >= 65535) throw new ConfigError(`config '${cfg.name}': too many zones x cpus`);
    this.mm = new Memmap(this.nrPfns, perZone * zs.length, cfg.pageblockOrder);
    const pbPages = 1 << cfg.pageblockOrder;
    this.pb = new Pageblocks(Math.ceil(this.nrPfns / pbPages), cfg.pageblockOrder, this.sw.isolateMode === 'bit');
    zs.forEach((z, i) => this.zones.push(new Zone(i, z.name, z.node, z.startPfn, z.endPfn, cfg.maxOrder, cfg.cpus, i * perZone)));
  }

  get maxOrder(): number {
    return this.cfg.maxOrder;
  }

  get pageblockOrder(): number {
    return this.cfg.pageblockOrder;
  }

  /** page_zone(): the zone a pfn belongs to, or undefined outside every zone */
  zoneOf(pfn: number): Zone | undefined {
    const zs = this.zones;
    for (let i = zs.length - 1; i >= 0; i--) {
      const z = zs[i];
      if (pfn >= z.start) return pfn < z.end ? z : undefined;
    }
    return undefined;
  }

  cpu(): number {
    return this.current % this.cfg.cpus;
  }

  newAllocation(a: Omit<Allocation, 'handle'>): Allocation {
    if (this.byId.get(a.id)) throw new ConfigError(`id '${a.id}' is already held`);
    // The caller's fields in the callers' order, then the handle (what `{ ...a, handle }` made).
    const full: Allocation = { id: a.id, kind: a.kind, pfn: a.pfn, nrPages: a.nrPages, order: a.order, migratetype: a.migratetype, pinned: a.pinned, handle: this.nextHandle++ };
    this.allocs.add(full);
    this.byId.set(a.id, full.handle);
    return full;
  }

  dropAllocation(handle: number): void {
    const a = this.allocs.get(handle);
    if (!a) return;
    this.allocs.delete(handle);
    if (this.byId.get(a.id) === handle) this.byId.set(a.id, 0);
  }

  /** The allocation a program id names, or undefined. */
  lookup(id: string): Allocation | undefined {
    const h = this.byId.get(id);
    return h ? this.allocs.get(h) : undefined;
  }

  /** alloc_contig_range entry/exit (depth is what no-gigantic-recursion reads). */
  enterContig(): number {
    const t = this.current;
    const d = (this.contigDepth[t] ?? 0) + 1;
    this.contigDepth[t] = d;
    if (d > this.maxContigDepth) this.maxContigDepth = d;
    return d;
  }

  leaveContig(): void {
    this.contigDepth[this.current]--;
  }
}
