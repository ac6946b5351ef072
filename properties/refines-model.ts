import type { Property } from './property.js';
import type { Kernel } from '../src/kernel/machine.js';
import { PG_hugetlb, PG_valid } from '../src/kernel/types.js';
import { A, A_NONE, abstractState, stateName } from '../models/abstraction.js';
import { allowedClosure, directTransition, isModelledOp } from '../models/page-model.js';
import { COVERAGE } from '../models/coverage.js';
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
export function createRefinement(k: Kernel): { check: (step: number, quiescentOrStarted: { thread: number; op: { op: string } }[]) => string | null; abs: Uint8Array } {
  const abs = new Uint8Array(k.nrPfns).fill(A_NONE);
  initialAbstraction(k, abs);
  const tracker = dirtyTracker(k);
  const stamp = new Int32Array(k.nrPfns).fill(-1);
  const running: string[] = [];
  const hugeHeads = new Set<number>();
  const check = (step: number, started: { thread: number; op: { op: string } }[]): string | null => {
    for (const s of started) running[s.thread] = s.op.op;
    const op = running[k.current];
    // Before a thread's first op starts (its first step only reaches the op's yield) nothing runs.
    const modelled = op !== undefined && isModelledOp(op);
    if (op !== undefined && !modelled) COVERAGE.unmodelledOps.add(op);
    const visit = (p: number): string | null => {
      if (stamp[p] === step) return null;
      stamp[p] = step;
      const from = abs[p];
      const to = abstractState(k, p, from);
      if (to === from) return null;
      abs[p] = to;
      COVERAGE.states[to]++;
      if (to === A['huge-free'] || to === A['huge-in-use']) hugeHeads.add(k.mm.compoundHead(p));
      if (!modelled) return null;
      const d = directTransition(op!, from, to);
      if (d >= 0) COVERAGE.transitions[d]++;
      else if (!allowedClosure(op!, from, to)) {
        return `pfn ${p} went from ${stateName(from)} to ${stateName(to)} in thread ${k.current} during ${op!}: the page model allows no such transition`;
      }
      return null;
    };
    const r = tracker.ranges(step);
    for (let i = 0; i < r.length; i += 2) {
      const end = Math.min(r[i + 1], k.nrPfns);
      for (let p = r[i]; p < end; p++) {
        const m = visit(p);
        if (m) return m;
      }
    }
    for (const h of hugeHeads) {
      const order = k.mm.flags[h] & PG_hugetlb ? k.mm.order[h] : 0;
      const end = Math.min(k.nrPfns, h + (1 << order));
      for (let p = h; p < end; p++) {
        const m = visit(p);
        if (m) return m;
      }
      if (!(k.mm.flags[h] & PG_hugetlb)) hugeHeads.delete(h);
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

const refinesModel: Property = {
  name: 'refines-model',
  statement: 'after every step, every pfn whose abstract page state changed took transitions the XState page model allows for the running op',
  kernelRef: 'models/page-model.ts (rmqueue, free_unref_page, alloc_contig_range, cma_alloc, hugetlb pool, offline_pages, virtio-mem)',
  guards: 'pages taken from the wrong state: a pinned/unmovable page taken by alloc_contig_range, an isolated page handed out, an in-use huge page freed, anything entering or leaving a hole',
  when: 'step',
  create(k) {
    const r = createRefinement(k);
    return { check: (ctx) => r.check(ctx.step, ctx.started) };
  },
};

export default refinesModel;
