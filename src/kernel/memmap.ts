/**
 * The memmap: one entry per pfn, in typed arrays (struct page, include/linux/mm_types.h), and the
 * intrusive doubly linked lists threaded through it (list_head lru), used both by the buddy
 * free lists and by the per-cpu lists. A pfn is on at most one list; `onList` names it (+1).
 *
 * Bytes per pfn: flags 2, order 1, refcount 2, owner 4, token 4, next 4, prev 4, onList 2 = 23.
 * Tail pages of a compound page reuse `next` to point at their head (compound_head()).
 */
import { PG_buddy } from './types.js';

export const NIL = -1;

/** A module-local copy (an imported binding costs a getter call per access under tsx). */
const PG_BUDDY = PG_buddy;

export class Memmap {
  readonly flags: Uint16Array;
  /** buddy order for PageBuddy heads, compound order for compound heads */
  readonly order: Uint8Array;
  readonly refcount: Int16Array;
  /** allocation handle (0: none) */
  readonly owner: Int32Array;
  /** content token of the data a page holds, for data-loss checks (0: none) */
  readonly token: Int32Array;
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** list id + 1, 0 when on no list */
  readonly onList: Uint16Array;
  readonly listHead: Int32Array;
  readonly listTail: Int32Array;
  readonly listLen: Int32Array;

  /**
   * The flags two pfns a word, for scanFlags(): the same memory (the buffer is padded to whole
   * words), a view and not state, private so that the snapshot does not copy it a second time.
   */
  readonly #flagWords: Uint32Array;
  /** The refcounts two pfns a word, for firstReferenced(): a view as #flagWords is. */
  readonly #refWords: Uint32Array;

  /**
   * Per block of 2^blockOrder pfns (a pageblock): at least the number of its pfns with PG_buddy.
   * Not struct page state but an index of the flags for the walks that look for free buddy heads
   * (move_freepages_block): a block counted 0 holds none. The free-list helpers of page_alloc.ts
   * count each PG_buddy they set and uncount each one they clear (countBuddy / uncountBuddy);
   * nothing else sets the flag, and a clear anywhere else only leaves the count high. Public so
   * that a snapshot restores it with the flags (test/kernel-fastpaths.test.ts checks the bound).
   */
  readonly buddies: Int32Array;

  constructor(readonly nrPfns: number, nrLists: number, readonly blockOrder = 9) {
    const words = new Uint32Array((nrPfns + 1) >>> 1);
    this.flags = new Uint16Array(words.buffer, 0, nrPfns);
    this.#flagWords = words;
    this.order = new Uint8Array(nrPfns);
    const refWords = new Uint32Array((nrPfns + 1) >>> 1);
    this.refcount = new Int16Array(refWords.buffer, 0, nrPfns);
    this.#refWords = refWords;
    this.owner = new Int32Array(nrPfns);
    this.token = new Int32Array(nrPfns);
    this.next = new Int32Array(nrPfns);
    this.prev = new Int32Array(nrPfns);
    this.onList = new Uint16Array(nrPfns);
    this.listHead = new Int32Array(nrLists).fill(NIL);
    this.listTail = new Int32Array(nrLists).fill(NIL);
    this.listLen = new Int32Array(nrLists);
    this.buddies = new Int32Array(Math.ceil(nrPfns / (1 << blockOrder)));
  }

  /** flags[pfn] |= PG_buddy, counted in `buddies` if it was clear. */
  setBuddy(pfn: number): void {
    const f = this.flags[pfn];
    if (f & PG_BUDDY) return;
    this.flags[pfn] = f | PG_BUDDY;
    this.buddies[pfn >>> this.blockOrder]++;
  }

  /** flags[pfn] &= ~PG_buddy, uncounted in `buddies` if it was set. */
  clearBuddy(pfn: number): void {
    const f = this.flags[pfn];
    if (!(f & PG_BUDDY)) return;
    this.flags[pfn] = f & ~PG_BUDDY;
    this.buddies[pfn >>> this.blockOrder]--;
  }

  /** list_add / list_add_tail */
  listAdd(list: number, pfn: number, tail: boolean): void {
    const { next, prev, listHead, listTail } = this;
    if (tail) {
      const t = listTail[list];
      prev[pfn] = t;
      next[pfn] = NIL;
      if (t === NIL) listHead[list] = pfn;
      else next[t] = pfn;
      listTail[list] = pfn;
    } else {
      const h = listHead[list];
      next[pfn] = h;
      prev[pfn] = NIL;
      if (h === NIL) listTail[list] = pfn;
      else prev[h] = pfn;
      listHead[list] = pfn;
    }
    this.onList[pfn] = list + 1;
    this.listLen[list]++;
  }

  /** list_del: the list is the one the pfn is on */
  listDel(pfn: number): number {
    const list = this.onList[pfn] - 1;
    const { next, prev } = this;
    const n = next[pfn];
    const p = prev[pfn];
    if (p === NIL) this.listHead[list] = n;
    else next[p] = n;
    if (n === NIL) this.listTail[list] = p;
    else prev[n] = p;
    next[pfn] = NIL;
    prev[pfn] = NIL;
    this.onList[pfn] = 0;
    this.listLen[list]--;
    return list;
  }

  /** Every pfn on a list, head first (for views and checks, not for hot paths). */
  *listPfns(list: number): Generator<number> {
    for (let p = this.listHead[list]; p !== NIL; p = this.next[p]) yield p;
  }

  /**
   * The first pfn of [start, end) whose flags & mask is not `value`, or end (end is cut to
   * nrPfns). The same answer as testing pfn by pfn, reading two pfns at a time, and testing eight
   * at a time while all of them match (the bits that differ from `value`, or-ed over four words
   * and masked, are 0 exactly then).
   */
  scanFlags(mask: number, value: number, start: number, end: number): number {
    const flags = this.flags;
    if (end > flags.length) end = flags.length;
    if (start >= end) return end;
    if (start & 1) {
      if ((flags[start] & mask) !== value) return start;
      start++;
    }
    const w = this.#flagWords;
    const m = mask | (mask << 16);
    const v = value | (value << 16);
    const words = end >>> 1;
    let i = start >>> 1;
    while (i + 4 <= words && (((w[i] ^ v) | (w[i + 1] ^ v) | (w[i + 2] ^ v) | (w[i + 3] ^ v)) & m) === 0) i += 4;
    while (i < words && (w[i] & m) === v) i++;
    // The word that differs (either of its two pfns), or the last pfn of an odd end.
    for (let p = i * 2; p < end; p++) if ((flags[p] & mask) !== value) return p;
    return end;
  }

  /**
   * flags[p] = (flags[p] & keep) | set for every pfn of [start, end) (end is cut to nrPfns), two
   * pfns a write: the compound tails of a huge page, the pages a free clears.
   */
  setFlagsRange(start: number, end: number, keep: number, set: number): void {
    const f = this.flags;
    if (end > f.length) end = f.length;
    if (start >= end) return;
    if (start & 1) {
      f[start] = (f[start] & keep) | set;
      start++;
    }
    const w = this.#flagWords;
    const k2 = keep | (keep << 16);
    const s2 = set | (set << 16);
    const words = end >>> 1;
    for (let i = start >>> 1; i < words; i++) w[i] = (w[i] & k2) | s2;
    if (end & 1 && end - 1 >= start) f[end - 1] = (f[end - 1] & keep) | set;
  }

  /**
   * The first pfn of [start, end) whose refcount is not 0, or end (end is cut to nrPfns): the
   * same answer as testing pfn by pfn, reading two pfns at a time (a word is 0 exactly when both
   * its refcounts are).
   */
  firstReferenced(start: number, end: number): number {
    const rc = this.refcount;
    if (end > rc.length) end = rc.length;
    if (start >= end) return end;
    if (start & 1) {
      if (rc[start] !== 0) return start;
      start++;
    }
    const w = this.#refWords;
    const words = end >>> 1;
    let i = start >>> 1;
    while (i + 4 <= words && (w[i] | w[i + 1] | w[i + 2] | w[i + 3]) === 0) i += 4;
    while (i < words && w[i] === 0) i++;
    for (let p = i * 2; p < end; p++) if (rc[p] !== 0) return p;
    return end;
  }

  /** compound_head() */
  compoundHead(pfn: number): number {
    return this.flags[pfn] & 64 /* PG_tail */ ? this.next[pfn] : pfn;
  }

  bytesPerPfn(): number {
    return 2 + 1 + 2 + 4 + 4 + 4 + 4 + 2;
  }
}
