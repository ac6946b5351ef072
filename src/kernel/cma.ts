/**
 * The Contiguous Memory Allocator (mm/cma.c): areas from the machine config, their bitmaps,
 * cma_alloc, cma_release, cma_pages_valid. Activation (cma_activate_area: every pageblock typed
 * MIGRATE_CMA and freed to buddy) happens at boot in page_alloc.ts bootMemory.
 *
 * cma_alloc(cma, count, align) [kernel-spec §10.2]: under cma->lock find the next zero area of the
 * bitmap (bitmap_find_next_zero_area_off with the alignment mask/offset) and set it; then, under
 * the global cma_mutex (a sleeping lock held across alloc_contig_range, which serialises the
 * alloc_contig_range calls of all areas, v5.10 .. 6.12), alloc_contig_range(pfn, pfn + count,
 * MIGRATE_CMA). On failure the bits are cleared; -EBUSY moves on to the next aligned position,
 * anything else stops. Each position is tried once.
 *
 * Profile switches: cmaAlign — 'max-order' (<= v5.18: base and size multiples of
 * max(MAX_ORDER_NR_PAGES, pageblock_nr_pages)) or 'pageblock' (v5.19, CMA_MIN_ALIGNMENT_PAGES);
 * an area violating it is a ConfigError. cma->lock is a mutex before v5.13 and a spinlock after;
 * either way it is never held across a yield here, so both are one atomic section.
 */
import type { Kernel } from './machine.js';
import { fingerprintPart } from './fingerprint.js';
import { Mutex, flat, mutexLock, mutexLockFree, mutexUnlock, type KGen } from './sched.js';
import { allocContigRange, freeContigRange } from './contig.js';
import { ConfigError, EBUSY, MIGRATE_CMA, type Errno } from './types.js';

export interface CmaArea {
  name: string;
  basePfn: number;
  count: number;
  orderPerBit: number;
  /** one byte per bit: 1 = allocated or being allocated */
  bitmap: Uint8Array;
}

export interface CmaState {
  areas: CmaArea[];
  /** the global cma_mutex around alloc_contig_range */
  mutex: Mutex;
}

export function cmaState(k: Kernel): CmaState {
  return k.ext.cma as CmaState;
}

/** The area a program names: by name or by index. */
export function findCmaArea(k: Kernel, area: string | number): number {
  const s = cmaState(k);
  if (typeof area === 'number') return area >= 0 && area < s.areas.length ? area : -1;
  const byName = s.areas.findIndex((a) => a.name === area);
  if (byName >= 0) return byName;
  return /^\d+$/.test(area) && Number(area) < s.areas.length ? Number(area) : -1;
}

/**
 * bitmap_find_next_zero_area_off(): first index >= start, aligned per mask/offset, of nr zero bits.
 * The bitmap holds one byte per bit, 0 or 1 (nothing else is stored). find_next_zero_bit and
 * find_next_bit look at four bits a read (cma_alloc retries one position further each time, each
 * over the whole window), through `words`, the bitmap's word view (wordsOf). The caller may know
 * the bits [clearLo, clearHi) to be 0: a window starting among them is read from clearHi on.
 */
export function findNextZeroArea(map: Uint8Array, start: number, nr: number, mask: number, offset: number, words = wordsOf(map), clearLo = 0, clearHi = 0): number {
  const size = map.length;
  for (;;) {
    let index = nextByte(map, words, start, size, 1, ALL_SET); // find_next_zero_bit (size if none)
    index = ((index + offset + mask) & ~mask) - offset;
    const end = index + nr;
    if (end > size) return end;
    // find_next_bit(map, end, index), past the bits known to be 0
    const from = index >= clearLo && index < clearHi ? Math.min(clearHi, end) : index;
    const i = nextByte(map, words, from, end, 0, 0);
    if (i >= end) return index;
    start = i + 1;
  }
}

/** Four bits of 1 as a word of the bitmap. */
const ALL_SET = 0x01010101;

/** The bitmap four bytes a word (bitmaps are whole ArrayBuffers: no byteOffset), made once per bitmap. */
const WORDS = new WeakMap<Uint8Array, Uint32Array>();

function wordsOf(map: Uint8Array): Uint32Array {
  let w = WORDS.get(map);
  if (!w) WORDS.set(map, (w = new Uint32Array(map.buffer, map.byteOffset, map.length >>> 2)));
  return w;
}

/**
 * The first i of [i, end) whose byte is not `skip`, or end (at least i): whole words equal to
 * `skipWord` (four `skip` bytes) are stepped over, the bytes before and after them one by one.
 */
function nextByte(map: Uint8Array, words: Uint32Array, i: number, end: number, skip: number, skipWord: number): number {
  while (i < end && (i & 3) !== 0 && map[i] === skip) i++;
  if (i < end && (i & 3) === 0) {
    let w = i >>> 2;
    const we = end >>> 2;
    while (w < we && words[w] === skipWord) w++;
    i = w << 2;
  }
  while (i < end && map[i] === skip) i++;
  return i;
}

/** cma_bitmap_aligned_mask / _offset for an alignment order. */
function alignedMask(a: CmaArea, align: number): number {
  return align <= a.orderPerBit ? 0 : (1 << (align - a.orderPerBit)) - 1;
}

function alignedOffset(a: CmaArea, align: number): number {
  return (a.basePfn & ((1 << align) - 1)) >> a.orderPerBit;
}

/** cma_bitmap_pages_to_bits() */
function pagesToBits(a: CmaArea, pages: number): number {
  return Math.ceil(pages / (1 << a.orderPerBit));
}

/** cma_clear_bitmap(): rounded to whole bits (the granularity hazard of §10.3). */
function clearBitmap(a: CmaArea, pfn: number, count: number): void {
  const first = (pfn - a.basePfn) >> a.orderPerBit;
  a.bitmap.fill(0, first, first + pagesToBits(a, count));
}

export interface CmaAllocResult {
  /** first pfn, -1 on failure */
  pfn: number;
  /** '0', or the error of the last alloc_contig_range ('-ENOMEM' when no position was ever free) */
  err: Errno;
  /** positions tried */
  tries: number;
}

/**
 * cma_alloc(area, count, align): the pages are recorded as Allocation `id` (kind 'cma'),
 * every pfn refcount 1. `align` is an order, as in the kernel.
 */
export function* cmaAlloc(k: Kernel, areaIdx: number, count: number, align: number, id: string): KGen<CmaAllocResult> {
  const s = cmaState(k);
  const a = s.areas[areaIdx];
  if (!a || count <= 0 || count > a.count) return { pfn: -1, err: '-EINVAL', tries: 0 };
  const mask = alignedMask(a, align);
  const offset = alignedOffset(a, align);
  const nbits = pagesToBits(a, count);
  let start = 0;
  let err: Errno = '-ENOMEM';
  let tries = 0;
  const who = { id, kind: 'cma' } as const; // one owner record for every position tried
  const words = wordsOf(a.bitmap); // (looked up once, not per position)
  // The bits of the position tried last, cleared in this very cma->lock section (no yield since):
  // the next window, one position further, need not read them again.
  let clearLo = 0;
  let clearHi = 0;
  for (;;) {
    // cma->lock section: find and claim the bits.
    const bitno = findNextZeroArea(a.bitmap, start, nbits, mask, offset, words, clearLo, clearHi);
    if (bitno >= a.bitmap.length) break;
    a.bitmap.fill(1, bitno, bitno + nbits);
    const pfn = a.basePfn + (bitno << a.orderPerBit);
    yield 'cma_alloc:bitmap';
    tries++;
    if (!mutexLockFree(k, s.mutex)) yield* mutexLock(k, s.mutex);
    const ret = yield* flat(allocContigRange(k, pfn, pfn + count, MIGRATE_CMA, who));
    mutexUnlock(s.mutex);
    if (ret === '0') return { pfn, err: '0', tries };
    yield 'cma_alloc:retry';
    clearBitmap(a, pfn, count);
    err = ret;
    if (ret !== EBUSY) break;
    start = bitno + mask + 1;
    clearLo = bitno;
    clearHi = bitno + nbits;
  }
  return { pfn: -1, err, tries };
}

/** cma_pages_valid(): [pfn, pfn+count) lies inside the area (v5.16). */
export function cmaPagesValid(k: Kernel, areaIdx: number, pfn: number, count: number): boolean {
  const a = cmaState(k).areas[areaIdx];
  return !!a && pfn >= a.basePfn && pfn + count <= a.basePfn + a.count;
}

/** cma_release(): false when the pages are not in the area; else free them and clear the bits. */
export function cmaRelease(k: Kernel, areaIdx: number, pfn: number, count: number): boolean {
  if (!cmaPagesValid(k, areaIdx, pfn, count)) return false;
  freeContigRange(k, pfn, count);
  clearBitmap(cmaState(k).areas[areaIdx], pfn, count);
  return true;
}

/** The area containing pfn, or -1. */
export function cmaAreaOf(k: Kernel, pfn: number): number {
  return cmaState(k).areas.findIndex((a) => pfn >= a.basePfn && pfn < a.basePfn + a.count);
}

/** Checks each area's alignment for the profile and builds the bitmaps; wires the hooks. */
export function installCma(k: Kernel): void {
  const pb = 1 << k.pageblockOrder;
  const align = k.sw.cmaAlign === 'max-order' ? Math.max(1 << k.maxOrder, pb) : pb;
  const areas = k.cfg.cma.map((c) => {
    if (c.basePfn % align !== 0 || c.count % align !== 0) {
      throw new ConfigError(`config '${k.cfg.name}': CMA area ${c.name} must be aligned to ${align} pages under profile ${k.profile.name} (${k.sw.cmaAlign} alignment)`);
    }
    return { name: c.name, basePfn: c.basePfn, count: c.count, orderPerBit: c.orderPerBit, bitmap: new Uint8Array(c.count >> c.orderPerBit) };
  });
  const s: CmaState = { areas, mutex: new Mutex('cma_mutex') };
  k.ext.cma = s;
  k.hooks.cmaAlloc = function* (kk, area, count, al, id) {
    return (yield* cmaAlloc(kk, area, count, al, id)).pfn;
  };
  k.hooks.cmaRelease = (kk, area, pfn, count) => cmaRelease(kk, area, pfn, count);
  // Names and bitmap lengths are fixed at boot: the bitmaps' bytes are the whole state.
  const str = () => s.areas.map((a) => `${a.name}:${bitmapHex(a.bitmap)}`).join(';');
  k.fingerprintParts.push(fingerprintPart(str, { arrays: s.areas.map((a) => a.bitmap) }));
}

function bitmapHex(b: Uint8Array): string {
  let out = '';
  for (let i = 0; i < b.length; i += 4) out += ((b[i] | (b[i + 1] << 1) | (b[i + 2] << 2) | (b[i + 3] << 3)) & 15).toString(16);
  return out;
}
