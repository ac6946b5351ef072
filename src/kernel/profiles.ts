/**
 * Kernel profiles: named sets of behaviour switches, one per kernel state worth checking
 * (before/after the seed series and later upstream fixes). A profile that reproduces a
 * known-buggy state names the property expected to catch it.
 */
import { ConfigError } from './types.js';

export interface Switches {
  /** __free_one_page rule at >= pageblock_order: v5.10 (only ISOLATE fenced), v5.18 (non-mergeable types fenced), v6.10 (+ re-type merged mergeable blocks) */
  mergeRule: 'v5.10' | 'v5.18' | 'v6.10';
  /** freelist migratetype hygiene (v6.10): list accounting in the list helpers, transactional block conversion, large frees split per pageblock */
  hygiene: boolean;
  /** MIGRATE_ISOLATE replaces the type bits (<= 2025) or is a standalone bit (mainline) */
  isolateMode: 'replace' | 'bit';
  /** alloc_contig_range / start_isolate_page_range granularity: MAX_ORDER-1 blocks (<= v5.18), pageblock (v5.19+), pageblock without straddling-buddy handling (buggy) */
  contigGranularity: 'max-order' | 'pageblock' | 'pageblock-naive';
  /** has_unmovable_pages scans only the range of interest (v5.19, 844fbae63e1f) */
  unmovableRangeOfInterest: boolean;
  /** CMA area alignment: MAX_ORDER-1 (<= v5.18) or pageblock (v5.19+) */
  cmaAlign: 'max-order' | 'pageblock';
  /** isolate_migratepages_* return errnos and __alloc_contig_migrate_range bails out on -ENOMEM (v5.13) */
  contigErrnos: boolean;
  /** how alloc_contig_range treats hugetlb pages: fail (v5.10), RFC alloc_and_dissolve (seed 000), isolate_or_dissolve (v5.13) */
  hugetlbContig: 'none' | 'rfc' | 'v5.13';
  /** alloc_and_dissolve_huge_page allocates the replacement only when needed (v6.9, 831bc31a5e82) */
  lazyReplacement: boolean;
  /**
   * alloc_migration_target passes htlb_allow_alloc_fallback(mtc->reason) to
   * alloc_hugetlb_folio_nodemask (v6.9; 6.12 mm/migrate.c:2156, mm/hugetlb.c:2455): a fresh hugetlb
   * migration target is __GFP_THISNODE unless the reason is MR_MEMORY_HOTPLUG, MR_MEMORY_FAILURE,
   * MR_SYSCALL or MR_MEMPOLICY_MBIND, so alloc_contig_range (MR_CONTIG_RANGE) no longer takes one
   * from another node. Before (6.1 mm/hugetlb.c:2553), any node.
   */
  hugetlbMigrateThisNode: boolean;
  /** pfn_range_valid_contig rejects: refcounted and hugetlb pages (v5.10), nothing (v5.13), hugetlb pages (2023 fix) */
  pfnRangeValidContig: 'v5.10' | 'v5.13' | 'v6.x';
  /** HugeTLB Vmemmap Optimisation (v5.14+): freeing a huge page to buddy needs memory */
  hvo: boolean;
  /** demote (v5.16) and where demoted CMA pieces go: no demote, cma_pages_valid (v5.16), buddy (buggy) */
  demote: 'none' | 'cma_pages_valid' | 'lost';
  /**
   * dissolve_free_huge_page removes a page as surplus when its node has surplus pages, lowering
   * max_huge_pages only otherwise ("mm/hugetlb: fix surplus pages in dissolve_free_huge_page()",
   * 2025): absent in 6.1.192 (mm/hugetlb.c:2377, max_huge_pages-- always) and so in v6.10, present
   * in 6.12.118 (mm/hugetlb.c:2252, in 6.12 stable since 6.12.112) and mainline.
   */
  dissolveSurplusFix: boolean;
  /** offline_pages replaces free huge pages before dissolving them (David's proposal, seed 000; never merged) */
  offlineReplacesFreeHuge: boolean;
  /** zone_pcp_disable() during offline (v5.11, ec6e8c7e0314) */
  offlinePcpDisable: boolean;
  /**
   * free_pcppages_bulk's order over the pcp lists: 'v5.10' round-robin over the MIGRATE_PCPTYPES
   * lists with a batch_free count that grows on empty lists; 'v5.14' the same over the
   * NR_PCP_LISTS lists of the high-order pcp (15 on x86-64 with THP, the high-order ones empty
   * here); 'v5.18' the list of the freed page first, each list drained whole (8b10b465d0e1 "free
   * pages in a single pass during bulk free", d61372bc41cf "drain the requested list first").
   */
  pcpBulkFree: 'v5.10' | 'v5.14' | 'v5.18';
  /**
   * nr_pcp_free() scales the bulk free on pcp->high by pcp->free_factor, doubled by each such free
   * and halved by each pcp allocation (v5.14, 3b12e7e97938, to v6.6). Off: pcp->batch pages each
   * time (before v5.14; and v6.7+, whose free_count and auto-tuned pcp->high are not modelled).
   */
  pcpFreeFactor: boolean;
  /** virtio-mem subblock size: MAX_ORDER-1 (<= v5.18) or pageblock (v5.19+) */
  virtioMemSubblock: 'max-order' | 'pageblock';
  /** virtio-mem retries alloc_contig_range on ZONE_MOVABLE (v5.11+: up to 5 times) */
  virtioMemRetries: number;
  /** __rmqueue_fallback: steal_suitable_fallback (<= v6.9) or transactional try_to_steal_block (v6.10+) */
  fallback: 'v5.10' | 'v6.10';
  /**
   * dequeue_hugetlb_folio_node_exact skips free huge pages in MIGRATE_ISOLATE pageblocks (absent in
   * v6.3's source, present in 6.12's): without it a hugetlb migration target can be taken from the
   * very range being offlined/allocated, and offline_pages can ping-pong two pages forever.
   */
  hugetlbDequeueSkipsIsolated: boolean;
  /**
   * start_isolate_page_range's failure path undoes through undo_isolate_page_range (first valid
   * page of each block) instead of pfn_to_online_page(first pfn): v5.16 (Miaohe Lin, "fix
   * potential missing call to unset_migratetype_isolate()"). Before, a block whose first pfn is a
   * hole was isolated but never un-isolated.
   */
  isolateUndoFix: boolean;
  /**
   * isolate_single_pageblock passes the boundary block's own type (saved_mt) to
   * set_migratetype_isolate, as v5.19 was released: a MOVABLE isolator then passes the CMA check
   * on the boundary blocks and the later undo with MIGRATE_MOVABLE re-types them (fixed by
   * 80e2b584f3ab in v6.0; the `v5.19` profile includes the fix).
   */
  isolateSingleSavedMt: boolean;
  /**
   * alloc_contig_range's `goto done` after a failed start_isolate_page_range (v5.19+, still in
   * mainline): the undo un-isolates every ISOLATE block of the range, those of a concurrent isolator
   * included (contig.ts). Off before v5.19 (`return ret`) and with the patch contig-isolate-fail-return.
   */
  contigIsolateFailUndo: boolean;
  /**
   * alloc_contig_pages holds get_online_mems() (mem_hotplug_lock, read) from the candidate check
   * through the allocation. No kernel does (pfn_range_valid_contig's pfn_to_online_page() is racy
   * against offline_and_remove_memory()); only the patch contig-get-online-mems sets it.
   */
  contigGetOnlineMems: boolean;
  /**
   * unset_migratetype_isolate takes a free buddy of order in [pageblock_order, MAX_PAGE_ORDER)
   * whose buddy is not isolated off the list, re-types this block only and puts it back, where it
   * merges (every kernel; page_isolation.ts). Off only with the patch unset-isolate-pageblock-buddy.
   */
  unsetIsolateLargeBuddy: boolean;
  /** demote may take a free surplus page (every kernel with demote); off only with the patch demote-persistent-only */
  demoteSurplus: boolean;
}

export interface Profile {
  name: string;
  description: string;
  /** what this profile reproduces, when it is a known-buggy state */
  buggy?: { property: string; bug: string };
  /** the fixed profile to compare with */
  fixedBy?: string;
  switches: Switches;
}

const v511: Switches = {
  mergeRule: 'v5.10',
  hygiene: false,
  isolateMode: 'replace',
  contigGranularity: 'max-order',
  unmovableRangeOfInterest: false,
  cmaAlign: 'max-order',
  contigErrnos: false,
  hugetlbContig: 'none',
  lazyReplacement: false,
  hugetlbMigrateThisNode: false,
  pfnRangeValidContig: 'v5.10',
  hvo: false,
  demote: 'none',
  dissolveSurplusFix: false,
  offlineReplacesFreeHuge: false,
  offlinePcpDisable: true,
  pcpBulkFree: 'v5.10',
  pcpFreeFactor: false,
  virtioMemSubblock: 'max-order',
  virtioMemRetries: 5,
  fallback: 'v5.10',
  hugetlbDequeueSkipsIsolated: false,
  isolateUndoFix: false,
  isolateSingleSavedMt: false,
  contigIsolateFailUndo: false,
  contigGetOnlineMems: false,
  unsetIsolateLargeBuddy: true,
  demoteSurplus: true,
};
const v513: Switches = { ...v511, contigErrnos: true, hugetlbContig: 'v5.13', pfnRangeValidContig: 'v5.13' };
const v514: Switches = { ...v513, hvo: true, pcpBulkFree: 'v5.14', pcpFreeFactor: true };
const v516: Switches = { ...v514, demote: 'cma_pages_valid', isolateUndoFix: true };
const v518: Switches = { ...v516, mergeRule: 'v5.18', pcpBulkFree: 'v5.18' };
const v519: Switches = {
  ...v518,
  contigGranularity: 'pageblock',
  unmovableRangeOfInterest: true,
  cmaAlign: 'pageblock',
  virtioMemSubblock: 'pageblock',
  contigIsolateFailUndo: true,
};
const v610: Switches = {
  ...v519, mergeRule: 'v6.10', hygiene: true, fallback: 'v6.10', lazyReplacement: true, hugetlbMigrateThisNode: true, pfnRangeValidContig: 'v6.x', pcpFreeFactor: false,
  hugetlbDequeueSkipsIsolated: true,
};
const mainline: Switches = { ...v610, isolateMode: 'bit', dissolveSurplusFix: true };

export const PROFILES: Record<string, Profile> = {};
function def(p: Profile): void {
  PROFILES[p.name] = p;
}

def({ name: 'v5.11', description: 'Before the hugetlb series: alloc_contig_range isolates MAX_ORDER-1 aligned ranges and fails on any hugetlb page; ISOLATE replaces the type bits; v5.10 merge rule.', switches: v511 });
def({
  name: 'rfc-2021-02',
  description: "Oscar's RFC (seed 000): a free huge page in the range is replaced by alloc_and_dissolve_huge_page, which ignores dissolve_free_huge_page's -EBUSY and does not fence gigantic pages (the replacement re-enters alloc_contig_pages).",
  buggy: { property: 'no-gigantic-recursion', bug: 'gigantic replacement recurses into alloc_contig_range; a dissolve failure after the replacement grows the pool' },
  fixedBy: 'v5.13',
  switches: { ...v511, hugetlbContig: 'rfc' },
});
def({ name: 'v5.13', description: "Oscar's series merged (seed 001 v4): isolate_or_dissolve_huge_page, gigantic pages fenced with -ENOMEM, errno returns, bail out on -ENOMEM; pfn_range_valid_contig no longer skips hugetlb or refcounted pages.", switches: v513 });
def({ name: 'v5.14', description: 'v5.13 plus HugeTLB Vmemmap Optimisation: freeing or dissolving a huge page needs memory and can fail with -ENOMEM.', switches: v514 });
def({ name: 'v5.16', description: 'Demote (seed 002): cma_pages_valid() decides at free time whether a demoted piece goes back to CMA.', switches: v516 });
def({
  name: 'demote-cma-lost',
  description: 'Demote without CMA tracking: a demoted piece of a CMA-allocated gigantic page is freed to buddy instead of through cma_release (what HPageCma / cma_pages_valid exist to prevent).',
  buggy: { property: 'cma-ownership', bug: 'demoted CMA pieces freed to buddy; the CMA bitmap keeps them allocated forever' },
  fixedBy: 'v5.16',
  switches: { ...v516, demote: 'lost' },
});
def({ name: 'v5.18', description: '__free_one_page refuses to merge across non-mergeable pageblock types at >= pageblock_order (1dd214b8f21c).', switches: v518 });
def({ name: 'v5.19', description: "Zi Yan: pageblock-granular alloc_contig_range and CMA alignment, isolate_single_pageblock with split_free_page, has_unmovable_pages limited to the range of interest.", switches: v519 });
def({
  name: 'v5.19-cma-retype',
  description: 'v5.19 as released: isolate_single_pageblock isolates the boundary pageblocks with their own type as the caller\'s, so alloc_contig_pages/alloc_contig_range(MOVABLE) isolates CMA boundary blocks and the undo re-types them MOVABLE, corrupting the CMA area (fixed by 80e2b584f3ab, v6.0).',
  buggy: { property: 'cma-ownership', bug: 'a CMA pageblock at the edge of a MOVABLE alloc_contig_range comes back MIGRATE_MOVABLE' },
  fixedBy: 'v5.19',
  switches: { ...v519, isolateSingleSavedMt: true },
});
def({
  name: 'pageblock-naive',
  description: 'Pageblock-granular isolation without the straddling-buddy handling (seed 004: a free MAX_ORDER-1 page of which only one pageblock is isolated; concurrent CMA allocations in neighbouring pageblocks).',
  buggy: { property: 'no-cross-migratetype-merge', bug: 'a free buddy spanning an isolated and a non-isolated pageblock is moved whole, then merged across types' },
  fixedBy: 'v5.19',
  switches: { ...v519, contigGranularity: 'pageblock-naive', mergeRule: 'v5.10' },
});
def({ name: 'v6.10', description: 'Freelist migratetype hygiene (Johannes Weiner): a free page is always on its pageblock\'s list, block conversion is transactional, straddling buddies split under zone->lock; lazy replacement in alloc_and_dissolve (6.9); fresh hugetlb migration targets of alloc_contig_range on the source node only (6.9, htlb_allow_alloc_fallback); hugetlb check back in pfn_range_valid_contig.', switches: v610 });
def({ name: 'mainline', description: 'Current mainline: v6.10 plus MIGRATE_ISOLATE as a standalone pageblock bit preserving the original type, and dissolve adjusting surplus (2025).', switches: mainline });

/**
 * Patches: fixes of races the harness found in released kernels and mainline that no kernel has
 * (counterexamples/findings/README.md). `--profile mainline+contig-isolate-fail-return` runs
 * mainline with the patch applied; a counterexample file records the composed name, so it replays.
 * A campaign on a profile not marked buggy attributes a violation that a patch removes to that known
 * race and goes on with the patch applied (src/harness/fuzz.ts), so a known race does not hide new ones.
 */
export interface Patch {
  name: string;
  description: string;
  /** the race it fixes */
  race: string;
  /** counterexamples/findings/ files of that race: each reproduces on its profile and not with the patch */
  findings: string[];
  switches: Partial<Switches>;
}

export const PATCHES: Record<string, Patch> = {
  'contig-isolate-fail-return': {
    name: 'contig-isolate-fail-return',
    description: 'alloc_contig_range returns when start_isolate_page_range fails (as v5.18 did) instead of `goto done`: start_isolate_page_range has already undone its own blocks, and the undo of the whole range un-isolates the blocks of the concurrent isolator it failed on.',
    race: 'the `goto done` isolation-undo race (v5.19+): a failing alloc_contig_range un-isolates the pageblocks of the isolator it raced with',
    findings: ['mainline-kernel-bug-599fdd68.json', 'mainline-kernel-bug-996ad193.json', 'mainline-freelist-counters-fd96969a.json'],
    switches: { contigIsolateFailUndo: false },
  },
  'contig-get-online-mems': {
    name: 'contig-get-online-mems',
    description: 'alloc_contig_pages holds get_online_mems() from pfn_range_valid_contig() to the end of alloc_contig_range(), so offline_and_remove_memory() cannot free the memmap of the candidate range in between.',
    race: 'alloc_contig_pages vs offline_and_remove_memory: the candidate range is checked online, then offlined and removed before start_isolate_page_range reads its memmap',
    findings: ['mainline-kernel-bug-d6a0ec83.json'],
    switches: { contigGetOnlineMems: true },
  },
  'unset-isolate-pageblock-buddy': {
    name: 'unset-isolate-pageblock-buddy',
    description: 'unset_migratetype_isolate takes the __isolate_free_page / __putback_isolated_page shortcut only for a free buddy of exactly pageblock_order; a larger one (possible when pageblock_order <= MAX_PAGE_ORDER - 2) goes through move_freepages_block_isolate, which splits it per pageblock (6.10+ hygiene code).',
    race: 'unset_migratetype_isolate re-types one pageblock of a larger free buddy and puts it back whole: it merges into a MOVABLE buddy that still spans ISOLATE pageblocks until their own undo',
    findings: ['mainline-no-cross-migratetype-merge-38d97ce0.json'],
    switches: { unsetIsolateLargeBuddy: false },
  },
  'demote-persistent-only': {
    name: 'demote-persistent-only',
    description: 'demote takes a free huge page only when the node has one beyond its surplus pages: a surplus page (e.g. one re-added after a failed vmemmap restore) is not demoted, so max_huge_pages and Surp <= Total hold.',
    race: 'demote of a free surplus page: remove_hugetlb_folio(h, folio, false) and max_huge_pages-- leave Surp > Total (persistent_huge_pages() negative) across the vmemmap restore, for good if it succeeds',
    findings: ['v5.19-and-mainline-pool-invariant-56496485.json'],
    switches: { demoteSurplus: false },
  },
};

/** A profile by name; `base+patch[+patch...]` applies patches (PATCHES) to a named profile. */
export function getProfile(name: string): Profile {
  const [baseName, ...patches] = name.split('+');
  const p = PROFILES[baseName];
  if (!p) throw new ConfigError(`unknown profile '${baseName}' (known: ${Object.keys(PROFILES).join(', ')})`);
  return patches.length ? applyPatches(p, patches) : p;
}

/** `base` with patches applied (unknown patch names are an error); a patch that changes nothing is refused too. */
export function applyPatches(base: Profile, names: string[]): Profile {
  let switches = base.switches;
  for (const n of names) {
    const patch = PATCHES[n];
    if (!patch) throw new ConfigError(`unknown patch '${n}' in profile '${[base.name, ...names].join('+')}' (known: ${Object.keys(PATCHES).join(', ')})`);
    if (!patchApplies(patch, switches)) throw new ConfigError(`patch '${n}' changes nothing on profile '${base.name}'`);
    switches = { ...switches, ...patch.switches };
  }
  // A patched buggy profile is a different kernel: it no longer promises its bug.
  return { ...base, name: [base.name, ...names].join('+'), buggy: names.length ? undefined : base.buggy, switches };
}

/** Whether a patch changes any switch of `sw`. */
export function patchApplies(patch: Patch, sw: Switches): boolean {
  return Object.entries(patch.switches).some(([k, v]) => sw[k as keyof Switches] !== v);
}

/** A profile with some switches changed (tests, scenarios, proposals never merged). */
export function withSwitches(base: string | Profile, over: Partial<Switches>, name?: string): Profile {
  const p = typeof base === 'string' ? getProfile(base) : base;
  return { ...p, name: name ?? `${p.name}+`, buggy: undefined, switches: { ...p.switches, ...over } };
}
