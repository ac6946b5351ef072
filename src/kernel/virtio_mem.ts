/**
 * virtio-mem in Sub Block Mode (drivers/virtio/virtio_mem.c): a device-managed region of memory
 * blocks, each split into subblocks; unplug takes subblocks from the guest with
 * alloc_contig_range(MIGRATE_MOVABLE) and fake-offlines them (PageOffline, the driver keeps a
 * reference); plug gives them back.
 *
 * Kernel functions modelled: virtio_mem_sbm_unplug_request / virtio_mem_sbm_unplug_any_sb_online
 * (offline blocks first, then partially plugged blocks before fully plugged ones, ZONE_MOVABLE
 * before the kernel zones, each pass from the highest block down, hotplug_mutex dropped between
 * blocks; in a block first the whole block in one alloc_contig_range, then single subblocks from
 * the last one down, -EBUSY subblocks skipped, any other error stops the request; a request left
 * short is -EBUSY), virtio_mem_fake_offline (up to 5 alloc_contig_range attempts on ZONE_MOVABLE,
 * one elsewhere, -ENOMEM gives up at once), virtio_mem_set_fake_offline, virtio_mem_fake_online,
 * virtio_mem_sbm_try_remove_unplugged_mb (offline_and_remove_memory of a fully unplugged block,
 * hotplug_mutex dropped around it), virtio_mem_sbm_plug_request / virtio_mem_sbm_plug_any_sb /
 * virtio_mem_sbm_plug_and_add_mb (subblocks of partially plugged blocks first: kernel zones,
 * ZONE_MOVABLE, offline; lowest block and subblock first, fake-onlined in runs no longer than the
 * request when online; then removed blocks, lowest first, plugged with as many subblocks as still wanted, added back and onlined to ZONE_MOVABLE
 * with hotplug_mutex dropped, a vetoed online leaving the block added and offline; -ENOSPC when
 * the device region has no more), virtio_mem_run_wq (plug and unplug requests both run from
 * the one work item vm->wq, and a work item never runs concurrently with itself: requests are
 * serialised even while hotplug_mutex is dropped around offline_and_remove_memory / add_memory;
 * modelled as the `wq` mutex held for a whole request), virtio_mem_memory_notifier_cb for any offline/online of a
 * device block, by the driver or an admin (MEM_GOING_OFFLINE / MEM_GOING_ONLINE take hotplug_mutex,
 * MEM_OFFLINE / MEM_ONLINE / MEM_CANCEL_* release it; virtio_mem_sbm_notify_going_offline drops the
 * driver's references to fake-offline pages and adds them back to managed_pages so offline_pages
 * can take them, virtio_mem_sbm_notify_cancel_offline takes them again), virtio_mem_online_page_cb
 * (onlining frees only plugged subblocks; unplugged ones stay fake-offline, refcount 1 from memmap
 * init, virtio_mem_set_fake_offline(onlined = false)).
 *
 * Profile switches: virtioMemSubblock ('max-order': MAX_ORDER-1 subblocks, <= v5.18;
 * 'pageblock': v5.19+), virtioMemRetries (attempts per alloc_contig_range on ZONE_MOVABLE).
 * Offline (added, not removed) blocks: virtio_mem_sbm_unplug_any_sb_offline (unplugged at the
 * device, marked UNUSED and removed with remove_memory once none is plugged) and the
 * OFFLINE_PARTIAL plug pass (plugged at the device, freed when onlined).
 * virtio_mem_sbm_notify_going_online refuses (NOTIFY_BAD: online_pages fails with -EPERM) to online
 * a block that is not OFFLINE(_PARTIAL): reachable for a block the offline pass marked UNUSED and
 * is removing with hotplug_mutex dropped, when an admin's online_pages already holds the hotplug
 * lock and waits for hotplug_mutex; vm->hotplug_active makes MEM_CANCEL_* release hotplug_mutex
 * only when virtio-mem took it for the MEM_GOING_*.
 * Not modelled: add_memory failing (the PLUGGED state), vm->removing, Big Block Mode, the device's
 * own refusal of requests (and the fake-online of the pages taken for a refused unplug), the sleep
 * in virtio_mem_send_request while the device answers (no yield there), the retry timer (the
 * caller issues another unplug), the device block size (taken as the subblock size).
 */
import type { Kernel } from './machine.js';
import { fingerprintPart } from './fingerprint.js';
import { Mutex, flat, mutexLock, mutexUnlock, type KGen } from './sched.js';
import { allocContigRange, freeContigRange } from './contig.js';
import { clearPage } from './page_alloc.js';
import { blockState, genericOnlinePage, hotplugState, offlineAndRemoveMemory, onlinePagesRange, removeMemory, type MemAction } from './memory_hotplug.js';
import { ConfigError, ENOMEM, KernelBug, MIGRATE_MOVABLE, PG_offline } from './types.js';

export interface VirtioMemState {
  start: number;
  end: number;
  sbPages: number;
  /** per subblock: 1 plugged, 0 unplugged */
  plugged: Uint8Array;
  /** allocation ids holding unplugged subblocks of online blocks, per subblock */
  held: (string | null)[];
  /**
   * Per subblock: 1 while its pages are PageDirty, i.e. kept fake-offline by the online_page
   * callback (virtio_mem_set_fake_offline(..., onlined = false)) rather than taken with
   * alloc_contig_range: fake-online hands them to generic_online_page instead of free_contig_range.
   */
  kept: Uint8Array;
  /** counters of the last request, for reports */
  stats: VirtioMemStats;
  seq: number;
  /** vm->hotplug_mutex: protects the driver state against its memory notifier / online_page callback */
  lock: Mutex;
  /**
   * vm->hotplug_active: the notifier took hotplug_mutex for a MEM_GOING_* (and kept it, a refused
   * MEM_GOING_ONLINE included); MEM_CANCEL_* releases it only then (another notifier may have
   * vetoed the action before virtio-mem saw its MEM_GOING_*).
   */
  hotplugActive: boolean;
  /**
   * Per memory block of the device: 1 while the block is still added (offline) but sbm.mb_states
   * already says VIRTIO_MEM_SBM_MB_UNUSED: virtio_mem_sbm_unplug_any_sb_offline marks a fully
   * unplugged offline block so before dropping hotplug_mutex around remove_memory, "to hinder the
   * block from getting onlined" (virtio_mem_sbm_notify_going_online refuses it). Removed blocks
   * are UNUSED through the hotplug state; other states are derived (sbmState).
   */
  mbUnused: Uint8Array;
  /**
   * vm->wq (virtio_mem_run_wq): the only caller of virtio_mem_plug_request / unplug_request; a
   * work item is non-reentrant, so one request runs at a time even while hotplug_mutex is dropped.
   */
  wq: Mutex;
}

export interface VirtioMemStats {
  /** alloc_contig_range calls made */
  attempts: number;
  /** failed alloc_contig_range calls, by errno */
  failures: Record<string, number>;
  /** "alloc_contig_range: [s, e) PFNs busy"-style ranges that failed */
  busyRanges: string[];
}

export function virtioMemState(k: Kernel): VirtioMemState {
  const s = k.ext.virtioMem as VirtioMemState | undefined;
  if (!s) throw new ConfigError(`config '${k.cfg.name}' has no virtio-mem device`);
  return s;
}

function subblockPages(k: Kernel): number {
  return k.sw.virtioMemSubblock === 'max-order' ? Math.max(1 << k.maxOrder, 1 << k.pageblockOrder) : 1 << k.pageblockOrder;
}

/** virtio_mem_fake_offline(): the driver's retry loop around alloc_contig_range. */
function* fakeOffline(k: Kernel, s: VirtioMemState, pfn: number, nr: number): KGen<string> {
  const movable = k.zoneOf(pfn)?.isMovable() ?? false;
  const tries = Math.max(1, k.sw.virtioMemRetries);
  let rc = '-EBUSY';
  for (let i = 0; i < tries; i++) {
    const id = `@virtio-mem:${s.seq++}`;
    s.stats.attempts++;
    rc = yield* flat(allocContigRange(k, pfn, pfn + nr, MIGRATE_MOVABLE, { id, kind: 'virtio-mem' }));
    if (rc === '0') {
      setFakeOffline(k, pfn, nr, id);
      return '0';
    }
    s.stats.failures[rc] = (s.stats.failures[rc] ?? 0) + 1;
    s.stats.busyRanges.push(`[${pfn.toString(16)}, ${(pfn + nr).toString(16)})`);
    if (rc === ENOMEM) return rc;
    if (!movable) break;
    yield 'virtio_mem_fake_offline:retry';
  }
  return '-EBUSY';
}

/** virtio_mem_set_fake_offline(): PageOffline, the reference stays with the driver; managed--. */
function setFakeOffline(k: Kernel, pfn: number, nr: number, id: string): void {
  k.mm.setFlagsRange(pfn, pfn + nr, 0xffff, PG_offline);
  const z = k.zoneOf(pfn);
  if (z) z.managedPages -= nr;
  const s = virtioMemState(k);
  const first = (pfn - s.start) / s.sbPages;
  for (let i = 0; i < nr / s.sbPages; i++) {
    s.plugged[first + i] = 0;
    s.held[first + i] = i === 0 ? id : '';
  }
}

/**
 * virtio_mem_fake_online() of subblocks [sb, sb + count) (6.1 drivers/virtio/virtio_mem.c:1121):
 * plug them, clear PageOffline and free the pages: free_contig_range() for pages the driver took
 * with alloc_contig_range, generic_online_page() for pages the online_page callback kept
 * (PageDirty: never handed out, they bypass the pcp lists to the tail of the free lists). The
 * driver holds unplugged subblocks as allocations (one per alloc_contig_range, or per subblock
 * when onlining found them unplugged); one that reaches outside the run is dropped and its other
 * subblocks are held again, one allocation each.
 */
function* fakeOnline(k: Kernel, s: VirtioMemState, sb: number, count: number): KGen<void> {
  let i = sb;
  while (i > 0 && s.held[i] === '') i--;
  for (; i < sb + count; ) {
    const id = s.held[i];
    const al = id ? k.lookup(id) : undefined;
    if (!al) {
      i++;
      continue;
    }
    const n = al.nrPages / s.sbPages;
    k.dropAllocation(al.handle);
    for (let j = i; j < i + n; j++) {
      s.held[j] = null;
      if (j < sb || j >= sb + count) holdSubblock(k, s, j);
    }
    const lo = Math.max(i, sb);
    const hi = Math.min(i + n, sb + count);
    const pfn = s.start + lo * s.sbPages;
    const nr = (hi - lo) * s.sbPages;
    k.mm.setFlagsRange(pfn, pfn + nr, ~PG_offline & 0xffff, 0);
    const z = k.zoneOf(pfn);
    s.plugged.fill(1, lo, hi);
    if (s.kept[lo]) {
      // (a kept subblock is held alone: holdSubblock per subblock in onlinePage)
      s.kept[lo] = 0;
      const freed = onlineKept(k, pfn, nr);
      if (z) z.managedPages += freed;
    } else {
      if (z) z.managedPages += nr;
      freeContigRange(k, pfn, nr);
    }
    yield 'virtio_mem_fake_online';
    i += n;
  }
}

/** How many subblocks of the memory block at `b` are plugged (virtio_mem_sbm_test_sb_plugged). */
function pluggedIn(k: Kernel, s: VirtioMemState, b: number): number {
  const [first, n] = subblocksOf(s, b, k.cfg.memoryBlockPages);
  let plugged = 0;
  for (let i = first; i < first + n; i++) plugged += s.plugged[i];
  return plugged;
}

function blockOf(k: Kernel, pfn: number): number {
  return Math.floor(pfn / k.cfg.memoryBlockPages);
}

/** Try to unplug a whole memory block: one alloc_contig_range, then offline_and_remove_memory. */
function* unplugWholeBlock(k: Kernel, s: VirtioMemState, bstart: number): KGen<string> {
  const mbp = k.cfg.memoryBlockPages;
  const rc = yield* fakeOffline(k, s, bstart, mbp);
  if (rc !== '0') return rc;
  yield* tryRemoveUnpluggedBlock(k, s, bstart);
  return '0';
}

/**
 * virtio_mem_sbm_try_remove_unplugged_mb(): offline and remove a fully unplugged block. The driver
 * drops hotplug_mutex around offline_and_remove_memory (its own memory notifier takes it); the
 * references to the fake-offline pages are dropped by MEM_GOING_OFFLINE, under the hotplug lock,
 * and taken back by MEM_CANCEL_OFFLINE. The request itself (s.wq) stays held: no plug request can
 * fake-online subblocks of the block in this window (the driver's work item is non-reentrant).
 */
function* tryRemoveUnpluggedBlock(k: Kernel, s: VirtioMemState, bstart: number): KGen<void> {
  const mbp = k.cfg.memoryBlockPages;
  if (pluggedIn(k, s, bstart) > 0) return;
  mutexUnlock(s.lock);
  const rc = yield* offlineAndRemoveMemory(k, bstart, mbp);
  yield* mutexLock(k, s.lock);
  if (rc !== '0') k.events.push(`virtio-mem: offline_and_remove_memory of [${bstart}, ${bstart + mbp}) failed (${rc})`);
}

/** Subblocks of [start, start + nr) inside the device range, as [first, count). */
function subblocksOf(s: VirtioMemState, start: number, nr: number): [number, number] {
  const a = Math.max(start, s.start);
  const e = Math.min(start + nr, s.end);
  return a < e ? [(a - s.start) / s.sbPages, (e - a) / s.sbPages] : [0, 0];
}

/**
 * virtio_mem_sbm_notify_going_offline() -> virtio_mem_fake_offline_going_offline() per unplugged
 * subblock: adjust_managed_page_count(+nr) and page_ref_dec_and_test() on every page (they stay
 * PageOffline; offline_pages skips PageOffline pages with refcount 0). The held allocations end.
 */
function goingOffline(k: Kernel, s: VirtioMemState, first: number, count: number): void {
  for (let i = first; i < first + count; i++) {
    if (s.plugged[i]) continue;
    const id = s.held[i];
    const al = id ? k.lookup(id) : undefined;
    if (al) k.dropAllocation(al.handle);
    const pfn = s.start + i * s.sbPages;
    k.mm.refcount.fill(0, pfn, pfn + s.sbPages);
    k.mm.owner.fill(0, pfn, pfn + s.sbPages);
    s.held[i] = null;
    const z = k.zoneOf(pfn);
    if (z) z.managedPages += s.sbPages;
  }
}

/** The driver's reference on an unplugged subblock (one allocation per subblock). */
function holdSubblock(k: Kernel, s: VirtioMemState, i: number): void {
  const pfn = s.start + i * s.sbPages;
  const id = `@virtio-mem:${s.seq++}`;
  const al = k.newAllocation({ id, kind: 'virtio-mem', pfn, nrPages: s.sbPages, order: 31 - Math.clz32(s.sbPages), migratetype: MIGRATE_MOVABLE, pinned: false });
  k.mm.setFlagsRange(pfn, pfn + s.sbPages, 0xffff, PG_offline);
  k.mm.refcount.fill(1, pfn, pfn + s.sbPages);
  k.mm.owner.fill(al.handle, pfn, pfn + s.sbPages);
  s.held[i] = id;
}

/** virtio_mem_fake_offline_cancel_offline(): page_ref_inc() again, adjust_managed_page_count(-nr). */
function cancelOffline(k: Kernel, s: VirtioMemState, first: number, count: number): void {
  for (let i = first; i < first + count; i++) {
    if (s.plugged[i] || s.held[i] !== null) continue;
    holdSubblock(k, s, i);
    const z = k.zoneOf(s.start + i * s.sbPages);
    if (z) z.managedPages -= s.sbPages;
  }
}

/**
 * virtio_mem_sbm_notify_going_online() (drivers/virtio/virtio_mem.c, 6.1 l. 826, same in 6.12):
 * only an OFFLINE or OFFLINE_PARTIAL block may be onlined; any other state (UNUSED: a block the
 * driver is removing) is NOTIFY_BAD, "memory block onlining denied". NOTIFY_BAD is -EPERM to
 * online_pages (notifier_to_errno: "NOTIFY_BAD <=> EPERM").
 */
function notifyGoingOnline(k: Kernel, s: VirtioMemState, b: number): string {
  const st = sbmState(k, s, b);
  if (st === Sbm.OFFLINE_PARTIAL || st === Sbm.OFFLINE) return '0';
  k.events.push(`virtio-mem: memory block onlining denied [${b}, ${b + k.cfg.memoryBlockPages})`);
  return '-EPERM';
}

/**
 * virtio_mem_memory_notifier_cb() (6.1 l. 949): hotplug_mutex is taken by MEM_GOING_* and held to
 * the outcome (MEM_OFFLINE / MEM_ONLINE, or MEM_CANCEL_* when vm->hotplug_active); a refused
 * MEM_GOING_ONLINE keeps it too, online_pages' MEM_CANCEL_ONLINE releases it. (vm->removing,
 * device removal, is not modelled.)
 */
function* memoryNotifier(k: Kernel, action: MemAction, start: number, nr: number): KGen<string> {
  const s = virtioMemState(k);
  const [first, count] = subblocksOf(s, start, nr);
  if (!count) return '0';
  let rc = '0';
  switch (action) {
    case 'MEM_GOING_OFFLINE':
      yield* mutexLock(k, s.lock);
      s.hotplugActive = true;
      goingOffline(k, s, first, count);
      break;
    case 'MEM_GOING_ONLINE':
      yield* mutexLock(k, s.lock);
      s.hotplugActive = true;
      rc = notifyGoingOnline(k, s, start - (start % k.cfg.memoryBlockPages));
      break;
    case 'MEM_CANCEL_OFFLINE':
      if (!s.hotplugActive) break;
      cancelOffline(k, s, first, count);
      s.hotplugActive = false;
      mutexUnlock(s.lock);
      break;
    case 'MEM_CANCEL_ONLINE':
      if (!s.hotplugActive) break;
      s.hotplugActive = false;
      mutexUnlock(s.lock);
      break;
    default: // MEM_OFFLINE, MEM_ONLINE
      // (the memmap of offline memory is initialised afresh when it is onlined: PageDirty with it)
      if (action === 'MEM_OFFLINE') s.kept.fill(0, first, first + count);
      s.hotplugActive = false;
      mutexUnlock(s.lock);
  }
  return rc;
}

/**
 * virtio_mem_online_page_cb(): chunks outside the device go to generic_online_page; inside it
 * (virtio_mem_online_page, 6.1 drivers/virtio/virtio_mem.c:1231), a fully plugged chunk is onlined
 * whole, a mixed one subblock by subblock: plugged subblocks through generic_online_page, unplugged
 * ones fake-offlined (the driver keeps the memmap init reference). Chunks are MAX_ORDER blocks,
 * never smaller than a subblock.
 */
function onlinePage(k: Kernel, pfn: number, order: number): number {
  const s = virtioMemState(k);
  const [first, count] = subblocksOf(s, pfn, 1 << order);
  if (!count) return genericOnlinePage(k, pfn, order);
  let plugged = 0;
  for (let i = first; i < first + count; i++) plugged += s.plugged[i];
  s.kept.fill(0, first, first + count);
  if (plugged === count) return genericOnlinePage(k, pfn, order);
  let freed = 0;
  for (let i = first; i < first + count; i++) {
    if (s.plugged[i]) freed += genericOnlinePage(k, s.start + i * s.sbPages, 31 - Math.clz32(s.sbPages));
    else {
      holdSubblock(k, s, i);
      s.kept[i] = 1;
    }
  }
  return freed;
}

/**
 * virtio_mem_clear_fake_offline(..., onlined = false) + generic_online_page() over naturally
 * aligned chunks of at most MAX_ORDER: the memmap init reference goes with __free_pages_core.
 */
function onlineKept(k: Kernel, pfn: number, nr: number): number {
  let freed = 0;
  for (let p = pfn; p < pfn + nr;) {
    let o = Math.min(k.maxOrder, 31 - Math.clz32(p & -p || 1 << 30));
    while (p + (1 << o) > pfn + nr) o--;
    clearPage(k, p, o);
    freed += genericOnlinePage(k, p, o);
    p += 1 << o;
  }
  return freed;
}

export interface UnplugResult {
  result: string;
  unpluggedBytes: number;
  stats: VirtioMemStats;
}

/** virtio_mem_sbm_unplug_request(): unplug up to `bytes`, memory blocks from the top down. */
export function* virtioMemUnplug(k: Kernel, bytes: number): KGen<UnplugResult> {
  const s = virtioMemState(k);
  yield* mutexLock(k, s.wq);
  yield* mutexLock(k, s.lock);
  try {
    return yield* unplugRequest(k, s, bytes);
  } finally {
    mutexUnlock(s.lock);
    mutexUnlock(s.wq);
  }
}

function* unplugRequest(k: Kernel, s: VirtioMemState, bytes: number): KGen<UnplugResult> {
  s.stats = { attempts: 0, failures: {}, busyRanges: [] };
  let nbSb = Math.floor(bytes / 4096 / s.sbPages);
  let done = 0;
  const result = (rc: string) => ({ result: rc, unpluggedBytes: done * s.sbPages * 4096, stats: s.stats });
  if (!nbSb) return result('0');
  // mb_states[]: offline blocks first (nothing to migrate), then partially plugged online ones (to
  // remove whole blocks), ZONE_MOVABLE before the kernel zones; each pass from the highest block
  // down (virtio_mem_sbm_for_each_mb_rev, the state read when the walk reaches a block).
  for (const pass of UNPLUG_PASSES) {
    for (let b = s.end - k.cfg.memoryBlockPages; b >= s.start; b -= k.cfg.memoryBlockPages) {
      if (sbmState(k, s, b) !== pass) continue;
      const offline = pass === Sbm.OFFLINE_PARTIAL || pass === Sbm.OFFLINE;
      const rc = offline ? yield* unplugAnySbOffline(k, s, b, nbSb) : yield* unplugAnySbOnline(k, s, b, nbSb);
      nbSb -= rc.unplugged;
      done += rc.unplugged;
      if (rc.result !== '0' || nbSb === 0) return result(rc.result);
      mutexUnlock(s.lock);
      yield 'virtio_mem_sbm_unplug_request:cond_resched';
      yield* mutexLock(k, s.lock);
    }
  }
  // what could not be unplugged was busy: the device is told to retry later
  return result(nbSb ? '-EBUSY' : '0');
}

/**
 * A device block's virtio_mem_sbm_mb_states, as the requests' passes see it: added and offline, or
 * online (by zone), each partially plugged or not; UNUSED when removed.
 */
const enum Sbm { UNUSED, OFFLINE_PARTIAL, OFFLINE, MOVABLE_PARTIAL, KERNEL_PARTIAL, MOVABLE, KERNEL }

const UNPLUG_PASSES = [Sbm.OFFLINE_PARTIAL, Sbm.OFFLINE, Sbm.MOVABLE_PARTIAL, Sbm.KERNEL_PARTIAL, Sbm.MOVABLE, Sbm.KERNEL];
const PLUG_PASSES = [Sbm.KERNEL_PARTIAL, Sbm.MOVABLE_PARTIAL, Sbm.OFFLINE_PARTIAL];

function sbmState(k: Kernel, s: VirtioMemState, b: number): Sbm {
  const blk = blockOf(k, b);
  if (hotplugState(k).removed.has(blk)) return Sbm.UNUSED;
  const state = blockState(k, blk);
  // (a block whose subblocks are all unplugged but that could not be removed stays *_PARTIAL)
  const partial = pluggedIn(k, s, b) < k.cfg.memoryBlockPages / s.sbPages;
  if (state === 'offline') {
    if (s.mbUnused[(b - s.start) / k.cfg.memoryBlockPages]) return Sbm.UNUSED;
    return partial ? Sbm.OFFLINE_PARTIAL : Sbm.OFFLINE;
  }
  if (state !== 'online') return Sbm.UNUSED;
  if (k.zoneOf(b)?.isMovable()) return partial ? Sbm.MOVABLE_PARTIAL : Sbm.MOVABLE;
  return partial ? Sbm.KERNEL_PARTIAL : Sbm.KERNEL;
}

/**
 * virtio_mem_sbm_unplug_any_sb_offline() (6.1 l. 1870): the block is offline, nothing to take from
 * Linux: subblocks are unplugged at the device from the last plugged one down (unplug_any_sb_raw);
 * a block left with none plugged is marked UNUSED, so that virtio_mem_sbm_notify_going_online
 * refuses an online racing with its removal, and removed with hotplug_mutex dropped around
 * remove_memory ("this should never fail": BUG_ON).
 */
function* unplugAnySbOffline(k: Kernel, s: VirtioMemState, b: number, nbSb: number): KGen<{ result: string; unplugged: number }> {
  const [first, n] = subblocksOf(s, b, k.cfg.memoryBlockPages);
  let unplugged = 0;
  for (let i = first + n - 1; i >= first && unplugged < nbSb; i--) {
    if (!s.plugged[i]) continue;
    s.plugged[i] = 0;
    unplugged++;
  }
  if (pluggedIn(k, s, b) > 0) return { result: '0', unplugged };
  const idx = (b - s.start) / k.cfg.memoryBlockPages;
  s.mbUnused[idx] = 1;
  mutexUnlock(s.lock);
  const rc = yield* removeMemory(k, b, k.cfg.memoryBlockPages);
  if (rc !== '0') throw new KernelBug(`virtio_mem_sbm_unplug_any_sb_offline: BUG_ON(remove_memory of [${b}, ${b + k.cfg.memoryBlockPages}) = ${rc})`);
  // removed: UNUSED through the hotplug state from here on
  s.mbUnused[idx] = 0;
  yield* mutexLock(k, s.lock);
  return { result: '0', unplugged };
}

/**
 * virtio_mem_sbm_unplug_any_sb_online(): the whole block in one alloc_contig_range when it is fully
 * plugged and the request wants that much, else single subblocks from the last one down (-EBUSY
 * ones skipped, any other error ends the request); a block left fully unplugged is removed.
 */
function* unplugAnySbOnline(k: Kernel, s: VirtioMemState, b: number, nbSb: number): KGen<{ result: string; unplugged: number }> {
  const [first, sbPerMb] = subblocksOf(s, b, k.cfg.memoryBlockPages);
  if (nbSb >= sbPerMb && pluggedIn(k, s, b) === sbPerMb) {
    const r = yield* unplugWholeBlock(k, s, b);
    if (r === '0') return { result: '0', unplugged: sbPerMb };
    if (r !== '-EBUSY') return { result: r, unplugged: 0 };
  }
  let unplugged = 0;
  for (let i = sbPerMb - 1; i >= 0 && unplugged < nbSb; i--) {
    if (!s.plugged[first + i]) continue;
    const r = yield* fakeOffline(k, s, b + i * s.sbPages, s.sbPages);
    if (r === '-EBUSY') continue;
    if (r !== '0') return { result: r, unplugged };
    unplugged++;
  }
  yield* tryRemoveUnpluggedBlock(k, s, b);
  return { result: '0', unplugged };
}

/**
 * virtio_mem_sbm_plug_request(): subblocks of partially plugged online blocks first (kernel zones
 * before ZONE_MOVABLE, lowest block first), then unused (removed) blocks, lowest first, each
 * plugged with as many subblocks as the request still wants and added back; no block beyond the
 * device region can be prepared, so a request asking for more ends with -ENOSPC.
 */
export function* virtioMemPlug(k: Kernel, bytes: number): KGen<{ result: string; pluggedBytes: number }> {
  const s = virtioMemState(k);
  yield* mutexLock(k, s.wq);
  yield* mutexLock(k, s.lock);
  try {
    return yield* plugRequest(k, s, bytes);
  } finally {
    mutexUnlock(s.lock);
    mutexUnlock(s.wq);
  }
}

function* plugRequest(k: Kernel, s: VirtioMemState, bytes: number): KGen<{ result: string; pluggedBytes: number }> {
  const mbp = k.cfg.memoryBlockPages;
  let nbSb = Math.floor(bytes / 4096 / s.sbPages);
  let done = 0;
  const result = (rc: string) => ({ result: rc, pluggedBytes: done * s.sbPages * 4096 });
  if (!nbSb) return result('0');
  for (const pass of PLUG_PASSES) {
    for (let b = s.start; b < s.end; b += mbp) {
      if (sbmState(k, s, b) !== pass) continue;
      const got = yield* plugAnySb(k, s, b, nbSb, pass !== Sbm.OFFLINE_PARTIAL);
      nbSb -= got;
      done += got;
      if (nbSb === 0) return result('0');
      yield 'virtio_mem_sbm_plug_request:cond_resched';
    }
  }
  for (let b = s.start; b < s.end; b += mbp) {
    if (!hotplugState(k).removed.has(blockOf(k, b))) continue;
    // virtio_mem_sbm_plug_and_add_mb(): plug min(nb_sb, sbs_per_mb) subblocks from the first, then
    // add_memory (auto-onlined: the online_page callback frees only the plugged subblocks);
    // hotplug_mutex is not held from here on (the memory notifier takes it).
    const [first, sbPerMb] = subblocksOf(s, b, mbp);
    const count = Math.min(nbSb, sbPerMb);
    for (let i = 0; i < count; i++) s.plugged[first + i] = 1;
    mutexUnlock(s.lock);
    const rc = yield* onlinePagesRange(k, b, mbp, undefined, true);
    yield* mutexLock(k, s.lock);
    // add_memory_resource() ignores what onlining (online_memory_block) returns: a vetoed online
    // leaves the block added and offline with its subblocks plugged, for an admin to online
    if (rc !== '0') k.events.push(`virtio-mem: onlining the added block [${b}, ${b + mbp}) failed (${rc}); it stays offline`);
    nbSb -= count;
    done += count;
    if (nbSb === 0) return result('0');
  }
  return result('-ENOSPC');
}

/**
 * virtio_mem_sbm_plug_any_sb(): from the first unplugged subblock up, runs of consecutive unplugged
 * subblocks (no longer than the request still wants) are plugged, and fake-onlined when the block
 * is online (an offline block's plugged subblocks are freed when it is onlined). Returns the
 * number plugged.
 */
function* plugAnySb(k: Kernel, s: VirtioMemState, b: number, nbSb: number, online: boolean): KGen<number> {
  const [first, n] = subblocksOf(s, b, k.cfg.memoryBlockPages);
  let got = 0;
  while (got < nbSb) {
    let sb = first;
    while (sb < first + n && s.plugged[sb]) sb++;
    if (sb === first + n) break;
    let count = 1;
    while (count < nbSb - got && sb + count < first + n && !s.plugged[sb + count]) count++;
    if (online) yield* fakeOnline(k, s, sb, count);
    else s.plugged.fill(1, sb, sb + count);
    got += count;
  }
  return got;
}

/** Bytes of the region currently plugged (the device's plugged_size). */
export function virtioMemPluggedBytes(k: Kernel): number {
  const s = virtioMemState(k);
  return s.plugged.reduce((a, v) => a + v, 0) * s.sbPages * 4096;
}

export function installVirtioMem(k: Kernel): void {
  const r = k.cfg.virtioMem;
  if (!r) return;
  const sbPages = subblockPages(k);
  if (k.cfg.memoryBlockPages % sbPages) throw new ConfigError(`config '${k.cfg.name}': memory block smaller than a virtio-mem subblock`);
  const n = (r.endPfn - r.startPfn) / sbPages;
  const s: VirtioMemState = {
    start: r.startPfn, end: r.endPfn, sbPages, plugged: new Uint8Array(n).fill(1), held: new Array(n).fill(null), kept: new Uint8Array(n),
    stats: { attempts: 0, failures: {}, busyRanges: [] }, seq: 0, lock: new Mutex('virtio_mem_hotplug_mutex'),
    hotplugActive: false, mbUnused: new Uint8Array((r.endPfn - r.startPfn) / k.cfg.memoryBlockPages), wq: new Mutex('virtio_mem_wq'),
  };
  k.ext.virtioMem = s;
  // register_memory_notifier() + set_online_page_callback() (virtio_mem_init_hotplug)
  const hp = hotplugState(k);
  hp.notifiers.push(memoryNotifier);
  hp.onlinePage = onlinePage;
  // (blocks marked UNUSED while still added are listed after the subblocks, as `,u<index>`, and
  // vm->hotplug_active as `,a`: it decides what a later MEM_CANCEL_* does)
  const unused = () => Array.from(s.mbUnused.keys()).filter((i) => s.mbUnused[i]).map((i) => `,u${i}`).join('');
  k.fingerprintParts.push(fingerprintPart(() => `virtio-mem{${Array.from(s.plugged).join('')}${unused()}${s.hotplugActive ? ',a' : ''}}`, {
    arrays: [s.plugged, s.mbUnused, s.kept],
    hash: (h) => h.add(s.hotplugActive ? 1 : 0),
  }));
}
