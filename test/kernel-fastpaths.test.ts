/**
 * The simulator's fast paths against the straightforward code they replace: same answers on
 * machines with holes, offline memory blocks and busy memory. Each reference below is the plain
 * per-pfn version of the kernel loop.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createKernel } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/machine.js';
import { MEMORY_OFFLINE, ValidPageScanner, findLargeBuddy, firstValidPage, hasUnmovablePages, pfnOnline, testPagesIsolated } from '../src/kernel/page_isolation.js';
import { pfnRangeValidContig, pfnValidContig } from '../src/kernel/contig.js';
import type { Zone } from '../src/kernel/mmzone.js';
import { offlineBlock } from '../src/kernel/memory_hotplug.js';
import { findNextZeroArea } from '../src/kernel/cma.js';
import { Memmap, NIL } from '../src/kernel/memmap.js';
import { clearPage } from '../src/kernel/page_alloc.js';
import { MIGRATE_CMA, MIGRATE_ISOLATE, MIGRATE_MOVABLE, PG_buddy, PG_offline, PG_pcp, PG_reserved, PG_valid } from '../src/kernel/types.js';
import { drive, op, rng } from './helpers.js';
import { resolveConfig } from '../src/kernel/config.js';
import { caseArb } from '../src/harness/arbitraries.js';
import { caseRunner } from '../src/harness/fuzz.js';
import { OPS } from '../src/harness/ops/index.js';
import type { Property } from '../properties/index.js';

/** __first_valid_page() pfn by pfn. */
function naiveFirstValid(k: Kernel, pfn: number, nr: number): number {
  for (let p = pfn; p < pfn + nr; p++) if (k.mm.flags[p] & PG_valid && pfnOnline(k, p)) return p;
  return -1;
}

/** tiny-holes (a hole at 100..102) with memory blocks 1 and 7 offline and some pages taken. */
function machine(): Kernel {
  const k = createKernel('tiny-holes', 'mainline');
  op(k, { op: 'alloc_pages', id: 'x', order: 2, migratetype: 'unmovable' });
  expect(drive(offlineBlock(k, 1))).toBe('0');
  expect(drive(offlineBlock(k, 7))).toBe('0');
  return k;
}

describe('first valid page (pfn_to_online_page) fast paths', () => {
  it('firstValidPage and ValidPageScanner.first agree with the per-pfn loop on every window', () => {
    const k = machine();
    const next = rng(7);
    const sc = new ValidPageScanner(k);
    let offlineSkips = 0;
    for (let i = 0; i < 4000; i++) {
      const pfn = next(k.nrPfns);
      const nr = next(Math.min(96, k.nrPfns - pfn) + 1);
      const want = naiveFirstValid(k, pfn, nr);
      expect(firstValidPage(k, pfn, nr)).toBe(want);
      expect(sc.first(pfn, pfn + nr)).toBe(want);
      if (want !== pfn && nr > 0 && k.mm.flags[pfn] & PG_valid) offlineSkips++;
    }
    expect(offlineSkips).toBeGreaterThan(100); // the windows do start inside offline blocks
  });

  it('the shared scanner (scanFor) answers as a new one, whichever kernel and block state it saw last', () => {
    const ks = [machine(), createKernel('tiny-holes', 'mainline'), machine()];
    const next = rng(17);
    for (let i = 0; i < 3000; i++) {
      const k = ks[next(ks.length)];
      const pfn = next(k.nrPfns);
      const nr = next(Math.min(96, k.nrPfns - pfn) + 1);
      const sc = ValidPageScanner.scanFor(k);
      expect(sc.first(pfn, pfn + nr)).toBe(naiveFirstValid(k, pfn, nr));
      const fresh = new ValidPageScanner(k);
      expect([sc.lo, sc.hi, sc.online]).toEqual((fresh.first(pfn, pfn + nr), [fresh.lo, fresh.hi, fresh.online]));
    }
  });

  it("the scanner's inline test (valid, inside [lo, hi), online) only passes pfns the loop accepts", () => {
    const k = machine();
    const sc = new ValidPageScanner(k);
    const next = rng(11);
    let inline = 0;
    for (let i = 0; i < 4000; i++) {
      const pfn = next(k.nrPfns);
      if (k.mm.flags[pfn] & PG_valid && pfn >= sc.lo && pfn < sc.hi && sc.online) {
        inline++;
        expect(naiveFirstValid(k, pfn, 1)).toBe(pfn);
      } else sc.first(pfn, Math.min(k.nrPfns, pfn + 8));
    }
    expect(inline).toBeGreaterThan(100);
  });

  it('without hotplug state every valid pfn is online', () => {
    const k = createKernel('tiny-holes', 'mainline');
    delete k.ext.hotplug;
    const sc = new ValidPageScanner(k);
    for (let p = 90; p < 110; p++) expect(sc.first(p, p + 4)).toBe(naiveFirstValid(k, p, 4));
    expect(sc.first(100, 102)).toBe(-1);
  });
});

/** bitmap_find_next_zero_area_off() bit by bit, as cma.ts had it. */
function naiveZeroArea(map: Uint8Array, start: number, nr: number, mask: number, offset: number): number {
  const size = map.length;
  for (;;) {
    let index = start;
    while (index < size && map[index]) index++;
    index = ((index + offset + mask) & ~mask) - offset;
    const end = index + nr;
    if (end > size) return end;
    let i = index;
    while (i < end && !map[i]) i++;
    if (i >= end) return index;
    start = i + 1;
  }
}

/** A CMA bitmap (a byte a bit) of `size` bits: none, a quarter, half or three quarters of them set, at random. */
function randomBitmap(next: (n: number) => number, size: number): Uint8Array {
  const map = new Uint8Array(size);
  const density = next(4);
  for (let b = 0; b < size; b++) map[b] = next(4) < density ? 1 : 0;
  return map;
}

describe('CMA bitmap search (findNextZeroArea)', () => {
  it('agrees with the bit-by-bit search on random bitmaps, alignments and starts', () => {
    const next = rng(3);
    let found = 0;
    for (let i = 0; i < 3000; i++) {
      const size = 1 + next(80);
      const map = randomBitmap(next, size);
      const mask = (1 << next(4)) - 1;
      const offset = next(mask + 1);
      const start = next(size + 4);
      const nr = 1 + next(12);
      const want = naiveZeroArea(map, start, nr, mask, offset);
      expect(findNextZeroArea(map, start, nr, mask, offset)).toBe(want);
      if (want < size) found++;
    }
    expect(found).toBeGreaterThan(500);
  });

  it('agrees when told of bits known to be 0 (cma_alloc: the position it just cleared)', () => {
    const next = rng(13);
    let found = 0;
    for (let i = 0; i < 3000; i++) {
      const size = 1 + next(200);
      const map = randomBitmap(next, size);
      const lo = next(size);
      const hi = Math.min(size, lo + 1 + next(40));
      map.fill(0, lo, hi);
      const mask = (1 << next(3)) - 1;
      const offset = next(mask + 1);
      const nr = 1 + next(40);
      // (cma_alloc's next search starts one aligned position after the cleared one)
      const start = next(2) ? lo + mask + 1 : next(size + 4);
      const want = naiveZeroArea(map, start, nr, mask, offset);
      expect(findNextZeroArea(map, start, nr, mask, offset, undefined, lo, hi)).toBe(want);
      if (want < size) found++;
    }
    expect(found).toBeGreaterThan(500);
  });

  it('agrees on long bitmaps made of runs (the word-at-a-time steps), from every alignment', () => {
    const next = rng(29);
    let found = 0;
    for (let i = 0; i < 400; i++) {
      const size = 64 + next(600);
      const map = new Uint8Array(size);
      for (let b = 0; b < size;) {
        const run = 1 + next(120);
        map.fill(next(2), b, Math.min(size, b + run));
        b += run;
      }
      const mask = (1 << next(6)) - 1;
      const offset = next(mask + 1);
      const start = next(size + 4);
      const nr = 1 + next(200);
      const want = naiveZeroArea(map, start, nr, mask, offset);
      expect(findNextZeroArea(map, start, nr, mask, offset)).toBe(want);
      if (want < size) found++;
    }
    expect(found).toBeGreaterThan(100);
  });
});

describe('scanFlags (two pfns a read, eight a test)', () => {
  it('agrees with the per-pfn loop for every range of odd and even arrays', () => {
    const next = rng(5);
    for (const n of [1, 2, 7, 8, 33, 67]) {
      for (let t = 0; t < 6; t++) {
        const mm = new Memmap(n, 1);
        const flags = mm.flags;
        for (let p = 0; p < n; p++) flags[p] = next(3) === 0 ? 1 << next(16) : 0;
        for (let s = 0; s <= n; s++) {
          for (let e = s; e <= n + 2; e++) {
            for (const mask of [1, 2, 1 << 15, 0x8001]) {
              for (const value of [0, mask, mask & 1]) {
                let first = Math.min(e, n);
                for (let p = s; p < Math.min(e, n); p++) {
                  if ((flags[p] & mask) !== value) {
                    first = p;
                    break;
                  }
                }
                expect(mm.scanFlags(mask, value, s, e)).toBe(first);
              }
            }
          }
        }
      }
    }
  });
});

describe('findLargeBuddy (orders that align the pfn to itself skipped)', () => {
  it('finds what the one-order-a-time loop finds, from every start, any PageBuddy pattern', () => {
    const next = rng(11);
    for (const maxOrder of [2, 4, 10]) {
      for (let t = 0; t < 20; t++) {
        const n = 1 << (maxOrder + 2);
        const mm = new Memmap(n, 1);
        for (let p = 0; p < n; p++) {
          if (next(t < 10 ? 4 : 60) === 0) {
            mm.flags[p] = PG_valid | PG_buddy;
            mm.order[p] = next(maxOrder + 1);
          } else mm.flags[p] = PG_valid;
        }
        const k = { mm, maxOrder } as unknown as Kernel;
        for (let start = 0; start < n; start++) {
          let pfn = start;
          let want = -1;
          for (let order = 0; !(mm.flags[pfn] & PG_buddy);) {
            if (++order > maxOrder) {
              want = start;
              break;
            }
            pfn &= ~((1 << order) - 1);
          }
          if (want < 0) want = pfn + (1 << mm.order[pfn]) > start ? pfn : start;
          expect(findLargeBuddy(k, start)).toBe(want);
        }
      }
    }
  });
});

describe('firstReferenced (two refcounts a read)', () => {
  it('agrees with the per-pfn loop for every range of odd and even arrays', () => {
    const next = rng(7);
    for (const n of [1, 2, 7, 8, 33, 67]) {
      for (let t = 0; t < 6; t++) {
        const mm = new Memmap(n, 1);
        for (let p = 0; p < n; p++) mm.refcount[p] = next(4) === 0 ? [1, -1, 256, -32768][next(4)] : 0;
        for (let s = 0; s <= n; s++) {
          for (let e = s; e <= n + 2; e++) {
            let first = Math.min(e, n);
            for (let p = s; p < Math.min(e, n); p++) {
              if (mm.refcount[p] !== 0) {
                first = p;
                break;
              }
            }
            expect(mm.firstReferenced(s, e)).toBe(first);
          }
        }
      }
    }
  });
});

describe('setFlagsRange (two pfns a write)', () => {
  it('agrees with the per-pfn loop for every range of odd and even arrays', () => {
    const next = rng(31);
    for (const n of [1, 2, 7, 8, 33]) {
      for (let s = 0; s <= n; s++) {
        for (let e = s; e <= n + 2; e++) {
          const mm = new Memmap(n, 1);
          for (let p = 0; p < n; p++) mm.flags[p] = next(1 << 16);
          const want = mm.flags.slice();
          const keep = next(1 << 16);
          const set = next(1 << 16);
          for (let p = s; p < Math.min(e, n); p++) want[p] = (want[p] & keep) | set;
          mm.setFlagsRange(s, e, keep, set);
          expect(mm.flags).toEqual(want);
        }
      }
    }
  });
});

/** clearPage() page by page. */
function naiveClearPage(mm: Memmap, pfn: number, order: number): void {
  for (let p = pfn; p < pfn + (1 << order); p++) {
    if (mm.flags[p] & (PG_buddy | PG_pcp)) throw new Error(`freeing pfn ${p} which is already free`);
    mm.flags[p] &= PG_valid;
    mm.refcount[p] = 0;
    mm.owner[p] = 0;
    mm.token[p] = 0;
    mm.order[p] = 0;
    mm.next[p] = NIL;
  }
}

describe('clearPage (fills up to the first free page)', () => {
  it('leaves the memmap and throws as the page-by-page loop, past the memmap end too', () => {
    const next = rng(37);
    const k = createKernel('tiny', 'mainline');
    const n = k.nrPfns;
    let threw = 0;
    for (let t = 0; t < 300; t++) {
      const ref = new Memmap(n, 1);
      const mm = k.mm;
      for (let p = 0; p < n; p++) {
        const f = next(40) === 0 ? PG_valid | [PG_buddy, PG_pcp][next(2)] : next(1 << 16) & ~(PG_buddy | PG_pcp);
        mm.flags[p] = ref.flags[p] = f;
        mm.refcount[p] = ref.refcount[p] = next(3);
        mm.owner[p] = ref.owner[p] = next(5);
        mm.token[p] = ref.token[p] = next(5);
        mm.order[p] = ref.order[p] = next(4);
        mm.next[p] = ref.next[p] = next(n);
      }
      const order = next(6);
      const pfn = next(n + 8) & ~((1 << order) - 1);
      let want = '';
      try {
        naiveClearPage(ref, pfn, order);
      } catch (e) {
        want = (e as Error).message;
      }
      let got = '';
      try {
        clearPage(k, pfn, order);
      } catch (e) {
        got = (e as Error).message;
      }
      expect(got).toBe(want);
      if (got) threw++;
      for (const a of ['flags', 'refcount', 'owner', 'token', 'order', 'next'] as const) expect(mm[a]).toEqual(ref[a]);
    }
    expect(threw).toBeGreaterThan(30);
  });
});

/** test_pages_isolated() with its pfn-by-pfn walk. */
function naiveTestPagesIsolated(k: Kernel, start: number, end: number, flags: number): string {
  const pbPages = 1 << k.pageblockOrder;
  for (let pfn = start; pfn < end; pfn += pbPages) {
    const page = firstValidPage(k, pfn, pbPages);
    if (page >= 0 && !k.pb.isIsolated(page)) return '-EBUSY';
  }
  let pfn = firstValidPage(k, start, end - start);
  if (pfn < 0) return '-EBUSY';
  while (pfn < end) {
    const f = k.mm.flags[pfn];
    if (f & PG_buddy) pfn += 1 << k.mm.order[pfn];
    else if (flags & MEMORY_OFFLINE && f & PG_offline && k.mm.refcount[pfn] === 0) pfn++;
    else if (!(f & PG_valid)) pfn++;
    else break;
  }
  return pfn < end ? '-EBUSY' : '0';
}

describe('test_pages_isolated over offline pages (a word at a time)', () => {
  it('agrees with the pfn-by-pfn walk on random memmaps of offline, free, busy pages and holes', () => {
    const k = createKernel('tiny', 'mainline');
    for (let p = 0; p < k.nrPfns; p += 1 << k.pageblockOrder) k.pb.set(p, MIGRATE_ISOLATE);
    const next = rng(23);
    let passed = 0;
    for (let t = 0; t < 200; t++) {
      const mm = k.mm;
      for (let p = 0; p < k.nrPfns; p++) {
        const r = next(16);
        // mostly offline pages with refcount 0, in runs, with the odd busy, free or missing page
        mm.flags[p] = r < 12 ? PG_valid | PG_offline : r === 12 ? PG_valid : r === 13 ? PG_offline : r === 14 ? 0 : PG_valid | PG_buddy;
        mm.order[p] = 0;
        mm.refcount[p] = next(24) === 0 ? 1 : 0;
      }
      for (let i = 0; i < 40; i++) {
        const start = next(k.nrPfns);
        const end = start + 1 + next(k.nrPfns + 4 - start);
        for (const flags of [0, MEMORY_OFFLINE]) {
          const want = naiveTestPagesIsolated(k, start, end, flags);
          expect(testPagesIsolated(k, start, end, flags)).toBe(want);
          if (want === '0') passed++;
        }
      }
    }
    expect(passed).toBeGreaterThan(100);
  });
});

/** pfn_range_valid_contig() pfn by pfn. */
function naiveRangeValid(k: Kernel, z: Zone, start: number, nr: number): boolean {
  for (let p = start; p < start + nr; p++) if (!pfnValidContig(k, z, p)) return false;
  return true;
}

/** has_unmovable_pages() in ZONE_MOVABLE pfn by pfn: the first valid PageReserved pfn. */
function naiveMovableZoneUnmovable(k: Kernel, start: number, end: number): number {
  for (let pfn = start; pfn < end; pfn++) {
    const f = k.mm.flags[pfn];
    if (!(f & PG_valid)) continue;
    if (f & PG_reserved) return pfn;
  }
  return -1;
}

/** tiny with huge pages, user pages, an offline block and reserved pfns and holes sprinkled in. */
function busyMachine(profile: string): Kernel {
  const k = createKernel('tiny', profile);
  op(k, { op: 'set_nr_hugepages', hstate: '2M', count: 6 });
  for (let i = 0; i < 6; i++) op(k, { op: 'alloc_pages', id: `u${i}`, order: i % 3, migratetype: i % 2 ? 'movable' : 'unmovable' });
  expect(drive(offlineBlock(k, 6))).toBe('0');
  const next = rng(13);
  for (let i = 0; i < 40; i++) {
    const p = 128 + next(128);
    if (next(2)) k.mm.flags[p] |= PG_reserved;
    else k.mm.flags[p] &= ~PG_valid;
  }
  return k;
}

describe('pfn_range_valid_contig and has_unmovable_pages fast paths', () => {
  for (const profile of ['v5.11', 'v5.13', 'mainline']) {
    it(`${profile}: pfnRangeValidContig agrees with the per-pfn loop`, () => {
      const k = busyMachine(profile);
      const next = rng(17);
      let valid = 0;
      for (let i = 0; i < 3000; i++) {
        const z = k.zones[next(k.zones.length)];
        const nr = 1 << next(7);
        const start = next(k.nrPfns - nr + 1);
        const want = naiveRangeValid(k, z, start, nr);
        expect(pfnRangeValidContig(k, z, start, nr)).toBe(want);
        if (want) valid++;
      }
      expect(valid).toBeGreaterThan(50);
    });
  }

  it('has_unmovable_pages in ZONE_MOVABLE stops at the first valid PageReserved pfn', () => {
    const k = busyMachine('mainline');
    const z = k.zones[1];
    expect(z.isMovable()).toBe(true);
    const next = rng(19);
    let found = 0;
    for (let i = 0; i < 2000; i++) {
      const start = z.start + next(z.end - z.start);
      const end = start + next(z.end - start + 1);
      if (k.pb.get(start) === MIGRATE_CMA) continue;
      const want = naiveMovableZoneUnmovable(k, start, end);
      expect(hasUnmovablePages(k, z, start, end, MIGRATE_MOVABLE, 0)).toBe(want);
      if (want >= 0) found++;
    }
    expect(found).toBeGreaterThan(100);
  });
});

describe("the memmap's per-pageblock PageBuddy count (move_freepages_block skips blocks counted 0)", () => {
  it('counts exactly the PageBuddy pfns of every block after every step of random campaigns', () => {
    // The skip needs count >= the PageBuddy pfns of the block; equality shows that no path sets
    // or clears the flag without the list helpers' counting (and that a restore brings it back).
    const bad: string[] = [];
    const exact: Property = {
      name: 'buddies-exact', statement: '', kernelRef: '', guards: '', when: 'step',
      create(k) {
        return {
          check(ctx) {
            const mm = k.mm;
            const want = new Int32Array(mm.buddies.length);
            for (let p = 0; p < k.nrPfns; p++) if (mm.flags[p] & PG_buddy) want[p >>> k.pageblockOrder]++;
            const b = want.findIndex((n, i) => n !== mm.buddies[i]);
            if (b >= 0 && bad.length < 5) bad.push(`${k.cfg.name} ${k.profile.name} step ${ctx.step} block ${b}: ${mm.buddies[b]} counted, ${want[b]} PageBuddy`);
            return null;
          },
        };
      },
    };
    const opNames = Object.keys(OPS).filter((n) => !n.startsWith('test_'));
    for (const [config, profile] of [['tiny', 'mainline'], ['tiny', 'v5.11'], ['tiny', 'v5.19'], ['tiny', 'pageblock-naive'], ['tiny-hugetlb-cma', 'demote-cma-lost'], ['small', 'mainline']] as const) {
      const runner = caseRunner(config, profile);
      for (const c of fc.sample(caseArb(resolveConfig(config), { threads: 3, ops: 8, opNames }), { seed: 31, numRuns: 30 })) runner.run(c, [exact]);
    }
    expect(bad).toEqual([]);
  });
});
