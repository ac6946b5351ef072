import type { Property } from './property.js';
import { CONTIG_OPS, OpView } from './op-tracking.js';
import { hugetlbOf } from './hugetlb-util.js';
import { giantsEmpty } from './hugetlb-watch.js';
import { PG_hugetlb, PG_isolated } from '../src/kernel/types.js';

/**
 * no-gigantic-recursion: alloc_contig_range is never re-entered through a hugetlb allocation
 * (replacing a gigantic page needs alloc_contig_pages -> alloc_contig_range: the cycle the kernel
 * cuts by failing gigantic pages with -ENOMEM in isolate_or_dissolve_huge_page, v5.13), and a
 * gigantic page is never isolated, migrated or dissolved by a contiguous request.
 *
 * Per step: the recursion depth is counted where the cycle closes (Kernel.enterContig), and the
 * gigantic pool pages are O(pool) to compare with the previous step. Woken (wakes.hugetlb) on the
 * steps with gigantic pool pages, or right after one, or nesting: on the others its previous step
 * had no gigantic page either (prev is NONE) and the check returns null.
 */
const NONE: ReadonlySet<number> = new Set<number>();

const noGiganticRecursion: Property = {
  name: 'no-gigantic-recursion',
  statement: 'alloc_contig_range is never re-entered through hugetlb allocation; a gigantic page is never isolated, migrated or dissolved by a contig request',
  kernelRef: 'mm/hugetlb.c isolate_or_dissolve_huge_page (hstate_is_gigantic -> -ENOMEM, v5.13); seed 000 discussion',
  guards: 'the RFC\'s alloc_and_dissolve_huge_page replacing a gigantic page through alloc_contig_pages from inside alloc_contig_range',
  when: 'step',
  wakes: { hugetlb: true },
  create(k) {
    const view = new OpView();
    let prev: ReadonlySet<number> = NONE;
    // The hstates are made when hugetlb is installed at boot, their nodes and sets with them, and
    // never replaced (a restore from a snapshot refills them in place): looked up once per checker.
    const giants = (hugetlbOf(k)?.hstates ?? []).filter((h) => h.gigantic);
    // No gigantic page (most steps of most runs): one shared empty set, never added to.
    const gigantic = (): ReadonlySet<number> => {
      // (an empty pool, most runs: no iterators to build)
      if (giantsEmpty(giants)) return NONE;
      const s = new Set<number>();
      for (const h of giants) {
        for (const n of h.nodes) for (const p of n.freeList) s.add(p);
        for (const p of h.inUse) if (!h.temporary.has(p)) s.add(p);
      }
      return s.size ? s : NONE;
    };
    // `prev` is never changed once made (gigantic() builds a new set): a slot keeps a reference.
    const saved: ReadonlySet<number>[] = [];
    return {
      checkpoint: (slot) => {
        saved[slot] = prev;
      },
      restore: (slot) => {
        prev = saved[slot];
      },
      check(ctx) {
        // No gigantic page before or after the step and no nesting (every step of most runs):
        // nothing to judge, nothing to remember (the run's op tracker, ctx.ops, follows the ops).
        if (ctx.ops && prev === NONE && k.maxContigDepth <= 1 && giantsEmpty(giants)) return null;
        const ops = view.begin(ctx);
        let msg: string | null = null;
        if (k.maxContigDepth > 1) msg = `alloc_contig_range re-entered (nesting depth ${k.maxContigDepth}) in thread ${k.current}: a gigantic replacement recursed into alloc_contig_range`;
        const now = gigantic();
        const op = ops.current(k);
        if (!msg && op && CONTIG_OPS.has(op.op)) {
          for (const p of prev) {
            if (!(k.mm.flags[p] & PG_hugetlb) || !now.has(p)) {
              msg = `${op.op} (thread ${k.current}) dissolved or migrated the gigantic page at pfn ${p}`;
              break;
            }
            if (k.mm.flags[p] & PG_isolated) {
              msg = `${op.op} (thread ${k.current}) isolated the gigantic page at pfn ${p}`;
              break;
            }
          }
        }
        prev = now;
        view.end(ctx);
        return msg;
      },
    };
  },
};

export default noGiganticRecursion;
