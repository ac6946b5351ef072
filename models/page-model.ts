/**
 * The abstract page-state machine (XState v5): what one page frame may become under each kernel
 * operation. Its events are the ops of the vocabulary (`alloc_pages`, `alloc_contig_range`,
 * `set_nr_hugepages`, ...), each carrying the abstract state the page ends in (`{type, to}`): the
 * kernel is nondeterministic from a page's point of view (the same alloc_pages may take it to the
 * pcp list or to a caller), so a transition is guarded by its target, and one event type has
 * several guarded transitions. No context, no timers, no actors: the state space is the 14 states.
 *
 * Refinement (`refines-model`, properties/refines-model.ts): after every atomic step, every pfn
 * whose abstract state changed must have taken transitions labelled with the running op. A step
 * is one kernel critical section, which may move a page several times (rmqueue_bulk refills the pcp
 * list and the caller pops it: free -> pcp -> allocated), so the check uses the closure of the
 * op's transitions (`allowedClosure`).
 *
 * What the model forbids is the point: alloc_contig_range never takes a pinned or unmovable page,
 * never hands out a page of an isolated pageblock to a migration target, never turns an in-use
 * huge page into free memory except by migrating it; nothing ever leaves or enters a hole; only
 * offline/online and virtio-mem move pages to and from `offline`.
 *
 * Kernel references: mm/page_alloc.c (rmqueue, free_unref_page, drain_all_pages),
 * mm/page_isolation.c, alloc_contig_range, mm/cma.c, mm/hugetlb.c (alloc_pool_huge_page,
 * dissolve_free_huge_page, free_huge_page, demote), mm/memory_hotplug.c (offline_pages,
 * online_pages), drivers/virtio/virtio_mem.c (fake offline). Profiles change which transitions a
 * run takes, never which are allowed: a buggy profile shows up as a forbidden transition or as a
 * property violation elsewhere.
 */
import { setup } from 'xstate';

export const PAGE_STATES = [
  'hole', 'free', 'pcp', 'isolated', 'allocated-movable', 'allocated-unmovable', 'pinned',
  'contig-taken', 'cma-taken', 'huge-free', 'huge-in-use', 'dissolved', 'offline', 'vmemmap',
] as const;
export type PageState = (typeof PAGE_STATES)[number];
export const STATE_INDEX: Record<PageState, number> = Object.fromEntries(PAGE_STATES.map((s, i) => [s, i])) as Record<PageState, number>;

type S = PageState;
const FREE: S[] = ['free', 'dissolved'];
const USER: S[] = ['allocated-movable', 'allocated-unmovable', 'pinned'];
/** where a freed page lands: buddy (free, or the ISOLATE list when its pageblock is isolated) or a pcp list */
const FREED: S[] = ['free', 'pcp', 'isolated'];

/** [from, to] pairs, as a cross product of two lists */
function x(from: S[], to: S[]): [S, S][] {
  return from.flatMap((f) => to.filter((t) => t !== f).map((t) => [f, t] as [S, S]));
}

/** Any buddy allocation: pcp refill, a pcp pop, the caller gets the page as `as`. */
function buddyAlloc(as: S[]): [S, S][] {
  return [...x(FREE, ['pcp', ...as]), ...x(['pcp'], as)];
}
/** Any free: to buddy, to the ISOLATE list, to a pcp list, and pcp bulk frees (free_pcppages_bulk). */
function buddyFree(from: S[]): [S, S][] {
  return [...x(from, FREED), ...x(['pcp'], ['free', 'isolated'])];
}
/**
 * alloc_contig_range and its users: isolate the range's pageblocks (free -> isolated, undone on
 * failure), drain pcp lists, migrate movable pages (the source is freed, the target allocated
 * outside the range), take free pages (contig-taken), hand them to the caller (`as`), dissolve or
 * migrate huge pages (v5.13 isolate_or_dissolve_huge_page; the replacement comes from buddy or the
 * pool), free the excess.
 */
function contig(as: S[]): [S, S][] {
  return [
    ...x(FREE, ['isolated', 'contig-taken', ...as, 'pcp', 'allocated-movable', 'huge-free', 'huge-in-use']),
    ...x(['isolated'], ['free', 'contig-taken', ...as]),
    ...x(['pcp'], ['free', 'isolated', 'allocated-movable']),
    ...x(['allocated-movable'], FREED),
    ...x(['contig-taken'], [...as, 'free', 'isolated', 'huge-free', 'pcp']),
    ...x(['huge-free'], ['dissolved', 'isolated', 'huge-in-use', 'contig-taken']),
    ...x(['huge-in-use'], ['dissolved', 'isolated', 'contig-taken']),
  ];
}
/**
 * A fresh huge page is prepped with a reference (alloc_fresh_huge_page: refcount 1, counted as in
 * use) and reaches the free list through put_page -> free_huge_page -> enqueue_huge_page.
 */
const FRESH_HUGE: [S, S][] = [...x(['free', 'dissolved', 'contig-taken', 'cma-taken', 'isolated'], ['huge-in-use']), ...x(['huge-in-use'], ['huge-free'])];
/** FRESH_HUGE from __alloc_pages only (alloc_buddy_huge_page): no isolated or CMA-taken source. */
const BUDDY_HUGE: [S, S][] = [...x(['free', 'dissolved', 'contig-taken'], ['huge-in-use']), ...x(['huge-in-use'], ['huge-free'])];

/** hugetlb pool growth from buddy / alloc_contig_pages / CMA, and shrinking (update_and_free_page). */
function poolResize(): [S, S][] {
  return [
    ...FRESH_HUGE,
    ...x(FREE, ['huge-free', 'isolated', 'contig-taken', 'cma-taken', 'pcp']),
    ...x(['isolated'], ['free', 'contig-taken', 'huge-free']),
    ...x(['contig-taken', 'cma-taken'], ['huge-free', 'free', 'isolated', 'dissolved']),
    ...x(['pcp'], ['free', 'isolated']),
    ...x(['allocated-movable'], FREED),
    ...x(FREE, ['allocated-movable']),
    ...x(['huge-free'], ['dissolved', 'isolated', 'pcp']),
    ...x(['huge-in-use'], ['dissolved', 'isolated']),
  ];
}

/** offline_pages: isolate, migrate or dissolve what is in use, take the free pages offline. */
const OFFLINE_PAGES: [S, S][] = [
    ...x(FREE, ['isolated', 'offline', 'allocated-movable', 'huge-free', 'huge-in-use', 'pcp']),
    ...x(['isolated'], ['free', 'offline']),
    ...x(['pcp'], ['free', 'isolated', 'allocated-movable']),
    ...x(['allocated-movable'], [...FREED, 'offline']),
    ...x(['huge-free', 'huge-in-use'], ['dissolved', 'isolated', 'offline']),
    ...x(['huge-free'], ['huge-in-use']),
  ];

/**
 * HugeTLB Vmemmap Optimisation (v5.14+): freeing or dissolving a huge page first allocates pages to
 * restore its vmemmap (hugetlb_vmemmap_restore: unmovable kernel pages), in any op that frees one.
 */
const HVO_RESTORE: [S, S][] = [...x(['free', 'dissolved', 'pcp'], ['vmemmap']), ...x(['free', 'dissolved'], ['pcp']), ...x(['vmemmap'], FREED)];
// (hugetlb_fault: alloc_surplus_huge_page's fresh page frees vmemmap (hugetlb_vmemmap_optimize),
// its Temporary free restores it.)
const FREES_HUGE = ['alloc_contig_range', 'alloc_contig_pages', 'cma_alloc', 'virtio_mem_unplug', 'set_nr_hugepages', 'hugetlb_mmap', 'hugetlb_fault', 'hugetlb_munmap', 'demote', 'offline_pages'];

/** The transitions each op allows. An op missing here is not refinement-checked (reported as such). */
export const OP_TRANSITIONS: Record<string, [S, S][]> = {
  alloc_pages: buddyAlloc(USER),
  free_pages: buddyFree(USER),
  drain_all_pages: x(['pcp'], ['free', 'isolated']),
  alloc_contig_range: contig(['contig-taken']),
  alloc_contig_pages: contig(['contig-taken']),
  free_contig_range: [...buddyFree(['contig-taken']), ...x(['contig-taken'], ['dissolved'])],
  cma_alloc: contig(['cma-taken']),
  // cma_release frees only what cma_pages_valid() finds in its area, i.e. cma_alloc's pages; a
  // refused release leaves them held without an owner (contig-taken), nothing frees those here.
  cma_release: [...buddyFree(['cma-taken']), ...x(['cma-taken'], ['dissolved', 'contig-taken'])],
  set_nr_hugepages: poolResize(),
  // gather_surplus_pages -> alloc_surplus_huge_page: non-gigantic only (hstate_is_gigantic ->
  // NULL), so buddy pages (__alloc_pages never takes MIGRATE_ISOLATE free pages), never CMA ones.
  hugetlb_mmap: [...BUDDY_HUGE, ...x(FREE, ['huge-free', 'contig-taken', 'isolated']), ...x(['contig-taken'], ['huge-free', 'free'])],
  // alloc_huge_page: a pool page (dequeue_huge_page_vma) or a fresh surplus page in use, from buddy
  // as above; an over-commit surplus page is freed Temporary: to buddy (FREE -> isolated: into an
  // isolated pageblock), or back to the pool when its vmemmap cannot be restored (v5.14+).
  hugetlb_fault: [...x(FREE, ['huge-in-use', 'contig-taken', 'isolated']), ...x(['huge-free', 'contig-taken'], ['huge-in-use']), ...x(['huge-in-use'], ['huge-free'])],
  hugetlb_munmap: [...x(['huge-in-use'], ['huge-free', 'dissolved', 'pcp', 'isolated']), ...x(['huge-free'], ['dissolved', 'pcp', 'isolated']), ...x(['pcp'], ['free', 'isolated'])],
  // demote_free_huge_page (v5.16+): the pieces are prepped as target pages and free_huge_page()d
  // (target pool, or buddy when the node has surplus pages): never a contig or CMA allocation.
  demote: [...x(['huge-free'], ['huge-in-use']), ...x(['huge-in-use'], ['huge-free', 'dissolved']), ...x(['huge-free'], ['dissolved', 'free', 'isolated', 'pcp']), ...x(['pcp'], ['free', 'isolated'])],
  offline_pages: OFFLINE_PAGES,
  // online_pages: generic_online_page frees onto the ISOLATE lists (__free_pages_core: no pcp
  // lists), then undo_isolate_page_range moves them to the MOVABLE lists.
  online_pages: [...x(['offline'], ['isolated']), ...x(['isolated'], ['free'])],
  // Fake-offline: alloc_contig_range, then PageOffline and the driver's reference; a fully
  // unplugged block is offlined and removed (offline_and_remove_memory).
  virtio_mem_unplug: [...contig(['contig-taken']), ...x(['contig-taken', 'isolated', 'free', 'dissolved'], ['offline']), ...OFFLINE_PAGES],
  // Fake-online: PageOffline cleared, then the pages are freed; removed blocks are added and onlined.
  virtio_mem_plug: [...x(['offline'], ['free', 'isolated', 'pcp', 'dissolved', 'contig-taken']), ...x(['contig-taken'], FREED), ...x(['pcp'], ['free', 'isolated']), ...x(['isolated'], ['free'])],
};

for (const op of FREES_HUGE) OP_TRANSITIONS[op] = [...OP_TRANSITIONS[op], ...HVO_RESTORE];
// remove_hugetlb_page clears HPageFreed before the page leaves the pool (update_and_free_page):
// a free huge page being removed is briefly "not free" (set_max_huge_pages shrinking,
// return_unused_surplus_pages at munmap, dissolve).
for (const op of ['set_nr_hugepages', 'hugetlb_mmap', 'hugetlb_munmap', 'hugetlb_fault']) OP_TRANSITIONS[op] = [...OP_TRANSITIONS[op], ...x(['huge-free'], ['huge-in-use']), ...x(['huge-in-use'], ['dissolved'])];

/** Boot: where a page frame starts (the machine's initial state is `boot`, left by one event). */
const BOOT_TARGETS: S[] = ['hole', 'free', 'allocated-unmovable', 'offline'];

export type PageEvent = { type: string; to: PageState };

function buildConfig(): { states: Record<string, unknown> } {
  const states: Record<string, { on: Record<string, { target: string; guard: { type: 'to'; params: { to: string } } }[]> }> = {};
  states.boot = { on: { boot: BOOT_TARGETS.map((t) => ({ target: t, guard: { type: 'to', params: { to: t } } })) } };
  for (const s of PAGE_STATES) states[s] = { on: {} };
  for (const [op, edges] of Object.entries(OP_TRANSITIONS)) {
    const seen = new Set<string>();
    for (const [f, t] of edges) {
      const key = `${f}>${t}`;
      if (seen.has(key)) continue;
      seen.add(key);
      (states[f].on[op] ??= []).push({ target: t, guard: { type: 'to', params: { to: t } } });
    }
  }
  return { states };
}

export const pageModel = setup({
  types: {} as { events: PageEvent },
  guards: {
    to: ({ event }, params: { to: string }) => event.to === params.to,
  },
}).createMachine({ id: 'page', initial: 'boot', ...(buildConfig() as object) });

/** Every (from, op, to) transition of the model, in a stable order (coverage indices). */
export interface ModelTransition {
  from: PageState;
  op: string;
  to: PageState;
}

export const MODEL_TRANSITIONS: ModelTransition[] = (() => {
  const out: ModelTransition[] = [];
  for (const s of PAGE_STATES) {
    const node = pageModel.states[s];
    for (const [op, defs] of node.transitions) {
      for (const d of defs) {
        const target = d.target?.[0]?.key as PageState | undefined;
        if (target) out.push({ from: s, op, to: target });
      }
    }
  }
  return out;
})();

const N = PAGE_STATES.length;
/** transition index per op: idx[from * N + to] (or -1) */
const DIRECT = new Map<string, Int32Array>();
/** closure per op: reach[from * N + to] = 1 when `to` is reachable from `from` by the op's transitions */
const CLOSURE = new Map<string, Uint8Array>();

for (const [i, t] of MODEL_TRANSITIONS.entries()) {
  let d = DIRECT.get(t.op);
  if (!d) DIRECT.set(t.op, (d = new Int32Array(N * N).fill(-1)));
  d[STATE_INDEX[t.from] * N + STATE_INDEX[t.to]] = i;
}
for (const [op, d] of DIRECT) {
  const r = new Uint8Array(N * N);
  for (let i = 0; i < N * N; i++) if (d[i] >= 0) r[i] = 1;
  // Floyd-Warshall on 14 states.
  for (let m = 0; m < N; m++) for (let a = 0; a < N; a++) if (r[a * N + m]) for (let b = 0; b < N; b++) if (r[m * N + b]) r[a * N + b] = 1;
  CLOSURE.set(op, r);
}

/** Is `op` modelled (refinement-checked)? */
export function isModelledOp(op: string): boolean {
  return op in OP_TRANSITIONS;
}

/** Index of the direct transition from -> to under op in MODEL_TRANSITIONS, or -1. */
export function directTransition(op: string, from: number, to: number): number {
  const d = DIRECT.get(op);
  return d ? d[from * N + to] : -1;
}

/** May a page go from `from` to `to` by one or more of op's transitions (one atomic step)? */
export function allowedClosure(op: string, from: number, to: number): boolean {
  const r = CLOSURE.get(op);
  return !!r && r[from * N + to] === 1;
}
