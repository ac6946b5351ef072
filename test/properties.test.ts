/**
 * Every property of the catalogue catches a planted bug (a direct state mutation, or a buggy
 * profile through a scripted program) and holds on the untouched machine.
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/machine.js';
import { runProgram } from '../src/harness/executor.js';
import { parseProgram } from '../src/harness/program.js';
import { defineOp } from '../src/harness/ops/index.js';
import { allocPagesOp } from '../src/harness/ops/buddy.js';
import { clearPage, freePages } from '../src/kernel/page_alloc.js';
import { hugetlbState } from '../src/kernel/hugetlb.js';
import { hotplugState } from '../src/kernel/memory_hotplug.js';
import { resolveConfig } from '../src/kernel/config.js';
import { MIGRATE_CMA, MIGRATE_ISOLATE, MIGRATE_MOVABLE, PG_buddy } from '../src/kernel/types.js';
import { PROPERTIES, getProperty, type CheckContext, type Property } from '../properties/index.js';
import { createRefinement } from '../properties/refines-model.js';
import { dirtyTracker } from '../properties/dirty.js';
import { checkContigEnd } from '../properties/contig-postcondition.js';
import { OP_STEP_BOUND } from '../properties/bounded-progress.js';

function ctx(k: Kernel, step: number, extra: Partial<CheckContext> = {}): CheckContext {
  return { k, step, started: [], finished: [], quiescent: false, ...extra };
}

/** A checker's verdict at quiescence on k. */
function atQuiescence(p: Property, k: Kernel): string | null {
  return p.create(k).check(ctx(k, 0, { quiescent: true }));
}

function freeHead(k: Kernel, minOrder: number, inZone = 0): number {
  const z = k.zones[inZone];
  for (let p = z.start; p < z.end; p++) if ((k.mm.flags[p] & PG_buddy) && k.mm.order[p] >= minOrder) return p;
  throw new Error('no free block');
}

function drive<T>(g: Generator<unknown, T, void>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

const fresh = () => createKernel('tiny-hugetlb-cma', 'mainline');

describe('property catalogue', () => {
  it('has the stable names of the issue, each with statement, kernel reference and guarded bug', () => {
    const names = PROPERTIES.map((p) => p.name).sort();
    expect(names).toEqual([
      'bounded-progress', 'cma-ownership', 'contig-postcondition', 'freelist-counters', 'hugepages-total-stable',
      'hugetlb-counters', 'isolation-restored', 'no-cross-migratetype-merge', 'no-data-loss', 'no-gigantic-recursion',
      'offline-completeness', 'page-conservation', 'refines-model',
    ]);
    for (const p of PROPERTIES) {
      expect(p.statement.length).toBeGreaterThan(20);
      expect(p.kernelRef.length).toBeGreaterThan(5);
      expect(p.guards.length).toBeGreaterThan(5);
    }
  });

  it('every property holds on a freshly booted machine', () => {
    for (const cfg of ['tiny', 'tiny-hugetlb-cma', 'small']) {
      const k = createKernel(cfg, 'mainline');
      for (const p of PROPERTIES) expect(atQuiescence(p, k), `${p.name} on ${cfg}`).toBeNull();
    }
  });
});

describe('planted bugs', () => {
  it('page-conservation: a free block that is also owned', () => {
    const k = fresh();
    k.mm.owner[freeHead(k, 0)] = 99;
    expect(atQuiescence(getProperty('page-conservation'), k)).toMatch(/also held/);
  });

  it('page-conservation per step: a page taken off the lists and given to nobody', () => {
    const k = fresh();
    const c = getProperty('page-conservation').create(k);
    expect(c.check(ctx(k, 0))).toBeNull();
    const p = freeHead(k, 0);
    const z = k.zoneOf(p)!;
    // Taken like __rmqueue would, but never handed out (lost).
    k.mm.listDel(p);
    k.mm.flags[p] &= ~PG_buddy;
    z.nrFree[k.mm.order[p]]--;
    expect(c.check(ctx(k, 1))).toMatch(/lost/);
  });

  it('refines-model: online_pages never puts a page on a pcp list (generic_online_page bypasses them, the blocks are isolated)', () => {
    const k = createKernel(resolveConfig({ base: 'tiny', name: 'tiny-plain', virtioMem: undefined }), 'mainline');
    // A callback that re-types its chunk MOVABLE and frees it page by page through the pcp lists.
    hotplugState(k).onlinePage = (kk, pfn, order) => {
      for (let p = pfn; p < pfn + (1 << order); p += 1 << kk.pageblockOrder) kk.pb.set(p, MIGRATE_MOVABLE);
      for (let p = pfn; p < pfn + (1 << order); p++) freePages(kk, p, 0);
      return 1 << order;
    };
    const ops = [{ op: 'offline_pages', block: 7 }, { op: 'online_pages', block: 7, zone: 'Movable' }];
    const out = runProgram(parseProgram({ config: k.cfg, profile: 'mainline', threads: [ops] }), { properties: [getProperty('refines-model')], kernel: k });
    expect(out.violations.map((v) => v.message)).toEqual([expect.stringMatching(/went from offline to pcp .* during online_pages/)]);
    // the kernel's own callback: clean
    const ok = runProgram(parseProgram({ config: k.cfg, profile: 'mainline', threads: [ops] }), { properties: [getProperty('refines-model')] });
    expect(ok.violations).toEqual([]);
  });

  it('freelist-counters: NR_FREE_PAGES drift', () => {
    const k = fresh();
    k.zones[0].freePages += 1;
    expect(atQuiescence(getProperty('freelist-counters'), k)).toMatch(/NR_FREE_PAGES/);
  });

  it('no-cross-migratetype-merge: a free MAX_ORDER block over a CMA pageblock', () => {
    const k = fresh();
    const p = freeHead(k, k.pageblockOrder + 1);
    k.pb.set(p + (1 << k.pageblockOrder), MIGRATE_CMA);
    expect(atQuiescence(getProperty('no-cross-migratetype-merge'), k)).toMatch(/spans a .* pageblock/);
  });

  it('hugepages-total-stable: HugePages_Total changes inside alloc_contig_range', () => {
    const k = fresh();
    const c = getProperty('hugepages-total-stable').create(k);
    const op = { op: 'alloc_contig_range', id: 'x', start: 128, end: 132, migratetype: 'movable' };
    expect(c.check(ctx(k, 0, { started: [{ thread: 0, index: 0, op }] }))).toBeNull();
    hugetlbState(k).hstates[0].nr++;
    expect(c.check(ctx(k, 1))).toMatch(/HugePages_Total 0 -> 1/);
    // The same change inside set_nr_hugepages is the admin's request, not a violation.
    const k2 = fresh();
    const c2 = getProperty('hugepages-total-stable').create(k2);
    expect(c2.check(ctx(k2, 0, { started: [{ thread: 0, index: 0, op: { op: 'set_nr_hugepages', hstate: '2M', count: 1 } }] }))).toBeNull();
    hugetlbState(k2).hstates[0].nr++;
    expect(c2.check(ctx(k2, 1))).toBeNull();
  });

  it('hugepages-total-stable: a surplus page leaving the pool is allowed, a persistent one is not', () => {
    const op = { op: 'virtio_mem_unplug', bytes: 2 << 20 };
    const setup = () => {
      const k = fresh();
      const h = hugetlbState(k).hstates[0];
      Object.assign(h, { nr: 3, surplus: 2, max: 1 });
      const c = getProperty('hugepages-total-stable').create(k);
      expect(c.check(ctx(k, 0, { started: [{ thread: 0, index: 0, op }] }))).toBeNull();
      return { k, h, c };
    };
    // Migration's old page freed while the node has surplus (free_huge_page -> update_and_free_page).
    const a = setup();
    a.h.nr--;
    a.h.surplus--;
    expect(a.c.check(ctx(a.k, 1))).toBeNull();
    // A persistent page dissolved (the pre-2025 dissolve accounting): still a violation.
    const b = setup();
    b.h.nr--;
    expect(b.c.check(ctx(b.k, 1))).toMatch(/HugePages_Total 3 -> 2, max_huge_pages 1 -> 1, surplus 2 -> 2/);
    // A free surplus page dissolved without a replacement (Free drops too): a violation.
    const c = setup();
    c.h.free = 2;
    expect(c.c.check(ctx(c.k, 1))).toBeNull();
    c.h.nr--;
    c.h.surplus--;
    c.h.free--;
    expect(c.c.check(ctx(c.k, 2))).toMatch(/HugePages_Total 3 -> 2, max_huge_pages 1 -> 1, surplus 2 -> 1/);
  });

  it('no-gigantic-recursion: alloc_contig_range re-entered', () => {
    const k = fresh();
    const c = getProperty('no-gigantic-recursion').create(k);
    k.enterContig();
    expect(c.check(ctx(k, 0))).toBeNull();
    k.enterContig();
    expect(c.check(ctx(k, 1))).toMatch(/re-entered/);
  });

  it('no-gigantic-recursion: the RFC profile recurses (scripted)', () => {
    const prog = parseProgram({
      config: 'tiny', profile: 'rfc-2021-02',
      threads: [[{ op: 'set_nr_hugepages', hstate: '1G', count: 1 }, { op: 'alloc_contig_pages', id: 'c', nr_pages: 32 }]],
    });
    const bad = runProgram(prog, { properties: [getProperty('no-gigantic-recursion')] });
    const good = runProgram({ ...prog, profile: parseProgram({ config: 'tiny', profile: 'v5.13', threads: [[]] }).profile }, { properties: [getProperty('no-gigantic-recursion')] });
    expect(good.violations.filter((v) => v.property === 'no-gigantic-recursion')).toEqual([]);
    // Whether the scripted pair reaches the gigantic page depends on where the pool put it; the
    // campaign test is the authoritative one. Here: if the RFC run violates, it is this property.
    for (const v of bad.violations) expect(['no-gigantic-recursion']).toContain(v.property);
  });

  it('hugetlb-counters: Rsvd > Free and a miscounted free list', () => {
    const prog = parseProgram({ config: 'tiny', profile: 'mainline', threads: [[{ op: 'set_nr_hugepages', hstate: '2M', count: 2 }]] });
    const k = runProgram(prog).kernel;
    expect(atQuiescence(getProperty('hugetlb-counters'), k)).toBeNull();
    const h = hugetlbState(k).hstates[0];
    h.resv = h.free + 1;
    expect(atQuiescence(getProperty('hugetlb-counters'), k)).toMatch(/Rsvd/);
    h.resv = 0;
    h.nodes[0].free++;
    h.free++;
    expect(atQuiescence(getProperty('hugetlb-counters'), k)).toMatch(/free list holds/);
  });

  it('isolation-restored: a pageblock left ISOLATE', () => {
    const k = fresh();
    k.pb.set(128, MIGRATE_ISOLATE);
    expect(atQuiescence(getProperty('isolation-restored'), k)).toMatch(/still MIGRATE_ISOLATE/);
  });

  it('no-data-loss: content lost under its user', () => {
    defineOp({
      name: 'test_corrupt_token',
      summary: 'test only: overwrite the content of a held page',
      fields: { id: { type: 'id' } },
      *run(k, a) {
        const al = k.lookup(a.id)!;
        k.mm.token[al.pfn] = 12345;
        return { result: '0' };
      },
    });
    const prog = parseProgram({ config: 'tiny', profile: 'mainline', threads: [[{ op: 'alloc_pages', id: 'a', order: 0, migratetype: 'movable' }, { op: 'test_corrupt_token', id: 'a' }]] });
    const out = runProgram(prog, { properties: [getProperty('no-data-loss')] });
    expect(out.violations.map((v) => v.property)).toEqual(['no-data-loss']);
    expect(out.violations[0].message).toMatch(/lost its content/);
    const ok = runProgram({ ...prog, threads: [prog.threads[0].slice(0, 1)] }, { properties: [getProperty('no-data-loss')] });
    expect(ok.violations).toEqual([]);
  });

  it('contig-postcondition: success reported but the range is not the caller\'s', () => {
    const k = fresh();
    const e = { thread: 0, index: 0, op: { op: 'alloc_contig_range', id: 'x', start: 128, end: 136 }, result: { result: '0' as const } };
    expect(checkContigEnd(k, e, false)).toMatch(/holds nothing/);
    const fail = { ...e, result: { result: '-EBUSY' as const } };
    expect(checkContigEnd(k, fail, false)).toBeNull();
    k.pb.set(128, MIGRATE_ISOLATE);
    expect(checkContigEnd(k, fail, false)).toMatch(/left the pageblock at 128 isolated/);
  });

  it('cma-ownership: a CMA pageblock re-typed, and a leaked bitmap bit', () => {
    const k = fresh();
    const base = k.cfg.cma[0].basePfn;
    k.pb.set(base, MIGRATE_MOVABLE);
    expect(atQuiescence(getProperty('cma-ownership'), k)).toMatch(/not CMA/);
    const k2 = fresh();
    const area = (k2.ext.cma as { areas: { bitmap: Uint8Array }[] }).areas[0];
    area.bitmap[0] = 1;
    expect(atQuiescence(getProperty('cma-ownership'), k2)).toMatch(/leaked out of CMA/);
  });

  it('cma-ownership: an unmovable allocation served from CMA (per step)', () => {
    const k = fresh();
    const c = getProperty('cma-ownership').create(k);
    const base = k.cfg.cma[0].basePfn;
    const al = k.newAllocation({ id: 'u', kind: 'pages', pfn: base, nrPages: 1, order: 0, migratetype: 0, pinned: false });
    k.mm.owner[base] = al.handle;
    expect(c.check(ctx(k, 0))).toMatch(/CMA may only serve movable/);
  });

  it('bounded-progress: an op that never returns', () => {
    defineOp({
      name: 'test_spin',
      summary: 'test only: a retry loop without a bound',
      fields: {},
      *run() {
        for (;;) yield 'test_spin:retry';
      },
    });
    const prog = parseProgram({ config: 'tiny', profile: 'mainline', threads: [[{ op: 'test_spin' }]] });
    const out = runProgram(prog, { properties: [getProperty('bounded-progress')], trace: false, maxSteps: OP_STEP_BOUND + 10 });
    expect(out.violations[0].property).toBe('bounded-progress');
    expect(out.violations[0].message).toMatch(/without returning/);
  });

  it('refines-model: alloc_contig_range freeing a pinned page is a forbidden transition', () => {
    const k = fresh();
    const r = createRefinement(k);
    k.current = 0;
    const got = drive(allocPagesOp(k, { id: 'p', order: 0, migratetype: 'unmovable', pinned: true }));
    expect(r.check(0, [{ thread: 0, op: { op: 'alloc_pages' } }])).toBeNull();
    const pfn = got.pfn!;
    const al = k.lookup('p')!;
    clearPage(k, pfn, 0);
    k.dropAllocation(al.handle);
    freePages(k, pfn, 0);
    expect(r.check(1, [{ thread: 0, op: { op: 'alloc_contig_range' } }])).toMatch(/from pinned to (pcp|free)/);
  });

  it('refines-model: a restored checkpoint brings the abstraction back and drops what the unchecked steps touched', () => {
    const k = fresh();
    const r = createRefinement(k);
    k.current = 0;
    expect(r.check(0, [{ thread: 0, op: { op: 'alloc_pages' } }])).toBeNull();
    r.checkpoint(1);
    const at1 = r.abs.slice();
    const got = drive(allocPagesOp(k, { id: 'p', order: 0, migratetype: 'unmovable', pinned: true }));
    expect(r.check(1, [])).toBeNull();
    expect(r.abs[got.pfn!]).not.toBe(at1[got.pfn!]);
    // A step the checker does not see (a replay), then the checkpoint: the next check must not be
    // handed the replayed step's pfns, whose abstraction the checkpoint already has.
    clearPage(k, got.pfn!, 0);
    k.dropAllocation(k.lookup('p')!.handle);
    freePages(k, got.pfn!, 0);
    r.restore(1);
    expect(r.abs).toEqual(at1);
    expect(dirtyTracker(k).merged(2)).toEqual([]);
  });

  it('refines-model: the same free under free_pages is allowed', () => {
    const k = fresh();
    const r = createRefinement(k);
    k.current = 0;
    const got = drive(allocPagesOp(k, { id: 'p', order: 0, migratetype: 'unmovable', pinned: true }));
    expect(r.check(0, [{ thread: 0, op: { op: 'alloc_pages' } }])).toBeNull();
    clearPage(k, got.pfn!, 0);
    k.dropAllocation(k.lookup('p')!.handle);
    freePages(k, got.pfn!, 0);
    expect(r.check(1, [{ thread: 0, op: { op: 'free_pages' } }])).toBeNull();
  });

  it('refines-model (pool model): HugePages_Total grows during alloc_pages', () => {
    const k = fresh();
    const r = createRefinement(k);
    k.current = 0;
    expect(r.check(0, [{ thread: 0, op: { op: 'alloc_pages' } }])).toBeNull();
    const h = hugetlbState(k).hstates[0];
    h.nr++;
    h.free++;
    expect(r.check(1, [])).toMatch(/no pool-model transition of alloc_pages/);
    // The same growth under set_nr_hugepages is the pool model's `grow`.
    const k2 = fresh();
    const r2 = createRefinement(k2);
    k2.current = 0;
    expect(r2.check(0, [{ thread: 0, op: { op: 'set_nr_hugepages' } }])).toBeNull();
    hugetlbState(k2).hstates[0].nr++;
    hugetlbState(k2).hstates[0].free++;
    expect(r2.check(1, [])).toBeNull();
    // Rsvd above Free breaks the pool invariants whatever the op.
    hugetlbState(k2).hstates[0].resv = 5;
    expect(r2.check(2, [])).toMatch(/break the pool model's invariants/);
  });

  it('offline-completeness: offline of a free ZONE_MOVABLE block that fails', () => {
    const k = fresh();
    const c = getProperty('offline-completeness').create(k);
    // Block 5 of tiny: [160, 192), ZONE_MOVABLE, all free.
    const op = { op: 'offline_pages', block: 5 };
    const msg = c.check(ctx(k, 0, { started: [{ thread: 0, index: 0, op }], finished: [{ thread: 0, index: 0, op, result: { result: '-EBUSY' } }] }));
    expect(msg).toMatch(/holds only movable memory/);
    // A block of ZONE_NORMAL with unmovable boot pages may fail.
    const c2 = getProperty('offline-completeness').create(k);
    const op0 = { op: 'offline_pages', block: 0 };
    expect(c2.check(ctx(k, 0, { started: [{ thread: 0, index: 0, op: op0 }], finished: [{ thread: 0, index: 0, op: op0, result: { result: '-EBUSY' } }] }))).toBeNull();
  });

  it('offline-completeness judges an offline that ran alone; one that overlapped another op may fail', () => {
    const k = fresh();
    const op = { op: 'offline_pages', block: 5 };
    const other = { op: 'alloc_pages', order: 0 };
    const fail = { thread: 0, index: 0, op, result: { result: '-EBUSY' as const } };
    // thread 1's op ran at step 1, inside the offline (steps 0..2): a concurrent allocation may
    // take the room the offline needed, so the failure is not judged
    const c = getProperty('offline-completeness').create(k);
    expect(c.check(ctx(k, 0, { started: [{ thread: 0, index: 0, op }] }))).toBeNull();
    expect(c.check(ctx(k, 1, { started: [{ thread: 1, index: 0, op: other }], finished: [{ thread: 1, index: 0, op: other, result: { result: '0' } }] }))).toBeNull();
    expect(c.check(ctx(k, 2, { finished: [fail] }))).toBeNull();
    // the same failure after the other op had finished before the offline started is judged
    const c2 = getProperty('offline-completeness').create(k);
    expect(c2.check(ctx(k, 0, { started: [{ thread: 1, index: 0, op: other }], finished: [{ thread: 1, index: 0, op: other, result: { result: '0' } }] }))).toBeNull();
    expect(c2.check(ctx(k, 1, { started: [{ thread: 0, index: 0, op }] }))).toBeNull();
    expect(c2.check(ctx(k, 2, { finished: [fail] }))).toMatch(/holds only movable memory/);
  });
});
