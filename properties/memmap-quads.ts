/**
 * Stretches of the memmap where pfns repeat one frame, read four pfns at a time through 64-bit
 * float views of the 16-bit arrays (two pfns for the 32-bit owner array): for the checkers' walks
 * over held memory (an allocation's pages, a reserved or offline block), whose pages are alike.
 *
 * Exactness: two 64-bit floats that are not NaN are equal iff their bits are, except +0 and -0. A
 * pattern (a value repeated over eight bytes) is only compared when it is neither zero nor NaN
 * (usable()); a view word that is NaN never equals it. Read-only; no kernel function modelled.
 */
import type { Memmap } from '../src/kernel/memmap.js';

export interface QuadViews {
  flags4: Float64Array;
  onList4: Float64Array;
  refcount4: Float64Array;
  owner2: Float64Array;
}

const QUADS = new WeakMap<Memmap, QuadViews | null>();

/** The memmap's 64-bit views (null when an array is not 8-byte aligned: callers go pfn by pfn). */
export function quadViews(mm: Memmap): QuadViews | null {
  let v = QUADS.get(mm);
  if (v !== undefined) return v;
  const arrays = [mm.flags, mm.onList, mm.refcount, mm.owner];
  const [flags4, onList4, refcount4, owner2] = arrays.map((a) => (a.byteOffset % 8 === 0 ? new Float64Array(a.buffer, a.byteOffset, a.byteLength >> 3) : null));
  v = flags4 && onList4 && refcount4 && owner2 ? { flags4, onList4, refcount4, owner2 } : null;
  QUADS.set(mm, v);
  return v;
}

const pattern16 = new Uint16Array(4);
const pattern32 = new Int32Array(pattern16.buffer);
const patternF = new Float64Array(pattern16.buffer);

/** Four 16-bit copies of x as one float (x is taken modulo 2^16, as the arrays store it). */
export function pattern4(x: number): number {
  pattern16.fill(x);
  return patternF[0];
}

/** Two 32-bit copies of x as one float. */
export function pattern2(x: number): number {
  pattern32.fill(x);
  return patternF[0];
}

/** A pattern that compares equal to exactly the words with its bits. */
export function usable(f: number): boolean {
  return f !== 0 && f === f;
}

/** The first pfn after p below end whose flags or owner differ from p's (end if none). */
export function sameFrameEnd(mm: Memmap, p: number, end: number): number {
  const { flags, owner } = mm;
  const f = flags[p];
  const o = owner[p];
  let q = p + 1;
  for (; q < end && q & 3; q++) if (flags[q] !== f || owner[q] !== o) return q;
  const v = end - q > 4 ? quadViews(mm) : null;
  if (v) {
    const F = pattern4(f);
    const O = pattern2(o);
    if (usable(F) && usable(O)) {
      const { flags4, owner2 } = v;
      for (; q + 3 < end; q += 4) {
        const i = q >> 2;
        if (flags4[i] !== F || owner2[2 * i] !== O || owner2[2 * i + 1] !== O) break;
      }
    }
  }
  for (; q < end; q++) if (flags[q] !== f || owner[q] !== o) break;
  return q;
}

/** The first pfn of [s, end) whose owner is not o (end if none): two pfns a read. */
export function firstOwnerNot(mm: Memmap, s: number, end: number, o: number): number {
  const { owner } = mm;
  let q = s;
  const v = end - q > 8 ? quadViews(mm) : null;
  if (v) {
    if (q & 1) {
      if (owner[q] !== o) return q;
      q++;
    }
    const O = pattern2(o);
    if (usable(O)) {
      const { owner2 } = v;
      for (; q + 1 < end; q += 2) if (owner2[q >> 1] !== O) break;
    }
  }
  for (; q < end; q++) if (owner[q] !== o) return q;
  return end;
}
