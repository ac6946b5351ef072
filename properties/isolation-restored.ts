import type { Property } from './property.js';
import { offlineBlock } from './freelist-counters.js';
import type { Kernel } from '../src/kernel/machine.js';
import { ISOLATING_OPS, OpView } from './op-tracking.js';
import { MIGRATE_CMA, MIGRATE_ISOLATE, MIGRATETYPE_NAMES, PG_offline, PG_valid } from '../src/kernel/types.js';

/**
 * isolation-restored: after an isolating op (alloc_contig_range and its users, offline_pages,
 * hugetlb allocations of gigantic pages) returns, success or failure, no pageblock is left
 * MIGRATE_ISOLATE, except in memory that was offlined (offline_pages leaves its blocks isolated on
 * success, as the kernel does). Where the profile promises it (MIGRATE_ISOLATE as a standalone bit,
 * 2025) the original type is back: a CMA pageblock stays CMA and no other block becomes CMA.
 *
 * Checked when an isolating op ends while no other thread has one in flight (another isolator's
 * blocks are legitimately ISOLATE), and at quiescence. Cost: O(pageblocks) at those points.
 */
export function checkIsolationRestored(k: Kernel, bootTypes: Uint8Array | null): string | null {
  const pbPages = 1 << k.pageblockOrder;
  const { flags } = k.mm;
  const bitMode = bootTypes !== null && k.sw.isolateMode === 'bit';
  // (whether a block is offline is asked only of a block that would be reported otherwise: the
  // same verdicts, without a memory-block lookup for every pageblock)
  const offline = (p: number) => offlineBlock(k, p) || !(flags[p] & PG_valid);
  for (let b = 0; b * pbPages < k.nrPfns; b++) {
    const p = b * pbPages;
    const mt = k.pb.get(p);
    if (mt === MIGRATE_ISOLATE && !offline(p)) return `pageblock at pfn ${p} is still MIGRATE_ISOLATE after the isolating op returned`;
    if (bitMode) {
      const was = bootTypes[b];
      const now = k.pb.preserved(p) ?? mt;
      if ((was === MIGRATE_CMA) !== (now === MIGRATE_CMA) && !offline(p)) return `pageblock at pfn ${p} was ${MIGRATETYPE_NAMES[was]} and is now ${MIGRATETYPE_NAMES[now]}: isolation did not restore the original type`;
    }
  }
  return null;
}

const isolationRestored: Property = {
  name: 'isolation-restored',
  statement: 'after an isolating op returns no pageblock is left ISOLATE (offlined memory aside) and, with the standalone isolate bit, every block has its original CMA-ness',
  kernelRef: 'mm/page_isolation.c undo_isolate_page_range, unset_migratetype_isolate; alloc_contig_range; kernel-spec §15.6',
  guards: 'error paths that forget to undo isolation (memory unusable forever), wrong migratetype restored (80e2b584f3ab)',
  when: 'step',
  wakes: { finished: true, quiescent: true },
  stateless: true,
  create(k) {
    const view = new OpView();
    const pbPages = 1 << k.pageblockOrder;
    const boot = new Uint8Array(Math.ceil(k.nrPfns / pbPages));
    for (let b = 0; b < boot.length; b++) boot[b] = k.pb.preserved(b * pbPages) ?? k.pb.get(b * pbPages);
    return {
      check(ctx) {
        const ops = view.begin(ctx);
        let msg: string | null = null;
        if (ctx.quiescent) msg = checkIsolationRestored(k, boot);
        else {
          for (const f of ctx.finished) {
            if (!ISOLATING_OPS.has(f.op.op) || ops.anyOther(f.thread, (o) => ISOLATING_OPS.has(o.op))) continue;
            const m = checkIsolationRestored(k, boot);
            if (m) {
              msg = `${f.op.op} (thread ${f.thread}) returned ${f.result.result}: ${m}`;
              break;
            }
          }
        }
        view.end(ctx);
        return msg;
      },
    };
  },
};

export default isolationRestored;
