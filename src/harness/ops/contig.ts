/**
 * Ops of contiguous allocation and CMA: alloc_contig_range, alloc_contig_pages, free_contig_range,
 * cma_alloc, cma_release. Results are the kernel's errnos; ops that take memory report the pfn.
 * alloc_contig_pages and cma_alloc return a page or NULL in the kernel: NULL is reported as
 * -ENOMEM (cma_alloc also reports the last alloc_contig_range error as `lastError`).
 */
import { flat, type KGen } from '../../kernel/sched.js';
import type { Kernel } from '../../kernel/machine.js';
import { allocContigPages, allocContigRange, freeContigRange } from '../../kernel/contig.js';
import { cmaAlloc, cmaAreaOf, cmaRelease, findCmaArea } from '../../kernel/cma.js';
import { MIGRATETYPE_ARG, PG_offline } from '../../kernel/types.js';
import { defineOp, type OpResult } from './registry.js';

function held(k: Kernel, id: string): OpResult | null {
  return k.lookup(id) ? { result: '-EINVAL', reason: `id '${id}' is held` } : null;
}

export function* allocContigRangeOp(k: Kernel, a: Record<string, any>): KGen<OpResult> {
  const h = held(k, a.id);
  if (h) return h;
  // Callers (virtio-mem, CMA, gigantic pages) only pass online memory (pfn_to_online_page).
  if (a.end > k.nrPfns || a.start >= a.end) return { result: '-EINVAL', reason: 'range outside memory' };
  // From PageOffline pfn to PageOffline pfn (scanFlags), the others pass.
  const mm = k.mm;
  for (let p = mm.scanFlags(PG_offline, 0, a.start, a.end); p < a.end; p = mm.scanFlags(PG_offline, 0, p + 1, a.end)) {
    if (mm.refcount[p] === 0) return { result: '-EINVAL', reason: `pfn ${p} is offline` };
  }
  const mt = MIGRATETYPE_ARG[a.migratetype];
  const result = yield* flat(allocContigRange(k, a.start, a.end, mt, { id: a.id }));
  return result === '0' ? { result, pfn: a.start, nrPages: a.end - a.start } : { result };
}

export function* allocContigPagesOp(k: Kernel, a: Record<string, any>): KGen<OpResult> {
  const h = held(k, a.id);
  if (h) return h;
  const node: number = a.node ?? k.zones[0].node;
  if (!k.zones.some((z) => z.node === node)) return { result: '-EINVAL', reason: `no node ${node}` };
  const pfn = yield* flat(allocContigPages(k, a.nr_pages, node, { id: a.id }, !!a.movable));
  return pfn < 0 ? { result: '-ENOMEM' } : { result: '0', pfn, nrPages: a.nr_pages };
}

export function* freeContigRangeOp(k: Kernel, a: Record<string, any>): KGen<OpResult> {
  const al = k.lookup(a.id);
  if (!al || al.kind !== 'contig') return { result: '-EINVAL', reason: `no contig range held as '${a.id}'` };
  k.dropAllocation(al.handle);
  const busy = freeContigRange(k, al.pfn, al.nrPages);
  return { result: '0', pfn: al.pfn, nrPages: al.nrPages, ...(busy ? { busy } : {}) };
}

export function* cmaAllocOp(k: Kernel, a: Record<string, any>): KGen<OpResult> {
  const h = held(k, a.id);
  if (h) return h;
  const area = findCmaArea(k, a.area);
  if (area < 0) return { result: '-EINVAL', reason: `no CMA area '${a.area}'` };
  const r = yield* flat(cmaAlloc(k, area, a.count, a.align ?? 0, a.id));
  if (r.pfn < 0) return { result: r.err === '-EINVAL' ? '-EINVAL' : '-ENOMEM', lastError: r.err, tries: r.tries };
  return { result: '0', pfn: r.pfn, nrPages: a.count, tries: r.tries };
}

export function* cmaReleaseOp(k: Kernel, a: Record<string, any>): KGen<OpResult> {
  const al = k.lookup(a.id);
  if (!al || al.kind !== 'cma') return { result: '-EINVAL', reason: `no CMA allocation held as '${a.id}'` };
  const area = cmaAreaOf(k, al.pfn);
  k.dropAllocation(al.handle);
  if (area < 0 || !cmaRelease(k, area, al.pfn, al.nrPages)) return { result: '-EINVAL', reason: 'cma_pages_valid() is false' };
  return { result: '0', pfn: al.pfn, nrPages: al.nrPages };
}

defineOp({
  name: 'alloc_contig_range',
  summary: 'alloc_contig_range(start, end, migratetype): isolate, migrate, take [start, end)',
  takes: true,
  fields: {
    id: { type: 'id' },
    start: { type: 'int', min: 0 },
    end: { type: 'int', min: 1 },
    migratetype: { type: 'migratetype' },
  },
  run: allocContigRangeOp,
});

defineOp({
  name: 'alloc_contig_pages',
  summary: 'alloc_contig_pages(nr_pages, node): the first naturally aligned range that alloc_contig_range can take (movable: may use ZONE_MOVABLE)',
  takes: true,
  fields: {
    id: { type: 'id' },
    nr_pages: { type: 'int', min: 1 },
    node: { type: 'int', optional: true },
    movable: { type: 'bool', optional: true },
  },
  run: allocContigPagesOp,
});

defineOp({
  name: 'free_contig_range',
  summary: 'free_contig_range() of pages taken by alloc_contig_range / alloc_contig_pages',
  fields: { id: { type: 'id' } },
  run: freeContigRangeOp,
});

defineOp({
  name: 'cma_alloc',
  summary: 'cma_alloc(area, count, align order): successive bitmap positions, alloc_contig_range(MIGRATE_CMA) under cma_mutex',
  takes: true,
  fields: {
    id: { type: 'id' },
    area: { type: 'name-or-index' },
    count: { type: 'int', min: 1 },
    align: { type: 'int', optional: true, min: 0, max: 30 },
  },
  run: cmaAllocOp,
});

defineOp({
  name: 'cma_release',
  summary: 'cma_release() of pages taken by cma_alloc',
  fields: { id: { type: 'id' } },
  run: cmaReleaseOp,
});
