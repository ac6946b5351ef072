/**
 * HugeTLB pools (mm/hugetlb.c): hstates, per-node free lists and counters, pool resizing,
 * reservations and faults, free_huge_page, update_and_free_page (with HVO), dissolve, the
 * alloc_contig_range hooks (isolate_or_dissolve_huge_page / the RFC's alloc_and_dissolve), hugetlb
 * migration (unmap_and_move_huge_page, alloc_migration_target, move_hugetlb_state) and demote.
 *
 * Kernel functions modelled: enqueue_huge_page, dequeue_huge_page_node_exact, alloc_buddy_huge_page,
 * alloc_gigantic_page (hugetlb_cma then alloc_contig_pages), prep_new_huge_page /
 * __prep_account_new_huge_page, alloc_fresh_huge_page, alloc_pool_huge_page, remove_hugetlb_page,
 * add_hugetlb_page, update_and_free_page, free_huge_page, set_max_huge_pages (adjust_pool_surplus,
 * remove_pool_huge_page), hugetlb_acct_memory / gather_surplus_pages / return_unused_surplus_pages,
 * alloc_huge_page (fault), alloc_surplus_huge_page, dissolve_free_huge_page(s),
 * isolate_or_dissolve_huge_page, alloc_and_dissolve_huge_page (RFC, v5.13, v6.9 lazy),
 * isolate_huge_page / putback_active_hugetlb, unmap_and_move_huge_page, alloc_migrate_huge_page,
 * move_hugetlb_state, demote_store / demote_free_huge_page, free_gigantic_page / cma_pages_valid.
 *
 * Profile switches: hugetlbContig ('none' | 'rfc' | 'v5.13'), lazyReplacement (v6.9),
 * hugetlbMigrateThisNode (v6.9: fresh migration targets on the source node unless the migrate
 * reason allows fallback), hvo (v5.14),
 * demote ('none' | 'cma_pages_valid' | 'lost'), dissolveSurplusFix (2025).
 *
 * Locking: hugetlb_lock is a spinlock, so each H{...} section of kernel-spec §17 is one atomic
 * section here (no yield inside); resize_lock is a per-hstate Mutex held across the pool resize
 * and demote. Yields sit where the kernel drops hugetlb_lock (allocation of fresh pages, freeing to
 * buddy, the "refcount 0 but not yet enqueued" window of free_huge_page).
 *
 * STATE FOR PROPERTIES (read-only; see hugetlbState / hugetlbCounters / hugetlbPages below):
 *  - hugetlbState(k).hstates[i]: Hstate with global counters nr, free, surplus, resv, max,
 *    overcommit and nodes[j] = {id, nr, free, surplus, freeList} (freeList: heads, LIFO like the
 *    kernel's list_add/first-entry dequeue); inUse = heads of in-use pages (active or isolated);
 *    temporary = heads of Temporary migration targets (counted in nr, not in surplus).
 *  - Page states in the memmap: every hugetlb page is a compound page, head PG_head|PG_hugetlb
 *    with order = huge order, tails PG_tail with next[] = head. Free pool pages: refcount 0 and
 *    PG_hugetlb_freed. In-use pages: refcount >= 1; PG_hugetlb_migratable once the fault is
 *    complete (cleared while isolated, PG_isolated set); the content token on the head.
 *  - Every faulted page is an Allocation {kind:'hugetlb', id:`${mapping}[${index}]`, pfn: head}
 *    whose pfn follows migration; mapping.tokens[index] is the token the user wrote (no-data-loss:
 *    k.mm.token[allocation.pfn] must equal it).
 *  - Gigantic pages from a hugetlb CMA area keep their CMA bitmap bits while in the pool; demoted
 *    pieces inside the area must leave through cma_release (cma-ownership).
 *  - k.events gets 'hugetlb: ...' lines for notable outcomes (replacement failures, HVO failures).
 */
import type { Kernel } from './machine.js';
import type { MigrateReason } from './migrate.js';
import { Mutex, mutexLock, mutexUnlock, type KGen, type Lock, type YieldPoint } from './sched.js';
import { allocFromZonelist, clearFrames, clearPage, freePages, thisNodeZonelist, zonelist } from './page_alloc.js';
import {
  ENOMEM, EBUSY, KernelBug, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, PG_head, PG_hugetlb, PG_hugetlb_freed,
  PG_hugetlb_migratable, PG_hugetlb_temporary, PG_isolated, PG_tail, PG_valid, PG_vmemmap_optimized,
} from './types.js';
import { NIL } from './memmap.js';
import { addUnordered, fingerprintPart, intern, type Hasher } from './fingerprint.js';

/** A hugepage_freelists[node] list: LIFO as the kernel's list_move + first-entry dequeue. */
export class HList {
  private readonly nxt = new Map<number, number>();
  private readonly prv = new Map<number, number>();
  head = -1;
  size = 0;

  addHead(p: number): void {
    this.nxt.set(p, this.head);
    this.prv.set(p, -1);
    if (this.head >= 0) this.prv.set(this.head, p);
    this.head = p;
    this.size++;
  }

  has(p: number): boolean {
    return this.nxt.has(p);
  }

  del(p: number): void {
    const n = this.nxt.get(p);
    const pr = this.prv.get(p);
    if (n === undefined || pr === undefined) throw new KernelBug(`hugetlb: pfn ${p} is not on the free list`);
    if (pr >= 0) this.nxt.set(pr, n);
    else this.head = n;
    if (n >= 0) this.prv.set(n, pr);
    this.nxt.delete(p);
    this.prv.delete(p);
    this.size--;
  }

  *[Symbol.iterator](): Generator<number> {
    for (let p = this.head; p >= 0; p = this.nxt.get(p)!) yield p;
  }
}

export interface HNode {
  id: number;
  nr: number;
  free: number;
  surplus: number;
  freeList: HList;
}

export class Hstate {
  nr = 0;
  free = 0;
  surplus = 0;
  resv = 0;
  max = 0;
  overcommit = 0;
  readonly nodes: HNode[];
  /** hugepage_activelist plus pages isolated for migration */
  readonly inUse = new Set<number>();
  /** Temporary migration targets / over-limit surplus pages not yet freed */
  readonly temporary = new Set<number>();
  /** pages allocated as surplus (informational: the kernel only counts surplus per node) */
  readonly surplusPages = new Set<number>();
  nextNidToAlloc = 0;
  nextNidToFree = 0;
  readonly resizeLock: Mutex;

  constructor(readonly idx: number, readonly name: string, readonly order: number, readonly gigantic: boolean, nodeIds: number[]) {
    this.nodes = nodeIds.map((id) => ({ id, nr: 0, free: 0, surplus: 0, freeList: new HList() }));
    this.resizeLock = new Mutex(`resize_lock:${name}`);
  }

  get persistent(): number {
    return this.nr - this.surplus;
  }

  nodeIdx(id: number): number {
    const i = this.nodes.findIndex((n) => n.id === id);
    if (i < 0) throw new KernelBug(`hugetlb: no node ${id}`);
    return i;
  }
}

export interface HMapping {
  id: string;
  h: Hstate;
  pages: number;
  /** reservations taken at mmap and not yet consumed by a fault */
  resv: number;
  /** allocation handle per index (0: not faulted) */
  handles: number[];
  /** the content token written at fault, per index */
  tokens: number[];
}

export interface HugetlbState {
  hstates: Hstate[];
  mappings: Map<string, HMapping>;
  /** cfg.cma index of the hugetlb_cma area per node id */
  cmaArea: Map<number, number>;
  /** order-0 pages holding restored vmemmap (HVO), owned by '@vmemmap' */
  vmemmap: number[];
  vmemmapOwner: number;
  seq: number;
  /**
   * Pages between "refcount 0" and enqueue_huge_page (the free path has not taken hugetlb_lock
   * yet): the thread that will enqueue holds this. The kernel's retriers (dissolve, alloc_and_dissolve)
   * cond_resched() and look again; here they wait until that thread has enqueued the page, which is
   * what cond_resched achieves on a real machine (the window is a few instructions).
   * A handful at most, looked up by head: a Map would do, but every delete of its last entry
   * reallocates its table, and most marks are cleared right after one yield.
   */
  pendingEnqueue: PendingEnqueue[];
}

export function hugetlbState(k: Kernel): HugetlbState {
  const s = k.ext.hugetlb as HugetlbState | undefined;
  if (!s) throw new KernelBug('hugetlb is not installed');
  return s;
}

export function hstateByName(k: Kernel, name: string): Hstate | undefined {
  return hugetlbState(k).hstates.find((h) => h.name === name);
}

/** page_hstate(): the hstate of a hugetlb head (by its compound order). */
export function pageHstate(k: Kernel, head: number): Hstate {
  const o = k.mm.order[head];
  const h = hugetlbState(k).hstates.find((x) => x.order === o);
  if (!h) throw new KernelBug(`hugetlb: pfn ${head} has order ${o}, no such hstate`);
  return h;
}

export function isHugetlbHead(k: Kernel, pfn: number): boolean {
  return (k.mm.flags[pfn] & (PG_hugetlb | PG_head)) === (PG_hugetlb | PG_head);
}

/** PageHuge(): any page of a hugetlb compound page. */
export function pageHuge(k: Kernel, pfn: number): boolean {
  return isHugetlbHead(k, k.mm.compoundHead(pfn));
}

function pageNid(k: Kernel, pfn: number): number {
  const z = k.zoneOf(pfn);
  if (!z) throw new KernelBug(`hugetlb: pfn ${pfn} outside every zone`);
  return z.node;
}

// ---------------------------------------------------------------------------------------------
// Counters and views (read-only, for meminfo, sysfs, properties and the JSON outcome).

export interface HugetlbNodeCounters { node: number; nr: number; free: number; surplus: number }
export interface HugetlbCounters {
  name: string;
  order: number;
  nr: number;
  free: number;
  surplus: number;
  resv: number;
  max: number;
  overcommit: number;
  nodes: HugetlbNodeCounters[];
}

export function hugetlbCounters(k: Kernel): HugetlbCounters[] {
  return hugetlbState(k).hstates.map((h) => ({
    name: h.name, order: h.order, nr: h.nr, free: h.free, surplus: h.surplus, resv: h.resv, max: h.max,
    overcommit: h.overcommit, nodes: h.nodes.map((n) => ({ node: n.id, nr: n.nr, free: n.free, surplus: n.surplus })),
  }));
}

export type HugePageState = 'free' | 'in-use' | 'surplus' | 'temporary';
export interface HugePageView { hstate: string; pfn: number; node: number; state: HugePageState }

/** Every huge page the pools account, ordered by hstate then pfn ("hugepages" in run --json). */
export function hugetlbPages(k: Kernel): HugePageView[] {
  const out: HugePageView[] = [];
  for (const h of hugetlbState(k).hstates) {
    const rows: HugePageView[] = [];
    for (const n of h.nodes) for (const p of n.freeList) rows.push({ hstate: h.name, pfn: p, node: n.id, state: 'free' });
    for (const p of h.inUse) {
      const st: HugePageState = h.temporary.has(p) ? 'temporary' : h.surplusPages.has(p) ? 'surplus' : 'in-use';
      rows.push({ hstate: h.name, pfn: p, node: pageNid(k, p), state: st });
    }
    rows.sort((a, b) => a.pfn - b.pfn);
    out.push(...rows);
  }
  return out;
}

/** sysfs /sys/kernel/mm/hugepages/hugepages-<size>kB/* */
export function hugepagesSysfs(k: Kernel): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const h of hugetlbState(k).hstates) {
    out[`hugepages-${(1 << h.order) * 4}kB`] = {
      nr_hugepages: h.nr, free_hugepages: h.free, resv_hugepages: h.resv,
      surplus_hugepages: h.surplus, nr_overcommit_hugepages: h.overcommit,
    };
  }
  return out;
}

function fingerprint(k: Kernel): string {
  const s = hugetlbState(k);
  // (the round-robin node pointers too: two pools alike but for them grow on different nodes)
  const parts = s.hstates.map((h) => `${h.name}:${h.nr},${h.free},${h.surplus},${h.resv},${h.max},${h.overcommit},${h.nextNidToAlloc},${h.nextNidToFree}`
    + `|${h.nodes.map((n) => `${n.nr}/${n.free}/${n.surplus}[${[...n.freeList].join(',')}]`).join(';')}`
    + `|u${[...h.inUse].sort((a, b) => a - b).join(',')}|t${[...h.temporary].sort((a, b) => a - b).join(',')}`);
  const maps = [...s.mappings.values()].map((m) => `${m.id}:${m.resv}:${m.handles.join(',')}`).sort();
  return `hugetlb{${parts.join(' ')} maps{${maps.join(' ')}}}`;
}

/** What fingerprint() describes, fed to a hasher (no string built): sets and maps unordered, lists in order. */
function hashFingerprint(k: Kernel, fp: Hasher): void {
  const s = hugetlbState(k);
  for (const h of s.hstates) {
    fp.add(h.nr);
    fp.add(h.free);
    fp.add(h.surplus);
    fp.add(h.resv);
    fp.add(h.max);
    fp.add(h.overcommit);
    fp.add(h.nextNidToAlloc);
    fp.add(h.nextNidToFree);
    for (const n of h.nodes) {
      fp.add(n.nr);
      fp.add(n.free);
      fp.add(n.surplus);
      fp.add(n.freeList.size);
      if (n.freeList.size > 0) for (const p of n.freeList) fp.add(p);
    }
    addUnordered(fp, h.inUse, addPfn);
    addUnordered(fp, h.temporary, addPfn);
  }
  addUnordered(fp, s.mappings, addMapping);
}

function addPfn(e: Hasher, pfn: number): void {
  e.add(pfn);
}

function addMapping(e: Hasher, m: HMapping): void {
  e.add(intern(m.id));
  e.add(m.resv);
  e.add(m.handles.length);
  for (const x of m.handles) e.add(x);
}

// ---------------------------------------------------------------------------------------------
// Compound pages and pool lists (each a piece of one hugetlb_lock section).

/** prep_compound_page + prep_new_huge_page: the flags of a fresh hugetlb page (refcount 0). */
function prepCompoundHuge(k: Kernel, head: number, order: number): void {
  const mm = k.mm;
  const end = head + (1 << order);
  mm.flags[head] = (mm.flags[head] & PG_valid) | PG_head | PG_hugetlb | (k.sw.hvo ? PG_vmemmap_optimized : 0);
  mm.order[head] = order;
  mm.refcount[head] = 0;
  mm.owner[head] = 0;
  mm.token[head] = 0;
  mm.next[head] = NIL;
  mm.setFlagsRange(head + 1, end, PG_valid, PG_tail);
  mm.next.fill(head, head + 1, end);
  mm.refcount.fill(0, head + 1, end);
  mm.owner.fill(0, head + 1, end);
  mm.token.fill(0, head + 1, end);
}

/** enqueue_huge_page(): refcount must be 0. */
function enqueueHugePage(k: Kernel, h: Hstate, head: number): void {
  if (k.mm.refcount[head] !== 0) throw new KernelBug(`enqueue_huge_page: pfn ${head} has refcount ${k.mm.refcount[head]}`);
  const n = h.nodes[h.nodeIdx(pageNid(k, head))];
  n.freeList.addHead(head);
  n.free++;
  h.free++;
  k.mm.flags[head] |= PG_hugetlb_freed;
  h.inUse.delete(head);
  h.surplusPages.delete(head);
}

/**
 * The lock of one page of pendingEnqueue, held by the thread that will enqueue it. Its name (a
 * prototype getter: snapshot.ts copies own fields only) is made when a waiter's step is labelled:
 * most are released before anyone waits.
 */
class PendingEnqueue implements Lock {
  constructor(readonly head: number, public owner: number) {}

  get name(): string {
    return `HPageFreed:${this.head}`;
  }
}

/** The page will be enqueued by the current thread after a yield (see pendingEnqueue). */
function markPendingEnqueue(k: Kernel, head: number): void {
  const m = new PendingEnqueue(head, k.current);
  const pending = hugetlbState(k).pendingEnqueue;
  const i = pendingIndex(pending, head);
  if (i < 0) pending.push(m);
  else pending[i] = m;
}

function clearPendingEnqueue(k: Kernel, head: number): void {
  const pending = hugetlbState(k).pendingEnqueue;
  const i = pendingIndex(pending, head);
  if (i < 0) return;
  pending[i].owner = -1;
  // (the last one takes its place: lookups are by head, the order is nobody's)
  pending[i] = pending[pending.length - 1];
  pending.length--;
}

/** cond_resched() of a retrier waiting for a page to be enqueued. */
function waitForEnqueue(k: Kernel, head: number, label: string): YieldPoint {
  const pending = hugetlbState(k).pendingEnqueue;
  const i = pendingIndex(pending, head);
  return i >= 0 && pending[i].owner !== k.current ? pending[i] : label;
}

/** The index of `head`'s entry in pendingEnqueue, or -1. */
function pendingIndex(pending: PendingEnqueue[], head: number): number {
  for (let i = 0; i < pending.length; i++) if (pending[i].head === head) return i;
  return -1;
}

/** dequeue_huge_page_node_exact(): first free page of the node, refcount 1, on the active list. */
function dequeueHugePageNode(k: Kernel, h: Hstate, ni: number): number {
  const n = h.nodes[ni];
  let p = n.freeList.head;
  if (k.sw.hugetlbDequeueSkipsIsolated) {
    for (const q of n.freeList) if (!k.pb.isIsolated(q)) {
      p = q;
      break;
    }
    if (p >= 0 && k.pb.isIsolated(p)) p = -1;
  }
  if (p < 0) return -1;
  n.freeList.del(p);
  n.free--;
  h.free--;
  k.mm.flags[p] &= ~PG_hugetlb_freed;
  k.mm.refcount[p] = 1;
  h.inUse.add(p);
  return p;
}

/**
 * dequeue_huge_page_nodemask(): the preferred node first, then the others in order; with a node
 * mask (memory offline's), only the nodes in it.
 */
function dequeueHugePageNodemask(k: Kernel, h: Hstate, prefNid: number, thisNodeOnly = false, nmask?: readonly number[]): number {
  const n = h.nodes.length;
  let pi = 0;
  while (pi < n && h.nodes[pi].id !== prefNid) pi++;
  if (pi === n) pi = -1;
  // The j-th node tried: the preferred one (node 0 without one), then the others in order.
  const tries = thisNodeOnly ? Math.min(1, n) : n;
  for (let j = 0; j < tries; j++) {
    const i = j === 0 ? Math.max(pi, 0) : pi >= 0 && j <= pi ? j - 1 : j;
    if (nmask && !nmask.includes(h.nodes[i].id)) continue;
    const p = dequeueHugePageNode(k, h, i);
    if (p >= 0) return p;
  }
  return -1;
}

/** __prep_account_new_huge_page() */
function accountNewHugePage(h: Hstate, nid: number): void {
  h.nr++;
  h.nodes[h.nodeIdx(nid)].nr++;
}

/** remove_hugetlb_page(): off whichever list, counters down (per node too). */
function removeHugetlbPage(k: Kernel, h: Hstate, head: number, adjustSurplus: boolean): void {
  const n = h.nodes[h.nodeIdx(pageNid(k, head))];
  if (k.mm.flags[head] & PG_hugetlb_freed) {
    n.freeList.del(head);
    n.free--;
    h.free--;
    k.mm.flags[head] &= ~PG_hugetlb_freed;
  }
  if (adjustSurplus) {
    h.surplus--;
    n.surplus--;
  }
  h.nr--;
  n.nr--;
  h.inUse.delete(head);
  h.temporary.delete(head);
  h.surplusPages.delete(head);
}

/** add_hugetlb_page(): undo of a removal when the vmemmap cannot be restored. */
function addHugetlbPage(k: Kernel, h: Hstate, head: number, adjustSurplus: boolean): void {
  const n = h.nodes[h.nodeIdx(pageNid(k, head))];
  h.nr++;
  n.nr++;
  if (adjustSurplus) {
    h.surplus++;
    n.surplus++;
  }
  k.mm.refcount[head] = 0;
  k.mm.flags[head] |= PG_hugetlb | PG_vmemmap_optimized;
  enqueueHugePage(k, h, head);
  if (adjustSurplus) h.surplusPages.add(head);
}

// ---------------------------------------------------------------------------------------------
// HVO: the vmemmap of a huge page is given back at prep and must be re-allocated before the page
// can go back to buddy (v5.14+). Restored vmemmap pages are unmovable kernel pages ('@vmemmap').

function vmemmapPages(h: Hstate): number {
  // struct page is 64 bytes: 2^order * 64 / 4096 vmemmap pages, one kept (later kernels).
  return Math.max(1, ((1 << h.order) >> 6) - 1);
}

/** hugetlb_vmemmap_restore(): allocate the vmemmap pages from buddy (any zone of the node). */
function vmemmapRestore(k: Kernel, h: Hstate, head: number): boolean {
  if (!(k.mm.flags[head] & PG_vmemmap_optimized)) return true;
  const s = hugetlbState(k);
  const need = vmemmapPages(h);
  const nid = pageNid(k, head);
  const got: number[] = [];
  const zl = zonelist(k, { order: 0, migratetype: MIGRATE_UNMOVABLE, node: nid });
  for (let i = 0; i < need; i++) {
    const p = allocFromZonelist(k, zl, { order: 0, migratetype: MIGRATE_UNMOVABLE });
    if (p < 0) break;
    k.mm.refcount[p] = 1;
    k.mm.owner[p] = s.vmemmapOwner;
    k.mm.flags[p] = (k.mm.flags[p] & PG_valid);
    got.push(p);
  }
  if (got.length < need) {
    for (const p of got) vmemmapFreeOne(k, p);
    return false;
  }
  s.vmemmap.push(...got);
  k.mm.flags[head] &= ~PG_vmemmap_optimized;
  return true;
}

function vmemmapFreeOne(k: Kernel, p: number): void {
  clearPage(k, p, 0);
  freePages(k, p, 0);
}

/** hugetlb_vmemmap_optimize(): a new HVO page frees its vmemmap (those we restored earlier). */
function vmemmapOptimize(k: Kernel, h: Hstate): void {
  if (!k.sw.hvo) return;
  const s = hugetlbState(k);
  for (let i = vmemmapPages(h); i > 0 && s.vmemmap.length > 0; i--) vmemmapFreeOne(k, s.vmemmap.pop()!);
}

// ---------------------------------------------------------------------------------------------
// Creating pool pages.

/** alloc_buddy_huge_page(): one zone->lock section; __GFP_THISNODE for pool pages. */
function allocBuddyHugePage(k: Kernel, h: Hstate, nid: number, thisNode: boolean, nmask?: readonly number[]): number {
  // htlb_alloc_mask: movable for migratable non-gigantic hstates (ZONE_MOVABLE allowed).
  const req = { order: h.order, migratetype: MIGRATE_MOVABLE, node: nid };
  let zl = thisNode ? thisNodeZonelist(k, nid, true) : zonelist(k, req);
  if (nmask) zl = zl.filter((z) => nmask.includes(z.node));
  return allocFromZonelist(k, zl, req);
}

/**
 * alloc_gigantic_page(): the node's hugetlb_cma area first, then alloc_contig_pages. This is where
 * the alloc_contig_range <-> hugetlb cycle closes (k.hooks, wired at construction).
 */
function* allocGiganticPage(k: Kernel, h: Hstate, nid: number): KGen<number> {
  const s = hugetlbState(k);
  const nr = 1 << h.order;
  const id = `@hugetlb:${h.name}:${s.seq++}`;
  const area = s.cmaArea.get(nid);
  let pfn = -1;
  if (area !== undefined && k.hooks.cmaAlloc) pfn = yield* k.hooks.cmaAlloc(k, area, nr, h.order, id);
  if (pfn < 0 && k.hooks.allocContigPages) pfn = yield* k.hooks.allocContigPages(k, nr, nid, id);
  if (pfn < 0) return -1;
  // The pages now belong to hugetlb, not to the contig caller's record.
  const al = k.lookup(id);
  if (al) k.dropAllocation(al.handle);
  return pfn;
}

/**
 * alloc_fresh_huge_page(): allocate, prep (HVO), account (nr++). The page is not on a list and has
 * refcount 0 (6.1 freezes it; earlier kernels put_page it into the pool right away: same state).
 */
function* allocFreshHugePage(k: Kernel, h: Hstate, nid: number, thisNode: boolean, nmask?: readonly number[]): KGen<number> {
  const pfn = h.gigantic ? yield* allocGiganticPage(k, h, nid) : allocBuddyHugePage(k, h, nid, thisNode, nmask);
  if (pfn < 0) return -1;
  prepCompoundHuge(k, pfn, h.order);
  vmemmapOptimize(k, h);
  accountNewHugePage(h, pageNid(k, pfn));
  return pfn;
}

/**
 * next_node_allowed(): the node index after `ni` (wrapping) whose node is allowed. After a write
 * to one node's nr_hugepages the mask holds that node only, so the pointer stays on it.
 */
function nextAllowed(h: Hstate, ni: number, allowed: number[]): number {
  const n = h.nodes.length;
  for (let i = 1; i <= n; i++) if (allowed.includes(h.nodes[(ni + i) % n].id)) return (ni + i) % n;
  return (ni + 1) % n;
}

/**
 * alloc_pool_huge_page(): first node that gives a page wins; the page enters the free pool. The
 * nodes are tried in for_each_node_mask_to_alloc's round robin from where the pointer was at the
 * start (it moves as they are tried).
 */
function* allocPoolHugePage(k: Kernel, h: Hstate, allowed: number[]): KGen<number> {
  const n = h.nodes.length;
  const first = h.nextNidToAlloc;
  for (let i = 0; i < n; i++) {
    const ni = (first + i) % n;
    if (!allowed.includes(h.nodes[ni].id)) continue;
    h.nextNidToAlloc = nextAllowed(h, ni, allowed);
    const p = yield* allocFreshHugePage(k, h, h.nodes[ni].id, true);
    if (p >= 0) {
      // prep_new_huge_page drops hugetlb_lock before put_page -> free_huge_page enqueues it.
      markPendingEnqueue(k, p);
      yield 'alloc_pool_huge_page';
      clearPendingEnqueue(k, p);
      enqueueHugePage(k, h, p);
      return p;
    }
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Back to buddy.

/** destroy the compound page: every pfn a bare page with refcount 1 (as free_contig_range expects). */
function destroyCompound(k: Kernel, head: number, order: number): void {
  clearFrames(k.mm, head, head + (1 << order), 1);
}

/** free_contig_range() equivalent: refcount-1 pages back to buddy, max-order chunks. */
function freeContigPages(k: Kernel, pfn: number, nr: number): void {
  const end = pfn + nr;
  while (pfn < end) {
    let o = Math.min(k.maxOrder, 31 - Math.clz32(pfn & -pfn || 1 << 30));
    while (pfn + (1 << o) > end) o--;
    k.mm.refcount.fill(0, pfn, pfn + (1 << o));
    freePages(k, pfn, o);
    pfn += 1 << o;
  }
}

/** cma_pages_valid() for the node's hugetlb CMA area. */
function hugetlbCmaArea(k: Kernel, pfn: number, nr: number): number {
  const s = hugetlbState(k);
  const area = s.cmaArea.get(pageNid(k, pfn));
  if (area === undefined) return -1;
  const a = k.cfg.cma[area];
  return pfn >= a.basePfn && pfn + nr <= a.basePfn + a.count ? area : -1;
}

/**
 * The buddy-freeing half of update_and_free_page(): gigantic pages go back through
 * free_gigantic_page (cma_release, else free_contig_range); v5.16 also sends a non-gigantic page
 * inside the hugetlb CMA area (a demoted piece) through cma_release; the buggy `lost` profile frees
 * such a piece to buddy although the CMA bitmap still owns it.
 */
function freeHugeToBuddy(k: Kernel, h: Hstate, head: number): void {
  const nr = 1 << h.order;
  const area = hugetlbCmaArea(k, head, nr);
  const viaCma = area >= 0 && (h.gigantic || k.sw.demote === 'cma_pages_valid');
  if (h.gigantic || viaCma) {
    destroyCompound(k, head, h.order);
    if (viaCma && k.hooks.cmaRelease && k.hooks.cmaRelease(k, area, head, nr)) return;
    freeContigPages(k, head, nr);
    return;
  }
  clearPage(k, head, h.order);
  freePages(k, head, h.order);
}

/**
 * update_and_free_page() for a page already removed from the pool: HVO restore first (v5.14+);
 * when that fails the page is re-added to the pool as a surplus page (the pool grows).
 * Returns false when the page stayed in the pool.
 */
function updateAndFreePage(k: Kernel, h: Hstate, head: number): boolean {
  if (!vmemmapRestore(k, h, head)) {
    addHugetlbPage(k, h, head, true);
    k.events.push(`hugetlb: vmemmap restore failed for pfn ${head}, kept as surplus`);
    return false;
  }
  freeHugeToBuddy(k, h, head);
  return true;
}

/**
 * free_huge_page(): the last reference was dropped (refcount is 0). The lockless window before
 * hugetlb_lock is taken is a yield point: the page is refcount 0 but not HPageFreed there.
 */
export function* freeHugePage(k: Kernel, head: number): KGen<void> {
  markPendingEnqueue(k, head);
  yield 'free_huge_page';
  clearPendingEnqueue(k, head);
  const h = pageHstate(k, head);
  const mm = k.mm;
  mm.flags[head] &= ~(PG_hugetlb_migratable | PG_isolated);
  mm.owner[head] = 0;
  mm.token[head] = 0;
  const n = h.nodes[h.nodeIdx(pageNid(k, head))];
  if (mm.flags[head] & PG_hugetlb_temporary) {
    mm.flags[head] &= ~PG_hugetlb_temporary;
    removeHugetlbPage(k, h, head, false);
  } else if (n.surplus > 0) {
    removeHugetlbPage(k, h, head, true);
  } else {
    enqueueHugePage(k, h, head);
    return;
  }
  yield 'update_and_free_page';
  updateAndFreePage(k, h, head);
}

/** put_page() on a hugetlb head: drop one reference, free_huge_page on the last. */
export function* putHugePage(k: Kernel, head: number): KGen<void> {
  if (--k.mm.refcount[head] === 0) yield* freeHugePage(k, head);
}

// ---------------------------------------------------------------------------------------------
// set_max_huge_pages (write to nr_hugepages).

/** adjust_pool_surplus(): node round-robin among allowed nodes; false if no node qualifies. */
function adjustPoolSurplus(h: Hstate, allowed: number[], delta: 1 | -1): boolean {
  const n = h.nodes.length;
  const start = delta < 0 ? h.nextNidToAlloc : h.nextNidToFree;
  for (let i = 0; i < n; i++) {
    const nd = h.nodes[(start + i) % n];
    if (!allowed.includes(nd.id)) continue;
    if (delta < 0 ? nd.surplus > 0 : nd.surplus < nd.nr) {
      nd.surplus += delta;
      h.surplus += delta;
      if (delta < 0) h.nextNidToAlloc = nextAllowed(h, (start + i) % n, allowed);
      else h.nextNidToFree = nextAllowed(h, (start + i) % n, allowed);
      return true;
    }
  }
  return false;
}

/**
 * remove_pool_huge_page(): a free page from the next node to free (round-robin); returning unused
 * surplus pages (acct_surplus) looks only at nodes that have surplus pages.
 */
function removePoolHugePage(k: Kernel, h: Hstate, allowed: number[], accSurplus: boolean): number {
  const n = h.nodes.length;
  for (let i = 0; i < n; i++) {
    const ni = (h.nextNidToFree + i) % n;
    const nd = h.nodes[ni];
    if (!allowed.includes(nd.id) || (accSurplus && nd.surplus === 0) || nd.freeList.head < 0) continue;
    h.nextNidToFree = nextAllowed(h, ni, allowed);
    const p = nd.freeList.head;
    removeHugetlbPage(k, h, p, accSurplus);
    return p;
  }
  return -1;
}

function allNodes(k: Kernel): number[] {
  return k.cfg.nodes.map((n) => n.id);
}

export interface ResizeResult { result: string; nr: number }

/** set_max_huge_pages(h, count, nid): under resize_lock; returns the achieved nr_huge_pages. */
export function* setMaxHugePages(k: Kernel, h: Hstate, count: number, nid?: number): KGen<ResizeResult> {
  yield* mutexLock(k, h.resizeLock);
  try {
    const allowed = nid === undefined ? allNodes(k) : [nid];
    if (nid !== undefined) {
      // A per-node write is translated into a global target.
      const nd = h.nodes[h.nodeIdx(nid)];
      count += h.persistent - (nd.nr - nd.surplus);
    }
    while (h.surplus > 0 && count > h.persistent) if (!adjustPoolSurplus(h, allowed, -1)) break;
    while (count > h.persistent) {
      yield 'set_max_huge_pages:alloc';
      const p = yield* allocPoolHugePage(k, h, allowed);
      if (p < 0) break;
    }
    let minCount = h.resv + h.nr - h.free;
    minCount = Math.max(count, minCount);
    const toFree: number[] = [];
    while (minCount < h.persistent) {
      const p = removePoolHugePage(k, h, allowed, false);
      if (p < 0) break;
      toFree.push(p);
    }
    if (toFree.length) {
      yield 'set_max_huge_pages:free';
      for (const p of toFree) updateAndFreePage(k, h, p);
    }
    while (count < h.persistent) if (!adjustPoolSurplus(h, allowed, 1)) break;
    h.max = h.persistent;
    return { result: '0', nr: h.nr };
  } finally {
    mutexUnlock(h.resizeLock);
  }
}

// ---------------------------------------------------------------------------------------------
// Surplus, reservations, faults.

/** alloc_surplus_huge_page(): within nr_overcommit_hugepages; never gigantic. */
function* allocSurplusHugePage(k: Kernel, h: Hstate, nid: number): KGen<number> {
  if (h.gigantic || h.surplus >= h.overcommit) return -1;
  yield 'alloc_surplus_huge_page';
  const p = yield* allocFreshHugePage(k, h, nid, false);
  if (p < 0) return -1;
  k.mm.refcount[p] = 1;
  h.inUse.add(p);
  if (h.surplus >= h.overcommit) {
    // Over the limit meanwhile: mark Temporary and free it again.
    k.mm.flags[p] |= PG_hugetlb_temporary;
    h.temporary.add(p);
    yield* putHugePage(k, p);
    return -1;
  }
  const nd = h.nodes[h.nodeIdx(pageNid(k, p))];
  h.surplus++;
  nd.surplus++;
  h.surplusPages.add(p);
  return p;
}

/**
 * gather_surplus_pages() + hugetlb_acct_memory(+delta) (6.1 mm/hugetlb.c:2578-2660). hugetlb_lock
 * is dropped while surplus pages are allocated, so `needed` is recomputed against free_huge_pages
 * + allocated afterwards: pages another thread freed into the pool meanwhile count, a failed
 * allocation fails the reservation only if pages are still needed, and of the pages gathered
 * only as many as needed enter the pool (the last allocated: list_add puts each at the head);
 * the extras go back to buddy.
 */
function* hugetlbAcctMemory(k: Kernel, h: Hstate, delta: number): KGen<string> {
  let needed = h.resv + delta - h.free;
  if (needed <= 0) {
    h.resv += delta;
    return '0';
  }
  // surplus_list, head first
  const list: number[] = [];
  let allocOk = true;
  do {
    for (let i = 0; i < needed; i++) {
      const p = yield* allocSurplusHugePage(k, h, k.zones[0].node);
      if (p < 0) {
        allocOk = false;
        break;
      }
      list.unshift(p);
    }
    needed = h.resv + delta - (h.free + list.length);
  } while (needed > 0 && allocOk);
  let ret = ENOMEM;
  let keep = 0;
  if (needed <= 0) {
    // The whole reservation is committed here, before the pages are added, so that no other
    // thread takes them meanwhile.
    keep = needed + list.length;
    h.resv += delta;
    ret = '0';
    // The gathered pages enter the free pool: refcount dropped to 0 first (e558464be982).
    for (const p of list.slice(0, keep)) {
      k.mm.refcount[p] = 0;
      enqueueHugePage(k, h, p);
    }
  }
  // free: (hugetlb_lock dropped) what is left of the list goes back to buddy
  for (const p of list.slice(keep)) yield* putHugePage(k, p);
  return ret;
}

/** return_unused_surplus_pages(): release reservations, free surplus pages no longer needed. */
function* returnUnusedSurplusPages(k: Kernel, h: Hstate, unused: number): KGen<void> {
  h.resv -= unused;
  let n = Math.min(unused, h.surplus);
  const toFree: number[] = [];
  while (n-- > 0) {
    const p = removePoolHugePage(k, h, allNodes(k), true);
    if (p < 0) break;
    toFree.push(p);
  }
  if (!toFree.length) return;
  yield 'return_unused_surplus_pages';
  for (const p of toFree) updateAndFreePage(k, h, p);
}

/** hugetlbfs mmap: reserve `pages` huge pages (hugetlb_reserve_pages). */
export function* hugetlbMmap(k: Kernel, id: string, h: Hstate, pages: number): KGen<string> {
  const s = hugetlbState(k);
  if (s.mappings.has(id) || k.lookup(id)) return '-EINVAL';
  const r = yield* hugetlbAcctMemory(k, h, pages);
  if (r !== '0') return r;
  s.mappings.set(id, { id, h, pages, resv: pages, handles: new Array(pages).fill(0), tokens: new Array(pages).fill(0) });
  return '0';
}

export interface FaultResult { result: string; pfn?: number; token?: number }

/**
 * hugetlb_fault -> hugetlb_no_page -> alloc_huge_page: consume the index's reservation (dequeue a
 * free page), else a free unreserved page, else a surplus page within overcommit. The page is
 * in use (refcount 1) at once, but HPageMigratable only once the fault completes (after a yield).
 */
export function* hugetlbFault(k: Kernel, id: string, index: number): KGen<FaultResult> {
  const s = hugetlbState(k);
  const m = s.mappings.get(id);
  if (!m || index < 0 || index >= m.pages) return { result: '-EINVAL' };
  if (m.handles[index]) {
    const al = k.allocs.get(m.handles[index]);
    return { result: '0', pfn: al?.pfn, token: m.tokens[index] };
  }
  const h = m.h;
  const nid = k.zones[0].node;
  let p = -1;
  const reserved = m.resv > 0;
  if (reserved || h.free - h.resv > 0) p = dequeueHugePageNodemask(k, h, nid);
  if (p < 0) p = yield* allocSurplusHugePage(k, h, nid);
  if (p < 0) return { result: ENOMEM };
  // alloc_huge_page(): a reserved fault consumes its reservation whether the page came off the
  // free list or, those being unusable (isolated pageblocks), fresh from buddy (resv_huge_pages--)
  if (reserved) {
    m.resv--;
    h.resv--;
  }
  const al = k.newAllocation({ id: `${id}[${index}]`, kind: 'hugetlb', pfn: p, nrPages: 1 << h.order, order: h.order, migratetype: MIGRATE_MOVABLE, pinned: false });
  m.handles[index] = al.handle;
  k.mm.owner[p] = al.handle;
  // clear_huge_page and the page-table update run unlocked; the page is not migratable yet.
  yield 'hugetlb_no_page';
  const token = k.nextToken++;
  k.mm.token[p] = token;
  m.tokens[index] = token;
  k.mm.flags[p] |= PG_hugetlb_migratable;
  return { result: '0', pfn: p, token };
}

/** munmap of the whole mapping: drop every page, give back unused reservations. */
export function* hugetlbMunmap(k: Kernel, id: string): KGen<string> {
  const s = hugetlbState(k);
  const m = s.mappings.get(id);
  if (!m) return '-EINVAL';
  s.mappings.delete(id);
  for (let i = 0; i < m.pages; i++) {
    const al = m.handles[i] ? k.allocs.get(m.handles[i]) : undefined;
    if (!al) continue;
    k.dropAllocation(al.handle);
    k.mm.owner[al.pfn] = 0;
    yield* putHugePage(k, al.pfn);
  }
  if (m.resv > 0) yield* returnUnusedSurplusPages(k, m.h, m.resv);
  return '0';
}

// ---------------------------------------------------------------------------------------------
// Dissolve.

/**
 * dissolve_free_huge_page(): a free pool page back to buddy. 0 if the page is not hugetlb (any
 * more), -EBUSY if in use or every free page is reserved, retry while the page is refcount 0 but
 * not yet enqueued (7ffddd499ba6), -ENOMEM if the vmemmap cannot be restored (v5.14+).
 * max_huge_pages is lowered (offline shrinks the admin's target; 6.1 mm/hugetlb.c:2377-2378, also
 * for a surplus page, whose node keeps counting it as surplus), or, with the 2025 fix
 * (dissolveSurplusFix; 6.12.118 mm/hugetlb.c:2252-2256), the page is taken as surplus when its
 * node has surplus pages and max_huge_pages stays. A failed vmemmap restore undoes either.
 */
export function* dissolveFreeHugePage(k: Kernel, pfn: number): KGen<string> {
  for (;;) {
    const head = k.mm.compoundHead(pfn);
    if (!isHugetlbHead(k, head)) return '0';
    const h = pageHstate(k, head);
    const mm = k.mm;
    if (mm.refcount[head] !== 0) return EBUSY;
    if (h.free - h.resv === 0) return EBUSY;
    if (!(mm.flags[head] & PG_hugetlb_freed)) {
      yield waitForEnqueue(k, head, 'dissolve_free_huge_page:retry');
      continue;
    }
    const nd = h.nodes[h.nodeIdx(pageNid(k, head))];
    const asSurplus = k.sw.dissolveSurplusFix && nd.surplus > 0;
    removeHugetlbPage(k, h, head, asSurplus);
    if (!asSurplus) h.max--;
    yield 'dissolve_free_huge_page';
    if (!vmemmapRestore(k, h, head)) {
      // Undo: back into the pool, the admin's target as it was.
      addHugetlbPage(k, h, head, asSurplus);
      if (!asSurplus) h.max++;
      return ENOMEM;
    }
    freeHugeToBuddy(k, h, head);
    return '0';
  }
}

/** dissolve_free_huge_pages(start, end): step by the smallest hstate, stop at the first error. */
export function* dissolveFreeHugePages(k: Kernel, start: number, end: number): KGen<string> {
  const hs = hugetlbState(k).hstates;
  if (!hs.length) return '0';
  const step = 1 << Math.min(...hs.map((h) => h.order));
  for (let p = start; p < end; p += step) {
    if (!pageHuge(k, p)) continue;
    const r = yield* dissolveFreeHugePage(k, p);
    if (r !== '0') return r;
  }
  return '0';
}

// ---------------------------------------------------------------------------------------------
// Isolation for migration and the alloc_contig_range hooks.

/** isolate_huge_page(): in use, migratable, a reference taken; onto the caller's list. */
export function isolateHugePage(k: Kernel, head: number, list: number[]): boolean {
  const mm = k.mm;
  if (!isHugetlbHead(k, head) || !(mm.flags[head] & PG_hugetlb_migratable) || mm.refcount[head] === 0) return false;
  mm.refcount[head]++;
  mm.flags[head] &= ~PG_hugetlb_migratable;
  mm.flags[head] |= PG_isolated;
  list.push(head);
  return true;
}

/** putback_active_hugetlb(): migratable again, drop the isolation reference (may free it). */
export function* putbackActiveHugetlb(k: Kernel, head: number): KGen<void> {
  const mm = k.mm;
  mm.flags[head] &= ~PG_isolated;
  mm.flags[head] |= PG_hugetlb_migratable;
  yield* putHugePage(k, head);
}

/** Drop an unused replacement page: straight back to buddy, not through the pool. */
function dropNewPage(k: Kernel, h: Hstate, p: number): void {
  // It was prepped but never accounted: only the buddy free (and its HVO restore) remains.
  if (!vmemmapRestore(k, h, p)) {
    // No memory for its vmemmap: keep it as a surplus pool page.
    accountNewHugePage(h, pageNid(k, p));
    const nd = h.nodes[h.nodeIdx(pageNid(k, p))];
    h.surplus++;
    nd.surplus++;
    enqueueHugePage(k, h, p);
    h.surplusPages.add(p);
    return;
  }
  freeHugeToBuddy(k, h, p);
}

/**
 * alloc_and_dissolve_huge_page() as merged (v5.13, with v6.9's lazy allocation per
 * sw.lazyReplacement): replace a free pool page by a fresh one on the same node, accounting the
 * removal of the old and the arrival of the new in one hugetlb_lock section.
 */
export function* allocAndDissolveHugePage(k: Kernel, h: Hstate, old: number, list: number[]): KGen<string> {
  const nid = pageNid(k, old);
  let fresh = -1;
  const allocNew = (): boolean => {
    fresh = allocBuddyHugePage(k, h, nid, true);
    if (fresh < 0) return false;
    prepCompoundHuge(k, fresh, h.order);
    vmemmapOptimize(k, h);
    return true;
  };
  if (!k.sw.lazyReplacement) {
    if (!allocNew()) {
      k.events.push(`hugetlb: no replacement for free huge page ${old} on node ${nid}`);
      return ENOMEM;
    }
    yield 'alloc_and_dissolve_huge_page:allocated';
  }
  const mm = k.mm;
  let ret = '0';
  for (;;) {
    if (!isHugetlbHead(k, old)) break; // freed and dissolved under us
    if (mm.refcount[old] !== 0) {
      // Someone grabbed it: the one-time attempt to isolate it for migration instead.
      yield 'alloc_and_dissolve_huge_page:isolate';
      ret = isolateHugePage(k, old, list) ? '0' : EBUSY;
      break;
    }
    if (!(mm.flags[old] & PG_hugetlb_freed)) {
      yield waitForEnqueue(k, old, 'alloc_and_dissolve_huge_page:retry');
      continue;
    }
    if (fresh < 0) {
      yield 'alloc_and_dissolve_huge_page:alloc';
      if (!allocNew()) {
        k.events.push(`hugetlb: no replacement for free huge page ${old} on node ${nid}`);
        return ENOMEM;
      }
      continue;
    }
    removeHugetlbPage(k, h, old, false);
    accountNewHugePage(h, nid);
    enqueueHugePage(k, h, fresh);
    yield 'alloc_and_dissolve_huge_page:free_old';
    // HVO: the old page may not be freeable; it then stays as a surplus page and the range busy.
    return updateAndFreePage(k, h, old) ? '0' : EBUSY;
  }
  if (fresh >= 0) {
    yield 'alloc_and_dissolve_huge_page:drop_new';
    dropNewPage(k, h, fresh);
  }
  return ret;
}

/** isolate_or_dissolve_huge_page() (v5.13+): the compaction side of alloc_contig_range. */
export function* isolateOrDissolveHugePage(k: Kernel, pfn: number, list: number[]): KGen<string> {
  const head = k.mm.compoundHead(pfn);
  if (!isHugetlbHead(k, head)) return '0';
  const h = pageHstate(k, head);
  // Replacing a gigantic page would need alloc_contig_range itself: fenced off.
  if (h.gigantic) return ENOMEM;
  if (k.mm.refcount[head] !== 0) return isolateHugePage(k, head, list) ? '0' : EBUSY;
  return yield* allocAndDissolveHugePage(k, h, head, list);
}

/**
 * The RFC of seed 000 (isolate_migratepages_block): an in-use page is isolated for migration; a
 * free one goes to alloc_and_dissolve_huge_page, which grows the pool with alloc_pool_huge_page
 * (no gigantic fence: a gigantic replacement re-enters alloc_contig_pages) and then dissolves the
 * old page ignoring -EBUSY: if someone grabbed it meanwhile, the pool keeps the extra page.
 */
export function* rfcAllocAndDissolve(k: Kernel, pfn: number, list: number[]): KGen<string> {
  const head = k.mm.compoundHead(pfn);
  if (!isHugetlbHead(k, head)) return '0';
  const h = pageHstate(k, head);
  if (k.mm.refcount[head] !== 0) return isolateHugePage(k, head, list) ? '0' : EBUSY;
  const nid = pageNid(k, head);
  const p = yield* allocPoolHugePage(k, h, [nid]);
  if (p < 0) return EBUSY;
  yield 'alloc_and_dissolve_huge_page:dissolve';
  const r = yield* dissolveFreeHugePage(k, head);
  if (r !== '0') k.events.push(`hugetlb: rfc alloc_and_dissolve: dissolve of ${head} failed (${r}), replacement ${p} stays in the pool`);
  return r === '0' ? '0' : EBUSY;
}

// ---------------------------------------------------------------------------------------------
// Migration.

/**
 * htlb_allow_alloc_fallback() (include/linux/hugetlb.h, 6.12 l. 939): memory offline, memory
 * failure, the migration syscalls and mbind may take a fresh hugetlb migration target from another
 * node; every other reason (MR_CONTIG_RANGE here) keeps it on the preferred node.
 */
function htlbAllowAllocFallback(reason: MigrateReason): boolean {
  return reason === 'MR_MEMORY_HOTPLUG';
}

/**
 * alloc_migration_target -> alloc_huge_page_nodemask / alloc_hugetlb_folio_nodemask (6.1
 * mm/hugetlb.c:2538, 6.12 :2438): a free unreserved pool page, the preferred node first, then the
 * others (dequeue_hugetlb_folio_nodemask, whatever the reason; it leaves the free list), else a
 * fresh Temporary page from buddy (alloc_migrate_huge_page; not for gigantic hstates). With
 * sw.hugetlbMigrateThisNode (v6.9) the fresh page is __GFP_THISNODE unless
 * htlb_allow_alloc_fallback(reason): "We cannot fallback to other nodes, as we could break the
 * per-node pool". `nid` is the source page's node (both callers' mtc.nid: folio_nid of the first
 * page for offline, zone_to_nid(cc->zone) for alloc_contig_range); `nmask` is mtc.nmask (memory
 * offline: the other nodes), for the pool and the fresh page alike.
 */
function* allocMigrationTarget(k: Kernel, h: Hstate, nid: number, reason: MigrateReason, nmask?: readonly number[]): KGen<number> {
  if (h.free - h.resv > 0) {
    const p = dequeueHugePageNodemask(k, h, nid, false, nmask);
    if (p >= 0) return p;
  }
  if (h.gigantic) return -1;
  yield 'alloc_migrate_huge_page';
  const p = yield* allocFreshHugePage(k, h, nid, k.sw.hugetlbMigrateThisNode && !htlbAllowAllocFallback(reason), nmask);
  if (p < 0) return -1;
  k.mm.refcount[p] = 1;
  k.mm.flags[p] |= PG_hugetlb_temporary;
  h.temporary.add(p);
  h.inUse.add(p);
  return p;
}

/** move_hugetlb_state(): the Temporary flag and, across nodes, one unit of surplus follow the data. */
function moveHugetlbState(k: Kernel, h: Hstate, old: number, fresh: number): void {
  const mm = k.mm;
  if (!(mm.flags[fresh] & PG_hugetlb_temporary)) return;
  mm.flags[fresh] &= ~PG_hugetlb_temporary;
  h.temporary.delete(fresh);
  mm.flags[old] |= PG_hugetlb_temporary;
  h.temporary.add(old);
  const on = h.nodes[h.nodeIdx(pageNid(k, old))];
  const nn = h.nodes[h.nodeIdx(pageNid(k, fresh))];
  if (on !== nn && on.surplus > 0) {
    on.surplus--;
    nn.surplus++;
  }
  if (h.surplusPages.delete(old)) h.surplusPages.add(fresh);
}

/**
 * unmap_and_move_huge_page() for an isolated page (refcount = users + the isolation reference).
 * '0': migrated (or freed meanwhile), the old page released; '-EAGAIN': an extra user holds it
 * (retried by migrate_pages); '-ENOMEM': no target. On errors the page stays isolated.
 */
export function* migrateHugePage(k: Kernel, head: number, reason: MigrateReason = 'MR_CONTIG_RANGE', nmask?: readonly number[]): KGen<string> {
  const mm = k.mm;
  const h = pageHstate(k, head);
  if (mm.refcount[head] === 1) {
    // Only our reference is left: it was unmapped meanwhile (71a64f618be9).
    yield* putbackActiveHugetlb(k, head);
    return '0';
  }
  if (mm.refcount[head] > 2) return '-EAGAIN';
  const fresh = yield* allocMigrationTarget(k, h, pageNid(k, head), reason, nmask);
  if (fresh < 0) return ENOMEM;
  yield 'unmap_and_move_huge_page';
  if (mm.refcount[head] > 2) {
    // Grabbed while we allocated: give the target back, retry later.
    yield* putHugePage(k, fresh);
    return '-EAGAIN';
  }
  // Copy and remap: the data, the owner and the user's allocation follow the new page.
  const handle = mm.owner[head];
  mm.token[fresh] = mm.token[head];
  mm.owner[fresh] = handle;
  const al = k.allocs.get(handle);
  if (al) al.pfn = fresh;
  mm.flags[fresh] |= PG_hugetlb_migratable;
  moveHugetlbState(k, h, head, fresh);
  h.surplusPages.delete(head);
  // The old page loses its mapping and our reference: refcount 0 -> free_huge_page.
  mm.refcount[head] = 1;
  mm.owner[head] = 0;
  mm.flags[head] &= ~PG_isolated;
  yield* putHugePage(k, head);
  return '0';
}

// ---------------------------------------------------------------------------------------------
// Demote (v5.16).

function demoteTarget(k: Kernel, h: Hstate): Hstate | undefined {
  const smaller = hugetlbState(k).hstates.filter((x) => x.order < h.order).sort((a, b) => b.order - a.order);
  return smaller[0];
}

/** demote_store(1) + demote_free_huge_page(): one free page of h split into target-size pool pages. */
export function* demoteHugePage(k: Kernel, h: Hstate, nid?: number): KGen<{ result: string; demoted: number; pfn?: number }> {
  if (k.sw.demote === 'none') return { result: '-EINVAL', demoted: 0 };
  const dst = demoteTarget(k, h);
  if (!dst) return { result: '-EINVAL', demoted: 0 };
  yield* mutexLock(k, h.resizeLock);
  try {
    const allowed = nid === undefined ? allNodes(k) : [nid];
    // Patch demote-persistent-only: a free page that is surplus (free <= surplus) is not demoted;
    // the kernel takes it with remove_hugetlb_folio(.., false) and lowers max_huge_pages, so the
    // pool shows Surp > Total (persistent_huge_pages() < 0) while hugetlb_lock is dropped, for good
    // if the demote succeeds (counterexamples/findings: v5.19-and-mainline-pool-invariant).
    const surplus = k.sw.demoteSurplus ? 0 : nid === undefined ? h.surplus : h.nodes[h.nodeIdx(nid)].surplus;
    const avail = (nid === undefined ? h.free : h.nodes[h.nodeIdx(nid)].free) - h.resv - surplus;
    if (avail <= 0) return { result: '0', demoted: 0 };
    const head = removePoolHugePage(k, h, allowed, false);
    if (head < 0) return { result: '0', demoted: 0 };
    yield 'demote_free_huge_page';
    if (!vmemmapRestore(k, h, head)) {
      addHugetlbPage(k, h, head, false);
      return { result: ENOMEM, demoted: 0 };
    }
    // Larger hstate's mutex first, then the target's: set_max_huge_pages on the target cannot
    // turn the new pages into surplus meanwhile.
    yield* mutexLock(k, dst.resizeLock);
    try {
      const step = 1 << dst.order;
      for (let p = head; p < head + (1 << h.order); p += step) {
        prepCompoundHuge(k, p, dst.order);
        vmemmapOptimize(k, dst);
        accountNewHugePage(dst, pageNid(k, p));
        enqueueHugePage(k, dst, p);
      }
    } finally {
      mutexUnlock(dst.resizeLock);
    }
    h.max--;
    dst.max += 1 << (h.order - dst.order);
    return { result: '0', demoted: 1, pfn: head };
  } finally {
    mutexUnlock(h.resizeLock);
  }
}

// ---------------------------------------------------------------------------------------------
// Offline helper (David's proposal in seed 000, sw.offlineReplacesFreeHuge): replace a free huge
// page before dissolving it; warn and go on (plain dissolve) when no replacement can be had.

export function* replaceOrDissolveFreeHugePage(k: Kernel, pfn: number): KGen<string> {
  const head = k.mm.compoundHead(pfn);
  if (!isHugetlbHead(k, head)) return '0';
  const h = pageHstate(k, head);
  if (!h.gigantic && k.mm.refcount[head] === 0) {
    const r = yield* allocAndDissolveHugePage(k, h, head, []);
    if (r === '0' && !isHugetlbHead(k, head)) return '0';
    if (r === ENOMEM) k.events.push(`hugetlb: WARN offline: no replacement for huge page ${head}, dissolving (pool shrinks)`);
  }
  return yield* dissolveFreeHugePage(k, head);
}

// ---------------------------------------------------------------------------------------------

/** hugetlb_init + hugetlb_cma: hstates from the config, hooks, views. */
export function installHugetlb(k: Kernel): void {
  const nodeIds = k.cfg.nodes.map((n) => n.id);
  const hstates = k.cfg.hstates.map((c, i) => new Hstate(i, c.name, c.order, c.order > k.maxOrder, nodeIds));
  const cmaArea = new Map<number, number>();
  k.cfg.cma.forEach((a, i) => {
    if (a.hugetlbNode !== undefined && !cmaArea.has(a.hugetlbNode)) cmaArea.set(a.hugetlbNode, i);
  });
  const vm = k.newAllocation({ id: '@vmemmap', kind: 'boot', pfn: 0, nrPages: 0, order: 0, migratetype: MIGRATE_UNMOVABLE, pinned: false });
  const s: HugetlbState = { hstates, mappings: new Map(), cmaArea, vmemmap: [], vmemmapOwner: vm.handle, seq: 0, pendingEnqueue: [] };
  k.ext.hugetlb = s;
  k.hstateCounters = () => hugetlbCounters(k);
  k.fingerprintParts.push(fingerprintPart(() => fingerprint(k), { hash: (fp) => hashFingerprint(k, fp) }));
  k.hooks.freeHugePage = freeHugePage;
  k.hooks.migrateHugePage = migrateHugePage;
  const hc = k.sw.hugetlbContig;
  if (hc === 'v5.13') k.hooks.isolateOrDissolveHugePage = isolateOrDissolveHugePage;
  else if (hc === 'rfc') k.hooks.isolateOrDissolveHugePage = rfcAllocAndDissolve;
  k.hooks.putbackHugePage = putbackActiveHugetlb;
}
