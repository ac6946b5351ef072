/**
 * Per-slot copies of a checker's small state arrays, for Checker.checkpoint / restore (the model
 * checker takes a checkpoint before every new step): a slot's copy is reused when the slot is
 * taken again, so checkpoints allocate nothing once the slots exist.
 */
export class SavedArrays<T> {
  private readonly slots: T[][] = [];
  /** the slot was saved from null */
  private readonly none: boolean[] = [];

  save(slot: number, a: readonly T[] | null): void {
    this.none[slot] = a === null;
    if (a !== null) copyInto(a, (this.slots[slot] ??= []));
  }

  /** The array saved in `slot`, copied into `into` (a slot may be restored many times), or null. */
  load(slot: number, into: T[]): T[] | null {
    return this.none[slot] ? null : copyInto(this.slots[slot], into);
  }
}

function copyInto<T>(src: readonly T[], dst: T[]): T[] {
  if (dst.length !== src.length) dst.length = src.length;
  for (let i = 0; i < src.length; i++) dst[i] = src[i];
  return dst;
}
