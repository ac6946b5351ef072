/**
 * Memory hot(un)plug (mm/memory_hotplug.c): memory blocks as /sys/devices/system/memory/memoryN
 * (N = first pfn / memoryBlockPages), offline_pages and online_pages.
 *
 * Kernel functions modelled: offline_pages (section alignment, no holes, one zone,
 * zone_pcp_disable, start_isolate_page_range(MIGRATE_MOVABLE, MEMORY_OFFLINE | REPORT_FAILURE),
 * the outer/inner retry loops with scan_movable_pages and do_migrate_range,
 * dissolve_free_huge_pages, test_pages_isolated(MEMORY_OFFLINE), __offline_isolated_pages, the
 * undo path), online_pages (memmap init to MIGRATE_MOVABLE, pages handed to the online_page
 * callback: generic_online_page frees them to buddy unless a driver installed its own with
 * set_online_page_callback), memory_notify (MEM_GOING_OFFLINE / MEM_OFFLINE / MEM_CANCEL_OFFLINE
 * around offline_pages, MEM_GOING_ONLINE / MEM_ONLINE around online_pages),
 * offline_and_remove_memory (per memory block; blocks already offline are skipped), remove_memory
 * (blocks that are all offline already; -EBUSY when one is online).
 *
 * Profile switches: offlinePcpDisable (zone_pcp_disable, v5.11), offlineReplacesFreeHuge (David's
 * proposal in seed 000, never merged: replace a free huge page before dissolving it, warn and go on
 * when no replacement can be had).
 *
 * The kernel's loop has no bound but a pending signal: a program models one with `signalAfter`
 * (the signal is pending once that many passes of the inner loop ran); without it a page that never
 * migrates loops until the executor's step bound (a `bounded-progress` finding, as on a real machine).
 * offline_and_remove_memory (virtio-mem) also takes the blocks out of sysfs: only the driver's
 * add_memory + online brings them back.
 *
 * The memory notifier chain is what lets virtio-mem's fake-offline pages (PageOffline, driver
 * reference) go offline with their block, whoever offlines it: MEM_GOING_OFFLINE drops the
 * references under the driver's hotplug_mutex (virtio_mem.ts), virtio-mem's online_page
 * callback keeps unplugged subblocks fake-offline when the block comes back, and its
 * MEM_GOING_ONLINE refuses (-EPERM) a block it is removing; a vetoed MEM_GOING_ONLINE is followed
 * by MEM_CANCEL_ONLINE to every notifier (online_pages' failed_addition).
 * Not modelled: other notifier users, zone shrinking and re-spanning (a block may only be onlined to the zone whose
 * span holds it), lru_cache_disable, HWPoison pages, onlining MOVABLE-by-policy (online_movable).
 */
import type { Kernel } from './machine.js';
import { RwSem, downWrite, flat, upWrite, type KGen } from './sched.js';
import { drainPagesZone, delFromFreeList, freePagesCore } from './page_alloc.js';
import { MEMORY_OFFLINE, REPORT_FAILURE, startIsolatePageRange, testPagesIsolated, undoIsolatePageRange } from './page_isolation.js';
import { isolateMovablePage, migratePages, putbackMovablePages } from './migrate.js';
import { dissolveFreeHugePage, isHugetlbHead, isolateHugePage, pageHuge, replaceOrDissolveFreeHugePage, hugetlbState } from './hugetlb.js';
import { fingerprintPart } from './fingerprint.js';
import {
  EBUSY, MIGRATE_ISOLATE, MIGRATE_MOVABLE, PG_buddy, PG_head, PG_hugetlb_migratable, PG_isolated, PG_lru, PG_movable_ops, PG_offline,
  PG_pcp, PG_tail, PG_valid,
} from './types.js';

export type BlockState = 'online' | 'offline';

/** memory_notify() actions (include/linux/memory.h). */
export type MemAction = 'MEM_GOING_OFFLINE' | 'MEM_OFFLINE' | 'MEM_CANCEL_OFFLINE' | 'MEM_GOING_ONLINE' | 'MEM_ONLINE' | 'MEM_CANCEL_ONLINE';

/**
 * A register_memory_notifier() callback for [start, start + nr): '0' (NOTIFY_OK/DONE) or an errno
 * that vetoes a MEM_GOING_* action. It may sleep (drivers take their own mutex here).
 */
export type MemoryNotifier = (k: Kernel, action: MemAction, start: number, nr: number) => KGen<string>;

/** online_page_callback_t: hands the pages of one chunk to the system; returns how many went to buddy. */
export type OnlinePageCallback = (k: Kernel, pfn: number, order: number) => number;

export interface HotplugState {
  /** state per memory block number (blocks outside every zone are absent) */
  blocks: Map<number, BlockState>;
  /** blocks removed by their driver (offline_and_remove_memory): not in sysfs, only add_memory brings them back */
  removed: Set<number>;
  /** mem_hotplug_lock: written by online/offline/remove, read by get_online_mems() */
  lock: RwSem;
  /** the memory notifier chain (register_memory_notifier) */
  notifiers: MemoryNotifier[];
  /** set_online_page_callback(); null: generic_online_page */
  onlinePage: OnlinePageCallback | null;
}

/** memory_notify(): every notifier in turn; the first veto stops the chain. */
function* memoryNotify(k: Kernel, action: MemAction, start: number, nr: number): KGen<string> {
  for (const n of hotplugState(k).notifiers) {
    const rc = yield* n(k, action, start, nr);
    if (rc !== '0') return rc;
  }
  return '0';
}

/** generic_online_page(): the chunk goes to buddy (__free_pages_core; managed_pages grows by it). */
export function genericOnlinePage(k: Kernel, pfn: number, order: number): number {
  freePagesCore(k, pfn, order);
  return 1 << order;
}

export function hotplugState(k: Kernel): HotplugState {
  return k.ext.hotplug as HotplugState;
}

export function blockState(k: Kernel, block: number): BlockState | undefined {
  return hotplugState(k).blocks.get(block);
}

export interface OfflineOptions {
  /** a fatal signal is pending once this many passes of the retry loop ran */
  signalAfter?: number;
}

/** The flags of a pfn scan_movable_pages() does more for than pass over (with PG_valid clear). */
const SCAN_MOVABLE_STOP = PG_valid | PG_buddy | PG_pcp | PG_offline | PG_head | PG_tail | PG_lru | PG_movable_ops;

/** scan_movable_pages(): the first LRU / movable / in-use migratable hugetlb page, or -1; -2: unmovable PageOffline. */
function scanMovablePages(k: Kernel, start: number, end: number): number {
  const mm = k.mm;
  const e = Math.min(end, mm.flags.length); // pfns past the memmap are holes
  for (let p = start; p < e; p++) {
    // Valid base pages that are not free, offline, compound or LRU/movable are passed over: found
    // two a read.
    p = mm.scanFlags(SCAN_MOVABLE_STOP, PG_valid, p, e);
    if (p >= e) break;
    const f = mm.flags[p];
    if (!(f & PG_valid) || f & (PG_buddy | PG_pcp)) {
      if (f & PG_buddy) p += (1 << mm.order[p]) - 1;
      continue;
    }
    if ((f & SCAN_MOVABLE_STOP) === (PG_valid | PG_offline)) {
      // PageOffline base pages nobody holds (virtio-mem's fake-offline memory after
      // MEM_GOING_OFFLINE) are passed over too: a run of them, found a word at a time.
      const q = mm.firstReferenced(p, mm.scanFlags(SCAN_MOVABLE_STOP, PG_valid | PG_offline, p, e));
      if (q > p) {
        p = q - 1;
        continue;
      }
    }
    if (f & PG_offline && mm.refcount[p] > 0) return -2;
    const head = f & PG_tail ? mm.next[p] : p;
    const hf = mm.flags[head];
    if (hf & (PG_lru | PG_movable_ops)) return p;
    if (pageHuge(k, head)) {
      if (hf & PG_hugetlb_migratable) return head;
      p = head + (1 << mm.order[head]) - 1;
    }
  }
  return -1;
}

/** do_migrate_range(): isolate every movable page from `start`, migrate them, put back failures. */
function* doMigrateRange(k: Kernel, start: number, end: number): KGen<void> {
  const mm = k.mm;
  const list: number[] = [];
  for (let p = start; p < end; p++) {
    const f = mm.flags[p];
    if (!(f & PG_valid) || f & (PG_buddy | PG_pcp)) {
      if (f & PG_buddy) p += (1 << mm.order[p]) - 1;
      continue;
    }
    const head = f & PG_tail ? mm.next[p] : p;
    if (isHugetlbHead(k, head)) {
      isolateHugePage(k, head, list);
      p = head + (1 << mm.order[head]) - 1;
      continue;
    }
    if (head === p && mm.flags[p] & (PG_lru | PG_movable_ops) && mm.refcount[p] > 0 && !(mm.flags[p] & PG_isolated)) {
      isolateMovablePage(k, p, list);
      if (mm.flags[p] & PG_head) p += (1 << mm.order[p]) - 1;
    }
  }
  if (!list.length) return;
  // Migration errors are ignored here (the kernel's "TODO"): the outer loop finds them again.
  // mtc (6.1 mm/memory_hotplug.c:1694-1714): nid = the first page's node, nmask = N_MEMORY without
  // it, "try to allocate from a different node but reuse this node if there are no other online
  // nodes"; MR_MEMORY_HOTPLUG. Base and hugetlb targets alike stay off this node when another has
  // memory, free hugetlb pool pages on it included.
  const nid = k.zoneOf(start)!.node;
  yield* migratePages(k, list, nid, 'MR_MEMORY_HOTPLUG', offlineTargetNodes(k, nid));
  if (list.length) yield* putbackMovablePages(k, list);
}

/**
 * do_migrate_range's mtc.nmask for memory on node `nid`: N_MEMORY without `nid`, or `nid` alone
 * when no other node has memory (6.1 mm/memory_hotplug.c:1694-1714).
 */
export function offlineTargetNodes(k: Kernel, nid: number): number[] {
  const others = k.cfg.nodes.filter((n) => n.id !== nid).map((n) => n.id);
  return others.length ? others : [nid];
}

/** Drain and keep the pcp lists of a zone empty (zone_pcp_disable). */
function zonePcpDisable(k: Kernel, zoneIdx: number): void {
  const z = k.zones[zoneIdx];
  z.pcpDisabled++;
  for (let cpu = 0; cpu < k.cfg.cpus; cpu++) drainPagesZone(k, z, cpu);
}

/**
 * __offline_isolated_pages(): every free page of the range leaves the buddy lists; the whole block
 * becomes PG_offline (its memmap is gone as far as the allocator is concerned). The pageblocks stay
 * isolated (nr_isolate_pageblock is adjusted), as in the kernel.
 */
function offlineIsolatedPages(k: Kernel, start: number, end: number): void {
  const mm = k.mm;
  const z = k.zoneOf(start)!;
  // Every free buddy head, from one to the next with scanFlags (pfns past the memmap are holes).
  const stop = Math.min(end, mm.nrPfns);
  for (let p = mm.scanFlags(PG_buddy, 0, start, stop); p < stop; p = mm.scanFlags(PG_buddy, 0, p, stop)) {
    const o = mm.order[p];
    // On ISOLATE lists: no longer counted in NR_FREE_PAGES, nothing to adjust.
    delFromFreeList(k, z, p);
    p += 1 << o;
  }
  mm.flags.fill(PG_valid | PG_offline, start, end);
  mm.refcount.fill(0, start, end);
  mm.owner.fill(0, start, end);
  mm.token.fill(0, start, end);
  mm.order.fill(0, start, end);
  const pbPages = 1 << k.pageblockOrder;
  z.nrIsolatePageblock -= (end - start) / pbPages;
  z.managedPages -= end - start;
  z.presentPages -= end - start;
}

/** offline_pages(start_pfn, nr_pages). */
export function* offlinePagesRange(k: Kernel, start: number, nr: number, opts: OfflineOptions): KGen<string> {
  const st = hotplugState(k);
  const end = start + nr;
  const mbp = k.cfg.memoryBlockPages;
  if (start % mbp || nr % mbp || nr === 0) return '-EINVAL';
  yield* downWrite(k, st.lock);
  try {
    for (let b = start / mbp; b < end / mbp; b++) if (st.blocks.get(b) !== 'online') return '-EINVAL';
    const z = k.zoneOf(start);
    if (k.mm.scanFlags(PG_valid, PG_valid, start, end) < end) return '-EINVAL'; // "memory holes"
    if (!z || k.zoneOf(end - 1) !== z) return '-EINVAL'; // "multizone range"
    if (k.sw.offlinePcpDisable) zonePcpDisable(k, z.idx);
    try {
      return yield* offlineIsolate(k, start, end, opts);
    } finally {
      if (k.sw.offlinePcpDisable) z.pcpDisabled--;
    }
  } finally {
    upWrite(st.lock);
  }
}

function* offlineIsolate(k: Kernel, start: number, end: number, opts: OfflineOptions): KGen<string> {
  const st = hotplugState(k);
  const iso = yield* flat(startIsolatePageRange(k, start, end, MIGRATE_MOVABLE, MEMORY_OFFLINE | REPORT_FAILURE));
  if (iso !== '0') {
    k.events.push(`offline_pages: [${start}, ${end}) failure to isolate range`);
    return EBUSY;
  }
  // After isolation, as in the kernel: drivers drop their references to fake-offline pages here.
  let ret = yield* memoryNotify(k, 'MEM_GOING_OFFLINE', start, end - start);
  if (ret !== '0') {
    k.events.push(`offline_pages: [${start}, ${end}) notifier failure`);
  }
  let passes = 0;
  outer: for (; ret === '0';) {
    for (;;) {
      if (opts.signalAfter !== undefined && passes >= opts.signalAfter) {
        ret = '-EINTR';
        k.events.push(`offline_pages: [${start}, ${end}) signal backoff`);
        break outer;
      }
      passes++;
      yield 'offline_pages:cond_resched';
      const pfn = scanMovablePages(k, start, end);
      if (pfn === -2) {
        ret = EBUSY;
        k.events.push(`offline_pages: [${start}, ${end}) unmovable page`);
        break outer;
      }
      if (pfn < 0) break;
      yield* doMigrateRange(k, pfn, end);
    }
    const d = yield* dissolveRange(k, start, end);
    if (d !== '0') {
      ret = d;
      k.events.push(`offline_pages: [${start}, ${end}) failure to dissolve huge pages`);
      break;
    }
    yield 'offline_pages:test_pages_isolated';
    if (testIsolated(k, start, end)) break;
  }
  if (ret !== '0') {
    yield* undoIsolatePageRange(k, start, end, MIGRATE_MOVABLE);
    yield* memoryNotify(k, 'MEM_CANCEL_OFFLINE', start, end - start);
    return ret;
  }
  offlineIsolatedPages(k, start, end);
  const mbp = k.cfg.memoryBlockPages;
  for (let b = start / mbp; b < end / mbp; b++) st.blocks.set(b, 'offline');
  yield* memoryNotify(k, 'MEM_OFFLINE', start, end - start);
  return '0';
}

/** dissolve_free_huge_pages(), or with sw.offlineReplacesFreeHuge the proposal's replace-first. */
function* dissolveRange(k: Kernel, start: number, end: number): KGen<string> {
  const hs = hugetlbState(k).hstates;
  if (!hs.length) return '0';
  const step = 1 << Math.min(...hs.map((h) => h.order));
  for (let p = start; p < end; p += step) {
    if (!pageHuge(k, p)) continue;
    const r = k.sw.offlineReplacesFreeHuge ? yield* replaceOrDissolveFreeHugePage(k, p) : yield* dissolveFreeHugePage(k, p);
    if (r !== '0') return r;
  }
  return '0';
}

function testIsolated(k: Kernel, start: number, end: number): boolean {
  return testPagesIsolated(k, start, end, MEMORY_OFFLINE) === '0';
}

/**
 * offline_and_remove_memory(): device_offline() of each memory block (try_offline_memory_block:
 * "Ignore if already offline", e.g. an admin offlined it meanwhile), then the blocks leave sysfs
 * (a driver's add_memory re-adds them). Re-onlining blocks offlined before a failure
 * (try_reonline_memory_block) is not modelled: drivers here remove one block at a time.
 */
export function* offlineAndRemoveMemory(k: Kernel, start: number, nr: number): KGen<string> {
  const mbp = k.cfg.memoryBlockPages;
  if (start % mbp || nr % mbp || nr === 0) return '-EINVAL';
  for (let b = start / mbp; b < (start + nr) / mbp; b++) {
    if (hotplugState(k).removed.has(b)) return '-EINVAL';
    const rc = yield* offlinePagesRange(k, b * mbp, mbp, {});
    if (rc !== '0' && blockState(k, b) !== 'offline') return rc;
  }
  // try_remove_memory(): mem_hotplug_begin() ... arch_remove_memory() frees the memmap.
  const st = hotplugState(k);
  yield* downWrite(k, st.lock);
  for (let b = start / mbp; b < (start + nr) / mbp; b++) st.removed.add(b);
  upWrite(st.lock);
  return '0';
}

/**
 * remove_memory() -> try_remove_memory() (mm/memory_hotplug.c, 6.1 l. 2166, 2086:
 * check_memblock_offlined_cb): removes the blocks when all are offline, -EBUSY ("removing memory
 * fails, because memory ... is onlined") when one is online; it offlines nothing. The check and the
 * removal are one section under mem_hotplug_lock here (the kernel holds device_hotplug_lock across
 * both, which every online/offline also takes). virtio-mem removes its offline, fully unplugged
 * blocks with it (virtio_mem_sbm_unplug_any_sb_offline -> virtio_mem_sbm_remove_mb).
 */
export function* removeMemory(k: Kernel, start: number, nr: number): KGen<string> {
  const mbp = k.cfg.memoryBlockPages;
  if (start % mbp || nr % mbp || nr === 0) return '-EINVAL';
  const st = hotplugState(k);
  yield* downWrite(k, st.lock);
  try {
    for (let b = start / mbp; b < (start + nr) / mbp; b++) {
      if (st.removed.has(b)) return '-EINVAL';
      if (st.blocks.get(b) !== 'offline') return EBUSY;
    }
    for (let b = start / mbp; b < (start + nr) / mbp; b++) st.removed.add(b);
    return '0';
  } finally {
    upWrite(st.lock);
  }
}

/** offline_pages of memory block N (the sysfs `state` write). */
export function* offlineBlock(k: Kernel, block: number, opts: OfflineOptions = {}): KGen<string> {
  const mbp = k.cfg.memoryBlockPages;
  if (!hotplugState(k).blocks.has(block)) return '-EINVAL';
  return yield* offlinePagesRange(k, block * mbp, mbp, opts);
}

/**
 * online_pages() (6.1 mm/memory_hotplug.c:1076-1160; the same in 6.12): the block's memmap is
 * initialised with its pageblocks MIGRATE_ISOLATE (move_pfn_range_to_zone; v5.10, b30c59279d20
 * "mm/memory_hotplug: mark pageblocks MIGRATE_ISOLATE while onlining memory"), MEM_GOING_ONLINE,
 * the zone counts the blocks as isolated, every MAX_ORDER chunk goes through the online_page
 * callback (online_pages_range: the pages land on the ISOLATE lists, at the tail), then
 * undo_isolate_page_range() makes them MIGRATE_MOVABLE ("Basic onlining is complete, allow
 * allocation of onlined pages"), MEM_ONLINE. Until then nobody allocates the new pages and a
 * concurrent isolation of the range fails with -EBUSY. With the standalone isolate bit (2025) the
 * blocks are typed MOVABLE with the bit set: the same thing. managed_pages grows by what reached
 * buddy. The zone must be the one whose span holds the block (zones do not move here). Not
 * modelled: shuffle_zone() (CONFIG_SHUFFLE_PAGE_ALLOCATOR, off by default).
 */
export function* onlinePagesRange(k: Kernel, start: number, nr: number, zoneName?: string, addMemory = false): KGen<string> {
  const st = hotplugState(k);
  const mbp = k.cfg.memoryBlockPages;
  const end = start + nr;
  if (start % mbp || nr % mbp || nr === 0) return '-EINVAL';
  yield* downWrite(k, st.lock);
  try {
    for (let b = start / mbp; b < end / mbp; b++) {
      if (st.blocks.get(b) !== 'offline' || (st.removed.has(b) && !addMemory)) return '-EINVAL';
    }
    for (let b = start / mbp; b < end / mbp; b++) st.removed.delete(b);
    const z = k.zoneOf(start);
    if (!z || k.zoneOf(end - 1) !== z || (zoneName !== undefined && z.name !== zoneName)) return '-EINVAL';
    const pbPages = 1 << k.pageblockOrder;
    for (let p = start; p < end; p += pbPages) {
      k.pb.set(p, MIGRATE_MOVABLE);
      k.pb.set(p, MIGRATE_ISOLATE);
    }
    const rc = yield* memoryNotify(k, 'MEM_GOING_ONLINE', start, nr);
    if (rc !== '0') {
      // failed_addition: the blocks stay offline, their pageblocks isolated and not counted (as
      // after offline_pages).
      yield* memoryNotify(k, 'MEM_CANCEL_ONLINE', start, nr);
      return rc;
    }
    // "Fixup the number of isolated pageblocks before marking the sections onlining, such that
    // undo_isolate_page_range() works correctly."
    z.nrIsolatePageblock += nr / pbPages;
    const mm = k.mm;
    mm.flags.fill(PG_valid, start, end);
    const online = st.onlinePage ?? genericOnlinePage;
    let freed = 0;
    for (let p = start; p < end; p += 1 << k.maxOrder) {
      let o = k.maxOrder;
      while (p + (1 << o) > end || p & ((1 << o) - 1)) o--;
      freed += online(k, p, o);
    }
    z.managedPages += freed;
    z.presentPages += nr;
    // online_mem_sections() at the end of online_pages_range: pfn_to_online_page() finds the
    // pages from here on (undo_isolate_page_range needs it). The block's state and its sections'
    // are one thing here.
    for (let b = start / mbp; b < end / mbp; b++) st.blocks.set(b, 'online');
    yield* undoIsolatePageRange(k, start, end, MIGRATE_MOVABLE);
    yield* memoryNotify(k, 'MEM_ONLINE', start, nr);
    return '0';
  } finally {
    upWrite(st.lock);
  }
}

export function* onlineBlock(k: Kernel, block: number, zone?: string): KGen<string> {
  const mbp = k.cfg.memoryBlockPages;
  if (!hotplugState(k).blocks.has(block)) return '-EINVAL';
  return yield* onlinePagesRange(k, block * mbp, mbp, zone);
}

/** Every memory block holding zone memory starts online (a block shared by two zones is listed but can never be offlined: "multizone range"). */
export function installHotplug(k: Kernel): void {
  const mbp = k.cfg.memoryBlockPages;
  const blocks = new Map<number, BlockState>();
  for (const z of k.zones) for (let p = z.start - (z.start % mbp); p < z.end; p += mbp) blocks.set(p / mbp, 'online');
  const st: HotplugState = { blocks, removed: new Set(), lock: new RwSem('mem_hotplug_lock'), notifiers: [], onlinePage: null };
  k.ext.hotplug = st;
  // (the hash form: the same offline blocks in the same order, each with its removed bit, then
  // their count; the model checker fingerprints every state it explores with it)
  const str = () => `hotplug{${[...blocks].filter(([, s]) => s === 'offline').map(([b]) => (st.removed.has(b) ? `r${b}` : b)).join(',')}}`;
  k.fingerprintParts.push(fingerprintPart(str, {
    hash: (h) => {
      let n = 0;
      // (keys and get: an entries loop allocates a pair per block, per state fingerprinted)
      for (const b of blocks.keys()) {
        if (blocks.get(b) !== 'offline') continue;
        h.add(b);
        h.add(st.removed.has(b) ? 1 : 0);
        n++;
      }
      h.add(n);
    },
  }));
}
