/**
 * Pieces of the model checker's state fingerprint (src/harness/modelcheck.ts) that mechanisms use
 * to describe their state under k.ext. Not a kernel mechanism; it models no kernel function.
 *
 * Each mechanism pushes onto k.fingerprintParts a function returning a canonical string of its
 * state: exact, and what tests and the checker's cross-check compare. Building those strings for
 * every explored state cost the checker a quarter of its time, so a part may also carry a cheaper
 * form that describes the same state (equal strings <=> equal forms):
 *  - `arrays`: the string is a function of these typed arrays' contents and of nothing else, one
 *    to one; the checker sums their words incrementally with the memmap's (only words that changed
 *    since the last state are mixed in again);
 *  - `hash`: feeds the state to a 64-bit hasher, numbers in a fixed order, with no string built.
 * A part may carry both: its arrays and the few scalars beside them (then `hash` feeds only those).
 */

/** Two 32-bit lanes, each a multiply-xorshift chain over the words added: a 64-bit hash. */
export class Hasher {
  a = 0;
  b = 0;

  constructor() {
    this.reset();
  }

  reset(): void {
    this.a = 0x9747b28c | 0;
    this.b = 0x1b873593 | 0;
  }

  add(x: number): void {
    this.a = Math.imul(this.a ^ x, 0x5bd1e995);
    this.a ^= this.a >>> 15;
    this.b = Math.imul(((this.b ^ x) + 0x6b43a9b5) | 0, 0x85ebca77);
    this.b ^= this.b >>> 13;
  }

  addWords(w: Uint32Array): void {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < w.length; i++) {
      const x = w[i];
      a = Math.imul(a ^ x, 0x5bd1e995);
      a ^= a >>> 15;
      b = Math.imul(((b ^ x) + 0x6b43a9b5) | 0, 0x85ebca77);
      b ^= b >>> 13;
    }
    this.a = a;
    this.b = b;
  }

  /** Its UTF-16 code units, then its length (so that "ab","c" and "a","bc" differ). */
  addString(s: string): void {
    for (let i = 0; i < s.length; i++) this.add(s.charCodeAt(i));
    this.add(s.length);
  }

  /** The high 32 bits of the 64-bit value (avalanched: a hash table indexes by its low bits). */
  hi(): number {
    return fmix32(this.a ^ Math.imul(this.b, 0x9e3779b1));
  }

  /** The low 32 bits. */
  lo(): number {
    return fmix32((this.b + this.a) | 0);
  }

  /** 53 of the 64 bits, exact as a JS number (for tests and Map keys). */
  value(): number {
    return (this.hi() >>> 0) * 0x200000 + (this.lo() >>> 11);
  }
}

/** murmur3's finaliser: every input bit reaches every output bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

const INTERNED = new Map<string, number>();

/**
 * A small number per distinct string, for hashing labels and ids without collisions: strings met
 * by the checker (yield labels, allocation ids and kinds) come from a bounded vocabulary. Never
 * cleared: a string keeps its number for the life of the process, so equal states hash equal.
 */
export function intern(s: string): number {
  let n = INTERNED.get(s);
  if (n === undefined) INTERNED.set(s, (n = INTERNED.size + 1));
  return n;
}

const SCRATCH = new Hasher();

/**
 * An unordered collection (a Set, a Map's values): its size and the two lanes' sums over each
 * item's own hash, which no iteration order changes.
 */
export function addUnordered<T>(h: Hasher, items: ReadonlySet<T> | ReadonlyMap<unknown, T>, item: (e: Hasher, x: T) => void): void {
  const n = items.size;
  let sa = 0;
  let sb = 0;
  const e = SCRATCH;
  // Most are empty: no iterator made for them.
  if (n > 0) for (const x of items.values()) {
    e.reset();
    item(e, x);
    sa = (sa + fmix32(e.a)) | 0;
    sb = (sb + fmix32(e.b)) | 0;
  }
  h.add(n);
  h.add(sa);
  h.add(sb);
}

/** The cheaper forms a fingerprint part may carry (see the file comment). */
export interface PartForms {
  arrays?: ArrayBufferView[];
  hash?: (h: Hasher) => void;
}

export type FingerprintPart = (() => string) & PartForms;

/** A fingerprint part: its canonical string and a cheaper form of the same state. */
export function fingerprintPart(str: () => string, forms: PartForms): FingerprintPart {
  return Object.assign(str, forms);
}
