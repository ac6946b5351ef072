/**
 * The executor calls a checker only on the steps its property waits for (Property.wakes): steps
 * with dirty pfns, ops finishing, quiescence. Skipping the others must hide nothing: a checker
 * called on every step reports nothing on a step it would have been skipped on and judges the
 * woken steps as the skipping one does; a violation planted on a step that has only what the
 * property waits for is reported at that very step.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { resolveConfig } from '../src/kernel/config.js';
import { caseArb } from '../src/harness/arbitraries.js';
import { caseRunner } from '../src/harness/fuzz.js';
import { runProgram } from '../src/harness/executor.js';
import { parseProgram, type ParsedProgram } from '../src/harness/program.js';
import type { Kernel } from '../src/kernel/machine.js';
import type { KGen } from '../src/kernel/sched.js';
import { OPS, defineOp } from '../src/harness/ops/index.js';
import { dirtyTracker } from '../properties/dirty.js';
import { PROPERTIES, getProperty, type Property } from '../properties/index.js';
import { stepWakes, wakeMask, wakesFor } from '../properties/property.js';
import { HugetlbWatch } from '../properties/hugetlb-watch.js';
import { hugetlbState } from '../src/kernel/hugetlb.js';
import { MIGRATE_ISOLATE, MIGRATE_MOVABLE, PG_buddy, PG_head, PG_hugetlb, PG_isolated, PG_lru, PG_offline, PG_valid } from '../src/kernel/types.js';

const CAMPAIGNS = [['tiny', 'mainline'], ['tiny', 'rfc-2021-02'], ['tiny', 'v5.19-cma-retype'], ['tiny-hugetlb-cma', 'demote-cma-lost'], ['tiny', 'pageblock-naive'], ['small', 'mainline']] as const;

/**
 * p run twice side by side on every step: one checker called on every step, one only on the steps
 * the executor would call it on. Records a step where the first reports while the second was not
 * to be called, or where the two disagree (or the tracker's touched() where ranges() says other).
 * Reports what the first reports.
 */
function contract(p: Property, out: { mismatches: string[]; reports: Map<string, number> }): Property {
  const mask = wakeMask(p);
  return {
    ...p,
    name: `contract:${p.name}`,
    when: 'step',
    wakes: undefined,
    create(k) {
      const every = p.create(k);
      const woken = p.create(k);
      const tracker = dirtyTracker(k);
      // (fed on every step, as the executor feeds its own for a list that wakes on it)
      const hugetlb = new HugetlbWatch(k);
      let done = false;
      return {
        check(ctx) {
          hugetlb.update();
          ctx.hugetlb = hugetlb;
          if (done || (p.when === 'quiescence' && !ctx.quiescent)) return null;
          const touched = tracker.touched(ctx.step);
          if (touched !== tracker.ranges(ctx.step).length > 0) out.mismatches.push(`step ${ctx.step}: touched() ${touched} but ranges() ${tracker.ranges(ctx.step)}`);
          const now = stepWakes(touched, ctx.finished.length > 0, ctx.quiescent, ctx.ops!.longOp(), hugetlb.moved, ctx.started.length > 0);
          const a = every.check(ctx);
          const b = wakesFor(mask, now, woken) ? woken.check(ctx) : null;
          if (a !== b) out.mismatches.push(`${p.name} step ${ctx.step}: every step says ${a}, woken steps ${b}`);
          if (a) {
            const key = `${p.name} ${ctx.quiescent ? 'at quiescence' : 'mid-run'}`;
            out.reports.set(key, (out.reports.get(key) ?? 0) + 1);
            done = true;
          }
          // (the run stops at the first report, as a campaign's does: a buggy kernel may livelock)
          return a;
        },
        dispose() {
          every.dispose?.();
          woken.dispose?.();
        },
      };
    },
  };
}

/**
 * Plants one bug per call in a section of its own, a different kind each time, so that the
 * campaigns below make the checkers report mid-run: a free block lost (list operation), a
 * movable pageblock left ISOLATE (no pfn touched), an unmovable allocation of a free CMA page
 * (allocation registry), a flags-only corruption (nothing a step reports: quiescence only).
 */
let chaosCalls = 0;
defineOp({
  name: 'test_chaos',
  summary: 'test only: plant one bug of a rotating kind',
  fields: {},
  *run(k) {
    yield 'test_chaos:before';
    const kind = chaosCalls++ % 4;
    const { flags, order } = k.mm;
    let p = 0;
    const find = (ok: (q: number) => boolean) => {
      for (p = 0; p < k.nrPfns && !ok(p); p++);
      return p < k.nrPfns;
    };
    if (kind === 0 && find((q) => (flags[q] & PG_buddy) !== 0)) {
      k.mm.listDel(p);
      flags[p] &= ~PG_buddy;
      k.zoneOf(p)!.nrFree[order[p]]--;
    } else if (kind === 1 && find((q) => q % (1 << k.pageblockOrder) === 0 && k.pb.get(q) === MIGRATE_MOVABLE)) {
      k.pb.set(p, MIGRATE_ISOLATE);
    } else if (kind === 2 && k.cfg.cma.length && find((q) => q >= k.cfg.cma[0].basePfn && flags[q] === PG_valid && k.mm.refcount[q] === 0)) {
      const al = k.newAllocation({ id: `chaos${chaosCalls}`, kind: 'pages', pfn: p, nrPages: 1, order: 0, migratetype: 0, pinned: false });
      k.mm.owner[p] = al.handle;
    } else if (kind === 3 && find((q) => (flags[q] & PG_buddy) !== 0 && order[q] > 0)) {
      flags[p + 1] |= PG_lru;
    }
    yield 'test_chaos:after';
    return { result: '0' };
  },
});

/** `out` reports exactly one violation, its message `message`, at the step ending at yield point `at`. */
function expectReportedAt(out: ReturnType<typeof runProgram>, message: string | RegExp, at: string): void {
  expect(out.violations).toHaveLength(1);
  if (typeof message === 'string') expect(out.violations[0].message).toBe(message);
  else expect(out.violations[0].message).toMatch(message);
  expect(out.violations[0].step).toBe(out.trace.find((r) => r.at === at)!.step);
}

/** `body` while op `name` goes on with `tail`'s sections after its own (the real op is put back). */
function withOpTail(name: string, tail: (k: Kernel) => KGen<void>, body: () => void): void {
  const real = OPS[name];
  defineOp({
    ...real,
    *run(k, a) {
      const r = yield* real.run(k, a);
      yield* tail(k);
      return r;
    },
  });
  try {
    body();
  } finally {
    defineOp(real);
  }
}

/**
 * `check` on a program of alloc_contig_range [128, 132) then alloc_pages on tiny (after `before`),
 * where alloc_contig_range goes on with `tail`'s sections after its own.
 */
function withContigTail(tail: (k: Kernel) => KGen<void>, check: (prog: ParsedProgram) => void, before: Record<string, unknown>[] = []): void {
  withOpTail('alloc_contig_range', tail, () => check(parseProgram({
    config: 'tiny',
    profile: 'mainline',
    threads: [[...before, { op: 'alloc_contig_range', id: 'c', start: 128, end: 132, migratetype: 'movable' }, { op: 'alloc_pages', id: 'a', order: 0, migratetype: 'movable' }]],
  })));
}

/**
 * `check` on refines-model's run of a program on tiny that grows the 2M pool to `huge` pages, then
 * allocates and frees a page, where free_pages (which makes no allocation) goes on with `tail`'s
 * sections after its own.
 */
function withFreeTail(tail: (k: Kernel) => KGen<void>, check: (out: ReturnType<typeof runProgram>) => void, huge: number): void {
  withOpTail('free_pages', tail, () => {
    const prog = parseProgram({
      config: 'tiny',
      profile: 'mainline',
      threads: [[{ op: 'set_nr_hugepages', hstate: '2M', count: huge }, { op: 'alloc_pages', id: 'a', order: 0, migratetype: 'movable' }, { op: 'free_pages', id: 'a' }]],
    });
    check(runProgram(prog, { properties: [getProperty('refines-model')] }));
  });
}

describe('checker wakes', () => {
  it('a checker skipped on the steps its property does not wait for misses no verdict', () => {
    const opNames = [...Object.keys(OPS).filter((x) => !x.startsWith('test_')), 'test_chaos'];
    const out = { mismatches: [] as string[], reports: new Map<string, number>() };
    // (last first: a planted bug that several checkers see is reported by the first of them only)
    const props = PROPERTIES.filter((p) => p.wakes).map((p) => contract(p, out)).reverse();
    expect(props.length).toBeGreaterThanOrEqual(7);
    for (const [config, profile] of CAMPAIGNS) {
      const cases = fc.sample(caseArb(resolveConfig(config), { threads: 3, ops: 6, opNames }), { seed: 23, numRuns: config === 'small' ? 15 : 40 });
      const runner = caseRunner(config, profile);
      for (const c of cases) runner.run(c, props);
    }
    expect(out.mismatches.slice(0, 5)).toEqual([]);
    // the planted bugs and buggy profiles make checkers report mid-run: the comparison covers
    // verdicts, not only silence
    for (const p of ['page-conservation', 'cma-ownership', 'isolation-restored']) expect(out.reports.get(`${p} mid-run`), p).toBeGreaterThan(0);
  });

  it('a page lost by one list operation is reported at that step (dirty pfns wake page-conservation)', () => {
    defineOp({
      name: 'test_lose_free_page',
      summary: 'test only: take a free block off its list and give it to nobody',
      fields: {},
      *run(k) {
        yield 'test_lose_free_page:before';
        let p = 0;
        while (!(k.mm.flags[p] & PG_buddy)) p++;
        k.mm.listDel(p);
        k.mm.flags[p] &= ~PG_buddy;
        k.zoneOf(p)!.nrFree[k.mm.order[p]]--;
        yield 'test_lose_free_page:after';
        return { result: '0' };
      },
    });
    const prog = parseProgram({ config: 'tiny', profile: 'mainline', threads: [[{ op: 'alloc_pages', id: 'a', order: 0, migratetype: 'movable' }, { op: 'test_lose_free_page' }, { op: 'free_pages', id: 'a' }]] });
    const all = runProgram(prog, { properties: [getProperty('page-conservation')] });
    expect(all.violations).toHaveLength(1);
    expect(all.violations[0].message).toMatch(/lost/);
    // the step that ran the planted section, not the op's last one or quiescence
    const at = all.trace.findIndex((r) => r.at === 'test_lose_free_page:after');
    expect(all.violations[0].step).toBe(all.trace[at].step);
    expect(all.violations[0].step).toBeLessThan(all.steps - 1);
  });

  it('a pageblock left isolated in an op\'s last section, which touches no pfn, is reported when it ends (a finished op wakes isolation-restored)', () => {
    withContigTail(function* (k) {
      yield 'test_leave_isolated';
      k.pb.set(0, MIGRATE_ISOLATE);
    }, (prog) => {
      const out = runProgram(prog, { properties: [getProperty('isolation-restored')] });
      expect(out.violations).toHaveLength(1);
      expect(out.violations[0].message).toMatch(/alloc_contig_range \(thread 0\) returned 0: pageblock at pfn 0 is still MIGRATE_ISOLATE/);
      const at = out.trace.findIndex((r) => r.at === 'test_leave_isolated');
      // the op ends in the section after that yield: the next step
      expect(out.violations[0].step).toBe(out.trace[at + 1].step);
      expect(out.violations[0].step).toBeLessThan(out.steps - 1);
    });
  });

  it('a watched huge page changed by flags alone in a section that touches no pfn, starts no op, moves no counter and holds no fresh allocation is reported at that step (refines-model watching its huge heads)', () => {
    withFreeTail(function* (k) {
      yield 'test_flags_before';
      const { flags } = k.mm;
      let h = 0;
      while ((flags[h] & (PG_hugetlb | PG_head)) !== (PG_hugetlb | PG_head)) h++;
      // a free huge page handed to a driver behind the pool's back: PageOffline set, counters kept
      flags[h] |= PG_offline;
      yield 'test_flags_after';
    }, (out) => {
      expectReportedAt(out, /went from huge-free to offline in thread 0 during free_pages/, 'test_flags_after');
    }, 1);
  });

  it('a fresh allocation changed by flags alone in a section that touches no pfn, starts no op and moves no counter is reported at that step (refines-model watching the allocations of the ops in flight)', () => {
    withContigTail(function* (k) {
      yield 'test_fresh_before';
      // the range alloc_contig_range just took handed to a driver: PageOffline set, nothing else
      k.mm.flags[128] |= PG_offline;
      yield 'test_fresh_after';
    }, (prog) => {
      const out = runProgram(prog, { properties: [getProperty('refines-model')] });
      expectReportedAt(out, /^pfn 128 went from \S+ to offline in thread 0 during alloc_contig_range/, 'test_fresh_after');
    });
  });

  it('a pool counter moved in a section that touches no pfn, starts no op and holds no fresh allocation is reported at that step (the hugetlb watch wakes refines-model)', () => {
    withFreeTail(function* (k) {
      yield 'test_pool_before';
      hugetlbState(k).hstates[0].free++;
      yield 'test_pool_after';
    }, (out) => {
      expectReportedAt(out, /^hstate 0: counters Total 0 Free 1 Rsvd 0 Surp 0 break the pool model's invariants/, 'test_pool_after');
    }, 0);
  });

  it('a gigantic page isolated, or taken off its list, inside alloc_contig_range by a section that touches no pfn and moves no counter is reported at that step (the hugetlb watch wakes no-gigantic-recursion while a gigantic pool holds pages, and right after)', () => {
    let giant = -1;
    withContigTail(function* (k) {
      yield 'test_giant_before';
      giant = hugetlbState(k).hstates[1].nodes[0].freeList.head;
      k.mm.flags[giant] |= PG_isolated;
      yield 'test_giant_after';
    }, (prog) => {
      const out = runProgram(prog, { properties: [getProperty('no-gigantic-recursion')] });
      expect(giant).toBeGreaterThanOrEqual(0);
      expectReportedAt(out, `alloc_contig_range (thread 0) isolated the gigantic page at pfn ${giant}`, 'test_giant_after');
    }, [{ op: 'set_nr_hugepages', hstate: '1G', count: 1 }]);
    // and taken off the pool's list, its counters kept: no gigantic page left after the step
    withContigTail(function* (k) {
      yield 'test_giant_before';
      const list = hugetlbState(k).hstates[1].nodes[0].freeList;
      giant = list.head;
      list.del(giant);
      yield 'test_giant_after';
    }, (prog) => {
      const out = runProgram(prog, { properties: [getProperty('no-gigantic-recursion')] });
      expectReportedAt(out, `alloc_contig_range (thread 0) dissolved or migrated the gigantic page at pfn ${giant}`, 'test_giant_after');
    }, [{ op: 'set_nr_hugepages', hstate: '1G', count: 1 }]);
  });

  it('HugePages_Total bumped inside alloc_contig_range by a section that touches no pfn is reported at that step (hugepages-total-stable\'s unchanged-counters shortcut)', () => {
    withContigTail(function* (k) {
      yield 'test_pool_before';
      hugetlbState(k).hstates[0].nr++;
      yield 'test_pool_after';
    }, (prog) => {
      const out = runProgram(prog, { properties: [getProperty('hugepages-total-stable')] });
      expectReportedAt(out, /alloc_contig_range \(thread 0\) changed hstate 2M: HugePages_Total 0 -> 1/, 'test_pool_after');
    });
  });
});
