/**
 * virtio-mem in Sub Block Mode (drivers/virtio/virtio_mem.c): a device-managed region of memory
 * blocks, each split into subblocks; unplug takes subblocks from the guest with
 * alloc_contig_range(MIGRATE_MOVABLE) and fake-offlines them (PageOffline, the driver keeps a
 * reference); plug gives them back.
 *
 * Kernel functions modelled: virtio_mem_sbm_unplug_request / virtio_mem_sbm_unplug_any_sb_online
 * (memory blocks from the highest address down; first the whole block in one alloc_contig_range,
 * then single subblocks from the last one down, -EBUSY subblocks skipped, any other error stops
 * the request), virtio_mem_fake_offline (up to 5 alloc_contig_range attempts on ZONE_MOVABLE,
 * one elsewhere, -ENOMEM gives up at once), virtio_mem_set_fake_offline, virtio_mem_fake_online,
 * virtio_mem_sbm_try_remove_unplugged_mb (offline_and_remove_memory of a fully unplugged block:
 * the driver drops its references in MEM_GOING_OFFLINE so offline skips the PageOffline pages),
 * virtio_mem_sbm_plug_request (removed blocks are added back and onlined to ZONE_MOVABLE first,
 * then unplugged subblocks are fake-onlined, lowest address first).
 *
 * Profile switches: virtioMemSubblock ('max-order': MAX_ORDER-1 subblocks, <= v5.18;
 * 'pageblock': v5.19+), virtioMemRetries (attempts per alloc_contig_range on ZONE_MOVABLE).
 * Not modelled: Big Block Mode, the device's own refusal of requests, the retry timer (the caller
 * issues another unplug), the device block size (taken as the subblock size).
 */
import type { Kernel } from './machine.js';
import { Mutex, mutexLock, mutexUnlock, type KGen } from './sched.js';
import { allocContigRange, freeContigRange } from './contig.js';
import { blockState, hotplugState, offlineAndRemoveMemory, onlinePagesRange } from './memory_hotplug.js';
import { ConfigError, ENOMEM, MIGRATE_MOVABLE, PG_offline } from './types.js';

export interface VirtioMemState {
  start: number;
  end: number;
  sbPages: number;
  /** per subblock: 1 plugged, 0 unplugged */
  plugged: Uint8Array;
  /** allocation ids holding unplugged subblocks of online blocks, per subblock */
  held: (string | null)[];
  /** counters of the last request, for reports */
  stats: VirtioMemStats;
  seq: number;
  /** vm->hotplug_mutex: the driver's config-change work runs one request at a time */
  lock: Mutex;
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
    rc = yield* allocContigRange(k, pfn, pfn + nr, MIGRATE_MOVABLE, { id, kind: 'virtio-mem' });
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
  for (let p = pfn; p < pfn + nr; p++) k.mm.flags[p] |= PG_offline;
  const z = k.zoneOf(pfn);
  if (z) z.managedPages -= nr;
  const s = virtioMemState(k);
  const first = (pfn - s.start) / s.sbPages;
  for (let i = 0; i < nr / s.sbPages; i++) {
    s.plugged[first + i] = 0;
    s.held[first + i] = i === 0 ? id : '';
  }
}

/** virtio_mem_fake_online(): clear PageOffline and free the pages (free_contig_range). */
function* fakeOnline(k: Kernel, s: VirtioMemState, sb: number): KGen<void> {
  let i = sb;
  while (i > 0 && s.held[i] === '') i--;
  const id = s.held[i]!;
  const al = k.lookup(id);
  if (!al) return;
  const n = al.nrPages / s.sbPages;
  for (let p = al.pfn; p < al.pfn + al.nrPages; p++) k.mm.flags[p] &= ~PG_offline;
  const z = k.zoneOf(al.pfn);
  if (z) z.managedPages += al.nrPages;
  for (let j = 0; j < n; j++) {
    s.plugged[i + j] = 1;
    s.held[i + j] = null;
  }
  k.dropAllocation(al.handle);
  freeContigRange(k, al.pfn, al.nrPages);
  yield 'virtio_mem_fake_online';
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

/** virtio_mem_sbm_try_remove_unplugged_mb(): offline and remove a fully unplugged block. */
function* tryRemoveUnpluggedBlock(k: Kernel, s: VirtioMemState, bstart: number): KGen<void> {
  const mbp = k.cfg.memoryBlockPages;
  const first = (bstart - s.start) / s.sbPages;
  const n = mbp / s.sbPages;
  for (let i = 0; i < n; i++) if (s.plugged[first + i]) return;
  // MEM_GOING_OFFLINE: the driver drops its references; the held allocations end here.
  const ids = new Set<string>();
  for (let i = 0; i < n; i++) if (s.held[first + i]) ids.add(s.held[first + i]!);
  for (let p = bstart; p < bstart + mbp; p++) k.mm.refcount[p] = 0;
  for (const id of ids) {
    const al = k.lookup(id);
    if (al) {
      for (let p = al.pfn; p < al.pfn + al.nrPages; p++) k.mm.owner[p] = 0;
      k.dropAllocation(al.handle);
    }
  }
  for (let i = 0; i < n; i++) s.held[first + i] = null;
  const z = k.zoneOf(bstart);
  if (z) z.managedPages += mbp; // offline_pages takes them off managed again
  const rc = yield* offlineAndRemoveMemory(k, bstart, mbp);
  if (rc === '0') return;
  // MEM_CANCEL_OFFLINE: the driver takes its references back; the block stays online, unplugged.
  const id = `@virtio-mem:${s.seq++}`;
  const al = k.newAllocation({ id, kind: 'virtio-mem', pfn: bstart, nrPages: mbp, order: 31 - Math.clz32(mbp), migratetype: MIGRATE_MOVABLE, pinned: false });
  for (let p = bstart; p < bstart + mbp; p++) {
    k.mm.refcount[p] = 1;
    k.mm.owner[p] = al.handle;
  }
  for (let i = 0; i < n; i++) s.held[first + i] = i === 0 ? id : '';
  if (z) z.managedPages -= mbp;
  k.events.push(`virtio-mem: offline_and_remove_memory of [${bstart}, ${bstart + mbp}) failed (${rc})`);
}

export interface UnplugResult {
  result: string;
  unpluggedBytes: number;
  stats: VirtioMemStats;
}

/** virtio_mem_sbm_unplug_request(): unplug up to `bytes`, memory blocks from the top down. */
export function* virtioMemUnplug(k: Kernel, bytes: number): KGen<UnplugResult> {
  const s = virtioMemState(k);
  yield* mutexLock(k, s.lock);
  try {
    return yield* unplugRequest(k, s, bytes);
  } finally {
    mutexUnlock(s.lock);
  }
}

function* unplugRequest(k: Kernel, s: VirtioMemState, bytes: number): KGen<UnplugResult> {
  s.stats = { attempts: 0, failures: {}, busyRanges: [] };
  const mbp = k.cfg.memoryBlockPages;
  const sbPerMb = mbp / s.sbPages;
  let nbSb = Math.floor(bytes / 4096 / s.sbPages);
  let done = 0;
  let rc = '0';
  for (let b = s.end - mbp; b >= s.start && nbSb > 0 && rc === '0'; b -= mbp) {
    if (blockState(k, blockOf(k, b)) !== 'online') continue;
    const first = (b - s.start) / s.sbPages;
    let allPlugged = true;
    for (let i = 0; i < sbPerMb; i++) if (!s.plugged[first + i]) allPlugged = false;
    if (nbSb >= sbPerMb && allPlugged) {
      const r = yield* unplugWholeBlock(k, s, b);
      if (r === '0') {
        nbSb -= sbPerMb;
        done += sbPerMb;
        continue;
      }
      if (r !== '-EBUSY') {
        rc = r;
        break;
      }
    }
    for (let i = sbPerMb - 1; i >= 0 && nbSb > 0; i--) {
      if (!s.plugged[first + i]) continue;
      const r = yield* fakeOffline(k, s, b + i * s.sbPages, s.sbPages);
      if (r === '-EBUSY') continue;
      if (r !== '0') {
        rc = r;
        break;
      }
      nbSb--;
      done++;
    }
    if (rc === '0') yield* tryRemoveUnpluggedBlock(k, s, b);
  }
  return { result: rc === '0' && nbSb > 0 && done === 0 ? '-EBUSY' : rc, unpluggedBytes: done * s.sbPages * 4096, stats: s.stats };
}

/** virtio_mem_sbm_plug_request(): removed blocks are added and onlined first, lowest first. */
export function* virtioMemPlug(k: Kernel, bytes: number): KGen<{ result: string; pluggedBytes: number }> {
  const s = virtioMemState(k);
  yield* mutexLock(k, s.lock);
  try {
    return yield* plugRequest(k, s, bytes);
  } finally {
    mutexUnlock(s.lock);
  }
}

function* plugRequest(k: Kernel, s: VirtioMemState, bytes: number): KGen<{ result: string; pluggedBytes: number }> {
  const mbp = k.cfg.memoryBlockPages;
  const sbPerMb = mbp / s.sbPages;
  let nbSb = Math.floor(bytes / 4096 / s.sbPages);
  let done = 0;
  for (let b = s.start; b < s.end && nbSb > 0; b += mbp) {
    if (!hotplugState(k).removed.has(blockOf(k, b)) || nbSb < sbPerMb) continue;
    const rc = yield* onlinePagesRange(k, b, mbp, undefined, true);
    if (rc !== '0') return { result: rc, pluggedBytes: done * s.sbPages * 4096 };
    const first = (b - s.start) / s.sbPages;
    for (let i = 0; i < sbPerMb; i++) s.plugged[first + i] = 1;
    nbSb -= sbPerMb;
    done += sbPerMb;
  }
  for (let sb = 0; sb < s.plugged.length && nbSb > 0; sb++) {
    if (s.plugged[sb] || s.held[sb] === null) continue;
    const before = s.plugged.reduce((a, v) => a + v, 0);
    yield* fakeOnline(k, s, sb);
    const got = s.plugged.reduce((a, v) => a + v, 0) - before;
    nbSb -= got;
    done += got;
  }
  return { result: '0', pluggedBytes: done * s.sbPages * 4096 };
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
    start: r.startPfn, end: r.endPfn, sbPages, plugged: new Uint8Array(n).fill(1), held: new Array(n).fill(null),
    stats: { attempts: 0, failures: {}, busyRanges: [] }, seq: 0, lock: new Mutex('virtio_mem_hotplug_mutex'),
  };
  k.ext.virtioMem = s;
  k.fingerprintParts.push(() => `virtio-mem{${Array.from(s.plugged).join('')}}`);
}
