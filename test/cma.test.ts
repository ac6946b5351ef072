/**
 * CMA (src/kernel/cma.ts): areas and their alignment per profile, the bitmap, cma_alloc retrying
 * on -EBUSY at the next position under cma_mutex, cma_release, cma_pages_valid, and two
 * interleaved cma_allocs in neighbouring pageblocks of one MAX_ORDER-1 block (seed 004) under
 * v5.19 and pageblock-naive.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createKernel } from '../src/kernel/index.js';
import { resolveConfig } from '../src/kernel/config.js';
import type { Kernel } from '../src/kernel/machine.js';
import { cmaAlloc, cmaPagesValid, cmaRelease, cmaState } from '../src/kernel/cma.js';
import { drainPagesZone, prepNewPage, rmqueueBuddy } from '../src/kernel/page_alloc.js';
import { meminfo } from '../src/kernel/meminfo.js';
import { runProgram, type RunOutcome } from '../src/harness/executor.js';
import { parseProgram } from '../src/harness/program.js';
import { PROPERTIES } from '../properties/index.js';
import { checkConservation } from '../properties/page-conservation.js';
import { checkFreelistCounters } from '../properties/freelist-counters.js';
import { checkNoCrossMerge } from '../properties/no-cross-migratetype-merge.js';
import { ConfigError, MIGRATE_CMA, MIGRATE_ISOLATE, PG_lru } from '../src/kernel/types.js';

import { drive, op } from './helpers.js';

function drainAll(k: Kernel): void {
  for (const z of k.zones) for (let c = 0; c < k.cfg.cpus; c++) drainPagesZone(k, z, c);
}

function program(name: string): Record<string, any> {
  return JSON.parse(readFileSync(new URL(`../examples/programs/${name}.json`, import.meta.url), 'utf8'));
}

function bits(k: Kernel, area = 0): string {
  return Array.from(cmaState(k).areas[area].bitmap).join('');
}

const shared = { base: 'tiny', name: 'tiny-cma-shared', cma: [{ name: 'shared', basePfn: 72, count: 8, orderPerBit: 0 }] };

describe('CMA areas', () => {
  it('alignment: MAX_ORDER-1 before v5.19 (an unaligned area is a config error), pageblock after', () => {
    const cfg = resolveConfig(shared);
    for (const p of ['v5.11', 'v5.13', 'v5.18']) {
      expect(() => createKernel(cfg, p)).toThrow(ConfigError);
      expect(() => createKernel(cfg, p)).toThrow(/CMA area shared must be aligned to 16 pages under profile/);
    }
    for (const p of ['v5.19', 'pageblock-naive', 'v6.10', 'mainline']) expect(() => createKernel(cfg, p)).not.toThrow();
  });

  it('CmaTotal/CmaFree in meminfo; unmovable allocations never get CMA pages', () => {
    const k = createKernel('tiny', 'mainline');
    expect(meminfo(k)).toMatchObject({ CmaTotal: 128, CmaFree: 128 });
    for (let i = 0; ; i++) {
      const r = op(k, { op: 'alloc_pages', id: `u${i}`, order: 0, migratetype: 'unmovable' });
      if (r.result !== '0') break;
      expect(k.pb.get(r.pfn as number)).not.toBe(MIGRATE_CMA);
    }
    expect(meminfo(k).CmaFree).toBe(128);
    expect(k.zones[0].freePages).toBe(k.zones[0].freeCma); // ZONE_NORMAL has nothing but CMA left
  });
});

describe('cma_alloc / cma_release', () => {
  for (const profile of ['v5.11', 'v5.19', 'v6.10', 'mainline']) {
    it(`${profile}: takes bitmap bits and the pages, release gives both back`, () => {
      const k = createKernel('tiny', profile);
      const r = drive(cmaAlloc(k, 0, 8, 0, 'c'));
      expect(r).toMatchObject({ pfn: 64, err: '0', tries: 1 });
      expect(bits(k)).toBe('1'.repeat(8) + '0'.repeat(24));
      const al = k.lookup('c')!;
      expect(al).toMatchObject({ kind: 'cma', pfn: 64, nrPages: 8, migratetype: MIGRATE_CMA });
      drainAll(k);
      expect(meminfo(k).CmaFree).toBe(128 - 32);
      for (let p = 64; p < 96; p += 4) expect(k.pb.get(p)).toBe(MIGRATE_CMA);
      // a second allocation with alignment order 4 skips to the next 16-page boundary
      expect(drive(cmaAlloc(k, 0, 4, 4, 'd'))).toMatchObject({ pfn: 80, err: '0' });
      expect(cmaPagesValid(k, 0, 64, 8)).toBe(true);
      expect(cmaPagesValid(k, 0, 60, 8)).toBe(false);
      expect(cmaRelease(k, 0, 16, 4)).toBe(false);
      k.dropAllocation(al.handle);
      expect(cmaRelease(k, 0, 64, 8)).toBe(true);
      expect(bits(k)).toBe('0'.repeat(16) + '1111' + '0'.repeat(12));
      drainAll(k);
      expect(meminfo(k).CmaFree).toBe(128 - 16);
      expect(checkConservation(k)).toBeNull();
      expect(checkFreelistCounters(k)).toBeNull();
      expect(checkNoCrossMerge(k)).toBeNull();
    });
  }

  it('a busy page fails its position after migrate_pages\' 10 passes x 5 tries; cma_alloc moves on (-EBUSY retry)', () => {
    const k = createKernel('tiny', 'mainline');
    const z = k.zones[0];
    const busy = rmqueueBuddy(k, z, 0, MIGRATE_CMA, true); // a movable user page placed in CMA
    expect(k.pb.get(busy)).toBe(MIGRATE_CMA);
    const al = k.newAllocation({ id: 'user', kind: 'pages', pfn: busy, nrPages: 1, order: 0, migratetype: 1, pinned: false });
    prepNewPage(k, busy, 0, al.handle, PG_lru, 42);
    k.mm.refcount[busy] = 2; // someone holds an extra reference: -EAGAIN on every pass
    const firstPos = busy & ~3;
    // Fill the area below the busy page's pageblock so that it is the next bitmap position.
    if (firstPos > 64) expect(drive(cmaAlloc(k, 0, firstPos - 64, 0, 'filler')).err).toBe('0');
    const seen: string[] = [];
    const r = drive(cmaAlloc(k, 0, 4, 2, 'c'), seen);
    expect(r.err).toBe('0');
    expect(r.tries).toBe(2);
    expect(r.pfn).toBe(firstPos + 4);
    expect(seen.filter((s) => s === 'migrate_pages').length).toBe(50);
    expect(k.lookup('user')!.pfn).toBe(busy); // never migrated
    expect(k.mm.flags[busy] & PG_lru).toBeTruthy(); // put back
    for (let p = 64; p < 96; p += 4) expect(k.pb.get(p)).toBe(MIGRATE_CMA);
    expect(bits(k).slice((r.pfn - 64), (r.pfn - 64) + 4)).toBe('1111');
    expect(bits(k).slice(firstPos - 64, firstPos - 60)).toBe('0000');
    expect(checkConservation(k)).toBeNull();
    expect(checkFreelistCounters(k)).toBeNull();
  });

  it('ops: cma_alloc by name or index, -ENOMEM when no position is left, cma_release', () => {
    const k = createKernel('tiny', 'v5.19');
    expect(op(k, { op: 'cma_alloc', id: 'a', area: 'reserved', count: 32 })).toMatchObject({ result: '0', pfn: 64 });
    expect(op(k, { op: 'cma_alloc', id: 'b', area: 0, count: 1 })).toMatchObject({ result: '-ENOMEM' });
    expect(op(k, { op: 'cma_alloc', id: 'b', area: 'nope', count: 1 })).toMatchObject({ result: '-EINVAL' });
    expect(op(k, { op: 'cma_release', id: 'a' })).toMatchObject({ result: '0', pfn: 64, nrPages: 32 });
    expect(op(k, { op: 'cma_release', id: 'a' })).toMatchObject({ result: '-EINVAL' });
    expect(bits(k)).toBe('0'.repeat(32));
  });

  it('cma_mutex serialises alloc_contig_range: the second thread waits for the lock', () => {
    const out = runProgram(parseProgram(program('cma-neighbours-v5.19')), { properties: PROPERTIES });
    const waits = out.trace.filter((s) => s.at === 'wait:cma_mutex');
    expect(waits.length).toBeGreaterThan(0);
    expect(waits.every((s) => s.thread === 1)).toBe(true);
  });
});

describe('two interleaved cma_allocs in neighbouring pageblocks of one MAX_ORDER-1 block (seed 004)', () => {
  function run(profile: string): RunOutcome {
    const raw = program('cma-neighbours-v5.19');
    raw.profile = profile;
    return runProgram(parseProgram(raw), { properties: PROPERTIES });
  }

  for (const profile of ['v5.19', 'v6.10', 'mainline']) {
    it(`${profile}: both succeed, no free block spans CMA and MOVABLE`, () => {
      const out = run(profile);
      expect(out.results.map((r) => [r.result.result, r.result.pfn])).toEqual([['0', 72], ['0', 76]]);
      expect(out.violations).toEqual([]);
      const k = out.kernel;
      expect(checkNoCrossMerge(k)).toBeNull();
      expect(checkFreelistCounters(k)).toBeNull();
      expect([k.pb.get(64), k.pb.get(68), k.pb.get(72), k.pb.get(76)]).toEqual([1, 1, MIGRATE_CMA, MIGRATE_CMA]);
      expect(bits(k)).toBe('11111111');
      // the thread-1 bitmap step ran while thread 0 was between its bitmap step and cma_mutex
      const order = out.trace.slice(0, 4).map((s) => s.thread);
      expect(order).toEqual([0, 0, 1, 1]);
    });
  }

  it('pageblock-naive: the same program and schedule end with a free block merged across CMA and MOVABLE', () => {
    const out = run('pageblock-naive');
    expect(out.results.map((r) => r.result.result)).toEqual(['-ENOMEM', '-ENOMEM']);
    expect(out.results.map((r) => r.result.lastError)).toEqual(['-EBUSY', '-EBUSY']);
    const names = out.violations.map((v) => v.property);
    expect(names).toContain('no-cross-migratetype-merge');
    const k = out.kernel;
    expect(checkNoCrossMerge(k)).toMatch(/order-4 block at pfn 64 spans a Movable pageblock and a CMA pageblock \(pfn 72\)/);
    // the merged block sits on the CMA list: MOVABLE pages counted nowhere, handed to CMA users
    expect(checkFreelistCounters(k)).toMatch(/NR_FREE_CMA_PAGES = 8 but the CMA free lists hold 16/);
    expect(isolated(k)).toBe(0);
  });

  it('the naive merge comes from the missing v5.18 merge rule: with it, the same layout boots clean', () => {
    const cfg = resolveConfig(shared);
    const naive = createKernel(cfg, 'pageblock-naive');
    expect(checkNoCrossMerge(naive)).not.toBeNull();
    expect(checkNoCrossMerge(createKernel(cfg, 'v5.19'))).toBeNull();
  });
});

function isolated(k: Kernel): number {
  let n = 0;
  for (let p = 0; p < k.nrPfns; p += 4) if (k.pb.get(p) === MIGRATE_ISOLATE) n++;
  return n;
}
