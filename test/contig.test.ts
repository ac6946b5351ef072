/**
 * alloc_contig_range / alloc_contig_pages / free_contig_range and migration
 * (src/kernel/contig.ts, compaction.ts, migrate.ts), over free, movable-used, pinned and unmovable
 * ranges, with the undo of isolation on every exit path. The example programs in
 * examples/programs/contig-*.json are run here too, so what `mmcheck run` shows is tested.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createKernel } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/machine.js';
import { allocContigPages, allocContigRange, freeContigRange } from '../src/kernel/contig.js';
import { drainPagesZone } from '../src/kernel/page_alloc.js';
import { runProgram, type RunOutcome } from '../src/harness/executor.js';
import { parseProgram } from '../src/harness/program.js';
import { PROPERTIES } from '../properties/index.js';
import { checkConservation } from '../properties/page-conservation.js';
import { checkFreelistCounters } from '../properties/freelist-counters.js';
import { checkNoCrossMerge } from '../properties/no-cross-migratetype-merge.js';
import { meminfo, pagetypeinfo } from '../src/kernel/meminfo.js';
import {
  MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, PG_lru, PG_pcp,
} from '../src/kernel/types.js';

const PROFILES = ['v5.11', 'v5.13', 'v5.19', 'v6.10', 'mainline'];

import { offlineBlock } from '../src/kernel/memory_hotplug.js';
import { drive, op } from './helpers.js';

function example(name: string, profile?: string): RunOutcome {
  const raw = JSON.parse(readFileSync(new URL(`../examples/programs/${name}.json`, import.meta.url), 'utf8'));
  if (profile) raw.profile = profile;
  return runProgram(parseProgram(raw, name), { properties: PROPERTIES });
}

function isolatedBlocks(k: Kernel): number[] {
  const out: number[] = [];
  for (let p = 0; p < k.nrPfns; p += 1 << k.pageblockOrder) if (k.pb.get(p) === MIGRATE_ISOLATE) out.push(p);
  return out;
}

function blockTypes(k: Kernel): number[] {
  const out: number[] = [];
  for (let p = 0; p < k.nrPfns; p += 1 << k.pageblockOrder) out.push(k.pb.get(p));
  return out;
}

function sound(k: Kernel): void {
  expect(checkConservation(k)).toBeNull();
  expect(checkFreelistCounters(k)).toBeNull();
  expect(checkNoCrossMerge(k)).toBeNull();
  expect(isolatedBlocks(k)).toEqual([]);
  expect(k.zones.every((z) => z.nrIsolatePageblock === 0)).toBe(true);
}

function results(o: RunOutcome): string[] {
  return o.results.map((r) => r.result.result);
}

describe('alloc_contig_range over free memory', () => {
  for (const profile of PROFILES) {
    it(`${profile}: takes exactly [start, end), refcount 1 and owner on every pfn, nothing left isolated`, () => {
      const k = createKernel('tiny', profile);
      const free0 = meminfo(k).MemFree;
      const types0 = blockTypes(k);
      expect(drive(allocContigRange(k, 20, 44, MIGRATE_MOVABLE, { id: 'c' }))).toBe('0');
      const al = k.lookup('c')!;
      expect(al).toMatchObject({ kind: 'contig', pfn: 20, nrPages: 24 });
      for (let p = 20; p < 44; p++) {
        expect(k.mm.refcount[p]).toBe(1);
        expect(k.mm.owner[p]).toBe(al.handle);
      }
      // the excess of the free buddies around the range went back: 16..20 and 44..48 are free
      for (const p of [16, 19, 44, 47]) expect(k.mm.owner[p]).toBe(0);
      for (const z of k.zones) for (let c = 0; c < k.cfg.cpus; c++) drainPagesZone(k, z, c);
      expect(meminfo(k).MemFree).toBe(free0 - 24 * 4);
      sound(k);
      expect(blockTypes(k)).toEqual(types0);
      expect(k.maxContigDepth).toBe(1);
      k.dropAllocation(al.handle);
      freeContigRange(k, 20, 24);
      for (const z of k.zones) for (let c = 0; c < k.cfg.cpus; c++) drainPagesZone(k, z, c);
      expect(meminfo(k).MemFree).toBe(free0);
      sound(k);
    });
  }

  it('pageblock-naive fails on a range that only partly covers a free MAX_ORDER-1 page (seed 004, virtio-mem case a)', () => {
    const k = createKernel('tiny', 'pageblock-naive');
    // 16..32 is one free order-4 page; its head pageblock 16..20 is not isolated, so the
    // outer_start search finds a buddy whose first block test_pages_isolated rejects.
    expect(drive(allocContigRange(k, 20, 44, MIGRATE_MOVABLE, { id: 'c' }))).toBe('-EBUSY');
    expect(k.lookup('c')).toBeUndefined();
    sound(k);
    expect(drive(allocContigRange(k, 16, 48, MIGRATE_MOVABLE, { id: 'd' }))).toBe('0'); // aligned: fine
  });

  it('the example program (mainline): freed range merges back to the boot free lists', () => {
    const out = example('contig-free');
    expect(results(out)).toEqual(['0', '0', '0']);
    expect(out.violations).toEqual([]);
    const boot = createKernel('tiny', 'mainline');
    expect(pagetypeinfo(out.kernel)).toEqual(pagetypeinfo(boot));
  });

  it('rejects ranges outside one zone', () => {
    const k = createKernel('tiny', 'mainline');
    expect(drive(allocContigRange(k, 120, 136, MIGRATE_MOVABLE, { id: 'x' }))).toBe('-EINVAL');
    expect(k.lookup('x')).toBeUndefined();
  });
});

describe('alloc_contig_range over used memory', () => {
  for (const profile of PROFILES) {
    it(`${profile}: movable pages in the range are migrated, their data and allocation follow`, () => {
      const out = example('contig-movable-used', profile);
      expect(out.violations).toEqual([]);
      const [m, thp, c] = out.results;
      expect([m.result.pfn, thp.result.pfn]).toEqual([128, 136]);
      expect(c.result.result).toBe('0');
      // free_pages found the pages at their new places
      expect(out.results[3].result.pfn).not.toBe(128);
      expect(out.results[4].result.pfn).not.toBe(136);
      expect(out.results[4].result.order).toBe(3);
      const k = out.kernel;
      const al = k.lookup('c')!;
      for (let p = 128; p < 144; p++) expect(k.mm.owner[p]).toBe(al.handle);
    });
  }

  it('the content token and PG_lru move with the page; the old pfn is free', () => {
    const k = createKernel('tiny', 'v5.19');
    const m = op(k, { op: 'alloc_pages', id: 'm', order: 0, migratetype: 'movable' });
    const token = k.mm.token[m.pfn as number];
    expect(token).toBeGreaterThan(0);
    // (the first movable page: the lowest pfn of ZONE_MOVABLE, the free lists ascending after boot)
    expect(m.pfn).toBe(128);
    expect(drive(allocContigRange(k, 128, 132, MIGRATE_MOVABLE, { id: 'c' }))).toBe('0');
    const moved = k.lookup('m')!.pfn;
    expect(moved).not.toBe(128);
    expect(k.mm.token[moved]).toBe(token);
    expect(k.mm.flags[moved] & PG_lru).toBeTruthy();
    expect(k.mm.owner[128]).toBe(k.lookup('c')!.handle);
  });

  it('a pinned page is not migrated: -EBUSY, no pageblock left isolated, the page stays', () => {
    for (const profile of PROFILES.concat('pageblock-naive')) {
      const out = example('contig-pinned', profile);
      // The neighbouring pageblock 12..16 is free: pageblock granularity takes it; MAX_ORDER-1
      // granularity isolates 0..16 with the reserved and pinned pages and fails too.
      const maxOrder = out.kernel.sw.contigGranularity === 'max-order';
      expect(results(out), profile).toEqual(['0', '-EBUSY', maxOrder ? '-EBUSY' : '0']);
      expect(out.violations).toEqual([]);
      const k = out.kernel;
      expect(k.lookup('p')!.pfn).toBe(8);
      expect(k.lookup('c')).toBeUndefined();
      sound(k);
    }
  });

  it('unmovable, reserved and (for a MOVABLE isolator) CMA pages make isolation fail', () => {
    for (const profile of PROFILES.concat('pageblock-naive')) {
      const out = example('contig-unmovable', profile);
      expect(results(out), profile).toEqual(['0', '-EBUSY', '-EBUSY', '-EBUSY', '-EBUSY']);
      expect(out.violations).toEqual([]);
      sound(out.kernel);
    }
  });

  it('a compound page straddling the range boundary: migrated (v5.19), refused (v6.10), migrated but still -EBUSY (naive)', () => {
    const expected: Record<string, string> = { 'v5.19': '0', 'v6.10': '-EBUSY', mainline: '-EBUSY', 'pageblock-naive': '-EBUSY' };
    for (const [profile, want] of Object.entries(expected)) {
      const out = example('contig-straddling-thp', profile);
      expect(out.results[2].result.result, profile).toBe(want);
      expect(out.violations).toEqual([]);
      const moved = out.kernel.lookup('thp')!.pfn !== 136;
      expect(moved, profile).toBe(profile === 'v5.19' || profile === 'pageblock-naive');
      sound(out.kernel);
    }
  });
});

describe('undo on failure', () => {
  it('leaves no ISOLATE block; with the isolate bit every original type comes back, with replace the caller\'s', () => {
    const types: Record<string, number> = {};
    for (const profile of ['v5.19', 'v6.10', 'mainline']) {
      const out = example('contig-undo-restores-type', profile);
      expect(out.results.at(-1)!.result.result, profile).toBe('-EBUSY');
      expect(out.violations).toEqual([]);
      sound(out.kernel);
      types[profile] = out.kernel.pb.get(20);
      expect(out.kernel.pb.get(24)).toBe(MIGRATE_UNMOVABLE); // never isolated: the end block failed first
    }
    expect(types).toEqual({ 'v5.19': MIGRATE_MOVABLE, 'v6.10': MIGRATE_MOVABLE, mainline: MIGRATE_UNMOVABLE });
  });

  it('a failed migration (-ENOMEM) undoes too; v5.13 bails out at once, v5.11 retries its 5 tries first', () => {
    const steps: Record<string, number> = {};
    for (const profile of ['v5.11', 'v5.13']) {
      const k = createKernel('tiny', profile);
      const m = op(k, { op: 'alloc_pages', id: 'm', order: 0, migratetype: 'movable' });
      // Use up every other free page so that no migration target exists.
      for (let i = 0; ; i++) if (op(k, { op: 'alloc_pages', id: `f${i}`, order: 0, migratetype: 'movable' }).result !== '0') break;
      const seen: string[] = [];
      const blk = (m.pfn as number) & ~15;
      expect(drive(allocContigRange(k, blk, blk + 16, MIGRATE_MOVABLE, { id: 'c' }), seen), profile).toBe('-ENOMEM');
      steps[profile] = seen.filter((s) => s === 'migrate_pages').length;
      expect(k.lookup('m')!.pfn).toBe(m.pfn);
      expect(k.mm.flags[m.pfn as number] & PG_lru).toBeTruthy(); // put back on the LRU
      expect(checkConservation(k)).toBeNull();
      expect(isolatedBlocks(k)).toEqual([]);
    }
    expect(steps['v5.13']).toBe(1);
    expect(steps['v5.11']).toBeGreaterThan(steps['v5.13']);
  });
});

describe('alloc_contig_pages', () => {
  it('v5.11 skips candidate ranges with referenced pages; v5.13 tries them and migrates', () => {
    const got: Record<string, number> = {};
    for (const profile of ['v5.11', 'v5.13', 'v6.10']) {
      const k = createKernel('tiny', profile);
      op(k, { op: 'alloc_pages', id: 'm', order: 0, migratetype: 'movable' }); // in ZONE_MOVABLE
      got[profile] = drive(allocContigPages(k, 128, 0, { id: 'g' }, true));
      expect(checkConservation(k)).toBeNull();
      expect(isolatedBlocks(k)).toEqual([]);
    }
    expect(got).toEqual({ 'v5.11': -1, 'v5.13': 128, 'v6.10': 128 });
  });

  it('without a movable gfp (gigantic pages: GFP_HIGHUSER) the range comes from ZONE_NORMAL, naturally aligned', () => {
    const k = createKernel('tiny', 'v5.13');
    const pfn = drive(allocContigPages(k, 32, 0, { id: 'g' }));
    expect(k.zones[0].contains(pfn)).toBe(true);
    expect(pfn % 32).toBe(0);
  });

  it('the op reports the pfn or -ENOMEM', () => {
    const k = createKernel('tiny', 'mainline');
    expect(op(k, { op: 'alloc_contig_pages', id: 'a', nr_pages: 16 })).toMatchObject({ result: '0', nrPages: 16 });
    expect(op(k, { op: 'alloc_contig_pages', id: 'b', nr_pages: 256 })).toMatchObject({ result: '-ENOMEM' });
    expect(op(k, { op: 'free_contig_range', id: 'a' })).toMatchObject({ result: '0' });
    expect(op(k, { op: 'free_contig_range', id: 'a' })).toMatchObject({ result: '-EINVAL' });
  });
});

describe('isolation and pcp pages', () => {
  it('free pages sitting on a pcp list inside the range are drained and taken', () => {
    const k = createKernel('tiny', 'mainline');
    const m = op(k, { op: 'alloc_pages', id: 'x', order: 0, migratetype: 'movable' });
    const pfn = m.pfn as number;
    op(k, { op: 'free_pages', id: 'x' });
    expect(k.mm.flags[pfn] & PG_pcp).toBeTruthy();
    const blk = pfn & ~3;
    expect(drive(allocContigRange(k, blk, blk + 4, MIGRATE_MOVABLE, { id: 'c' }))).toBe('0');
    expect(k.mm.owner[pfn]).toBe(k.lookup('c')!.handle);
    expect(checkConservation(k)).toBeNull();
    expect(isolatedBlocks(k)).toEqual([]);
  });
});

describe('historical isolation bugs as profiles', () => {
  it('before v5.16 a failed isolation leaves a block whose first pfn is a hole ISOLATE', () => {
    const buggy = example('contig-undo-hole');
    expect(results(buggy)).toEqual(['-EBUSY']);
    expect(isolatedBlocks(buggy.kernel)).toEqual([100]);
    expect(buggy.violations.map((v) => v.property)).toContain('contig-postcondition');
    const fixed = example('contig-undo-hole', 'v5.16');
    expect(results(fixed)).toEqual(['-EBUSY']);
    expect(isolatedBlocks(fixed.kernel)).toEqual([]);
    expect(fixed.violations).toEqual([]);
  });

  it('v5.19 as released lets a MOVABLE isolator take a CMA edge block and re-types it (80e2b584f3ab)', () => {
    const fixed = example('contig-cma-edge');
    expect(results(fixed)).toEqual(['-EBUSY']);
    expect(fixed.kernel.pb.get(64)).toBe(4);
    expect(fixed.violations).toEqual([]);
    const buggy = example('contig-cma-edge', 'v5.19-cma-retype');
    expect(results(buggy)).toEqual(['0']);
    expect(buggy.kernel.pb.get(64)).toBe(MIGRATE_MOVABLE);
    expect(buggy.violations.map((v) => v.property)).toContain('cma-ownership');
  });
});

describe('the v5.19-v6.9 isolate/split window', () => {
  it('an allocation between set_migratetype_isolate and split_free_page makes NR_FREE_PAGES drift; v6.10 has no window', () => {
    const old = example('contig-isolate-split-window');
    expect(results(old)).toEqual(['0', '0', '0']);
    expect(old.results[2].result.pfn).toBe(16); // half of the straddling buddy, taken inside the window
    const v = old.violations.find((x) => x.property === 'freelist-counters');
    expect(v?.message).toMatch(/NR_FREE_PAGES = 108 but the non-isolated free lists hold 100 pages/);
    const hyg = example('contig-isolate-split-window', 'v6.10');
    expect(results(hyg)).toEqual(['0', '0', '0']);
    expect(hyg.violations).toEqual([]);
  });
});

describe('v5.19+: a failed isolation undoes the whole range, including blocks another isolator holds', () => {
  it('a MOVABLE alloc_contig_range racing a cma_alloc turns a CMA pageblock MOVABLE (replace mode); mainline keeps it CMA', () => {
    const props = (o: RunOutcome) => o.violations.map((v) => v.property);
    const old = example('contig-undo-steals-isolation', 'v5.18'); // no `goto done` before v5.19
    expect(results(old)).toEqual(['0', '-EBUSY']);
    expect(old.violations).toEqual([]);
    for (const profile of ['v5.19', 'v6.10']) {
      const out = example('contig-undo-steals-isolation', profile);
      expect(results(out), profile).toEqual(['0', '-EBUSY']);
      expect(out.results[0].result).toMatchObject({ pfn: 72, tries: 2 }); // 64..72 lost its isolation
      expect(out.kernel.pb.get(64), profile).toBe(MIGRATE_MOVABLE);
      expect(props(out), profile).toContain('cma-ownership');
    }
    const bit = example('contig-undo-steals-isolation', 'mainline');
    expect(bit.results[0].result).toMatchObject({ pfn: 72, tries: 2 }); // still un-isolated under thread 0
    expect(bit.kernel.pb.get(64)).toBe(4);
    expect(bit.violations).toEqual([]);
  });
});

describe('the alloc_contig_range op', () => {
  it('refuses a range holding offline memory, naming its first offline pfn', () => {
    const k = createKernel('tiny', 'mainline');
    expect(drive(offlineBlock(k, 5))).toBe('0'); // pfns 160..192
    expect(op(k, { op: 'alloc_contig_range', id: 'c', start: 140, end: 200, migratetype: 'movable' }))
      .toEqual({ result: '-EINVAL', reason: 'pfn 160 is offline' });
    // Offline pages someone still holds (refcount > 0) are not counted as offline memory here.
    for (let p = 160; p < 170; p++) k.mm.refcount[p] = 1;
    expect(op(k, { op: 'alloc_contig_range', id: 'c', start: 140, end: 200, migratetype: 'movable' }))
      .toEqual({ result: '-EINVAL', reason: 'pfn 170 is offline' });
  });
});
