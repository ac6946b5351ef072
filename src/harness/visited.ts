/**
 * The model checker's table of explored states: 64-bit fingerprints (two int32 halves) to the
 * visit records kept for each (non-negative numbers, see Explorer.seen in modelcheck.ts).
 *
 * Open addressing over typed arrays, not a Map: a Map keyed by a 53-bit number boxes every key
 * (a heap number per state, millions of them for the garbage collector to trace), and 53 bits
 * are too few for millions of states. Most states are visited once and keep one record in the
 * table; a state with several records keeps them in a side list.
 */
export class VisitedTable {
  private hi = new Int32Array(0);
  private lo = new Int32Array(0);
  /** 0: empty slot; r + 1: the one record r; -(i + 1): the records lists[i] */
  private val = new Int32Array(0);
  private lists: number[][] = [];
  private readonly one = [0];
  private mask = 0;
  size = 0;

  constructor(private readonly initial = 1 << 12) {
    this.alloc(initial);
  }

  clear(): void {
    if (this.size === 0) return;
    if (this.val.length > this.initial) this.alloc(this.initial);
    else this.val.fill(0);
    this.lists = [];
    this.size = 0;
  }

  /**
   * The records kept for (hi, lo): none (an empty list) if the state is new. Read it before the
   * next call: a single record comes in a list that is reused (half the states explored are
   * revisits, most of one record).
   */
  records(hi: number, lo: number): readonly number[] {
    const v = this.val[this.slot(hi, lo)];
    if (v === 0) return NONE;
    if (v < 0) return this.lists[-v - 1];
    this.one[0] = v - 1;
    return this.one;
  }

  /** The one record of a state seen for the first time; false (nothing stored) if it was seen before. */
  addNew(hi: number, lo: number, record: number): boolean {
    const i = this.slot(hi, lo);
    if (this.val[i] !== 0) return false;
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.val[i] = record + 1;
    if (++this.size * 2 > this.val.length) this.grow();
    return true;
  }

  /** Replaces the records of a state already in the table. */
  set(hi: number, lo: number, records: number[]): void {
    const i = this.slot(hi, lo);
    const v = this.val[i];
    if (records.length === 1) this.val[i] = records[0] + 1;
    else if (v < 0) this.lists[-v - 1] = records;
    else this.val[i] = -this.lists.push(records);
  }

  /** The slot holding (hi, lo), or the empty slot where it would go (linear probing). */
  private slot(hi: number, lo: number): number {
    let i = lo & this.mask;
    while (this.val[i] !== 0 && (this.hi[i] !== hi || this.lo[i] !== lo)) i = (i + 1) & this.mask;
    return i;
  }

  private alloc(n: number): void {
    this.hi = new Int32Array(n);
    this.lo = new Int32Array(n);
    this.val = new Int32Array(n);
    this.mask = n - 1;
  }

  private grow(): void {
    const { hi, lo, val } = this;
    this.alloc(val.length * 2);
    for (let j = 0; j < val.length; j++) {
      if (val[j] === 0) continue;
      const i = this.slot(hi[j], lo[j]);
      this.hi[i] = hi[j];
      this.lo[i] = lo[j];
      this.val[i] = val[j];
    }
  }
}

const NONE: readonly number[] = [];
