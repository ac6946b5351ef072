/**
 * CMA edge cases (src/kernel/cma.ts), written against the survivors of a mutation run: the
 * argument checks of cma_alloc, bitmap_find_next_zero_area_off with an alignment offset (an area
 * whose base is not aligned to the requested order), cma_bitmap_aligned_mask with order_per_bit,
 * the retry policy (only -EBUSY moves on), cma_pages_valid / the area of a pfn at the area's
 * edges, cma_activate_area's alignment check, the area lookup of the ops, and the bitmap in the
 * model checker's fingerprint. Checked against 6.1 mm/cma.c and lib/bitmap.c.
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import { resolveConfig } from '../src/kernel/config.js';
import type { Kernel } from '../src/kernel/machine.js';
import { cmaAlloc, cmaAreaOf, cmaPagesValid, cmaRelease, cmaState, findCmaArea } from '../src/kernel/cma.js';
import { ConfigError } from '../src/kernel/types.js';
import { checkConservation } from '../properties/page-conservation.js';
import { drive } from './helpers.js';

function bits(k: Kernel, area = 0): string {
  return Array.from(cmaState(k).areas[area].bitmap).join('');
}

/** cma_alloc driven to its end, with the yield labels it passed. */
function alloc(k: Kernel, area: number, count: number, align: number, id: string, seen: string[] = []) {
  return drive(cmaAlloc(k, area, count, align, id), seen);
}

/** cma_release of a cma_alloc'ed allocation `id` (as the cma_release op does). */
function release(k: Kernel, area: number, id: string): boolean {
  const al = k.lookup(id)!;
  k.dropAllocation(al.handle);
  return cmaRelease(k, area, al.pfn, al.nrPages);
}

describe('cma_alloc arguments (6.1: !count, bitmap_count > bitmap_maxno)', () => {
  it('count 0, a count larger than the area, an unknown area: -EINVAL, no position tried, bitmap untouched', () => {
    const k = createKernel('tiny', 'mainline');
    const einval = { pfn: -1, err: '-EINVAL', tries: 0 };
    expect(alloc(k, 0, 0, 0, 'zero')).toEqual(einval);
    expect(alloc(k, 0, 33, 0, 'big')).toEqual(einval);
    expect(alloc(k, 0, -1, 0, 'neg')).toEqual(einval);
    expect(alloc(k, 7, 1, 0, 'nowhere')).toEqual(einval);
    expect(bits(k)).toBe('0'.repeat(32));
    expect(k.lookup('zero')).toBeUndefined();
    // the whole area is a valid request
    expect(alloc(k, 0, 32, 0, 'all')).toEqual({ pfn: 64, err: '0', tries: 1 });
  });

  it('a full area: -ENOMEM without a try (ret stays -ENOMEM when no zero area is found)', () => {
    const k = createKernel('tiny', 'mainline');
    expect(alloc(k, 0, 32, 0, 'all').err).toBe('0');
    expect(alloc(k, 0, 1, 0, 'more')).toEqual({ pfn: -1, err: '-ENOMEM', tries: 0 });
  });

  it('yields once at the bitmap step, then once per failed position (cma_alloc:bitmap, cma_alloc:retry)', () => {
    const k = createKernel('tiny', 'mainline');
    const seen: string[] = [];
    expect(alloc(k, 0, 4, 0, 'a', seen).err).toBe('0');
    expect(seen.filter((s) => s.startsWith('cma_alloc'))).toEqual(['cma_alloc:bitmap']);
    const again: string[] = [];
    // the allocation id is taken: alloc_contig_range refuses the range (-EINVAL)
    expect(alloc(k, 0, 4, 0, 'a', again).err).toBe('-EINVAL');
    expect(again.filter((s) => s.startsWith('cma_alloc'))).toEqual(['cma_alloc:bitmap', 'cma_alloc:retry']);
  });

  it('an error other than -EBUSY stops at the first position and clears its bits (6.1: if (ret != -EBUSY) break)', () => {
    const k = createKernel('tiny', 'mainline');
    expect(alloc(k, 0, 4, 0, 'a')).toMatchObject({ pfn: 64, err: '0' });
    // same id again: alloc_contig_range -EINVAL at pfn 68; not retried at 69, 70, ...
    expect(alloc(k, 0, 4, 0, 'a')).toEqual({ pfn: -1, err: '-EINVAL', tries: 1 });
    expect(bits(k)).toBe('1111' + '0'.repeat(28));
    expect(checkConservation(k)).toBeNull();
  });
});

describe('bitmap_find_next_zero_area_off', () => {
  it('a zero run interrupted by a set bit is skipped: the search restarts after it', () => {
    const k = createKernel('tiny', 'mainline');
    expect(alloc(k, 0, 4, 0, 'a').pfn).toBe(64);
    expect(alloc(k, 0, 4, 0, 'b').pfn).toBe(68);
    expect(release(k, 0, 'a')).toBe(true);
    expect(bits(k)).toBe('00001111' + '0'.repeat(24));
    // 8 pages do not fit in the 4 free bits before 'b': the first fit is bit 8 (pfn 72)
    expect(alloc(k, 0, 8, 0, 'c')).toEqual({ pfn: 72, err: '0', tries: 1 });
    expect(bits(k)).toBe('0000' + '1'.repeat(12) + '0'.repeat(16));
    // and 4 pages still fit at bit 0
    expect(alloc(k, 0, 4, 0, 'd')).toEqual({ pfn: 64, err: '0', tries: 1 });
  });

  // An area [68, 92): its base is not a multiple of 16 pages, so aligning an order-4 request needs
  // cma_bitmap_aligned_offset() = 68 & 15 = 4 bits.
  const odd = () => createKernel(resolveConfig({ base: 'tiny', name: 'tiny-cma-odd', cma: [{ name: 'odd', basePfn: 68, count: 24, orderPerBit: 0 }] }), 'v5.19');

  it('align order 4 in an area based at pfn 68: the first 16-page aligned pfn is 80 (bit 12)', () => {
    const k = odd();
    expect(alloc(k, 0, 4, 4, 'a')).toEqual({ pfn: 80, err: '0', tries: 1 });
    expect(bits(k)).toBe('0'.repeat(12) + '1111' + '0'.repeat(8));
    // the next 16-aligned pfn, 96, is outside the area: no position
    expect(alloc(k, 0, 4, 4, 'b')).toEqual({ pfn: -1, err: '-ENOMEM', tries: 0 });
    // unaligned requests still fill from the base
    expect(alloc(k, 0, 4, 0, 'c')).toEqual({ pfn: 68, err: '0', tries: 1 });
    expect(alloc(k, 0, 4, 3, 'd')).toEqual({ pfn: 72, err: '0', tries: 1 });
  });

  it('order_per_bit 2: an align order below it needs no mask, above it a mask of 2^(align - 2) - 1 bits', () => {
    const k = createKernel('tiny-hugetlb-cma', 'mainline');
    const area = 1; // hugetlb0: [96, 128), 8 bits of 4 pages
    expect(alloc(k, area, 4, 0, 'a')).toEqual({ pfn: 96, err: '0', tries: 1 });
    expect(alloc(k, area, 4, 2, 'b')).toEqual({ pfn: 100, err: '0', tries: 1 });
    // order 3 (8 pages): mask 1, the next even bit is bit 2
    expect(alloc(k, area, 8, 3, 'c')).toEqual({ pfn: 104, err: '0', tries: 1 });
    expect(alloc(k, area, 8, 3, 'd')).toEqual({ pfn: 112, err: '0', tries: 1 });
    expect(bits(k, area)).toBe('11111100');
    // a 5-page request takes two 4-page bits (cma_bitmap_pages_to_bits rounds up)
    expect(alloc(k, area, 5, 0, 'e')).toEqual({ pfn: 120, err: '0', tries: 1 });
    expect(bits(k, area)).toBe('11111111');
  });
});

describe('cma_pages_valid / the area of a pfn', () => {
  it('a range is valid only when it lies wholly inside the area (v5.16)', () => {
    const k = createKernel('tiny', 'mainline'); // area [64, 96)
    expect(cmaPagesValid(k, 0, 64, 32)).toBe(true);
    expect(cmaPagesValid(k, 0, 88, 8)).toBe(true);
    expect(cmaPagesValid(k, 0, 90, 8)).toBe(false); // runs past the end
    expect(cmaPagesValid(k, 0, 63, 2)).toBe(false); // starts before the base
    expect(cmaPagesValid(k, 3, 64, 1)).toBe(false); // no such area
    expect(cmaRelease(k, 0, 90, 8)).toBe(false);
  });

  it('cmaAreaOf: [base, base + count) belongs to the area, its neighbours do not', () => {
    const k = createKernel('tiny-hugetlb-cma', 'mainline');
    expect([63, 64, 95, 96, 127, 128].map((p) => cmaAreaOf(k, p))).toEqual([-1, 0, 0, 1, 1, -1]);
  });

  it('findCmaArea: by name, by index (number or decimal string), anything else -1', () => {
    const k = createKernel('tiny-hugetlb-cma', 'mainline'); // areas 'reserved' and 'hugetlb0'
    expect(findCmaArea(k, 'hugetlb0')).toBe(1);
    expect(findCmaArea(k, 'reserved')).toBe(0);
    expect(findCmaArea(k, 0)).toBe(0);
    expect(findCmaArea(k, 1)).toBe(1);
    expect(findCmaArea(k, 2)).toBe(-1);
    expect(findCmaArea(k, -1)).toBe(-1);
    expect(findCmaArea(k, '0')).toBe(0);
    expect(findCmaArea(k, '01')).toBe(1);
    expect(findCmaArea(k, '2')).toBe(-1);
    expect(findCmaArea(k, '5')).toBe(-1);
    // not decimal digits only, although Number() would read them as 1
    for (const s of ['+1', '1e0', ' 1', '0x1']) expect(findCmaArea(k, s)).toBe(-1);
    expect(findCmaArea(k, 'nope')).toBe(-1);
  });
});

describe('cma_activate_area alignment and the state fingerprint', () => {
  it('max-order profiles reject an area whose size (not only its base) is not a MAX_ORDER-1 multiple', () => {
    const cfg = resolveConfig({ base: 'tiny', name: 'tiny-cma-short', cma: [{ name: 'short', basePfn: 64, count: 8, orderPerBit: 0 }] });
    expect(() => createKernel(cfg, 'v5.18')).toThrow(ConfigError);
    expect(() => createKernel(cfg, 'v5.19')).not.toThrow();
    // and one whose size is a multiple but whose base is not
    const shifted = resolveConfig({ base: 'tiny', name: 'tiny-cma-shifted', cma: [{ name: 'shifted', basePfn: 72, count: 16, orderPerBit: 0 }] });
    expect(() => createKernel(shifted, 'v5.18')).toThrow(/CMA area shifted must be aligned to 16 pages/);
    expect(() => createKernel(shifted, 'v5.19')).not.toThrow();
  });

  it('the fingerprint shows each area\'s bitmap, four bits per hex digit, bit 0 lowest', () => {
    const k = createKernel('tiny-hugetlb-cma', 'mainline');
    const part = () => k.fingerprintParts.map((f) => f()).find((s) => s.startsWith('reserved:'));
    expect(part()).toBe('reserved:00000000;hugetlb0:00');
    // bits 0..4 and 6 set: digit 0 = f (bits 0-3), digit 1 = 1 + 4 (bits 4 and 6)
    expect(alloc(k, 0, 5, 0, 'a').pfn).toBe(64);
    expect(alloc(k, 0, 1, 0, 'b').pfn).toBe(69);
    expect(alloc(k, 0, 1, 0, 'c').pfn).toBe(70);
    expect(release(k, 0, 'b')).toBe(true);
    expect(bits(k)).toBe('1111101' + '0'.repeat(25));
    // hugetlb0 bit 0 (a 4-page bit): digit 0 = 1
    expect(alloc(k, 1, 1, 0, 'd').pfn).toBe(96);
    expect(part()).toBe('reserved:f5000000;hugetlb0:10');
  });
});
