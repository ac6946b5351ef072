import type { Checker, Property } from './property.js';
import { CONTIG_OPS, OpView } from './op-tracking.js';
import { hugetlbOf } from './hugetlb-util.js';
import { SavedArrays } from './checkpoint.js';

/**
 * hugepages-total-stable: alloc_contig_range, alloc_contig_pages, cma_alloc and virtio-mem's
 * fake-offline path never change HugePages_Total (nr_huge_pages), max_huge_pages or surplus
 * (v5.13 isolate_or_dissolve_huge_page replaces a free huge page one for one). The one documented
 * exception: with HVO (v5.14+) the old page's vmemmap cannot be restored, so it stays in the pool
 * as a surplus page next to its replacement (nr +1 and surplus +1 together). And a pool holding
 * surplus pages shrinks by them whenever a huge page is freed, migration's old page included
 * (nr -1 and surplus -1 together, Free unchanged): only the persistent pool (nr - surplus) is the admin's.
 * offline_pages dissolving free huge pages is the kernel's documented behaviour and is not checked.
 *
 * Sound per step: a step is one atomic section run by one thread; counter changes in a step run
 * by a thread inside one of these ops are that op's doing, whatever other threads do around it.
 * Temporary migration targets are not pool pages and are left out of Total.
 * Cost: O(hstates) on a step that moves a pool counter (wakes.hugetlb: on the others the counters
 * are those it kept, and the check returns null).
 */
const hugepagesTotalStable: Property = {
  name: 'hugepages-total-stable',
  statement: 'alloc_contig_range, alloc_contig_pages, cma_alloc and virtio-mem unplug never change HugePages_Total, max_huge_pages or surplus (except the HVO restore failure, +1 surplus, and a freed page leaving as surplus, -1 surplus)',
  kernelRef: 'mm/hugetlb.c alloc_and_dissolve_huge_page (v5.13, ae37c7ff79f1), isolate_or_dissolve_huge_page; seed 001; kernel-spec §15.9',
  guards: 'the pool growing or shrinking behind the admin\'s back when contiguous allocations replace or dissolve huge pages (RFC: dissolve failure after the replacement)',
  when: 'step',
  wakes: { hugetlb: true, watching: true },
  create(k) {
    const view = new OpView();
    let prev: number[] | null = null;
    let spare: number[] = [];
    const saved = new SavedArrays<number>();
    // The hstates are made when hugetlb is installed at boot and never replaced (a restore from a
    // snapshot refills them in place): looked up once per checker.
    const hs = hugetlbOf(k)?.hstates ?? [];
    const read = (): number[] => {
      // (a fresh array when the number of hstates is new; else the spare one, same length)
      const out = spare.length === hs.length * 4 ? spare : new Array<number>(hs.length * 4).fill(0);
      for (let i = 0; i < hs.length; i++) {
        // A migration target (HPageTemporary, alloc_migrate_huge_page) is counted in nr_huge_pages
        // until move_hugetlb_state hands the temporary status to the old page and frees it: a
        // transient the kernel shows in /proc/meminfo, not a change of the pool.
        out[4 * i] = hs[i].nr - hs[i].temporary.size;
        out[4 * i + 1] = hs[i].max;
        out[4 * i + 2] = hs[i].surplus;
        out[4 * i + 3] = hs[i].free;
      }
      return out;
    };
    // The counters read() would give are those of prev (most steps): nothing to judge, nothing to
    // remember (and with the run's op tracker, ctx.ops, no op to follow either).
    const unchanged = (): boolean => {
      if (!prev || prev.length !== hs.length * 4) return false;
      for (let i = 0; i < hs.length; i++) {
        const h = hs[i];
        if (prev[4 * i] !== h.nr - h.temporary.size || prev[4 * i + 1] !== h.max || prev[4 * i + 2] !== h.surplus || prev[4 * i + 3] !== h.free) return false;
      }
      return true;
    };
    const c: Checker = {
      check(ctx) {
        c.watching = false;
        if (ctx.ops && unchanged()) return null;
        const ops = view.begin(ctx);
        const op = ops.current(k);
        const now = read();
        let msg: string | null = null;
        if (prev && op && CONTIG_OPS.has(op.op)) {
          for (let i = 0; i < hs.length && !msg; i++) {
            const [dn, dm, ds, df] = [now[4 * i] - prev[4 * i], now[4 * i + 1] - prev[4 * i + 1], now[4 * i + 2] - prev[4 * i + 2], now[4 * i + 3] - prev[4 * i + 3]];
            if (dn === 0 && dm === 0 && ds === 0) continue;
            if (k.sw.hvo && dn === 1 && ds === 1 && dm === 0) continue;
            // The old page of a migrated in-use huge page is freed (free_huge_page) while the node
            // has surplus: it leaves the pool as a surplus page (update_and_free_page), as any free
            // does; the persistent pool (nr - surplus) and max_huge_pages stay as they were. It was
            // in use, so Free does not move: a *free* surplus page dissolved without replacement
            // (Free -1 too) is still a violation.
            if (dn < 0 && ds === dn && dm === 0 && df === 0) continue;
            msg = `${op.op} (thread ${k.current}) changed hstate ${hs[i].name}: HugePages_Total ${prev[4 * i]} -> ${now[4 * i]}, max_huge_pages ${prev[4 * i + 1]} -> ${now[4 * i + 1]}, surplus ${prev[4 * i + 2]} -> ${now[4 * i + 2]}`;
          }
        }
        spare = prev ?? [];
        prev = now;
        view.end(ctx);
        return msg;
      },
      // The counters of the last step are all it keeps (into prev's own array: not the spare one).
      checkpoint: (slot) => saved.save(slot, prev),
      // (the steps it is not woken on move no counter: prev must be those of the step before, which
      // after a restore is the checkpoint's word; the first check after it compares them anyway, so
      // that a stale checkpoint shows as it would with every step checked)
      restore: (slot) => {
        prev = saved.load(slot, prev ?? []);
        c.watching = true;
      },
      watching: true,
    };
    return c;
  },
};

export default hugepagesTotalStable;
