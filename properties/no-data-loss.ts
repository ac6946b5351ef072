import type { Property } from './property.js';
import type { Kernel } from '../src/kernel/machine.js';
import { hugetlbOf } from './hugetlb-util.js';
import { PG_buddy, PG_hugetlb, PG_pcp } from '../src/kernel/types.js';

/**
 * no-data-loss: the content a user wrote survives migration, dissolve and demote (the content
 * token follows the allocation to its new pfn), and no in-use page is freed or dissolved under its
 * user: every live user allocation's head is held by it, not free, and carries the token it was
 * given; every faulted hugetlb page is an in-use hugetlb page carrying the token written at fault.
 *
 * At quiescence (and when a free_pages ends): a migration moves the data and repoints the owner in
 * separate sections, so mid-op the allocation may legitimately name the old copy.
 */
export function checkNoDataLoss(k: Kernel, tokens: Map<number, number>): string | null {
  const { mm } = k;
  for (const [handle, token] of tokens) {
    const al = k.allocs.get(handle);
    if (!al) continue;
    const p = al.pfn;
    if (mm.flags[p] & (PG_buddy | PG_pcp)) return `allocation '${al.id}' (${al.kind}) names pfn ${p}, which is free: an in-use page was freed`;
    if (mm.owner[p] !== handle) return `allocation '${al.id}' names pfn ${p}, which belongs to owner ${mm.owner[p]}`;
    if (mm.token[p] !== token) return `allocation '${al.id}' lost its content: token ${mm.token[p]} at pfn ${p}, expected ${token}`;
  }
  const hs = hugetlbOf(k);
  if (hs) {
    for (const m of hs.mappings.values()) {
      for (let i = 0; i < m.handles.length; i++) {
        const h = m.handles[i];
        if (!h) continue;
        const al = k.allocs.get(h);
        if (!al) return `hugetlb mapping '${m.id}' index ${i} refers to a dropped allocation`;
        const p = al.pfn;
        if (!(mm.flags[p] & PG_hugetlb) || mm.refcount[p] < 1) return `hugetlb mapping '${m.id}' index ${i}: pfn ${p} is no longer an in-use huge page (dissolved or freed under its user)`;
        if (mm.token[p] !== m.tokens[i]) return `hugetlb mapping '${m.id}' index ${i} lost its content: token ${mm.token[p]} at pfn ${p}, expected ${m.tokens[i]}`;
      }
    }
  }
  return null;
}

const noDataLoss: Property = {
  name: 'no-data-loss',
  statement: 'a content token survives migration, dissolve and demote; no in-use page is freed or dissolved',
  kernelRef: 'mm/migrate.c migrate_pages / move_to_new_folio, mm/hugetlb.c dissolve_free_huge_page (in-use check), move_hugetlb_state; kernel-spec §15.13',
  guards: 'migration that frees the source before the copy, dissolving a page that was faulted in concurrently, demote losing a mapped page',
  when: 'step',
  wakes: { finished: true, quiescent: true },
  create(k) {
    const tokens = new Map<number, number>();
    // Every tokens.set as (handle, token) pairs: a checkpoint is the log's length, and a restore
    // replays the log's first entries into the map (same entries, same iteration order).
    const log: number[] = [];
    const saved: number[] = [];
    return {
      check(ctx) {
        for (const f of ctx.finished) {
          if (f.result.result !== '0' || f.op.op !== 'alloc_pages') continue;
          const al = k.lookup(f.op.id as string);
          if (al && k.mm.token[al.pfn] !== 0) {
            tokens.set(al.handle, k.mm.token[al.pfn]);
            log.push(al.handle, k.mm.token[al.pfn]);
          }
        }
        if (!ctx.quiescent) return null;
        return checkNoDataLoss(k, tokens);
      },
      checkpoint: (slot) => {
        saved[slot] = log.length;
      },
      restore: (slot) => {
        if (log.length === saved[slot]) return;
        log.length = saved[slot];
        tokens.clear();
        for (let i = 0; i < log.length; i += 2) tokens.set(log[i], log[i + 1]);
      },
    };
  },
};

export default noDataLoss;
