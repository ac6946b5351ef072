/**
 * Directed tests from the page model (models/paths.ts, xstate/graph getShortestPaths): the
 * shortest path to every abstract state and to every transition, over the events that have a
 * directed recipe below, becomes a single-thread program on `tiny-hugetlb-cma` (mainline). Each
 * must refine the model (no refines-model violation), its target state must be reached by some
 * page during the run, and a directed transition must be taken as such.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runProgram } from '../src/harness/executor.js';
import { parseProgram } from '../src/harness/program.js';
import { OPS, type Op } from '../src/harness/ops/index.js';
import { getProperty } from '../properties/index.js';
import { COVERAGE, resetCoverage } from '../models/coverage.js';
import { MODEL_TRANSITIONS, STATE_INDEX, directTransition, type PageEvent, type PageState } from '../models/page-model.js';
import { shortestStatePaths, transitionPaths, type ModelPath } from '../models/paths.js';
import { POOL_OPS, applyPool, poolInvariant } from '../models/pool-model.js';

const CONFIG = 'tiny-hugetlb-cma';
const PROFILE = 'mainline';

/** Ids and state a directed program threads through its ops. */
interface Ctx { n: number; page?: string; contig?: string; cma?: string; map?: string; mapped: boolean; offline: boolean; unplugged: boolean; pool: boolean }

/** (op, target) -> the ops that make some page take that transition from the path's state. */
const RECIPES: Record<string, Partial<Record<PageState, (c: Ctx) => Op[]>>> = {
  alloc_pages: {
    pcp: (c) => [{ op: 'alloc_pages', id: (c.page = `a${c.n++}`), order: 0, migratetype: 'movable' }],
    'allocated-movable': (c) => [{ op: 'alloc_pages', id: (c.page = `a${c.n++}`), order: 0, migratetype: 'movable' }],
    'allocated-unmovable': (c) => [{ op: 'alloc_pages', id: (c.page = `a${c.n++}`), order: 0, migratetype: 'unmovable' }],
    pinned: (c) => [{ op: 'alloc_pages', id: (c.page = `a${c.n++}`), order: 0, migratetype: 'unmovable', pinned: true }],
  },
  free_pages: {
    pcp: (c) => (c.page ? [{ op: 'free_pages', id: c.page }] : []),
    free: (c) => (c.page ? [{ op: 'free_pages', id: c.page }, { op: 'drain_all_pages' }] : []),
  },
  drain_all_pages: { free: () => [{ op: 'drain_all_pages' }] },
  alloc_contig_range: {
    'contig-taken': (c) => [{ op: 'alloc_contig_range', id: (c.contig = `c${c.n++}`), start: 136, end: 140, migratetype: 'movable' }],
    isolated: (c) => [{ op: 'alloc_contig_range', id: (c.contig = `c${c.n++}`), start: 136, end: 140, migratetype: 'movable' }],
  },
  free_contig_range: { free: (c) => (c.contig ? [{ op: 'free_contig_range', id: c.contig }] : []) },
  cma_alloc: { 'cma-taken': (c) => [{ op: 'cma_alloc', id: (c.cma = `m${c.n++}`), area: 0, count: 4 }] },
  cma_release: { free: (c) => (c.cma ? [{ op: 'cma_release', id: c.cma }] : []) },
  set_nr_hugepages: {
    'huge-free': (c) => grow(c),
    'huge-in-use': (c) => grow(c),
    // Shrinking the pool dissolves its pages (with HVO, restoring their vmemmap first).
    dissolved: (c) => [...grow(c), { op: 'set_nr_hugepages', hstate: '2M', count: 0 }],
    vmemmap: (c) => [...grow(c), { op: 'set_nr_hugepages', hstate: '2M', count: 0 }],
  },
  hugetlb_fault: {
    'huge-in-use': (c) => {
      const pre = c.pool ? [] : grow(c);
      if (!c.mapped) pre.push({ op: 'hugetlb_mmap', id: (c.map = `h${c.n++}`), hstate: '2M', pages: 1 });
      c.mapped = true;
      return [...pre, { op: 'hugetlb_fault', id: c.map!, index: 0 }];
    },
  },
  hugetlb_munmap: { 'huge-free': (c) => (c.map ? [{ op: 'hugetlb_munmap', id: c.map }] : []) },
  offline_pages: { offline: (c) => ((c.offline = true), [{ op: 'offline_pages', block: 5, signal_after: 4 }]) },
  online_pages: { free: (c) => (c.offline ? [{ op: 'online_pages', block: 5, zone: 'Movable' }] : []) },
  virtio_mem_unplug: { offline: (c) => ((c.unplugged = true), [{ op: 'virtio_mem_unplug', bytes: 16384 }]) },
  virtio_mem_plug: { free: (c) => (c.unplugged ? [{ op: 'virtio_mem_plug', bytes: 16384 }] : []) },
};

function grow(c: Ctx): Op[] {
  c.pool = true;
  return [{ op: 'set_nr_hugepages', hstate: '2M', count: 2 }];
}

const directed = (op: string, to: PageState) => !!OPS[op] && !!RECIPES[op]?.[to];

function programOf(events: PageEvent[]): Op[] {
  const c: Ctx = { n: 0, mapped: false, offline: false, unplugged: false, pool: false };
  return events.flatMap((e) => RECIPES[e.type]![e.to]!(c));
}

function runPath(p: ModelPath) {
  const ops = programOf(p.events);
  const prog = parseProgram({ config: CONFIG, profile: PROFILE, threads: [ops.length ? ops : [{ op: 'drain_all_pages' }]] });
  resetCoverage();
  const out = runProgram(prog, { properties: [getProperty('refines-model')] });
  return { ops, out };
}

const statePaths = shortestStatePaths(directed);
const transPaths = transitionPaths(directed);

describe('page model: shortest path to every state, run against the simulator', () => {
  it('the directed events reach the states the issue names', () => {
    const reached = statePaths.map((p) => p.state);
    for (const s of ['free', 'isolated', 'huge-free', 'huge-in-use', 'dissolved', 'pcp', 'pinned', 'contig-taken', 'cma-taken', 'offline'] as PageState[]) expect(reached).toContain(s);
  });

  for (const p of statePaths) {
    it(`state ${p.target}`, () => {
      const { out } = runPath(p);
      expect(out.violations).toEqual([]);
      expect(COVERAGE.states[STATE_INDEX[p.state]]).toBeGreaterThan(0);
    });
  }
});

describe('page model: shortest path to every directed transition, run against the simulator', () => {
  it('there are directed transitions for every op of the vocabulary that changes a page', () => {
    const ops = new Set(transPaths.map((p) => p.events[p.events.length - 1].type));
    for (const op of ['alloc_pages', 'free_pages', 'alloc_contig_range', 'set_nr_hugepages', 'hugetlb_fault', 'offline_pages']) expect(ops).toContain(op);
  });

  for (const p of transPaths) {
    it(`transition ${p.target}`, () => {
      const { out } = runPath(p);
      expect(out.violations).toEqual([]);
      const last = p.events[p.events.length - 1];
      const from = p.from!;
      const idx = directTransition(last.type, STATE_INDEX[from], STATE_INDEX[last.to]);
      expect(idx).toBeGreaterThanOrEqual(0);
      // The target state is reached (by this page or another one of the same op).
      expect(COVERAGE.states[STATE_INDEX[last.to]]).toBeGreaterThan(0);
    });
  }

  it('directed coverage of the model is reported', () => {
    const covered = new Set<number>();
    for (const p of transPaths) {
      runPath(p);
      COVERAGE.transitions.forEach((n, i) => n > 0 && covered.add(i));
    }
    expect(covered.size).toBeGreaterThan(15);
    expect(covered.size).toBeLessThanOrEqual(MODEL_TRANSITIONS.length);
  });
});

describe('hugetlb pool model (xstate/graph over a bound of 2 pages)', () => {
  it('reaches exactly the counter states that keep the invariants, and only those', async () => {
    const { getShortestPaths } = await import('xstate/graph');
    const { poolModel, poolInvariant, POOL_EVENTS } = await import('../models/pool-model.js');
    const paths = getShortestPaths(poolModel(2), {
      events: POOL_EVENTS.map((type) => ({ type })),
      serializeState: (s) => JSON.stringify(s.context),
    });
    const reached = new Set(paths.map((p) => JSON.stringify(p.state.context)));
    let valid = 0;
    for (let total = 0; total <= 2; total++) for (let free = 0; free <= total; free++) for (let resv = 0; resv <= free; resv++) for (let surp = 0; surp <= total; surp++) {
      valid++;
      expect(reached.has(JSON.stringify({ total, free, resv, surp }))).toBe(true);
    }
    expect(reached.size).toBe(valid);
    for (const p of paths) expect(poolInvariant(p.state.context, 2)).toBe(true);
  });

  it('poolStepAllowed: one op, several events; the op decides which', async () => {
    const { poolStepAllowed } = await import('../models/pool-model.js');
    const z = { total: 0, free: 0, resv: 0, surp: 0 };
    expect(poolStepAllowed('set_nr_hugepages', z, { total: 4, free: 4, resv: 0, surp: 0 })).toBe(true);
    expect(poolStepAllowed('alloc_contig_range', { total: 2, free: 2, resv: 0, surp: 0 }, { total: 2, free: 2, resv: 1, surp: 0 })).toBe(false);
    expect(poolStepAllowed('alloc_pages', z, { total: 1, free: 1, resv: 0, surp: 0 })).toBe(false);
    // Migration's old page freed as surplus inside virtio-mem unplug (no other contig event lowers Surp).
    const surplus = { total: 29, free: 27, resv: 0, surp: 28 };
    expect(poolStepAllowed('virtio_mem_unplug', surplus, { total: 28, free: 27, resv: 0, surp: 27 })).toBe(true);
    expect(poolStepAllowed('hugetlb_fault', surplus, { total: 28, free: 27, resv: 0, surp: 27 })).toBe(false);
    expect(poolStepAllowed('alloc_contig_range', { total: 2, free: 2, resv: 0, surp: 0 }, { total: 3, free: 2, resv: 0, surp: 1 })).toBe(true);
    expect(poolStepAllowed('hugetlb_fault', { total: 1, free: 1, resv: 1, surp: 0 }, { total: 1, free: 0, resv: 0, surp: 0 })).toBe(true);
  });

  it('poolStepAllowed answers as a plain object-and-string breadth-first search does', async () => {
    const { poolStepAllowed } = await import('../models/pool-model.js');
    const counters = fc.record({ total: fc.nat(40), free: fc.nat(40), resv: fc.nat(6), surp: fc.nat(40) });
    let yes = 0;
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(POOL_OPS), 'alloc_pages'), counters, counters, fc.boolean(), (op, a, b0, near) => {
        // near: b a few events away from a (most real steps), else anywhere (mostly unreachable)
        const b = near ? { total: a.total + (b0.total % 5) - 2, free: a.free + (b0.free % 5) - 2, resv: a.resv + (b0.resv % 3) - 1, surp: a.surp + (b0.surp % 3) - 1 } : b0;
        const want = plainPoolSearch(op, a, b);
        if (want) yes++;
        expect(poolStepAllowed(op, a, b)).toBe(want);
      }),
      { seed: 31, numRuns: 500 },
    );
    expect(yes).toBeGreaterThan(10);
  });

  it('poolStepAllowed on boxes of more than 2^20 states (a Set of seen states) and searches that give up', async () => {
    const { poolStepAllowed } = await import('../models/pool-model.js');
    const z = { total: 0, free: 0, resv: 0, surp: 0 };
    const cases: [string, Counters, Counters][] = [
      ['set_nr_hugepages', z, { total: 100, free: 100, resv: 0, surp: 100 }],
      ['set_nr_hugepages', { total: 3, free: 3, resv: 0, surp: 0 }, { total: 6, free: 6, resv: 0, surp: 2 }],
      ['hugetlb_fault', { total: 100, free: 100, resv: 30, surp: 0 }, { total: 100, free: 90, resv: 25, surp: 0 }],
      ['offline_pages', { total: 40, free: 40, resv: 0, surp: 0 }, { total: 12, free: 2, resv: 0, surp: 10 }],
      ['hugetlb_munmap', { total: 60, free: 10, resv: 5, surp: 40 }, { total: 20, free: 20, resv: 0, surp: 0 }],
    ];
    for (const [op, a, b] of cases) expect(poolStepAllowed(op, a, b)).toBe(plainPoolSearch(op, a, b));
  });

  it('poolStepAllowed: a step and the same step from other counters share an answer only where the search is the same', async () => {
    // (the answers are remembered per counter change and the bounds the search meets: a step
    // between pools close to their limits, then the same change far from them and near them again)
    const { poolStepAllowed } = await import('../models/pool-model.js');
    const delta = fc.record({ total: fc.integer({ min: -3, max: 3 }), free: fc.integer({ min: -3, max: 3 }), resv: fc.integer({ min: -2, max: 2 }), surp: fc.integer({ min: -3, max: 3 }) });
    const shift = fc.record({ total: fc.nat(5), free: fc.nat(5), resv: fc.nat(3), surp: fc.nat(5) });
    let yes = 0;
    let no = 0;
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(POOL_OPS)), fc.array(shift, { minLength: 4, maxLength: 8 }), delta, (op, shifts, d) => {
        for (const a of shifts) {
          const b = { total: a.total + d.total, free: a.free + d.free, resv: a.resv + d.resv, surp: a.surp + d.surp };
          const want = plainPoolSearch(op, a, b);
          if (want) yes++;
          else no++;
          expect(poolStepAllowed(op, a, b)).toBe(want);
        }
      }),
      { seed: 7, numRuns: 500 },
    );
    expect(yes).toBeGreaterThan(20);
    expect(no).toBeGreaterThan(20);
  });
});

type Counters = { total: number; free: number; resv: number; surp: number };

/** The pool-model step search written plainly (objects, strings, an array queue): the reference. */
function plainPoolSearch(op: string, a: Counters, b: Counters): boolean {
  const K = ['total', 'free', 'resv', 'surp'] as const;
  if (K.every((f) => a[f] === b[f])) return true;
  const evs = POOL_OPS[op];
  if (!evs) return false;
  const lo = K.map((f) => Math.min(a[f], b[f]) - 2);
  const hi = K.map((f) => Math.max(a[f], b[f]) + 2);
  const id = (c: Counters) => `${c.total},${c.free},${c.resv},${c.surp}`;
  const seen = new Set([id(a)]);
  const queue: Counters[] = [a];
  while (queue.length && seen.size < 20_000) {
    const c = queue.shift()!;
    for (const e of evs) {
      const n = applyPool(c, e);
      if (!poolInvariant(n) || K.some((f, i) => n[f] < lo[i] || n[f] > hi[i])) continue;
      if (seen.has(id(n))) continue;
      if (K.every((f) => n[f] === b[f])) return true;
      seen.add(id(n));
      queue.push(n);
    }
  }
  return false;
}
