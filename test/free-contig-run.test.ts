/**
 * free_contig_range()'s run form (compaction.ts freeContigPfns: pages with the caller's reference
 * only cleared together, then freed through freeUnrefPages) against the page-by-page loop it
 * replaces (__free_page on every pfn): the same memmap, lists, counters, WARN count and throw, with
 * pages held by others, pages freed twice, isolated pageblocks, pcp lists disabled and ranges
 * running past the end of memory.
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/machine.js';
import { freeContigRange } from '../src/kernel/contig.js';
import { clearOnePage, freePages } from '../src/kernel/page_alloc.js';
import { MIGRATE_CMA, MIGRATE_ISOLATE, PG_buddy, PG_pcp } from '../src/kernel/types.js';
import { op, rng } from './helpers.js';

/** The loop free_contig_range() had: clearOnePage and __free_page, one pfn after the other. */
function naiveFreeContig(k: Kernel, pfn: number, nr: number): number {
  let busy = 0;
  for (let p = pfn; p < pfn + nr; p++) {
    const ref = k.mm.refcount[p];
    if (ref !== 1) busy++;
    if (ref > 1) {
      k.mm.refcount[p] = ref - 1;
      continue;
    }
    clearOnePage(k.mm, p);
    freePages(k, p, 0);
  }
  return busy;
}

/** Everything the free path writes. */
function state(k: Kernel): unknown {
  const { mm } = k;
  return {
    arrays: [mm.flags, mm.order, mm.refcount, mm.owner, mm.token, mm.next, mm.prev, mm.onList, mm.listHead, mm.listTail, mm.listLen, mm.buddies].map((a) => Array.from(a)),
    zones: k.zones.map((z) => [z.freePages, z.freeCma, Array.from(z.nrFree), Array.from(z.pcpCount), Array.from(z.pcpFreeFactor)]),
    pb: Array.from(k.pb.mt),
  };
}

function run(f: () => number): string {
  try {
    return `busy ${f()}`;
  } catch (e) {
    return (e as Error).message;
  }
}

describe('free_contig_range a run at a time', () => {
  it('leaves the machine as the page-by-page loop does', () => {
    const next = rng(41);
    let threw = 0;
    let warned = 0;
    let clean = 0;
    for (let t = 0; t < 300; t++) {
      const [a, b] = [createKernel('tiny', 'mainline'), createKernel('tiny', 'mainline')];
      const n = a.nrPfns;
      // The same allocations on both: pages held once, a contig range to free.
      // (inside ZONE_NORMAL past the boot memory, or ZONE_MOVABLE below the virtio-mem region)
      const [lo, hi] = next(2) ? [8, 128] : [128, 192];
      const start = lo + next(hi - lo);
      const nr = 1 + next(hi - start);
      const got = [a, b].map((k) => {
        for (let i = 0; i < 6; i++) op(k, { op: 'alloc_pages', id: `p${i}`, order: i % 3, migratetype: 'movable' });
        return op(k, { op: 'alloc_contig_range', id: 'c', start, end: start + nr, migratetype: 'movable' }).result;
      });
      expect(got[0]).toBe(got[1]);
      if (got[0] !== '0') continue;
      // Then the same oddities on both: references held by others, pages already free, isolated
      // blocks, pcp lists disabled.
      const pbPages = 1 << a.pageblockOrder;
      const isolated = next(4) === 0 ? next(n / pbPages) : -1;
      const disabled = next(4) === 0;
      const tweaks = Array.from({ length: next(2) * next(4) }, () => [start + next(nr + 8), next(5)]);
      for (const k of [a, b]) {
        if (isolated >= 0) k.pb.set(isolated * pbPages, MIGRATE_ISOLATE);
        if (disabled) k.zones.forEach((z) => z.pcpDisabled++);
        for (const [p, how] of tweaks) {
          if (p >= n) continue;
          if (how < 3) k.mm.refcount[p] = how;
          else k.mm.flags[p] |= how === 3 ? PG_pcp : PG_buddy;
        }
      }
      const len = next(3) ? nr : nr + next(n - start - nr + 2);
      const freed = run(() => freeContigRange(a, start, len));
      expect(freed).toBe(run(() => naiveFreeContig(b, start, len)));
      expect(state(a)).toEqual(state(b));
      if (!freed.startsWith('busy')) threw++;
      else if (freed !== 'busy 0') warned++;
      else clean++;
    }
    expect(threw).toBeGreaterThan(20);
    expect(warned).toBeGreaterThan(3);
    expect(clean).toBeGreaterThan(50);
  });
});

describe('free_contig_range to buddy a chunk at a time', () => {
  // freeUnrefPages frees ascending runs of pages bound for buddy as aligned chunks
  // (freeChunkAscending): pages that go straight there (isolated pageblock, pcp lists disabled),
  // the outer ends of a range taken from a large buddy, and the pages pcp->high sends on from the
  // pcp lists (first in first out, after the pages already there; on mainline's 'v5.18' bulk free
  // without ever putting them on the lists: PcpRun), with busy and free neighbours.
  // (each bulk-free version, merge rule and v6.10's freelist hygiene)
  it.each(['mainline', 'v6.10', 'v5.18', 'v5.14', 'v5.11'])('leaves the machine as the page-by-page loop does (%s)', (profile) => {
    const next = rng(7);
    let chunked = 0;
    for (let t = 0; t < 60; t++) {
      const [a, b] = [createKernel('small', profile), createKernel('small', profile)];
      const pbPages = 1 << a.pageblockOrder;
      const start = 12288 + next(2048);
      const nr = 1 + next(2 * pbPages + 300);
      const mode = next(3);
      const cached = next(40);
      const got = [a, b].map((k) => {
        for (let i = 0; i < 4; i++) op(k, { op: 'alloc_pages', id: `p${i}`, order: i, migratetype: 'movable' });
        // pages already on the pcp lists (freed before the range)
        for (let i = 0; i < cached; i++) op(k, { op: 'alloc_pages', id: `q${i}`, order: 0, migratetype: i % 3 ? 'movable' : 'unmovable' });
        for (let i = 0; i < cached; i += 2) op(k, { op: 'free_pages', id: `q${i}` });
        return op(k, { op: 'alloc_contig_range', id: 'c', start, end: start + nr, migratetype: 'movable' }).result;
      });
      expect(got[0]).toBe(got[1]);
      if (got[0] !== '0') continue;
      for (const k of [a, b]) {
        if (mode === 0) k.zones.forEach((z) => z.pcpDisabled++);
        else if (mode === 1) for (let p = start & ~(pbPages - 1); p < start + nr; p += pbPages) k.pb.set(p, MIGRATE_ISOLATE);
        // a CMA pageblock inside: its pages share the MOVABLE pcp list with their neighbours'
        else if (t % 2) k.pb.set(start + (nr >> 1), MIGRATE_CMA);
        k.dropAllocation(k.lookup('c')!.handle);
      }
      expect(run(() => freeContigRange(a, start, nr))).toBe(run(() => naiveFreeContig(b, start, nr)));
      expect(state(a)).toEqual(state(b));
      if (nr >= 4) chunked++;
    }
    expect(chunked).toBeGreaterThan(30);
  });
});
