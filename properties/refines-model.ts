import type { Checker, Property } from './property.js';
import type { Kernel } from '../src/kernel/machine.js';
import { PG_buddy, PG_hugetlb, PG_offline, PG_pcp, PG_reserved, PG_tail, PG_valid } from '../src/kernel/types.js';
import { freeBlockHead } from '../models/abstraction.js';
import { A, A_NONE, abstractState, stateName } from '../models/abstraction.js';
import { PAGE_STATES, allowedClosure, directTransition, isModelledOp } from '../models/page-model.js';
import { COVERAGE, coverageResets } from '../models/coverage.js';
import { poolInvariant, poolStepAllowed, type PoolCounters } from '../models/pool-model.js';
import { hugetlbOf } from './hugetlb-util.js';
import type { Hstate } from '../src/kernel/hugetlb.js';
import { dirtyTracker } from './dirty.js';
import { SavedArrays } from './checkpoint.js';
import type { HugetlbWatch } from './hugetlb-watch.js';
import { bareRun, firstNotBare, firstNotByte, firstWithFlags, keyedRun, replaceRun, type BareScan } from './memmap-scan.js';

/**
 * refines-model: the simulator refines the abstract page-state machine (models/page-model.ts).
 * After every atomic step, each pfn whose abstract state changed must have moved along transitions
 * the model allows for the op the running thread is executing (the closure of that op's
 * transitions: one critical section may move a page twice, e.g. rmqueue_bulk then a pcp pop).
 *
 * Sound per step: the model's transitions are per critical section, and a step is one.
 * Cheap: only pfns the step touched (properties/dirty.ts) and the heads of huge pages (whose
 * state changes by flags alone) are re-abstracted. It also counts abstract coverage for campaigns.
 */
export function createRefinement(k: Kernel, bufs?: Buffers): Refinement {
  // (initialAbstraction writes every pfn's state: a reused buffer needs no clearing)
  const abs = bufs?.abs ?? new Uint8Array(k.nrPfns);
  initialAbstraction(k, abs);
  const tracker = dirtyTracker(k);
  // per thread, the op it runs (opInfo), from the step that starts it
  const running: (OpInfo | undefined)[] = [];
  // Heads of the huge pages seen, each with the end of its page as last walked: demote (and a
  // free to buddy) shrinks a head's extent, and the pages past the new end change by flags alone
  // (demote's new heads), so the old extent is walked once more.
  const hugeHeads = new Map<number, number>();
  // Allocations made by an op in flight: the op may change their pages by flags alone afterwards
  // (virtio-mem's PageOffline, a hugetlb page prepped in place), so they are re-abstracted every
  // step until the op that made them returns.
  const fresh = new Map<number, number[]>();
  // (the tracker's array is copied: other checkers of the step read it after this one; a thread's
  // own array grows in place, and checkpoints keep copies)
  const addFresh = (t: number, ar: readonly number[]): void => {
    const rs = fresh.get(t);
    if (!rs) fresh.set(t, ar.slice());
    else for (let i = 0; i < ar.length; i++) rs.push(ar[i]);
  };
  let step = -1;
  // A pfn may be visited more than once in a check (a dirty range, then a fresh range or a huge
  // page's extent over it): the first visit sets abs[p] to its state, and a later one finds the
  // same state (abstractState(k, p, abstractState(k, p, s)) === abstractState(k, p, s): only a
  // free page's history is read, and `dissolved` and `free` each map to themselves), so records
  // and judges nothing. Visits are not stamped: a second one costs what a first one does.
  let op: string | undefined;
  let modelled = false;
  const { flags, order, refcount, owner, next } = k.mm;
  // Module constants copied to locals: the hot loops below read them per pfn.
  const VALID_ = VALID;
  const BUDDY_ = BUDDY;
  const FREE_ = FREE;
  const HUGE_FREE_ = HUGE_FREE;
  const HUGE_IN_USE_ = HUGE_IN_USE;
  const DISSOLVED_ = DISSOLVED;
  const ISOLATED_ = ISOLATED;
  const HELD_KEYED = VALID | PG_offline | PG_pcp | BUDDY;
  const OFFLINE_KEY = VALID | PG_offline;
  const OFFLINE_MASK = VALID | PG_offline | BUDDY;
  const PCP_MASK = VALID | PG_offline | PG_pcp | BUDDY;
  const PCP_KEY = VALID | PG_pcp;
  const maxOrder = k.cfg.maxOrder;
  const NOT_BARE = PG_hugetlb | PG_reserved;
  // Within one check the kernel does not change, and the abstract state of a held page is a
  // function of its compound head (a tail page) or of its own flags and owner (abstractState:
  // heldState(next[p]) / heldState(p), independent of the pfn's history). So a run of pages with
  // the same key (the 512 pages of one allocation) is abstracted once. Reset at every check.
  let memoTail = -1;
  let memoTailS = 0;
  let memoF = -1;
  let memoOwner = 0;
  let memoS = 0;
  // The transition last judged (transit) and, per check, the last huge head added (see visit).
  let lastD = -1;
  let lastHugeHead = -1;
  const stateOf = (p: number, from: number): number => {
    const f = flags[p];
    if ((f & HELD_KEYED) === VALID_) {
      if (f & PG_tail) {
        const h = next[p];
        if (h !== memoTail) {
          memoTailS = abstractState(k, p, from);
          memoTail = h;
        }
        return memoTailS;
      }
      const o = owner[p];
      if (refcount[p] !== 0 || o !== 0 || (f & NOT_BARE) !== 0) {
        if (f !== memoF || o !== memoOwner) {
          memoS = abstractState(k, p, from);
          memoF = f;
          memoOwner = o;
        }
        return memoS;
      }
    }
    return abstractState(k, p, from);
  };
  const visit = (p: number): string | null => {
    const from = abs[p];
    const to = stateOf(p, from);
    if (to === from) return null;
    return transit(p, from, to);
  };
  /** p's abstract state changed from `from` to `to` (to !== from) in this step: record, judge. */
  const transit = (p: number, from: number, to: number): string | null => {
    abs[p] = to;
    COVERAGE.states[to]++;
    if (to === HUGE_FREE_ || to === HUGE_IN_USE_) {
      const h = k.mm.compoundHead(p);
      if (h !== lastHugeHead) {
        const was = Math.max(hugeHeads.get(h) ?? 0, hugeEnd(h));
        hugeHeads.set((lastHugeHead = h), was);
        seeNewHead(h, was);
      }
    }
    if (!modelled) return null;
    let d = verdicts[from * NS + to];
    if (d === UNJUDGED) {
      d = directTransition(op!, from, to);
      if (d < 0 && !allowedClosure(op!, from, to)) {
        return `pfn ${p} went from ${stateName(from)} to ${stateName(to)} in thread ${k.current} during ${op!}: the page model allows no such transition`;
      }
      verdicts[from * NS + to] = d;
    }
    lastD = d;
    if (d >= 0) COVERAGE.transitions[d]++;
    return null;
  };
  /**
   * visit(p), then the pfns after p (below `end`) of the same held run that go the same way: same
   * flags and compound head (tails) or same flags and owner (held pages) give the same abstract
   * state (stateOf), and the same previous state the same transition (or none). Sets runNext to
   * the first pfn not handled.
   */
  let runNext = 0;
  // firstNotBare for this check (visitBlock), sharing what the step's other checks found bare
  let scanBare: BareScan = (s, e) => firstNotBare(k.mm, s, e);
  const visitHeld = (p: number, end: number): string | null => {
    runNext = p + 1;
    const f = flags[p];
    const from = abs[p];
    const m = visit(p);
    const to = abs[p];
    if (m) return m;
    // (a run that keeps its state, e.g. PageOffline pfns of a virtio-mem block a step touched, is
    // only skipped: visit() records nothing for a pfn whose state did not change)
    const moved = to !== from;
    // A huge state also records the compound head (visit): one head for a run of its tails only.
    if (moved && (to === HUGE_FREE_ || to === HUGE_IN_USE_) && !((f & HELD_KEYED) === VALID_ && (f & PG_tail))) return null;
    // The run: the pfns after p with p's previous state and key, whose abs are set to p's `to` as
    // it is read. (An earlier visit of one in this check set its abs to its state, which is p's
    // `to`: with `from` it would have stayed put, so it joins the run only when nothing moves.)
    let r = p + 1;
    // (never over a PageBuddy pfn: check() would take that one as a free block head)
    if ((f & OFFLINE_KEY) === OFFLINE_KEY) {
      // abstractState: any valid PageOffline pfn is `offline`
      r = keyedRun(k.mm, abs, r, end, from, to, OFFLINE_MASK, OFFLINE_KEY, null, 0);
    } else if ((f & PCP_MASK) === PCP_KEY) {
      // abstractState: a valid, not offline, pcp pfn is `pcp`
      r = keyedRun(k.mm, abs, r, end, from, to, PCP_MASK, PCP_KEY, null, 0);
    } else if ((f & HELD_KEYED) !== VALID_) return null;
    else if (f & PG_tail) r = keyedRun(k.mm, abs, r, end, from, to, 0xffff, f, next, next[p]);
    else {
      const o = owner[p];
      const heldByFlags = (f & NOT_BARE) !== 0 || o !== 0;
      if (!heldByFlags && refcount[p] === 0) {
        // A bare frame: inside a free block (free, isolated, dissolved) it is visitBlock's; outside
        // every free block (taken off the lists, in flight: contig-taken), so is every bare frame
        // after it (a block holding a later one but not p would have to start at a PageBuddy
        // frame in between), and they share its abstract state (abstractState -> heldState).
        if (to === FREE_ || to === ISOLATED_ || to === DISSOLVED_) return null;
        r = bareRun(k.mm, abs, r, end, from, to);
      } else if (heldByFlags) r = keyedRun(k.mm, abs, r, end, from, to, 0xffff, f, owner, o);
      else for (; r < end && flags[r] === f && owner[r] === o && refcount[r] !== 0 && abs[r] === from; r++) abs[r] = to;
    }
    if (r > p + 1 && moved) countRun(to, r - p - 1);
    runNext = r;
    return null;
  };
  /** n more pfns took the transition just judged (transit) to `to`: counted as pfn by pfn would */
  const countRun = (to: number, n: number): void => {
    COVERAGE.states[to] += n;
    if (modelled && lastD >= 0) COVERAGE.transitions[lastD] += n;
  };
  // The touched pfns [lo, hi) of the free block [head, bend): the block's state is abstracted once
  // (its pages share the head's state, up to the dissolved history of each page), so a step that
  // isolated a MAX_ORDER block costs one pass.
  const visitBlock = (head: number, lo: number, hi: number): string | null => {
    const base = abstractState(k, head, A_NONE);
    const baseFree = base === FREE_;
    // 0: not yet known; -1: recompute every pfn; else the head is a plain PageBuddy head and no
    // pfn of [head + 1, clean) is PageBuddy, so abstractState of a bare frame there is exactly
    // `to` below and need not be recomputed (see plainHead).
    let clean = 0;
    for (let q = lo; q < hi; q++) {
      const from = abs[q];
      const to = baseFree && (from === HUGE_FREE_ || from === HUGE_IN_USE_ || from === DISSOLVED_) ? DISSOLVED_ : base;
      if (to === from) {
        // (`to` is a function of `from`: so are the pfns after q that were in q's state)
        q = firstNotByte(abs, q + 1, hi, from) - 1;
        continue;
      }
      if (clean === 0) clean = plainHead(head) ? head + 1 : -1;
      if (q === head) {
        // abstractState(k, head, from) is `to`: base, unless base is free and then `dissolved`
        // after a huge state (the one use of a pfn's history), as `to` above (what visit() asks)
        const m = transit(q, from, to);
        if (m) return m;
        continue;
      }
      const bare = flags[q] === VALID_ && refcount[q] === 0 && owner[q] === 0;
      // ([clean, q) is empty right after the head and after a run: no scan to ask for)
      if (bare && clean > 0 && clean < q && firstWithFlags(k.mm, clean, q, BUDDY_) >= 0) clean = -1;
      if (bare && clean > 0) {
        // The run of bare frames after q with the same previous state takes the same transition:
        // judged at q, then moved while in `from` (one pass over abs).
        const m = transit(q, from, to);
        if (m) return m;
        const r = replaceRun(abs, q + 1, scanBare(q + 1, hi), from, to);
        countRun(to, r - q - 1);
        clean = r;
        q = r - 1;
        continue;
      }
      const m = visit(q);
      if (m) return m;
    }
    return null;
  };
  // When the head is a plain PageBuddy page (valid; not offline, pcp or tail), aligned to its
  // order, order <= MAX_ORDER, and no pfn of [head + 1, q] is PageBuddy, then freeBlockHead() of a
  // bare frame q of the block is `head` (it tries q rounded down to each order up to the head's:
  // pfns of [head, q], the first PageBuddy one is the head): abstractState() of q is `isolated` on
  // an ISOLATE list, else `dissolved` after a huge state and `free` otherwise, which is what
  // visitBlock computes from the head's state. (PageBuddy pfns after q do not matter to q.)
  const plainHead = (head: number): boolean => {
    const o = order[head];
    if ((flags[head] & (VALID_ | PG_offline | PG_pcp | PG_tail | BUDDY_)) !== (VALID_ | BUDDY_)) return false;
    return o <= maxOrder && (head & ((1 << o) - 1)) === 0;
  };
  // A range changed by flags alone changes as a whole (PageOffline over a subblock, a compound
  // page prepped): its first and last pages tell whether it needs a walk.
  /** The end of the huge page headed by h (one pfn once h is no longer a hugetlb head). */
  const hugeEnd = (h: number) => Math.min(k.nrPfns, h + (1 << (flags[h] & PG_hugetlb ? order[h] : 0)));
  const changed = (p: number) => stateOf(p, abs[p]) !== abs[p];
  /** the first or the last pfn of [s, e) changed (one pfn asked once: abstractState of a free one is a search) */
  const changedEnds = (s: number, e: number) => changed(s) || (e - 1 !== s && changed(e - 1));
  const walk = (s: number, e: number): string | null => {
    for (let p = s; p < e;) {
      const m = visitHeld(p, e);
      if (m) return m;
      p = runNext;
    }
    return null;
  };
  // The pool model: each hstate's counters move only along pool-model events the op may cause.
  // (the hstates are made when hugetlb is installed at boot and never replaced: a restore from a
  // snapshot refills them in place)
  const hstates = hugetlbOf(k)?.hstates ?? [];
  let pools: PoolCounters[] = readPools(hstates);
  // The watch's version when `pools` last held the counters (-1: unknown): the same version now
  // means that no counter moved since (HugetlbWatch.version), and poolsMoved() need not read them.
  let poolsSeen = -1;
  const poolsMoved = (): boolean => {
    for (let i = 0; i < hstates.length; i++) {
      const h = hstates[i];
      const a = pools[i];
      if (h.nr !== a.total || h.free !== a.free || h.resv !== a.resv || h.surplus !== a.surp) return true;
    }
    return false;
  };
  const checkPools = (o: string | undefined): string | null => {
    const now = readPools(hstates);
    let msg: string | null = null;
    for (let i = 0; i < now.length && !msg; i++) {
      const a = pools[i];
      const b = now[i];
      if (a.total === b.total && a.free === b.free && a.resv === b.resv && a.surp === b.surp) continue;
      if (!poolInvariant(b)) msg = `hstate ${i}: counters Total ${b.total} Free ${b.free} Rsvd ${b.resv} Surp ${b.surp} break the pool model's invariants`;
      else if (o !== undefined && !poolStepAllowed(o, a, b)) {
        msg = `hstate ${i}: ${o} (thread ${k.current}) moved the pool from Total ${a.total} Free ${a.free} Rsvd ${a.resv} Surp ${a.surp} to Total ${b.total} Free ${b.free} Rsvd ${b.resv} Surp ${b.surp}: no pool-model transition of ${o} does that`;
      }
    }
    pools = now;
    return msg;
  };
  let verdicts: Int16Array = NO_VERDICTS;
  const check = (st: number, started: { thread: number; op: { op: string } }[], finished: { thread: number }[] = [], hugetlb?: HugetlbWatch): string | null => {
    step = st;
    for (let i = 0; i < started.length; i++) running[started[i].thread] = opInfo(started[i].op.op);
    // Before a thread's first op starts (its first step only reaches the op's yield) nothing runs.
    const run = running[k.current];
    op = run?.op;
    modelled = run !== undefined && run.modelled;
    verdicts = run !== undefined ? run.verdicts : NO_VERDICTS;
    if (run !== undefined && !modelled && run.added !== coverageResets) {
      COVERAGE.unmodelledOps.add(run.op);
      run.added = coverageResets;
    }
    memoTail = -1;
    memoF = -1;
    lastHugeHead = -1;
    // (a step that touched no pfn, most of them, has no ranges to rotate in: none to ask for)
    const touched = tracker.touched(step);
    const r = touched ? tracker.merged(step) : NO_RANGES;
    if (touched) scanBare = tracker.bareScan(step);
    for (let i = 0; i < r.length; i += 2) {
      const end = r[i + 1];
      for (let p = r[i]; p < end;) {
        const f = flags[p];
        const head = f & BUDDY_ ? p : f === VALID_ && refcount[p] === 0 && owner[p] === 0 ? freeBlockHead(k, p) : -1;
        const bend = head >= 0 ? Math.min(head + (1 << order[head]), k.nrPfns) : -1;
        if (head >= 0 && p < bend) {
          const hi = Math.min(end, bend);
          const m = visitBlock(head, p, hi);
          if (m) return m;
          p = hi;
          continue;
        }
        const m = visitHeld(p, end);
        if (m) return m;
        p = runNext;
      }
    }
    const ar = touched ? tracker.allocRanges(step) : NO_RANGES;
    if (ar.length) addFresh(k.current, ar);
    if (fresh.size) {
      for (const rs of fresh.values()) {
        for (let i = 0; i < rs.length; i += 2) {
          const e = Math.min(rs[i + 1], k.nrPfns);
          if (e <= rs[i] || !changedEnds(rs[i], e)) continue;
          const m = walk(rs[i], e);
          if (m) return m;
        }
      }
      for (let i = 0; i < finished.length; i++) fresh.delete(finished[i].thread);
    }
    // (nothing moved: nothing to judge, and `pools` already holds these values)
    if (hugetlb === undefined || hugetlb.version !== poolsSeen) {
      const pm = poolsMoved() ? checkPools(op) : null;
      poolsSeen = hugetlb === undefined ? -1 : hugetlb.version;
      if (pm) return pm;
    }
    if (hugeSeen && hugeHeadsAsSeen()) {
      if (newHeads) seeHugeHeads();
      return null;
    }
    const m = visitHugeHeads();
    if (m) return m;
    seeHugeHeads();
    return null;
  };
  const headUnchanged = (h: number, was: number): boolean => {
    const end = hugeEnd(h);
    return !changedEnds(h, end) && (was <= end || !changed(was - 1));
  };
  const visitHugeHeads = (): string | null => {
    // (keys and get, not entries: no [key, value] array per head and step)
    for (const h of hugeHeads.keys()) {
      const was = hugeHeads.get(h)!;
      if (headUnchanged(h, was)) continue;
      const end = hugeEnd(h);
      const m = walk(h, Math.max(end, was));
      if (m) return m;
      if (!(flags[h] & PG_hugetlb)) {
        hugeHeads.delete(h);
        lastHugeHead = -1;
      } else if (was !== end) hugeHeads.set(h, end);
    }
    return null;
  };
  // What visitHugeHeads read of each watched head at the end of a check, five words a head. For a
  // plain hugetlb head (valid; not offline, pcp, tail or PageBuddy) whose last pfn was a plain tail
  // of it and whose extent had not shrunk (was <= end): [h, flags[h], order[h], last, flags[last]].
  // Then the abstract state of h and of last is a function of flags[h] alone (abstractState ->
  // heldState(h): PG_hugetlb_freed), and abs held it (visitHugeHeads left every head's abs
  // current): the same words and next[last] === h mean that visitHugeHeads would find nothing
  // changed (its extent is order[h]'s) and skip the head. Any other head (no longer hugetlb, say:
  // it stays until its state changes) is [h, -1, was, 0, 0], asked headUnchanged again, and so is
  // a head added or extended since (seeNewHead). When every head passes, visitHugeHeads would skip
  // them all: most steps, which change no huge page. (A check's earlier visits only set abs to
  // the current state.)
  let hugeSeen = false;
  let seenHeads = bufs?.heads ?? NO_HEADS;
  let nSeen = 0;
  // heads added since seeHugeHeads (prep_new_huge_page makes one a step while a pool grows)
  let newHeads = false;
  const roomForHeads = (words: number): void => {
    if (seenHeads.length >= words) return;
    const grown = new Int32Array(Math.max(40, 2 * words));
    grown.set(seenHeads.subarray(0, nSeen));
    seenHeads = grown;
    if (bufs) bufs.heads = grown;
  };
  const seeNewHead = (h: number, was: number): void => {
    if (!hugeSeen) return;
    roomForHeads(nSeen + 5);
    seenHeads[nSeen++] = h;
    seenHeads[nSeen++] = -1;
    seenHeads[nSeen++] = was;
    seenHeads[nSeen++] = 0;
    seenHeads[nSeen++] = 0;
    newHeads = true;
  };
  const seeHead = (was: number, h: number): void => {
    const end = hugeEnd(h);
    const last = end - 1;
    const plain = (flags[h] & HUGE_HEAD_MASK) === HUGE_HEAD_KEY && was <= end && (flags[last] & TAIL_MASK) === TAIL_KEY && next[last] === h;
    seenHeads[nSeen++] = h;
    seenHeads[nSeen++] = plain ? flags[h] : -1;
    seenHeads[nSeen++] = plain ? order[h] : was;
    seenHeads[nSeen++] = plain ? last : 0;
    seenHeads[nSeen++] = plain ? flags[last] : 0;
  };
  const seeHugeHeads = (): void => {
    nSeen = 0;
    newHeads = false;
    roomForHeads(5 * hugeHeads.size);
    // (forEach: no [key, value] array per head and step)
    hugeHeads.forEach(seeHead);
    hugeSeen = true;
  };
  const hugeHeadsAsSeen = (): boolean => {
    for (let i = 0; i < nSeen; i += 5) {
      const h = seenHeads[i];
      if (seenHeads[i + 1] < 0) {
        if (!headUnchanged(h, seenHeads[i + 2])) return false;
        continue;
      }
      const last = seenHeads[i + 3];
      if (flags[h] !== seenHeads[i + 1] || order[h] !== seenHeads[i + 2] || flags[last] !== seenHeads[i + 4] || next[last] !== h) return false;
    }
    return true;
  };
  // Checkpoints (Checker.checkpoint / restore): what a check reads of earlier checks. (pools is
  // replaced, never changed in place: a slot keeps a reference.)
  const savedAbs: Uint8Array[] = bufs?.saved ?? [];
  const savedRunning = new SavedArrays<OpInfo | undefined>();
  const savedHuge = new SavedArrays<number>();
  const savedFresh: [number, number[]][][] = [];
  const savedPools: PoolCounters[][] = [];
  const heads: number[] = [];
  const checkpoint = (slot: number): void => {
    (savedAbs[slot] ??= new Uint8Array(abs.length)).set(abs);
    savedRunning.save(slot, running);
    heads.length = 0;
    for (const [h, end] of hugeHeads) heads.push(h, end);
    savedHuge.save(slot, heads);
    savedFresh[slot] = fresh.size ? [...fresh].map(([t, rs]) => [t, rs.slice()]) : NO_FRESH;
    savedPools[slot] = pools;
  };
  const restore = (slot: number): void => {
    abs.set(savedAbs[slot]);
    savedRunning.load(slot, running);
    // (clear() allocates a new table: most restores find both empty and leave them so)
    const hs = savedHuge.load(slot, heads)!;
    if (hugeHeads.size) hugeHeads.clear();
    for (let i = 0; i < hs.length; i += 2) hugeHeads.set(hs[i], hs[i + 1]);
    if (fresh.size) fresh.clear();
    for (const [t, rs] of savedFresh[slot]) fresh.set(t, rs.slice());
    hugeSeen = false;
    pools = savedPools[slot];
    poolsSeen = -1;
    // Had it checked the replayed steps it would have taken each one's pfns off the tracker: the
    // next check must see the next step's only.
    tracker.reset();
  };
  // (a check that found a violation may have stopped before visitHugeHeads: it is not trusted)
  const checkStep: Refinement['check'] = (st, started, finished, hugetlb) => {
    const m = check(st, started, finished, hugetlb);
    if (m) hugeSeen = false;
    return m;
  };
  // What a check reads besides what the step woke it for (see refinesModel's wakes): fresh
  // allocations and watched huge heads change by flags alone, and a check with !hugeSeen (or new
  // heads) has heads to walk or words to write.
  const watching = (): boolean => fresh.size !== 0 || hugeHeads.size !== 0 || !hugeSeen || newHeads;
  return { check: checkStep, abs, checkpoint, restore, watching };
}

const NO_FRESH: [number, number[]][] = [];

/** abstract states: the `to` of a transition (abstractState gives one); a `from` may be A_NONE */
const NS = PAGE_STATES.length;
const UNJUDGED = -2;
const NO_VERDICTS = new Int16Array(0);
/** What a check needs of the op a thread runs, made once per op and kept in running[]. */
interface OpInfo {
  op: string;
  /** the page model has the op */
  modelled: boolean;
  /**
   * The model's verdict on each (from, to) judged so far, at from * NS + to: the direct
   * transition's index, -1 (allowed by the closure alone) or UNJUDGED. A disallowed pair is not
   * kept (its check reports it). directTransition and allowedClosure are functions of (op, from,
   * to): no Map lookup per transition, nor per switch between threads.
   */
  verdicts: Int16Array;
  /** coverageResets when the op was last added to COVERAGE.unmodelledOps (unmodelled ops only) */
  added: number;
}
const OP_INFO = new Map<string, OpInfo>();
function opInfo(op: string): OpInfo {
  let v = OP_INFO.get(op);
  if (!v) {
    const modelled = isModelledOp(op);
    OP_INFO.set(op, (v = { op, modelled, verdicts: modelled ? new Int16Array(256 * NS).fill(UNJUDGED) : NO_VERDICTS, added: -1 }));
  }
  return v;
}
const NO_HEADS = new Int32Array(0);

export interface Refinement {
  check: (step: number, started: { thread: number; op: { op: string } }[], finished?: { thread: number }[], hugetlb?: HugetlbWatch) => string | null;
  /**
   * A check of a step that touched no pfn, started no op and moved no hugetlb counter could find
   * something (or change the checker's state): fresh allocations or huge heads to look at
   */
  watching: () => boolean;
  /** the abstract state of every pfn, as of the last check */
  abs: Uint8Array;
  checkpoint: (slot: number) => void;
  restore: (slot: number) => void;
}

/**
 * The abstraction of a freshly booted machine is the same for every run of a (config, profile):
 * computed once and copied (a campaign boots thousands of machines). The key includes the free
 * counters so that a kernel handed over after other changes is abstracted afresh.
 */
const BOOT_CACHE = new Map<string, { abs: Uint8Array; present: number[] }>();

/** JSON.stringify(cfg).length, once per config object (configs are immutable). */
const CFG_LENGTH = new WeakMap<object, number>();
function cfgLength(cfg: object): number {
  let n = CFG_LENGTH.get(cfg);
  if (n === undefined) CFG_LENGTH.set(cfg, (n = JSON.stringify(cfg).length));
  return n;
}

/**
 * The last machine looked up in BOOT_CACHE: its config and profile, and the numbers of its key in
 * order. A campaign restores one kernel for every run: the same objects and numbers make the same
 * key, and the key need not be built (a string of every zone's counters) to find the same entry.
 */
let lastBoot: { cfg: object; profile: object; counts: number[]; hit: { abs: Uint8Array; present: number[] } } | null = null;

function bootCounts(k: Kernel, into: number[]): number[] {
  into.length = 0;
  for (const z of k.zones) {
    into.push(z.freePages, z.nrFree.length, z.pcpCount.length);
    for (let i = 0; i < z.nrFree.length; i++) into.push(z.nrFree[i]);
    for (let i = 0; i < z.pcpCount.length; i++) into.push(z.pcpCount[i]);
  }
  into.push(k.zones.length, k.allocs.size, k.nextToken);
  return into;
}

function sameBoot(k: Kernel, counts: number[]): boolean {
  let j = 0;
  for (const z of k.zones) {
    if (counts[j++] !== z.freePages || counts[j++] !== z.nrFree.length || counts[j++] !== z.pcpCount.length) return false;
    for (let i = 0; i < z.nrFree.length; i++) if (counts[j++] !== z.nrFree[i]) return false;
    for (let i = 0; i < z.pcpCount.length; i++) if (counts[j++] !== z.pcpCount[i]) return false;
  }
  return counts[j++] === k.zones.length && counts[j++] === k.allocs.size && counts[j++] === k.nextToken && j === counts.length;
}

function initialAbstraction(k: Kernel, abs: Uint8Array): void {
  const last = lastBoot;
  if (last && last.cfg === k.cfg && last.profile === k.profile && last.hit.abs.length === abs.length && sameBoot(k, last.counts)) {
    abs.set(last.hit.abs);
    for (const s of last.hit.present) COVERAGE.states[s]++;
    return;
  }
  const key = `${k.cfg.name}/${k.profile.name}/${cfgLength(k.cfg)}/${k.zones.map((z) => `${z.freePages}:${z.nrFree.join(',')}:${z.pcpCount.join(',')}`).join(';')}/${k.allocs.size}/${k.nextToken}`;
  let hit = BOOT_CACHE.get(key);
  if (!hit || hit.abs.length !== abs.length) {
    walkAbstraction(k, abs);
    const present = new Set(abs);
    if (BOOT_CACHE.size > 64) BOOT_CACHE.clear();
    BOOT_CACHE.set(key, (hit = { abs: abs.slice(), present: [...present] }));
  } else abs.set(hit.abs);
  lastBoot = { cfg: k.cfg, profile: k.profile, counts: bootCounts(k, lastBoot?.counts ?? []), hit };
  // Coverage: the states a run starts in count as reached.
  for (const s of hit.present) COVERAGE.states[s]++;
}

/** One forward walk: a free block's interior gets its head's state without a head search. */
function walkAbstraction(k: Kernel, abs: Uint8Array): void {
  const { flags, order } = k.mm;
  for (let p = 0; p < k.nrPfns;) {
    const s = abstractState(k, p, A_NONE);
    if ((flags[p] & PG_valid) && (s === A.free || s === A.isolated) && flags[p] & 2 /* PG_buddy */) {
      const e = Math.min(k.nrPfns, p + (1 << order[p]));
      abs.fill(s, p, e);
      p = e;
      continue;
    }
    abs[p] = s;
    p++;
  }
}

function readPools(hstates: readonly Hstate[]): PoolCounters[] {
  return hstates.map((h) => ({ total: h.nr, free: h.free, resv: h.resv, surp: h.surplus }));
}

const NO_RANGES: readonly number[] = [];
const BUDDY = PG_buddy;
const VALID = PG_valid;
const FREE = A.free;
const HUGE_FREE = A['huge-free'];
const HUGE_IN_USE = A['huge-in-use'];
const DISSOLVED = A.dissolved;
const ISOLATED = A.isolated;
const HUGE_HEAD_MASK = PG_valid | PG_offline | PG_pcp | PG_tail | PG_buddy | PG_hugetlb;
const HUGE_HEAD_KEY = PG_valid | PG_hugetlb;
const TAIL_MASK = PG_valid | PG_offline | PG_pcp | PG_tail;
const TAIL_KEY = PG_valid | PG_tail;

const refinesModel: Property = {
  name: 'refines-model',
  statement: 'after every step, every pfn whose abstract page state changed took transitions the XState page model allows for the running op',
  kernelRef: 'models/page-model.ts (rmqueue, free_unref_page, alloc_contig_range, cma_alloc, hugetlb pool, offline_pages, virtio-mem)',
  guards: 'pages taken from the wrong state: a pinned/unmovable page taken by alloc_contig_range, an isolated page handed out, an in-use huge page freed, anything entering or leaving a hole',
  when: 'step',
  // A check of a step with none of these returns null and changes nothing: no pfn touched (the
  // dirty ranges are empty), no op started (running[] as it was; an unmodelled op is added to the
  // coverage at its first step, and resetCoverage is called between campaigns, not during a run),
  // no hugetlb counter moved (pools holds them: it was synced at the last check), and nothing
  // watched (watching(): no fresh allocation, no huge head, hugeSeen and no new head, so
  // hugeHeadsAsSeen holds). Most steps, of long cma_alloc retries above all.
  wakes: { dirty: true, started: true, hugetlb: true, watching: true },
  create(k) {
    // A campaign runs thousands of times on one (restored) kernel: the per-pfn arrays of a
    // finished run are reused (both are fully re-initialised by createRefinement).
    const pool = SPARE.get(k);
    const bufs = pool?.pop() ?? { abs: new Uint8Array(k.nrPfns), saved: [] };
    const r = createRefinement(k, bufs);
    let live = true;
    const c: Checker = {
      check: (ctx) => {
        const m = r.check(ctx.step, ctx.started, ctx.finished, ctx.hugetlb);
        c.watching = r.watching();
        return m;
      },
      checkpoint: r.checkpoint,
      restore: (slot) => {
        r.restore(slot);
        c.watching = true;
      },
      drainsDirty: true,
      watching: true,
      dispose: () => {
        if (!live) return;
        live = false;
        const spare = SPARE.get(k);
        if (spare) spare.push(bufs);
        else SPARE.set(k, [bufs]);
      },
    };
    return c;
  },
};

interface Buffers {
  abs: Uint8Array;
  /** the huge-head words (seeHugeHeads), grown on demand */
  heads?: Int32Array;
  /** checkpoints of abs, by slot */
  saved: Uint8Array[];
}

/** Per kernel: per-pfn arrays of disposed refinement checkers, for the next run. */
const SPARE = new WeakMap<Kernel, Buffers[]>();

export default refinesModel;
