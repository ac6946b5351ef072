/**
 * The page model's removed transitions (models/page-model.ts), each kind caught: a kernel
 * misbehaviour planted in an op (its OPS entry wrapped, restored afterwards) that the previous,
 * more permissive model let through and refines-model now reports. Last, the false alarm the
 * model had for hugetlb_fault under HVO.
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/machine.js';
import { runProgram } from '../src/harness/executor.js';
import { parseProgram } from '../src/harness/program.js';
import { OPS, type OpResult } from '../src/harness/ops/index.js';
import type { KGen } from '../src/kernel/sched.js';
import { prepNewPage, rmqueueSmallest } from '../src/kernel/page_alloc.js';
import { setMigratetypeIsolate } from '../src/kernel/page_isolation.js';
import { freeContigRange } from '../src/kernel/contig.js';
import { hugetlbState } from '../src/kernel/hugetlb.js';
import { MIGRATE_ISOLATE, MIGRATE_MOVABLE, PG_hugetlb, PG_hugetlb_freed, PG_tail, PG_valid } from '../src/kernel/types.js';
import { NIL } from '../src/kernel/memmap.js';
import { getProperty } from '../properties/index.js';

type Run = (k: Kernel, a: Record<string, any>) => KGen<OpResult>;

/**
 * Run `ops` with op `name` doing `plant` first, then its real run (or nothing when `only`); the
 * op's real run is restored afterwards.
 */
function planted(k: Kernel, name: string, plant: (k: Kernel) => void, ops: Record<string, unknown>[], only = false) {
  const spec = OPS[name];
  const orig: Run = spec.run;
  spec.run = function* (kk, a) {
    plant(kk);
    return only ? { result: '0' } : yield* orig(kk, a);
  };
  try {
    return runProgram(parseProgram({ config: k.cfg, profile: k.profile.name, threads: [ops] }), { properties: [getProperty('refines-model')], kernel: k });
  } finally {
    spec.run = orig;
  }
}

const messages = (out: ReturnType<typeof runProgram>) => out.violations.map((v) => v.message);

describe('refines-model: transitions the page model no longer allows', () => {
  it('hugetlb_fault never takes a page off an ISOLATE free list (alloc_surplus_huge_page: __alloc_pages, no gigantic)', () => {
    const k = createKernel('tiny', 'mainline');
    expect(setMigratetypeIsolate(k, 128, MIGRATE_MOVABLE, 0, 128, 132)).toBe('0');
    // alloc_buddy_huge_page's block taken from the MIGRATE_ISOLATE list and prepped as a huge page
    const out = planted(k, 'hugetlb_fault', (kk) => {
      const p = rmqueueSmallest(kk, kk.zoneOf(128)!, 2, MIGRATE_ISOLATE);
      expect(p).toBe(128);
      prepNewPage(kk, p, 2, 0, PG_hugetlb, 0);
    }, [{ op: 'hugetlb_fault', id: 'm', index: 0 }]);
    expect(messages(out)).toEqual([expect.stringMatching(/went from isolated to huge-in-use .* during hugetlb_fault/)]);
  });

  it('hugetlb_mmap never takes a page off an ISOLATE free list (gather_surplus_pages -> alloc_surplus_huge_page)', () => {
    const k = createKernel('tiny', 'mainline');
    expect(setMigratetypeIsolate(k, 128, MIGRATE_MOVABLE, 0, 128, 132)).toBe('0');
    const out = planted(k, 'hugetlb_mmap', (kk) => prepNewPage(kk, rmqueueSmallest(kk, kk.zoneOf(128)!, 2, MIGRATE_ISOLATE), 2, 0, PG_hugetlb, 0),
      [{ op: 'hugetlb_mmap', id: 'm', hstate: '2M', pages: 1 }]);
    expect(messages(out)).toEqual([expect.stringMatching(/went from isolated to huge-in-use .* during hugetlb_mmap/)]);
  });

  it('cma_release never frees pages cma_alloc did not take (cma_pages_valid)', () => {
    const k = createKernel('tiny', 'mainline');
    // The release also frees an alloc_contig_range range outside the area.
    const out = planted(k, 'cma_release', (kk) => {
      const al = kk.lookup('c')!;
      kk.dropAllocation(al.handle);
      expect(freeContigRange(kk, al.pfn, al.nrPages)).toBe(0);
    }, [
      { op: 'alloc_contig_range', id: 'c', start: 128, end: 132, migratetype: 'movable' },
      { op: 'cma_alloc', id: 'm', area: 'reserved', count: 1 },
      { op: 'cma_release', id: 'm' },
    ]);
    expect(messages(out)).toEqual([expect.stringMatching(/went from contig-taken to (free|pcp) .* during cma_release/)]);
  });

  it('demote never leaves a pool page\'s pieces held outside the pool (prep_new_huge_page of each piece)', () => {
    const k = createKernel('tiny-hugetlb-cma', 'mainline');
    // demote_free_huge_page destroys the gigantic page and skips the prep of its pieces
    const out = planted(k, 'demote', (kk) => {
      const { flags, refcount, next } = kk.mm;
      const head = flags.findIndex((f) => (f & PG_hugetlb) !== 0 && (f & PG_hugetlb_freed) !== 0 && (f & PG_tail) === 0);
      expect(head).toBeGreaterThanOrEqual(0);
      for (let p = head; p < head + 32; p++) {
        flags[p] &= PG_valid;
        refcount[p] = 0;
        next[p] = NIL;
      }
    }, [{ op: 'set_nr_hugepages', hstate: '1G', count: 1 }, { op: 'demote', hstate: '1G' }], true);
    expect(messages(out)).toEqual([expect.stringMatching(/went from huge-free to contig-taken .* during demote/)]);
  });

  it('no false alarm: a fault\'s fresh surplus page frees the vmemmap restored earlier (hugetlb_vmemmap_optimize, v5.14+)', () => {
    const k = createKernel('tiny', 'mainline');
    hugetlbState(k).hstates[0].overcommit = 1;
    const run = (ops: Record<string, unknown>[]) => runProgram(parseProgram({ config: k.cfg, profile: 'mainline', threads: [ops] }), { properties: [getProperty('refines-model')], kernel: k });
    // shrinking restores a page's vmemmap; the mapping reserves the pool page at 128
    expect(run([{ op: 'set_nr_hugepages', hstate: '2M', count: 2 }, { op: 'set_nr_hugepages', hstate: '2M', count: 1 }, { op: 'hugetlb_mmap', id: 'm', hstate: '2M', pages: 1 }]).violations).toEqual([]);
    expect(hugetlbState(k).vmemmap.length).toBe(1);
    // 128 isolated: the fault takes a fresh surplus page, whose optimisation frees that vmemmap page
    expect(setMigratetypeIsolate(k, 128, MIGRATE_MOVABLE, 0, 128, 132)).toBe('0');
    expect(run([{ op: 'hugetlb_fault', id: 'm', index: 0 }]).violations).toEqual([]);
    expect(hugetlbState(k).vmemmap.length).toBe(0);
  });
});
