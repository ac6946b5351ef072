/**
 * The hugetlb pool counters that per-step checkers compare with the previous step (refines-model's
 * pool model, hugepages-total-stable) and whether a gigantic pool holds pages (no-gigantic-
 * recursion), read once per step for all of them: the executor feeds it on every step, replays
 * included, like the op tracker (ctx.hugetlb). Most steps move no pool: the checkers learn it from
 * two fields instead of three walks over the same hstates.
 */
import type { Kernel } from '../src/kernel/machine.js';
import type { Hstate } from '../src/kernel/hugetlb.js';
import { hugetlbOf } from './hugetlb-util.js';

/** Each version a watch takes is taken by no other watch, nor by it before (see version). */
let versions = 0;

/** Words per hstate in HugetlbWatch.words: nr, free, resv, surplus, max, temporary.size. */
const WORDS = 6;

export class HugetlbWatch {
  /**
   * Changes whenever a step moves a counter (a word): a checker that kept the version it saw when
   * it last read the counters finds the same one exactly when none moved since, on any kernel (a
   * version is never reused). A new watch starts with one of its own, as if the first step moved.
   */
  version = ++versions;
  /**
   * The last step fed moved a counter, is the first step fed, has a gigantic pool holding pages or
   * follows one that had, or nests alloc_contig_range (k.maxContigDepth > 1): the steps
   * hugepages-total-stable and no-gigantic-recursion wake on (Property.wakes.hugetlb).
   */
  moved = true;
  // (the hstates are made when hugetlb is installed at boot and never replaced: a restore from a
  // snapshot refills them in place)
  private readonly hs: readonly Hstate[];
  private readonly giants: readonly Hstate[];
  private readonly words: Float64Array;
  private fed = false;
  private giantsBefore = false;

  constructor(private readonly k: Kernel) {
    this.hs = hugetlbOf(k)?.hstates ?? [];
    this.giants = this.hs.filter((h) => h.gigantic);
    this.words = new Float64Array(WORDS * this.hs.length);
  }

  /** Feed the step just run (before its checks). */
  update(): void {
    const same = this.sameWords();
    const giants = !giantsEmpty(this.giants);
    if (!same) this.version = ++versions;
    this.moved = !same || giants || this.giantsBefore || this.k.maxContigDepth > 1;
    this.giantsBefore = giants;
  }

  /** The counters are those of the last step fed (the first step: none), and now in `words`. */
  private sameWords(): boolean {
    const hs = this.hs;
    const w = this.words;
    let same = this.fed;
    this.fed = true;
    for (let i = 0; i < hs.length; i++) {
      const h = hs[i];
      const j = WORDS * i;
      const t = h.temporary.size;
      if (w[j] === h.nr && w[j + 1] === h.free && w[j + 2] === h.resv && w[j + 3] === h.surplus && w[j + 4] === h.max && w[j + 5] === t) continue;
      same = false;
      w[j] = h.nr;
      w[j + 1] = h.free;
      w[j + 2] = h.resv;
      w[j + 3] = h.surplus;
      w[j + 4] = h.max;
      w[j + 5] = t;
    }
    return same;
  }
}

/** No pool page in any of these hstates, free or in use. */
export function giantsEmpty(hs: readonly Hstate[]): boolean {
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i];
    if (h.inUse.size !== 0) return false;
    const nodes = h.nodes;
    for (let j = 0; j < nodes.length; j++) if (nodes[j].freeList.size !== 0) return false;
  }
  return true;
}
