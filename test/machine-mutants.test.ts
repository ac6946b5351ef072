/**
 * The simulated machine (src/kernel/machine.ts), written against the survivors of a mutation run:
 * zone order and page_zone() at zone ends, the pageblock flags array (one entry per pageblock, as
 * the kernel's pageblock_flags bitmap per section), the free-list id space, allocation handles and
 * ids, and the alloc_contig_range nesting depth the no-gigantic-recursion property reads.
 */
import { describe, expect, it } from 'vitest';
import { Kernel } from '../src/kernel/machine.js';
import { createKernel } from '../src/kernel/index.js';
import { resolveConfig, type MachineConfig } from '../src/kernel/config.js';
import { getProfile } from '../src/kernel/profiles.js';
import { ConfigError, MIGRATE_MOVABLE } from '../src/kernel/types.js';

const tiny = resolveConfig('tiny');

function pages(id: string) {
  return { id, kind: 'pages' as const, pfn: 40, nrPages: 1, order: 0, migratetype: MIGRATE_MOVABLE, pinned: false };
}

describe('zones and page_zone()', () => {
  it('zones are ordered by start pfn whatever order the config lists them in', () => {
    const cfg: MachineConfig = {
      ...tiny,
      name: 'tiny-reversed',
      nodes: [{ id: 0, zones: [{ name: 'Movable', startPfn: 128, endPfn: 256 }, { name: 'Normal', startPfn: 0, endPfn: 128 }] }],
    };
    const k = new Kernel(cfg, getProfile('mainline'));
    expect(k.zones.map((z) => [z.name, z.start, z.end])).toEqual([['Normal', 0, 128], ['Movable', 128, 256]]);
    expect(k.nrPfns).toBe(256);
  });

  it('page_zone() of the first pfn past the last zone is no zone; the last pfn of a zone is in it', () => {
    const k = createKernel('tiny', 'mainline');
    expect(k.zoneOf(255)?.name).toBe('Movable');
    expect(k.zoneOf(256)).toBeUndefined();
    expect(k.zoneOf(127)?.name).toBe('Normal');
    expect(k.zoneOf(128)?.name).toBe('Movable');
  });

  it('a pfn in a gap between two zones belongs to neither', () => {
    const cfg = resolveConfig({
      base: 'tiny', name: 'tiny-gap', cma: [], virtioMem: undefined,
      nodes: [{ id: 0, zones: [{ name: 'Normal', startPfn: 0, endPfn: 64 }, { name: 'Movable', startPfn: 128, endPfn: 256 }] }],
    });
    const k = new Kernel(cfg, getProfile('mainline'));
    expect(k.zoneOf(63)?.name).toBe('Normal');
    expect(k.zoneOf(64)).toBeUndefined();
    expect(k.zoneOf(100)).toBeUndefined();
  });

  it('one pageblock flags entry per pageblock', () => {
    const k = createKernel('tiny', 'mainline');
    expect(k.pb.nr).toBe(k.nrPfns >> k.pageblockOrder);
  });

  it('more free lists than a memmap list id (16 bits) can name is a ConfigError, not a corrupt memmap', () => {
    // (maxOrder + 1) * MIGRATE_TYPES + cpus * MIGRATE_PCPTYPES lists per zone: 21 * 6 + 64 * 3 = 318;
    // 300 one-pageblock zones need 95400 list ids.
    const zones = [...Array(300)].map((_, i) => ({ name: 'Normal' as const, startPfn: 2 * i, endPfn: 2 * i + 2 }));
    const cfg = resolveConfig({
      name: 'many-zones', maxOrder: 20, pageblockOrder: 1, memoryBlockPages: 2, cpus: 64,
      nodes: [{ id: 0, zones }],
    });
    expect(() => new Kernel(cfg, getProfile('mainline'))).toThrow(ConfigError);
    expect(() => new Kernel(cfg, getProfile('mainline'))).toThrow("config 'many-zones': too many zones x cpus");
  });

  it('a machine without hugetlb installed reports no hstates', () => {
    const k = new Kernel(tiny, getProfile('mainline'));
    expect(k.hstateCounters()).toEqual([]);
  });
});

describe('allocations: handles and ids', () => {
  it('handles are handed out in increasing order from 1 (0 is "no owner" in the memmap)', () => {
    const k = new Kernel(tiny, getProfile('mainline'));
    const a = k.newAllocation(pages('a'));
    const b = k.newAllocation(pages('b'));
    expect([a.handle, b.handle]).toEqual([1, 2]);
    expect(k.lookup('b')).toBe(b);
  });

  it('an id already held is refused; once dropped it can be used again', () => {
    const k = new Kernel(tiny, getProfile('mainline'));
    const a = k.newAllocation(pages('a'));
    expect(() => k.newAllocation(pages('a'))).toThrow(ConfigError);
    expect(() => k.newAllocation(pages('a'))).toThrow("id 'a' is already held");
    k.dropAllocation(a.handle);
    expect(k.lookup('a')).toBeUndefined();
    expect(k.allocs.has(a.handle)).toBe(false);
    const again = k.newAllocation(pages('a'));
    expect(k.lookup('a')).toBe(again);
  });

  it('the registry answers as the Map it replaces: allocations made and dropped in any order', () => {
    const k = new Kernel(tiny, getProfile('mainline'));
    const ref = new Map<number, ReturnType<Kernel['newAllocation']>>();
    let x = 7;
    const next = (n: number) => (x = (x * 1103515245 + 12345) % 2147483648) % n;
    for (let i = 0; i < 400; i++) {
      const live = [...ref.keys()];
      if (live.length && next(3) === 0) {
        const h = live[next(live.length)];
        k.dropAllocation(h);
        ref.delete(h);
      } else {
        const a = k.newAllocation(pages(`id${next(40)}-${i}`));
        ref.set(a.handle, a);
      }
      expect(k.allocs.size).toBe(ref.size);
      expect([...k.allocs.values()]).toEqual([...ref.values()]);
      for (let h = 0; h <= i + 2; h++) expect([k.allocs.get(h), k.allocs.has(h)]).toEqual([ref.get(h), ref.has(h)]);
      for (const a of ref.values()) expect(k.lookup(a.id)).toBe(a);
    }
  });

  it('dropping an unknown or already dropped handle changes nothing', () => {
    const k = new Kernel(tiny, getProfile('mainline'));
    const a = k.newAllocation(pages('a'));
    k.dropAllocation(a.handle + 1);
    expect(k.lookup('a')).toBe(a);
  });
});

describe('alloc_contig_range nesting depth', () => {
  it('maxContigDepth is the deepest nesting ever reached, per thread, and never goes down', () => {
    const k = new Kernel(tiny, getProfile('mainline'));
    expect([k.enterContig(), k.enterContig()]).toEqual([1, 2]);
    k.leaveContig();
    k.leaveContig();
    expect(k.enterContig()).toBe(1);
    k.leaveContig();
    expect(k.maxContigDepth).toBe(2);
    k.current = 1; // another thread starts from depth 0
    expect(k.enterContig()).toBe(1);
    expect(k.maxContigDepth).toBe(2);
  });
});
