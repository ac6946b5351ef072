/**
 * The model checker's state fingerprint (src/harness/modelcheck.ts): a 64-bit hash of the machine
 * (memmap typed arrays, pageblock bits, zone counters, the allocation registry, every mechanism's
 * fingerprint part) that equal states share. Allocation handles and content tokens are relabelled
 * by first appearance, since only their identity matters.
 *
 * Incremental: a step changes a few words of the memmap, so the typed arrays are summed
 * Zobrist-style (WordSum: only words that changed since the last fingerprint are mixed in again),
 * mechanisms' parts with an `arrays` form join that sum and parts with a `hash` form are hashed
 * without building their strings (src/kernel/fingerprint.ts); a part with neither is hashed from
 * its string, again only when the string changed.
 *
 * exactStateKey() is the same state spelt out exactly (the parts' strings, the arrays' bytes) and
 * digested with SHA-256: the checker's cross-check mode compares the two on every state it visits.
 */
import { createHash } from 'node:crypto';
import type { Kernel } from '../kernel/machine.js';
import { Hasher, fmix32, intern, type FingerprintPart } from '../kernel/fingerprint.js';

export { Hasher };

/**
 * A typed array of machine state and a shadow copy of what it held at the last fingerprint. Both
 * are compared 8 bytes at a time (BigInt64 views: TurboFan compares them without allocating, and
 * the checker ran 5-9% faster than with 32-bit compares) and read as 32-bit words where they differ. An array whose byte length
 * is not a multiple of 8 is copied into a padded buffer before each compare. A large array is
 * first compared whole by Buffer.equals (a native memcmp, 3-4 times faster than the loop from
 * about 512 bytes): most of the memmap's arrays are untouched by a step.
 */
class Shadowed {
  readonly live32: Int32Array;
  readonly shadow32: Int32Array;
  readonly live64: BigInt64Array;
  readonly shadow64: BigInt64Array;
  private readonly pad: { src: Uint8Array; dst: Uint8Array } | null = null;
  private readonly whole: { live: Buffer; shadow: Buffer } | null = null;

  constructor(a: ArrayBufferView) {
    let buf = a.buffer as ArrayBuffer;
    let off = a.byteOffset;
    const len = (a.byteLength + 7) & ~7;
    if ((a.byteLength | a.byteOffset) & 7) {
      const dst = new Uint8Array(len);
      this.pad = { src: new Uint8Array(a.buffer, a.byteOffset, a.byteLength), dst };
      buf = dst.buffer;
      off = 0;
    }
    this.live32 = new Int32Array(buf, off, len >>> 2);
    this.live64 = new BigInt64Array(buf, off, len >>> 3);
    this.shadow32 = new Int32Array(len >>> 2);
    this.shadow64 = new BigInt64Array(this.shadow32.buffer);
    if (len >= 512) this.whole = { live: Buffer.from(buf, off, len), shadow: Buffer.from(this.shadow32.buffer) };
  }

  /** True when the array is known to equal its shadow without a word-by-word loop (after sync). */
  same(): boolean {
    return this.whole !== null && this.whole.live.equals(this.whole.shadow);
  }

  /** Brings a padded copy up to date (before a compare). */
  sync(): void {
    if (this.pad) this.pad.dst.set(this.pad.src);
  }

  /** True when some word differs from the shadow. */
  differs(): boolean {
    this.sync();
    if (this.whole) return !this.same();
    const v = this.live64;
    const s = this.shadow64;
    for (let i = 0; i < v.length; i++) if (v[i] !== s[i]) return true;
    return false;
  }
}

const ZERO_SUMS = new Map<string, [number, number]>();

/**
 * The typed arrays whose contents are machine state, summed incrementally.
 *
 * A step changes a few dozen words of a memmap of thousands, so the hash of these arrays is a sum
 * over words of a mix of (slot, value), Zobrist-style: a word that changed moves the sum by the
 * difference of its two mixes. The shadow copies find the changed words: comparing costs a
 * fraction of mixing, and unlike the dirty-pfn tracker (properties/dirty.ts, which follows list and
 * registry changes only) it sees every write, a flag-only change included.
 */
class WordSum {
  a = 0;
  b = 0;
  private readonly arrays: Shadowed[];
  private readonly base: number[] = [];

  constructor(arrays: ArrayBufferView[]) {
    this.arrays = arrays.map((x) => new Shadowed(x));
    let slot = 0;
    for (const x of this.arrays) {
      this.base.push(slot);
      slot += x.live32.length;
    }
    // The shadows start all zero: the sums of a zero memmap, once per layout (fresh machines of
    // one config, as snapshotWorks boots, share it).
    const layout = this.arrays.map((x) => x.live32.length).join(',');
    let zero = ZERO_SUMS.get(layout);
    if (!zero) {
      zero = [0, 0];
      for (let i = 0; i < slot; i++) {
        zero[0] = (zero[0] + mixA(i, 0)) | 0;
        zero[1] = (zero[1] + mixB(i, 0)) | 0;
      }
      ZERO_SUMS.set(layout, zero);
    }
    [this.a, this.b] = zero;
  }

  /** Brings the sums up to date with the arrays (whatever happened since: steps or a restore). */
  update(): void {
    for (let j = 0; j < this.arrays.length; j++) {
      const x = this.arrays[j];
      x.sync();
      if (x.same()) continue;
      const v = x.live64;
      const s = x.shadow64;
      for (let i = 0; i < v.length; i++) {
        if (v[i] === s[i]) continue;
        this.word(x, this.base[j], 2 * i);
        this.word(x, this.base[j], 2 * i + 1);
      }
    }
  }

  private word(x: Shadowed, base: number, w: number): void {
    const now = x.live32[w];
    const was = x.shadow32[w];
    if (now === was) return;
    this.a = (this.a + mixA(base + w, now) - mixA(base + w, was)) | 0;
    this.b = (this.b + mixB(base + w, now) - mixB(base + w, was)) | 0;
    x.shadow32[w] = now;
  }
}

function mixA(slot: number, x: number): number {
  return fmix32(Math.imul(slot + 1, 0x9e3779b1) ^ fmix32(x ^ 0x2545f491));
}

function mixB(slot: number, x: number): number {
  return fmix32(Math.imul(slot + 1, 0x85ebca77) ^ fmix32((x + 0x27d4eb2f) | 0));
}

/**
 * owner and token relabelled by first appearance (see Relabel): a change anywhere can renumber
 * everything after it, so these are not summed; they are rehashed only when a word changed.
 */
class RelabeledArray {
  readonly relabel: Relabel;
  private readonly x: Shadowed;
  private dirty = true;
  a = 0;
  b = 0;

  constructor(private readonly src: Int32Array) {
    this.relabel = new Relabel(src.length);
    this.x = new Shadowed(src);
  }

  update(): void {
    if (!this.dirty && !this.x.differs()) return;
    this.x.shadow32.set(this.x.live32);
    this.dirty = false;
    const h = new Hasher();
    h.addWords(this.relabel.run(this.src));
    this.a = h.a;
    this.b = h.b;
  }
}

/** A part without a cheaper form: hashed from its string, kept until the string changes. */
interface StringPart {
  str: () => string;
  last: string | null;
  a: number;
  b: number;
}

/** Per memmap (restored in place, so one per template machine): the incremental hash state. */
interface MachineHash {
  words: WordSum;
  owners: RelabeledArray;
  tokens: RelabeledArray;
  hashed: ((h: Hasher) => void)[];
  strings: StringPart[];
}

const MACHINE_HASH = new WeakMap<object, MachineHash>();

/**
 * The typed arrays hashed as they are. prev, listTail and listLen follow from listHead and next;
 * owner and token are hashed canonically (relabelled, see Relabel).
 */
function stateArrays(k: Kernel): ArrayBufferView[] {
  const mm = k.mm;
  const arrays: ArrayBufferView[] = [mm.flags, mm.order, mm.refcount, mm.next, mm.onList, mm.listHead, k.pb.mt, k.pb.isolate];
  for (const z of k.zones) arrays.push(z.nrFree, z.pcpCount, z.pcpFreeFactor);
  return arrays;
}

function machineHash(k: Kernel): MachineHash {
  let m = MACHINE_HASH.get(k.mm);
  if (m) return m;
  const mm = k.mm;
  const arrays = stateArrays(k);
  const hashed: MachineHash['hashed'] = [];
  const strings: StringPart[] = [];
  for (const part of k.fingerprintParts as FingerprintPart[]) {
    if (part.arrays) arrays.push(...part.arrays);
    if (part.hash) hashed.push(part.hash);
    if (!part.arrays && !part.hash) strings.push({ str: part, last: null, a: 0, b: 0 });
  }
  m = { words: new WordSum(arrays), owners: new RelabeledArray(mm.owner), tokens: new RelabeledArray(mm.token), hashed, strings };
  MACHINE_HASH.set(k.mm, m);
  return m;
}

function addParts(h: Hasher, m: MachineHash): void {
  for (let i = 0; i < m.hashed.length; i++) m.hashed[i](h);
  for (let i = 0; i < m.strings.length; i++) {
    const p = m.strings[i];
    const s = p.str();
    if (s !== p.last) {
      const e = new Hasher();
      e.addString(s);
      p.last = s;
      p.a = e.a;
      p.b = e.b;
    }
    h.add(p.a);
    h.add(p.b);
  }
}

/**
 * Allocation handles and content tokens are numbered in the order things happened, so two
 * interleavings that reach the same machine would differ only by those numbers. They are opaque
 * names (compared for equality, never ordered), so the fingerprint relabels them by first
 * appearance in pfn order: states equal up to renaming hash equal.
 */
class Relabel {
  private gen = new Int32Array(1024);
  private lab = new Int32Array(1024);
  private cur = 0;
  readonly out: Uint32Array;

  constructor(n: number) {
    this.out = new Uint32Array(n);
  }

  run(a: Int32Array): Uint32Array {
    const g = ++this.cur;
    let next = 1;
    const out = this.out;
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (v <= 0) out[i] = v;
      else {
        if (v >= this.gen.length) this.grow(v);
        if (this.gen[v] !== g) {
          this.gen[v] = g;
          this.lab[v] = next++;
        }
        out[i] = this.lab[v];
      }
    }
    return out;
  }

  /** The canonical label of `v` in the last run (0: it did not appear). */
  label(v: number): number {
    return v > 0 && v < this.gen.length && this.gen[v] === this.cur ? this.lab[v] : 0;
  }

  private grow(v: number): void {
    const n = Math.max(v + 1, this.gen.length * 2);
    const g = new Int32Array(n);
    g.set(this.gen);
    const l = new Int32Array(n);
    l.set(this.lab);
    this.gen = g;
    this.lab = l;
  }
}

export function kernelFingerprint(k: Kernel, h = new Hasher()): Hasher {
  const m = machineHash(k);
  m.words.update();
  m.owners.update();
  m.tokens.update();
  h.add(m.words.a);
  h.add(m.words.b);
  h.add(m.owners.a);
  h.add(m.owners.b);
  h.add(m.tokens.a);
  h.add(m.tokens.b);
  for (const z of k.zones) {
    h.add(z.freePages);
    h.add(z.freeCma);
    h.add(z.nrIsolatePageblock);
    h.add(z.pcpDisabled);
    h.add(z.managedPages);
    h.add(z.presentPages);
  }
  h.add(k.lastRmqueueMt);
  h.add(k.maxContigDepth);
  for (let t = 0; t < k.contigDepth.length; t++) h.add(k.contigDepth[t] ?? 0);
  addAllocations(h, m.owners.relabel, k);
  addParts(h, m);
  return h;
}

/**
 * The allocation registry: insertion order differs between interleavings, so each entry is hashed
 * on its own and the entries combined order-independently (each lane summed).
 */
function addAllocations(h: Hasher, owners: Relabel, k: Kernel): void {
  let sa = 0;
  let sb = 0;
  const e = ENTRY;
  for (const a of k.allocs.values()) {
    e.reset();
    e.add(intern(a.id));
    e.add(owners.label(a.handle));
    e.add(a.pfn);
    e.add(a.nrPages);
    e.add(a.order | (a.migratetype << 8) | (a.pinned ? 1 << 16 : 0));
    e.add(intern(a.kind));
    sa = (sa + fmix32(e.a)) | 0;
    sb = (sb + fmix32(e.b)) | 0;
  }
  h.add(k.allocs.size);
  h.add(sa);
  h.add(sb);
}
const ENTRY = new Hasher();

/**
 * The machine state kernelFingerprint hashes, spelt out exactly (arrays' bytes, relabelled owners
 * and tokens, the registry sorted, every part's string) and digested with SHA-256: for the
 * checker's cross-check, which compares it with the 64-bit fingerprint on every state.
 */
export function exactMachineKey(k: Kernel): string {
  const d = createHash('sha256');
  const mm = k.mm;
  const bytes = (a: ArrayBufferView) => d.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  for (const a of stateArrays(k)) bytes(a);
  for (const z of k.zones) d.update(`|${z.freePages},${z.freeCma},${z.nrIsolatePageblock},${z.pcpDisabled},${z.managedPages},${z.presentPages}`);
  const owners = new Relabel(mm.owner.length);
  bytes(owners.run(mm.owner));
  bytes(new Relabel(mm.token.length).run(mm.token));
  d.update(`|${k.lastRmqueueMt},${k.maxContigDepth},${Array.from(k.contigDepth, (x) => x ?? 0).join(',')}`);
  const allocs = [...k.allocs.values()].map((a) => JSON.stringify([a.id, owners.label(a.handle), a.pfn, a.nrPages, a.order, a.migratetype, a.pinned, a.kind]));
  d.update(`|${allocs.sort().join(';')}`);
  for (const part of k.fingerprintParts) d.update(`|${part()}`);
  return d.digest('base64');
}
