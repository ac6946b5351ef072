/**
 * The trace shrinker (src/harness/shrink.ts) on synthetic `fails` predicates: no kernel runs, so
 * each test says exactly which cases fail and checks what minimize keeps. Argument values shrink
 * towards the smallest valid value, an invalid op is never tried, steps break ties.
 */
import { describe, expect, it } from 'vitest';
import { lowerValues, minimize, type TraceCase, type Verdict } from '../src/harness/shrink.js';
import { validateOp, type Op } from '../src/harness/ops/index.js';

const set = (count: number): Op => ({ op: 'set_nr_hugepages', hstate: '1G', count });
const countOf = (c: TraceCase): number => Math.max(-1, ...c.threads.flat().filter((o) => o.op === 'set_nr_hugepages').map((o) => o.count as number));

describe('lowerValues', () => {
  it('lists the minimum, then halving distances, then one unit lower, lowest first', () => {
    expect(lowerValues(4, 0)).toEqual([0, 2, 3]);
    expect(lowerValues(100, 1)).toEqual([1, 51, 76, 88, 94, 97, 99]);
    expect(lowerValues(1, 1)).toEqual([]);
    expect(lowerValues(5 * 4096, 0, 4096)).toEqual([0, 3 * 4096, 4 * 4096]);
  });
});

describe('minimize: argument values', () => {
  it('lowers a count to the smallest value that still fails (fails iff count >= 2)', () => {
    const start: TraceCase = { threads: [[set(4)], [{ op: 'drain_all_pages' }]], schedule: [1, 0, 2] };
    const out = minimize(start, (c) => countOf(c) >= 2);
    expect(out).toEqual({ threads: [[set(2)]], schedule: [] });
  });

  it('never tries an invalid op, and gets every numeric argument to its minimum', () => {
    const ops: Op[] = [
      { op: 'set_nr_hugepages', hstate: '1G', count: 4, node: 1 },
      { op: 'hugetlb_mmap', id: 'm', hstate: '2M', pages: 3 },
      { op: 'hugetlb_fault', id: 'm', index: 2 },
      { op: 'alloc_pages', id: 'a', order: 9, migratetype: 'movable' },
      { op: 'alloc_contig_range', id: 'c', start: 64, end: 96, migratetype: 'cma' },
      { op: 'alloc_contig_pages', id: 'p', nr_pages: 512 },
      { op: 'cma_alloc', id: 'x', area: 1, count: 4, align: 4 },
      { op: 'offline_pages', block: 3, signal_after: 5 },
      { op: 'virtio_mem_unplug', bytes: 8 * 1024 * 1024 },
    ];
    const invalid: string[] = [];
    let calls = 0;
    // Fails as long as every op is there: only the values can shrink.
    const fails = (c: TraceCase): boolean => {
      calls++;
      for (const o of c.threads.flat()) {
        try {
          validateOp(o, 'test');
        } catch (e) {
          invalid.push((e as Error).message);
        }
        if (o.op === 'alloc_contig_range' && (o.end as number) <= (o.start as number)) invalid.push('empty range');
      }
      return c.threads.flat().length === ops.length;
    };
    const out = minimize({ threads: [ops], schedule: [] }, fails);
    expect(invalid).toEqual([]);
    expect(calls).toBeGreaterThan(ops.length);
    expect(out.threads).toEqual([[
      { op: 'set_nr_hugepages', hstate: '1G', count: 0, node: 0 },
      { op: 'hugetlb_mmap', id: 'm', hstate: '2M', pages: 1 },
      { op: 'hugetlb_fault', id: 'm', index: 0 },
      { op: 'alloc_pages', id: 'a', order: 0, migratetype: 'movable' },
      { op: 'alloc_contig_range', id: 'c', start: 0, end: 1, migratetype: 'cma' },
      { op: 'alloc_contig_pages', id: 'p', nr_pages: 1 },
      { op: 'cma_alloc', id: 'x', area: 0, count: 1, align: 0 },
      { op: 'offline_pages', block: 0, signal_after: 0 },
      { op: 'virtio_mem_unplug', bytes: 0 },
    ]]);
  });

  it('shrinks a range from either end, then moves it down', () => {
    const range = (c: TraceCase) => c.threads[0].find((o) => o.op === 'alloc_contig_range');
    const contig = (start: number, end: number): TraceCase => ({ threads: [[{ op: 'alloc_contig_range', id: 'c', start, end, migratetype: 'movable' }]], schedule: [] });
    // Fails iff [start, end) holds pfn 70: down to that one pfn.
    const holds70 = (c: TraceCase): boolean => !!range(c) && (range(c)!.start as number) <= 70 && 70 < (range(c)!.end as number);
    expect(range(minimize(contig(64, 96), holds70))).toMatchObject({ start: 70, end: 71 });
    // Fails iff the range is 4 pages or more and starts at a multiple of 4: the earliest such one.
    const aligned4 = (c: TraceCase): boolean => !!range(c) && (range(c)!.end as number) - (range(c)!.start as number) >= 4 && (range(c)!.start as number) % 4 === 0;
    expect(range(minimize(contig(64, 96), aligned4))).toMatchObject({ start: 0, end: 4 });
  });

  it('lowers sizes in bytes by whole pages', () => {
    const out = minimize({ threads: [[{ op: 'virtio_mem_unplug', bytes: 8 * 1024 * 1024 }]], schedule: [] }, (c) => c.threads[0].length === 1 && (c.threads[0][0].bytes as number) >= 10_000);
    expect(out.threads[0][0].bytes).toBe(3 * 4096);
  });

  it('runs the schedule passes again when a smaller value no longer needs a preemption', () => {
    // count >= 3 violates only with the preemption; count 2 violates without it.
    const fails = (c: TraceCase): boolean => {
      const n = countOf(c);
      return n >= 2 && (n < 3 || c.schedule[0] === 1);
    };
    const out = minimize({ threads: [[set(4)], [{ op: 'drain_all_pages' }]], schedule: [1] }, fails);
    expect(out).toEqual({ threads: [[set(2)]], schedule: [] });
  });
});

describe('minimize: ops, then preemptions, then steps', () => {
  it('keeps a value whose lower values make the run longer (steps reported)', () => {
    // count 4 violates in 10 steps, any other count >= 1 in more, the lower the count the more.
    const fails = (c: TraceCase): Verdict => (countOf(c) >= 1 ? { steps: countOf(c) === 4 ? 10 : 30 - countOf(c) } : false);
    expect(minimize({ threads: [[set(8)]], schedule: [] }, fails).threads).toEqual([[set(4)]]);
    // Without steps every lower value that still fails is taken.
    expect(minimize({ threads: [[set(8)]], schedule: [] }, (c) => countOf(c) >= 1).threads).toEqual([[set(1)]]);
  });

  it('takes a lower value with the same number of steps', () => {
    const out = minimize({ threads: [[set(6)]], schedule: [] }, (c) => (countOf(c) >= 1 ? { steps: 7 } : false));
    expect(out.threads).toEqual([[set(1)]]);
  });

  it('prefers fewer preemptions to fewer steps', () => {
    // The preemption makes the run shorter but is not needed.
    const fails = (c: TraceCase): Verdict => (countOf(c) >= 2 ? { steps: c.schedule.some((x) => x) ? 5 : 9, preemptions: c.schedule.filter((x) => x).length } : false);
    const out = minimize({ threads: [[set(2)], [{ op: 'drain_all_pages' }]], schedule: [0, 1] }, fails);
    expect(out).toEqual({ threads: [[set(2)]], schedule: [] });
  });
});

describe('minimize: threads', () => {
  it('moves ops into an earlier thread when the violation needs no interleaving', () => {
    const a: Op = { op: 'demote', hstate: '1G' };
    // Fails iff both ops are there, in any threads; every extra thread costs a preemption.
    const fails = (c: TraceCase): Verdict => (countOf(c) === 1 && c.threads.flat().some((o) => o.op === 'demote') ? { steps: 10, preemptions: c.threads.length - 1 } : false);
    const out = minimize({ threads: [[a], [set(1)]], schedule: [1] }, fails);
    expect(out).toEqual({ threads: [[set(1), a]], schedule: [] });
  });

  it('keeps the threads when the violation needs them', () => {
    const fails = (c: TraceCase): boolean => c.threads.length === 2 && countOf(c) >= 1;
    const out = minimize({ threads: [[{ op: 'demote', hstate: '1G' }], [set(1)]], schedule: [1] }, fails);
    expect(out).toEqual({ threads: [[{ op: 'demote', hstate: '1G' }], [set(1)]], schedule: [] });
  });
});

describe('minimize: bounded and deterministic', () => {
  it('makes at most `budget` runs (plus one for trailing zeros)', () => {
    let calls = 0;
    const fails = (c: TraceCase): boolean => {
      calls++;
      return countOf(c) >= 1000;
    };
    minimize({ threads: [[set(1_000_000)], [{ op: 'drain_all_pages' }]], schedule: [1, 0, 1, 0] }, fails, 10);
    expect(calls).toBeLessThanOrEqual(11);
  });

  it('gives the same result for the same input', () => {
    const start: TraceCase = { threads: [[set(37), { op: 'alloc_pages', id: 'a', order: 7, migratetype: 'movable' }], [set(5)]], schedule: [1, 2, 0, 1] };
    const fails = (c: TraceCase): boolean => countOf(c) >= 11 && c.schedule.length > 0;
    expect(minimize(start, fails)).toEqual(minimize(start, fails));
    expect(countOf(minimize(start, fails))).toBe(11);
  });

  it('returns a case that does not fail unchanged', () => {
    const start: TraceCase = { threads: [[set(3)]], schedule: [1] };
    expect(minimize(start, () => false)).toEqual(start);
  });
});
