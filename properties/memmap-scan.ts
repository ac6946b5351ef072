/**
 * Word-at-a-time scans of the memmap for the checkers' O(memory) passes (the quiescent full scans
 * and free-block interiors): two pfns per read through 32-bit views of the 16-bit arrays, the
 * 32-bit owners OR-ed or XOR-ed directly. Read-only, no kernel function modelled; the answers are
 * exactly those of the pfn-by-pfn loops they replace (each test below is exact: a 32-bit word
 * equals PG_valid | PG_valid << 16 iff both halves equal PG_valid; an OR of 32-bit integers is 0
 * iff each of them is). Per-pfn byte arrays (refines-model's abs) are also read eight bytes at a
 * time as 64-bit floats, against patterns that are not used when zero or NaN (see EIGHT). Long ranges
 * are first asked of native byte compares (Buffer.compare: memcmp) whether they hold what the loop
 * would accept throughout: equal bytes, equal integers, so those answers are exact too.
 */
import { Buffer } from 'node:buffer';
import type { Memmap } from '../src/kernel/memmap.js';
import { PG_valid } from '../src/kernel/types.js';

/** 32-bit views of the memmap's 16-bit arrays (two pfns a word) and a 64-bit one of owner. */
export interface Views {
  flags2: Uint32Array;
  onList2: Uint32Array;
  refcount2: Int32Array;
  /** the bytes of flags, refcount and owner */
  bytes: BareBytes;
}

/** Byte views of the memmap's bare-frame fields. */
interface BareBytes {
  flags: Buffer;
  refcount: Buffer;
  owner: Buffer;
}

function bareBytes(mm: Memmap): BareBytes {
  return { flags: bytesOf(mm.flags), refcount: bytesOf(mm.refcount), owner: bytesOf(mm.owner) };
}

const VIEWS = new WeakMap<Memmap, Views | null>();
/**
 * The memmap views() answered for last, and its answer: a campaign asks about one memmap a hundred
 * times or more per execution, and a WeakMap lookup costs more than the scans of short ranges.
 */
let lastMm: Memmap | null = null;
let lastViews: Views | null = null;

/** The memmap's views (null when an array is not aligned for them: callers go pfn by pfn). */
export function views(mm: Memmap): Views | null {
  if (mm === lastMm) return lastViews;
  lastViews = memmapViews(mm);
  lastMm = mm;
  return lastViews;
}

function memmapViews(mm: Memmap): Views | null {
  let v = VIEWS.get(mm);
  if (v !== undefined) return v;
  const n = mm.nrPfns >> 1;
  const ok = mm.flags.byteOffset % 4 === 0 && mm.onList.byteOffset % 4 === 0 && mm.refcount.byteOffset % 4 === 0;
  v = ok
    ? {
      flags2: new Uint32Array(mm.flags.buffer, mm.flags.byteOffset, n),
      onList2: new Uint32Array(mm.onList.buffer, mm.onList.byteOffset, n),
      refcount2: new Int32Array(mm.refcount.buffer, mm.refcount.byteOffset, n),
      bytes: bareBytes(mm),
    }
    : null;
  VIEWS.set(mm, v);
  return v;
}

/** the low half of a 32-bit view is the even pfn (every platform Node runs on; checked) */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const VALID = PG_valid;
const VALID2 = (PG_valid | (PG_valid << 16)) >>> 0;

/** firstNotBare(mm, s, e) of one memmap, possibly remembering answers (DirtyTracker.bareScan). */
export type BareScan = (s: number, e: number) => number;

/**
 * The first pfn q of [s, e) that is not a bare frame (flags[q] !== PG_valid, or a refcount, or an
 * owner), or e when there is none: what a free block's interior must consist of.
 */
export function firstNotBare(mm: Memmap, s: number, e: number): number {
  const { flags, refcount, owner } = mm;
  let q = s;
  const v = views(mm);
  // (a range whose last or middle frame is not bare is read in JS: the compares would be lost)
  if (v && e - s >= NATIVE_BARE_MIN && bareAt(mm, s) && bareAt(mm, e - 1) && bareAt(mm, (s + e) >> 1) && allBare(v.bytes, s, e)) return e;
  if (v && e - s > 8) {
    if (q & 1) {
      if (flags[q] !== VALID || refcount[q] !== 0 || owner[q] !== 0) return q;
      q++;
    }
    // Integer words OR-ed together: zero iff every flags word XOR PG_valid pair, refcount pair and
    // owner is (no float compares, no -0 tests). Eight pfns a test, then two.
    const { flags2, refcount2 } = v;
    const V2 = VALID2;
    for (; q + 7 < e; q += 8) {
      const i = q >> 1;
      const x = (flags2[i] ^ V2) | (flags2[i + 1] ^ V2) | (flags2[i + 2] ^ V2) | (flags2[i + 3] ^ V2)
        | refcount2[i] | refcount2[i + 1] | refcount2[i + 2] | refcount2[i + 3]
        | owner[q] | owner[q + 1] | owner[q + 2] | owner[q + 3] | owner[q + 4] | owner[q + 5] | owner[q + 6] | owner[q + 7];
      if (x !== 0) break;
    }
    for (; q + 1 < e; q += 2) {
      const i = q >> 1;
      if (((flags2[i] ^ V2) | refcount2[i] | owner[q] | owner[q + 1]) !== 0) break;
    }
  }
  for (; q < e; q++) if (flags[q] !== VALID || refcount[q] !== 0 || owner[q] !== 0) return q;
  return e;
}

/**
 * Whether every refcount and owner of [s, e) is zero, as two native compares (e - s >= 2): true
 * for the frames of a stretch of free blocks, heads included, unless something is wrong (see
 * firstNotBareFlags).
 */
export function zeroFrames(mm: Memmap, s: number, e: number): boolean {
  const v = views(mm);
  const { refcount, owner } = mm;
  if (!v || refcount[s] !== 0 || owner[s] !== 0 || refcount[e - 1] !== 0 || owner[e - 1] !== 0) return false;
  return sameBytes(v.bytes.refcount, 2, s, e) && sameBytes(v.bytes.owner, 4, s, e);
}

/**
 * firstNotBare(mm, s, e) for a range whose refcounts and owners zeroFrames found zero: only its
 * flags are left to read (one native compare for a long range).
 */
export function firstNotBareFlags(mm: Memmap, s: number, e: number): number {
  const { flags } = mm;
  const v = e - s >= NATIVE_BARE_MIN && flags[s] === VALID && flags[e - 1] === VALID ? views(mm) : null;
  if (v && sameBytes(v.bytes.flags, 2, s, e)) return e;
  return firstNotBare(mm, s, e);
}

/** pfn q is a bare frame (a module function, not a closure: firstNotBare allocates nothing) */
function bareAt(mm: Memmap, q: number): boolean {
  return mm.flags[q] === VALID && mm.refcount[q] === 0 && mm.owner[q] === 0;
}

/**
 * From this many pfns on, firstNotBare first asks three native byte compares whether every frame
 * of the range is bare (a fixed ~0.3 us against ~1 ns a pfn read in JS: the interiors of large
 * free blocks, which are bare unless something is wrong, are most of what the checkers scan).
 */
const NATIVE_BARE_MIN = 256;

/**
 * Every frame of [s, e) (e - s >= 2) is bare, given that s is: each of flags, refcount and owner
 * holds its first value throughout (one native compare of the range with itself one element on:
 * equal bytes, equal integers, exact for every value). Reading the range against itself rather
 * than against bare patterns leaves no pattern buffers to bring into the cache.
 */
function allBare(b: BareBytes, s: number, e: number): boolean {
  return sameBytes(b.flags, 2, s, e) && sameBytes(b.refcount, 2, s, e) && sameBytes(b.owner, 4, s, e);
}

/** Elements [s, e) of `size` bytes of b all equal element s (each one the next one). */
function sameBytes(b: Buffer, size: number, s: number, e: number): boolean {
  return b.compare(b, size * (s + 1), size * e, size * s, size * (e - 1)) === 0;
}

/** The first pfn of [s, e) with all of `bits` set in its flags, or -1 (bits < 2^16). */
export function firstWithFlags(mm: Memmap, s: number, e: number, bits: number): number {
  const { flags } = mm;
  if (bits === 0) return s < e ? s : -1;
  let q = s;
  const v = views(mm);
  if (v && LITTLE_ENDIAN && e - s > 8) {
    if (q & 1) {
      if ((flags[q] & bits) === bits) return q;
      q++;
    }
    const { flags2 } = v;
    // Eight pfns a test while none of them has one of the bits (the highest: the rarer flag, as
    // PG_hugetlb next to PG_head), for the full memmap scans of the quiescent checks that find a
    // few pfns, if any, among thousands: a pfn with all the bits has that one. An eight that has
    // it is tested word by word, each half of a word whole (little-endian: the low half is the
    // even pfn), so a page with only some of the bits (PG_head without PG_hugetlb) costs nothing.
    const one = 1 << (31 - Math.clz32(bits));
    const one2 = (one | (one << 16)) >>> 0;
    while (q + 1 < e) {
      for (; q + 7 < e; q += 8) {
        const i = q >> 1;
        if (((flags2[i] | flags2[i + 1] | flags2[i + 2] | flags2[i + 3]) & one2) !== 0) break;
      }
      for (const stop = Math.min(q + 8, e - 1); q < stop; q += 2) {
        const w = flags2[q >> 1];
        if ((w & bits) === bits) return q;
        if (((w >>> 16) & bits) === bits) return q + 1;
      }
    }
  }
  for (; q < e; q++) if ((flags[q] & bits) === bits) return q;
  return -1;
}

/** A wider typed-array class over a byte array's memory (views of a per-pfn byte array). */
interface WideView<T> {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
}

/**
 * The view of per-pfn byte array `a` as `C` (BYTES_PER_ELEMENT pfns a read), made once and kept
 * in `cache`, or null when a's memory is not aligned for it.
 */
function wideView<T>(cache: WeakMap<Uint8Array, T | null>, C: WideView<T>, a: Uint8Array): T | null {
  let v = cache.get(a);
  if (v === undefined) {
    const n = C.BYTES_PER_ELEMENT;
    cache.set(a, (v = a.byteOffset % n === 0 ? new C(a.buffer, a.byteOffset, Math.floor(a.length / n)) : null));
  }
  return v;
}

const WORDS = new WeakMap<Uint8Array, Uint32Array | null>();
/** the array words() answered for last, and its answer (as views() keeps its last memmap's) */
let lastWordsOf: Uint8Array | null = null;
let lastWords: Uint32Array | null = null;
/** a 32-bit view of a per-pfn byte array (four pfns a read), or null when it is not aligned */
function words(a: Uint8Array): Uint32Array | null {
  if (a === lastWordsOf) return lastWords;
  lastWords = wideView(WORDS, Uint32Array, a);
  lastWordsOf = a;
  return lastWords;
}

/**
 * The first index q of [s, e) with a[q] !== v, or e: four bytes per read through a 32-bit view
 * (a word equals v * 0x01010101 iff all four bytes equal v). For the checkers' per-pfn byte arrays.
 */
export function firstNotByte(a: Uint8Array, s: number, e: number, v: number): number {
  let q = s;
  if (e - s > 16) {
    const w = words(a);
    if (w) {
      for (; q & 3; q++) if (a[q] !== v) return q;
      const v4 = Math.imul(v & 0xff, 0x01010101) >>> 0;
      for (; q + 3 < e; q += 4) if (w[q >> 2] !== v4) break;
    }
  }
  for (; q < e; q++) if (a[q] !== v) return q;
  return e;
}

const DOUBLES = new WeakMap<Uint8Array, Float64Array | null>();
/** a 64-bit float view of a per-pfn byte array (eight pfns a read), or null when it is not aligned */
const doubles = (a: Uint8Array): Float64Array | null => wideView(DOUBLES, Float64Array, a);

/**
 * EIGHT[v]: eight bytes v read as one 64-bit float. Two floats compare equal iff their bits are
 * equal, except NaN (equal to nothing: v = 0xff, the only byte whose eight copies make one) and
 * +0 === -0 (v = 0: eight zero bytes equal a word whose top byte is 0x80): replaceRun does not use
 * those two, and a NaN is never written (a typed array may store another NaN's bits).
 */
const EIGHT = new Float64Array(256);
{
  const b = new Uint8Array(EIGHT.buffer);
  for (let v = 0; v < 256; v++) b.fill(v, 8 * v, 8 * v + 8);
}

/**
 * a[q] = to for q = s, s + 1, ... while q < e and a[q] === from; returns the first q not replaced
 * (e when all were). Eight bytes a read through a 64-bit float view where the run is long (see
 * EIGHT), else four through the 32-bit view firstNotByte uses (a word equals from * 0x01010101 iff
 * all four bytes equal from).
 */
export function replaceRun(a: Uint8Array, s: number, e: number, from: number, to: number): number {
  let q = s;
  if (e - s > 16) {
    const w = words(a);
    if (w) {
      for (; q & 3; q++) {
        if (a[q] !== from) return q;
        a[q] = to;
      }
      const f4 = Math.imul(from & 0xff, 0x01010101) >>> 0;
      const t4 = Math.imul(to & 0xff, 0x01010101) >>> 0;
      const d = e - q > 32 && from !== 0 && from !== 0xff && to !== 0xff ? doubles(a) : null;
      if (d && q & 4 && w[q >> 2] === f4) {
        w[q >> 2] = t4;
        q += 4;
      }
      if (d && (q & 7) === 0) {
        const f8 = EIGHT[from];
        const t8 = EIGHT[to];
        // (four words a test while the run lasts, then one: the same words replaced)
        for (; q + 31 < e; q += 32) {
          const i = q >> 3;
          if (d[i] !== f8 || d[i + 1] !== f8 || d[i + 2] !== f8 || d[i + 3] !== f8) break;
          d[i] = t8;
          d[i + 1] = t8;
          d[i + 2] = t8;
          d[i + 3] = t8;
        }
        for (; q + 7 < e && d[q >> 3] === f8; q += 8) d[q >> 3] = t8;
      }
      for (; q + 3 < e && w[q >> 2] === f4; q += 4) w[q >> 2] = t4;
    }
  }
  for (; q < e && a[q] === from; q++) a[q] = to;
  return q;
}

const HALVES = new WeakMap<Uint8Array, Uint16Array | null>();
/** a 16-bit view of a per-pfn byte array (two pfns a read), or null when it is not aligned */
const halves = (a: Uint8Array): Uint16Array | null => wideView(HALVES, Uint16Array, a);

/**
 * The run of pfns from s (below e) with abs[q] === from, (flags[q] & mask) === key and (when
 * `same` is given) same[q] === v: sets their abs to `to` and returns its end (mask, key < 2^16;
 * from, to < 2^8). For the refinement checker's runs of pages that share an abstraction key
 * (PageOffline, pcp, the tails of one compound page, one owner's pages), which take one transition
 * together: abs and the flags two pfns a read (four where the run is long: maskedRun4, keyedRun4),
 * abs read and written in one pass. Exact: a 16-bit word of abs equals from | from << 8 iff both
 * its bytes equal from, and a 32-bit flags word masked with mask | mask << 16 equals
 * key | key << 16 iff both its halves do (whatever the byte order).
 */
export function keyedRun(mm: Memmap, abs: Uint8Array, s: number, e: number, from: number, to: number, mask: number, key: number, same: Int32Array | null, v: number): number {
  const { flags } = mm;
  if (same !== null && mask === 0xffff && wholeKeyedRun(mm, abs, s, e, from, key, same, v)) {
    abs.fill(to, s, e);
    return e;
  }
  let q = s;
  const f2 = views(mm)?.flags2;
  const a2 = halves(abs);
  if (f2 && a2 && e - s > 4) {
    if (q & 1) {
      if (abs[q] !== from || (flags[q] & mask) !== key || (same !== null && same[q] !== v)) return q;
      abs[q++] = to;
    }
    if (e - q > 16) q = same === null ? maskedRun4(f2, abs, q, e, from, to, mask, key) : mask === 0xffff ? keyedRun4(f2, abs, q, e, from, to, key, same, v) : q;
    const F2 = from | (from << 8);
    const T2 = to | (to << 8);
    const M2 = mask | (mask << 16);
    const K2 = key | (key << 16);
    if (same !== null) {
      for (; q + 1 < e; q += 2) {
        const i = q >> 1;
        if (a2[i] !== F2 || (f2[i] & M2) !== K2 || same[q] !== v || same[q + 1] !== v) break;
        a2[i] = T2;
      }
    } else {
      for (; q + 1 < e; q += 2) {
        const i = q >> 1;
        if (a2[i] !== F2 || (f2[i] & M2) !== K2) break;
        a2[i] = T2;
      }
    }
  }
  for (; q < e; q++) {
    if (abs[q] !== from || (flags[q] & mask) !== key || (same !== null && same[q] !== v)) return q;
    abs[q] = to;
  }
  return e;
}

/** From this many pfns on, keyedRun first asks native compares whether the run fills [s, e). */
const NATIVE_RUN_MIN = 256;

const BYTES = new WeakMap<ArrayBufferView, Buffer>();
/** the array bytesOf() answered for last, and its answer (as views() keeps its last memmap's) */
let lastBytesOf: ArrayBufferView | null = null;
let lastBytes: Buffer | null = null;
/** a's memory as bytes (made once per array) */
function bytesOf(a: ArrayBufferView): Buffer {
  if (a === lastBytesOf) return lastBytes!;
  let b = BYTES.get(a);
  if (!b) BYTES.set(a, (b = Buffer.from(a.buffer, a.byteOffset, a.byteLength)));
  lastBytesOf = a;
  lastBytes = b;
  return b;
}

/**
 * a[s, e) (elements of `size` bytes) all hold a[s]: each element's bytes equal the next one's
 * (one native compare of the range with itself one element on; equal bytes, equal integers).
 */
function uniform(a: ArrayBufferView, size: number, s: number, e: number): boolean {
  return sameBytes(bytesOf(a), size, s, e);
}

/**
 * keyedRun's run on a whole-flags key with `same` covers all of [s, e) (for a long range whose
 * last pfn fits: a huge page's tails, an allocation's pages): abs, flags and `same` are each
 * uniform over it and their first values are from, key and v.
 */
function wholeKeyedRun(mm: Memmap, abs: Uint8Array, s: number, e: number, from: number, key: number, same: Int32Array, v: number): boolean {
  const { flags } = mm;
  if (e - s < NATIVE_RUN_MIN || abs[s] !== from || flags[s] !== key || same[s] !== v) return false;
  if (abs[e - 1] !== from || flags[e - 1] !== key || same[e - 1] !== v) return false;
  return uniform(abs, 1, s, e) && uniform(flags, 2, s, e) && uniform(same, 4, s, e);
}

/**
 * keyedRun's loop without `same`, four pfns a read: abs as 32-bit words, the flags of two pfns
 * per 32-bit word masked (both halves: exact, see keyedRun). From an even q; returns where it
 * stopped (keyedRun goes on from there two pfns a read).
 */
function maskedRun4(f2: Uint32Array, abs: Uint8Array, s: number, e: number, from: number, to: number, mask: number, key: number): number {
  const a4 = words(abs);
  let q = s;
  if (!a4) return q;
  const M2 = (mask | (mask << 16)) >>> 0;
  const K2 = (key | (key << 16)) >>> 0;
  if (q & 2) {
    if (abs[q] !== from || abs[q + 1] !== from || ((f2[q >> 1] & M2) >>> 0) !== K2) return q;
    abs[q++] = to;
    abs[q++] = to;
  }
  const F4 = Math.imul(from & 0xff, 0x01010101) >>> 0;
  const T4 = Math.imul(to & 0xff, 0x01010101) >>> 0;
  for (; q + 3 < e; q += 4) {
    const i = q >> 1;
    if (a4[q >> 2] !== F4 || ((f2[i] & M2) >>> 0) !== K2 || ((f2[i + 1] & M2) >>> 0) !== K2) break;
    a4[q >> 2] = T4;
  }
  return q;
}

/**
 * keyedRun's loop on a whole-flags key (mask 0xffff) with `same`, four pfns a read: abs as 32-bit
 * words, flags as 32-bit words of two pfns (equal to key | key << 16 iff both halves equal key),
 * `same` pfn by pfn. Integer compares only: exact for every key and v. From an even q; returns
 * where it stopped (keyedRun goes on from there two pfns a read).
 */
function keyedRun4(f2: Uint32Array, abs: Uint8Array, s: number, e: number, from: number, to: number, key: number, same: Int32Array, v: number): number {
  const a4 = words(abs);
  let q = s;
  if (!a4) return q;
  const K2 = (key | (key << 16)) >>> 0;
  if (q & 2) {
    if (abs[q] !== from || abs[q + 1] !== from || f2[q >> 1] !== K2 || same[q] !== v || same[q + 1] !== v) return q;
    abs[q++] = to;
    abs[q++] = to;
  }
  const F4 = Math.imul(from & 0xff, 0x01010101) >>> 0;
  const T4 = Math.imul(to & 0xff, 0x01010101) >>> 0;
  for (; q + 3 < e; q += 4) {
    const i = q >> 1;
    if (a4[q >> 2] !== F4 || f2[i] !== K2 || f2[i + 1] !== K2 || same[q] !== v || same[q + 1] !== v || same[q + 2] !== v || same[q + 3] !== v) break;
    a4[q >> 2] = T4;
  }
  return q;
}

/**
 * keyedRun for bare frames (see firstNotBare): the run from s (below e) of bare frames with
 * abs[q] === from, set to `to`; returns its end.
 */
export function bareRun(mm: Memmap, abs: Uint8Array, s: number, e: number, from: number, to: number): number {
  const { flags, refcount, owner } = mm;
  let q = s;
  const v = views(mm);
  const a2 = halves(abs);
  if (v && a2 && e - s > 4) {
    if (q & 1) {
      if (abs[q] !== from || flags[q] !== VALID || refcount[q] !== 0 || owner[q] !== 0) return q;
      abs[q++] = to;
    }
    if (e - q > 16) q = bareRun4(v, abs, q, e, from, to, owner);
    const { flags2, refcount2 } = v;
    const F2 = from | (from << 8);
    const T2 = to | (to << 8);
    const V2 = VALID2;
    for (; q + 1 < e; q += 2) {
      const i = q >> 1;
      if (a2[i] !== F2 || flags2[i] !== V2 || refcount2[i] !== 0 || (owner[q] | owner[q + 1]) !== 0) break;
      a2[i] = T2;
    }
  }
  for (; q < e; q++) {
    if (abs[q] !== from || flags[q] !== VALID || refcount[q] !== 0 || owner[q] !== 0) return q;
    abs[q] = to;
  }
  return e;
}

/**
 * bareRun's loop four pfns a read, tested as firstNotBare tests them (flags words XOR-ed with
 * PG_valid pairs, refcount pairs and owners OR-ed: zero iff every pfn is bare), with abs as 32-bit
 * words. From an even q; returns where it stopped (bareRun goes on from there two pfns a read).
 */
function bareRun4(v: Views, abs: Uint8Array, s: number, e: number, from: number, to: number, owner: Int32Array): number {
  const { flags2, refcount2 } = v;
  const a4 = words(abs);
  let q = s;
  if (!a4) return q;
  const F4 = Math.imul(from & 0xff, 0x01010101) >>> 0;
  const T4 = Math.imul(to & 0xff, 0x01010101) >>> 0;
  const V2 = VALID2;
  if (q & 2) {
    const i = q >> 1;
    if (abs[q] !== from || abs[q + 1] !== from || ((flags2[i] ^ V2) | refcount2[i] | owner[q] | owner[q + 1]) !== 0) return q;
    abs[q++] = to;
    abs[q++] = to;
  }
  for (; q + 3 < e; q += 4) {
    const i = q >> 1;
    if (a4[q >> 2] !== F4 || ((flags2[i] ^ V2) | (flags2[i + 1] ^ V2) | refcount2[i] | refcount2[i + 1] | owner[q] | owner[q + 1] | owner[q + 2] | owner[q + 3]) !== 0) break;
    a4[q >> 2] = T4;
  }
  return q;
}

/**
 * The first pfn after p below end whose flags or owner differ from p's (end if none): for walks
 * over held memory (an allocation's pages, a reserved or offline block), whose frames are alike.
 * Four pfns a test: flags two a word (the repeated flags are symmetric in the halves), the owners
 * XOR-ed with p's, all OR-ed together (zero iff every pfn matches).
 */
export function sameFrameEnd(mm: Memmap, p: number, end: number): number {
  const { flags, owner } = mm;
  const f = flags[p];
  const o = owner[p];
  let q = p + 1;
  for (; q < end && q & 3; q++) if (flags[q] !== f || owner[q] !== o) return q;
  const v = end - q > 4 ? views(mm) : null;
  if (v) {
    const F = f | (f << 16);
    const { flags2 } = v;
    for (; q + 3 < end; q += 4) {
      const j = q >> 1;
      if (((flags2[j] ^ F) | (flags2[j + 1] ^ F) | (owner[q] ^ o) | (owner[q + 1] ^ o) | (owner[q + 2] ^ o) | (owner[q + 3] ^ o)) !== 0) break;
    }
  }
  for (; q < end; q++) if (flags[q] !== f || owner[q] !== o) break;
  return q;
}

/** The first pfn of [s, end) whose owner is not o (end if none): four pfns a test. */
export function firstOwnerNot(mm: Memmap, s: number, end: number, o: number): number {
  const { owner } = mm;
  let q = s;
  for (; q + 3 < end; q += 4) if (((owner[q] ^ o) | (owner[q + 1] ^ o) | (owner[q + 2] ^ o) | (owner[q + 3] ^ o)) !== 0) break;
  for (; q < end; q++) if (owner[q] !== o) return q;
  return end;
}
