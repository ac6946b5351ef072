import type { Property } from './property.js';
import { offlineBlock } from './freelist-counters.js';
import type { Kernel } from '../src/kernel/machine.js';
import type { OpEvent } from './property.js';
import { ISOLATING_OPS, onOpFinished } from './op-tracking.js';
import { firstNotBare, firstOwnerNot } from './memmap-scan.js';
import { MIGRATE_ISOLATE, PG_hugetlb, PG_offline, PG_reserved, PG_tail, PG_valid } from '../src/kernel/types.js';

/**
 * contig-postcondition: when alloc_contig_range returns 0, exactly [start, end) is the caller's
 * (every pfn owned by the caller's allocation, nothing outside the range taken: the excess of the
 * MAX_ORDER/pageblock-aligned outer range was freed); when it fails, the caller owns nothing new,
 * no page of the range is left taken by nobody, and (if no other isolator runs) nothing is left
 * isolated. alloc_contig_pages and cma_alloc: on success the allocation covers nr_pages / count
 * contiguous pages, all owned by the caller.
 *
 * Checked when the op ends (its postcondition); cost O(range).
 */
function takenByNobody(k: Kernel, p: number): boolean {
  const { flags, refcount, owner } = k.mm;
  const f = flags[p];
  return (f & PG_valid) !== 0 && refcount[p] > 0 && owner[p] === 0 && !(f & (PG_reserved | PG_tail | PG_hugetlb | PG_offline));
}

/**
 * The first pfn of [s, e) taken by nobody, or null. Pages held by an owner are not: a run of one
 * owner's pages is skipped two pfns a read; so is a run of bare frames (no refcount).
 */
export function firstTakenByNobody(k: Kernel, s: number, e: number): number | null {
  const { flags, refcount, owner } = k.mm;
  for (let p = s; p < e;) {
    if (takenByNobody(k, p)) return p;
    const o = owner[p];
    if (o !== 0) p = firstOwnerNot(k.mm, p, e, o);
    else if (flags[p] === PG_valid && refcount[p] === 0) p = firstNotBare(k.mm, p, e);
    else p++;
  }
  return null;
}

export function checkContigEnd(k: Kernel, e: OpEvent, otherIsolator: boolean): string | null {
  const op = e.op;
  const res = e.result.result;
  if (res === '-EINVAL') return null;
  const id = op.id as string;
  const al = k.lookup(id);
  const maxBlock = 1 << k.maxOrder;
  if (op.op === 'alloc_contig_range') {
    const start = op.start as number;
    const end = op.end as number;
    const lo = Math.max(0, start & ~(maxBlock - 1));
    const hi = Math.min(k.nrPfns, (end + maxBlock - 1) & ~(maxBlock - 1));
    if (res === '0') {
      if (!al) return `alloc_contig_range [${start}, ${end}) returned 0 but the caller holds nothing as '${id}'`;
      if (al.pfn !== start || al.nrPages !== end - start) return `alloc_contig_range [${start}, ${end}) returned 0 but '${id}' holds [${al.pfn}, ${al.pfn + al.nrPages})`;
      const p = firstOwnerNot(k.mm, start, end, al.handle);
      if (p < end) return `alloc_contig_range [${start}, ${end}) returned 0 but pfn ${p} is not the caller's (owner ${k.mm.owner[p]})`;
    } else if (al && al.kind !== 'pages') {
      return `alloc_contig_range [${start}, ${end}) failed (${res}) but the caller holds '${id}'`;
    }
    if (!otherIsolator) {
      // (on success the range itself is the caller's: only the excess of the outer range)
      const p = res === '0' ? firstTakenByNobody(k, lo, Math.min(hi, start)) ?? firstTakenByNobody(k, Math.max(lo, end), hi) : firstTakenByNobody(k, lo, hi);
      if (p !== null) return `alloc_contig_range [${start}, ${end}) returned ${res} and left pfn ${p} taken by nobody (excess or failure path did not free it)`;
    }
    if (res !== '0' && !otherIsolator) {
      const pbPages = 1 << k.pageblockOrder;
      for (let p = lo; p < hi; p += pbPages) {
        if (k.pb.get(p) === MIGRATE_ISOLATE && !offlineBlock(k, p)) return `alloc_contig_range [${start}, ${end}) failed (${res}) and left the pageblock at ${p} isolated`;
      }
    }
    return null;
  }
  const want = op.op === 'alloc_contig_pages' ? (op.nr_pages as number) : (op.count as number);
  if (res === '0') {
    if (!al) return `${op.op} returned 0 but the caller holds nothing as '${id}'`;
    if (want > 0 && al.nrPages !== want) return `${op.op} of ${want} pages returned 0 but '${id}' holds ${al.nrPages} pages`;
    const p = firstOwnerNot(k.mm, al.pfn, al.pfn + al.nrPages, al.handle);
    if (p < al.pfn + al.nrPages) return `${op.op} returned 0 but pfn ${p} of '${id}' is not the caller's (owner ${k.mm.owner[p]})`;
  }
  return null;
}

const CHECKED = new Set(['alloc_contig_range', 'alloc_contig_pages', 'cma_alloc']);

const contigPostcondition: Property = {
  name: 'contig-postcondition',
  statement: 'alloc_contig_range success: exactly [start, end) owned by the caller; failure: nothing taken, nothing isolated (same for alloc_contig_pages / cma_alloc ownership)',
  kernelRef: 'mm/page_alloc.c alloc_contig_range (outer_start, free excess), free_contig_range; mm/cma.c cma_alloc; kernel-spec §15.8',
  guards: 'excess pages of the aligned outer range leaked, pages of a failed attempt left isolated or taken (e.g. by isolate_freepages_range)',
  when: 'step',
  wakes: { finished: true },
  stateless: true,
  create(k) {
    return onOpFinished((f, ops) => (CHECKED.has(f.op.op) ? checkContigEnd(k, f, ops.anyOther(f.thread, (o) => ISOLATING_OPS.has(o.op))) : null));
  },
};

export default contigPostcondition;
