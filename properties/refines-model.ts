import type { Property } from './property.js';
import type { Kernel } from '../src/kernel/machine.js';
import { PG_buddy, PG_hugetlb, PG_valid } from '../src/kernel/types.js';
import { freeBlockHead } from '../models/abstraction.js';
import { mergeRanges } from './page-conservation.js';
import { A, A_NONE, abstractState, stateName } from '../models/abstraction.js';
import { allowedClosure, directTransition, isModelledOp } from '../models/page-model.js';
import { COVERAGE } from '../models/coverage.js';
import { poolInvariant, poolStepAllowed, type PoolCounters } from '../models/pool-model.js';
import { hugetlbOf } from './hugetlb-util.js';
import { dirtyTracker } from './dirty.js';

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
export function createRefinement(k: Kernel): { check: (step: number, started: { thread: number; op: { op: string } }[], finished?: { thread: number }[]) => string | null; abs: Uint8Array } {
  const abs = new Uint8Array(k.nrPfns).fill(A_NONE);
  initialAbstraction(k, abs);
  const tracker = dirtyTracker(k);
  const stamp = new Int32Array(k.nrPfns).fill(-1);
  const running: string[] = [];
  const hugeHeads = new Set<number>();
  // Allocations made by an op in flight: the op may change their pages by flags alone afterwards
  // (virtio-mem's PageOffline, a hugetlb page prepped in place), so they are re-abstracted every
  // step until the op that made them returns.
  const fresh = new Map<number, number[]>();
  let step = -1;
  let op: string | undefined;
  let modelled = false;
  const { flags, order, refcount, owner } = k.mm;
  const visit = (p: number): string | null => {
    if (stamp[p] === step) return null;
    stamp[p] = step;
    const from = abs[p];
    const to = abstractState(k, p, from);
    if (to === from) return null;
    abs[p] = to;
    COVERAGE.states[to]++;
    if (to === HUGE_FREE || to === HUGE_IN_USE) hugeHeads.add(k.mm.compoundHead(p));
    if (!modelled) return null;
    const d = directTransition(op!, from, to);
    if (d >= 0) COVERAGE.transitions[d]++;
    else if (!allowedClosure(op!, from, to)) {
      return `pfn ${p} went from ${stateName(from)} to ${stateName(to)} in thread ${k.current} during ${op!}: the page model allows no such transition`;
    }
    return null;
  };
  // A free block is abstracted once (its pages share the head's state, up to the dissolved
  // history of each page), so a step that split or merged a MAX_ORDER block costs one pass.
  const visitBlock = (head: number, bend: number): string | null => {
    const base = abstractState(k, head, A_NONE);
    for (let q = head; q < bend; q++) {
      if (stamp[q] === step) continue;
      const from = abs[q];
      const to = base === FREE && (from === HUGE_FREE || from === HUGE_IN_USE || from === DISSOLVED) ? DISSOLVED : base;
      if (to === from) {
        stamp[q] = step;
        continue;
      }
      const m = visit(q);
      if (m) return m;
    }
    return null;
  };
  // A range changed by flags alone changes as a whole (PageOffline over a subblock, a compound
  // page prepped): its first and last pages tell whether it needs a walk.
  const changed = (p: number) => stamp[p] !== step && abstractState(k, p, abs[p]) !== abs[p];
  const walk = (s: number, e: number): string | null => {
    for (let p = s; p < e; p++) {
      const m = visit(p);
      if (m) return m;
    }
    return null;
  };
  // The pool model: each hstate's counters move only along pool-model events the op may cause.
  let pools: PoolCounters[] = readPools(k);
  const checkPools = (o: string | undefined): string | null => {
    const now = readPools(k);
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
  const check = (st: number, started: { thread: number; op: { op: string } }[], finished: { thread: number }[] = []): string | null => {
    step = st;
    for (const s of started) running[s.thread] = s.op.op;
    op = running[k.current];
    // Before a thread's first op starts (its first step only reaches the op's yield) nothing runs.
    modelled = op !== undefined && isModelledOp(op);
    if (op !== undefined && !modelled) COVERAGE.unmodelledOps.add(op);
    const r = mergeRanges(tracker.ranges(step), k.nrPfns);
    for (let i = 0; i < r.length; i += 2) {
      const end = r[i + 1];
      for (let p = r[i]; p < end;) {
        const f = flags[p];
        const head = f & BUDDY ? p : f === VALID && refcount[p] === 0 && owner[p] === 0 ? freeBlockHead(k, p) : -1;
        const bend = head >= 0 ? Math.min(head + (1 << order[head]), k.nrPfns) : -1;
        if (head >= 0 && p < bend) {
          const m = visitBlock(head, bend);
          if (m) return m;
          p = bend;
          continue;
        }
        const m = visit(p);
        if (m) return m;
        p++;
      }
    }
    const ar = tracker.allocRanges(step);
    if (ar.length) fresh.set(k.current, [...(fresh.get(k.current) ?? []), ...ar]);
    for (const rs of fresh.values()) {
      for (let i = 0; i < rs.length; i += 2) {
        const e = Math.min(rs[i + 1], k.nrPfns);
        if (e <= rs[i] || (!changed(rs[i]) && !changed(e - 1))) continue;
        const m = walk(rs[i], e);
        if (m) return m;
      }
    }
    for (const f of finished) fresh.delete(f.thread);
    const pm = checkPools(op);
    if (pm) return pm;
    for (const h of hugeHeads) {
      const end = Math.min(k.nrPfns, h + (1 << (flags[h] & PG_hugetlb ? order[h] : 0)));
      if (!changed(h) && !changed(end - 1)) continue;
      const m = walk(h, end);
      if (m) return m;
      if (!(flags[h] & PG_hugetlb)) hugeHeads.delete(h);
    }
    return null;
  };
  return { check, abs };
}

/**
 * The abstraction of a freshly booted machine is the same for every run of a (config, profile):
 * computed once and copied (a campaign boots thousands of machines). The key includes the free
 * counters so that a kernel handed over after other changes is abstracted afresh.
 */
const BOOT_CACHE = new Map<string, { abs: Uint8Array; present: number[] }>();

function initialAbstraction(k: Kernel, abs: Uint8Array): void {
  const key = `${k.cfg.name}/${k.profile.name}/${JSON.stringify(k.cfg).length}/${k.zones.map((z) => `${z.freePages}:${z.nrFree.join(',')}:${z.pcpCount.join(',')}`).join(';')}/${k.allocs.size}/${k.nextToken}`;
  let hit = BOOT_CACHE.get(key);
  if (!hit || hit.abs.length !== abs.length) {
    walkAbstraction(k, abs);
    const present = new Set(abs);
    if (BOOT_CACHE.size > 64) BOOT_CACHE.clear();
    BOOT_CACHE.set(key, (hit = { abs: abs.slice(), present: [...present] }));
  } else abs.set(hit.abs);
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

function readPools(k: Kernel): PoolCounters[] {
  return (hugetlbOf(k)?.hstates ?? []).map((h) => ({ total: h.nr, free: h.free, resv: h.resv, surp: h.surplus }));
}

const BUDDY = PG_buddy;
const VALID = PG_valid;
const FREE = A.free;
const HUGE_FREE = A['huge-free'];
const HUGE_IN_USE = A['huge-in-use'];
const DISSOLVED = A.dissolved;

const refinesModel: Property = {
  name: 'refines-model',
  statement: 'after every step, every pfn whose abstract page state changed took transitions the XState page model allows for the running op',
  kernelRef: 'models/page-model.ts (rmqueue, free_unref_page, alloc_contig_range, cma_alloc, hugetlb pool, offline_pages, virtio-mem)',
  guards: 'pages taken from the wrong state: a pinned/unmovable page taken by alloc_contig_range, an isolated page handed out, an in-use huge page freed, anything entering or leaving a hole',
  when: 'step',
  create(k) {
    const r = createRefinement(k);
    return { check: (ctx) => r.check(ctx.step, ctx.started, ctx.finished) };
  },
};

export default refinesModel;
