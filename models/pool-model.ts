/**
 * The hugetlb pool model (XState v5): one hstate's counters Total / Free / Rsvd / Surp as
 * /proc/meminfo shows them (nr_huge_pages, free_huge_pages, resv_huge_pages, surplus_huge_pages),
 * bounded by `limit` pages so the state space is finite (no unbounded context). Its events are the
 * pool's own actions (mm/hugetlb.c), each guarded so that the counter invariants of kernel-spec
 * §11.1 hold in every state: 0 <= Free <= Total, Rsvd <= Free, Surp <= Total.
 *
 *   grow          alloc_pool_huge_page + enqueue            Total+1 Free+1
 *   shrink        remove_pool_huge_page / dissolve of a     Total-1 Free-1   (an unreserved free page)
 *                 free page / update_and_free_page
 *   make_surplus  adjust_pool_surplus(+1)                   Surp+1           (persistent count lowered)
 *   drop_surplus  adjust_pool_surplus(-1)                   Surp-1
 *   grow_surplus  alloc_surplus_huge_page (gather_surplus)  Total+1 Free+1 Surp+1
 *   free_surplus  a surplus page leaves the pool            Total-1 Free-1 Surp-1 (or Total-1 Surp-1 in use)
 *   reserve       hugetlb_acct_memory(+1)                   Rsvd+1
 *   unreserve     hugetlb_acct_memory(-1)                   Rsvd-1
 *   fault         dequeue for a fault (reserved or not)     Free-1 (Rsvd-1 when reserved)
 *   unfault       free_huge_page -> enqueue                 Free+1
 *   put_surplus   free_huge_page of a surplus page          Total-1 Surp-1
 *   hvo_keep      vmemmap restore failed: old page kept     Total+1 Surp+1 (in use as surplus)
 *   temporary     alloc_migrate_huge_page (HPageTemporary)  Total+1          (migration target)
 *   temporary_free the temporary page (target or, after      Total-1
 *                 move_hugetlb_state, the old page) is freed
 *
 * Refinement (refines-model): after every step, an hstate's counters must have moved along at most
 * a few of these events, and only events the running op may cause (`POOL_OPS`).
 */
import { assign, setup } from 'xstate';

export interface PoolCounters {
  total: number;
  free: number;
  resv: number;
  surp: number;
}

export type PoolEventType =
  | 'grow' | 'shrink' | 'make_surplus' | 'drop_surplus' | 'grow_surplus' | 'free_surplus' | 'free_surplus_in_use'
  | 'reserve' | 'unreserve' | 'fault' | 'fault_reserved' | 'unfault' | 'put_surplus' | 'hvo_keep' | 'temporary' | 'temporary_free';

/** The counter change of each event. */
export const POOL_DELTAS: Record<PoolEventType, PoolCounters> = {
  grow: { total: 1, free: 1, resv: 0, surp: 0 },
  shrink: { total: -1, free: -1, resv: 0, surp: 0 },
  make_surplus: { total: 0, free: 0, resv: 0, surp: 1 },
  drop_surplus: { total: 0, free: 0, resv: 0, surp: -1 },
  grow_surplus: { total: 1, free: 1, resv: 0, surp: 1 },
  free_surplus: { total: -1, free: -1, resv: 0, surp: -1 },
  free_surplus_in_use: { total: -1, free: 0, resv: 0, surp: -1 },
  reserve: { total: 0, free: 0, resv: 1, surp: 0 },
  unreserve: { total: 0, free: 0, resv: -1, surp: 0 },
  fault: { total: 0, free: -1, resv: 0, surp: 0 },
  fault_reserved: { total: 0, free: -1, resv: -1, surp: 0 },
  unfault: { total: 0, free: 1, resv: 0, surp: 0 },
  put_surplus: { total: -1, free: 0, resv: 0, surp: -1 },
  hvo_keep: { total: 1, free: 0, resv: 0, surp: 1 },
  temporary: { total: 1, free: 0, resv: 0, surp: 0 },
  temporary_free: { total: -1, free: 0, resv: 0, surp: 0 },
};

export const POOL_EVENTS = Object.keys(POOL_DELTAS) as PoolEventType[];

/** The invariants every state of the model satisfies (and the simulator must, per hstate). */
export function poolInvariant(c: PoolCounters, limit = Infinity): boolean {
  return c.total >= 0 && c.free >= 0 && c.resv >= 0 && c.surp >= 0 && c.free <= c.total && c.resv <= c.free && c.surp <= c.total && c.total <= limit;
}

export function applyPool(c: PoolCounters, e: PoolEventType): PoolCounters {
  const d = POOL_DELTAS[e];
  return { total: c.total + d.total, free: c.free + d.free, resv: c.resv + d.resv, surp: c.surp + d.surp };
}

/** The pool machine for a bound of `limit` pages (graph exploration uses a small one). */
export function poolModel(limit: number) {
  return setup({
    types: {} as { context: PoolCounters; events: { type: PoolEventType } },
    guards: {
      keeps: ({ context, event }) => poolInvariant(applyPool(context, event.type), limit),
    },
  }).createMachine({
    id: 'hugetlb-pool',
    context: { total: 0, free: 0, resv: 0, surp: 0 },
    initial: 'pool',
    states: {
      pool: {
        on: Object.fromEntries(POOL_EVENTS.map((e) => [e, { guard: 'keeps', actions: assign(({ context }) => applyPool(context, e)) }])),
      },
    },
  });
}

const CONTIG_POOL_EVENTS: PoolEventType[] = ['fault', 'unfault', 'hvo_keep', 'temporary', 'temporary_free', 'grow', 'shrink', 'put_surplus'];

/** Which pool events each op may cause (per step). Ops not listed may not touch the counters. */
export const POOL_OPS: Record<string, PoolEventType[]> = {
  set_nr_hugepages: ['grow', 'shrink', 'make_surplus', 'drop_surplus', 'free_surplus', 'hvo_keep', 'unfault'],
  hugetlb_mmap: ['reserve', 'unreserve', 'grow_surplus', 'free_surplus'],
  hugetlb_fault: ['fault', 'fault_reserved', 'grow_surplus', 'unfault', 'reserve', 'unreserve'],
  hugetlb_munmap: ['unfault', 'put_surplus', 'unreserve', 'free_surplus', 'shrink', 'drop_surplus', 'hvo_keep'],
  demote: ['shrink', 'grow', 'unfault', 'fault', 'hvo_keep', 'make_surplus', 'drop_surplus'],
  offline_pages: ['temporary', 'temporary_free', 'shrink', 'free_surplus', 'drop_surplus', 'grow', 'fault', 'unfault', 'put_surplus', 'free_surplus_in_use', 'hvo_keep', 'make_surplus'],
  // v5.13 alloc_and_dissolve_huge_page: the replacement is enqueued and the old page dissolved
  // (grow + shrink, net zero); in-use pages migrate through a temporary target, or to a free pool
  // page, and then the old page is freed: as a surplus page (put_surplus) when the node has surplus.
  virtio_mem_unplug: CONTIG_POOL_EVENTS,
  alloc_contig_range: CONTIG_POOL_EVENTS,
  alloc_contig_pages: CONTIG_POOL_EVENTS,
  cma_alloc: CONTIG_POOL_EVENTS,
};

const cache = new Map<string, boolean>();

/** The search gives up after this many distinct counter states (a step moving the pool by hundreds). */
const SEARCH_LIMIT = 20_000;

/**
 * May one step of `op` take an hstate's counters from `a` to `b`? One step may run several pool
 * events (set_max_huge_pages removes pages in a loop under one hugetlb_lock hold): a breadth-first
 * search over the op's events inside the box spanned by a and b (plus a margin of 2), every state
 * on the way keeping the invariants, giving up (no) after SEARCH_LIMIT states.
 *
 * States are numbered inside the box (mixed radix over total, free, resv, surp) and the queue is
 * a typed array: a campaign asks this on every step that moves a pool, and the per-state objects
 * and strings of a plain search were a fifth of its time in garbage collection.
 */
export function poolStepAllowed(op: string, a: PoolCounters, b: PoolCounters): boolean {
  if (a.total === b.total && a.free === b.free && a.resv === b.resv && a.surp === b.surp) return true;
  const evs = POOL_OPS[op];
  if (!evs) return false;
  if (nearEvents(evs, a, b)) return true;
  const key = searchKey(op, a, b);
  let hit = cache.get(key);
  if (hit === undefined) {
    hit = searchPool(evs, a, b);
    if (cache.size > 100_000) cache.clear();
    cache.set(key, hit);
  }
  return hit;
}

/**
 * b is a plus one or two of the events, through a state inside the box that keeps the invariants,
 * and b keeps them (most steps): the search answers yes. Its first expansion finds b or queues the
 * state between (new: only a was seen, and an event changes a counter), whose expansion, among the
 * first 1 + evs.length (far below SEARCH_LIMIT states seen), finds b (not seen: the search stops
 * at b's first sight).
 */
function nearEvents(evs: PoolEventType[], a: PoolCounters, b: PoolCounters): boolean {
  if (!poolInvariant(b)) return false;
  const dt = b.total - a.total;
  const df = b.free - a.free;
  const dr = b.resv - a.resv;
  const ds = b.surp - a.surp;
  for (let i = 0; i < evs.length; i++) {
    const d = POOL_DELTAS[evs[i]];
    if (d.total === dt && d.free === df && d.resv === dr && d.surp === ds) return true;
  }
  for (let i = 0; i < evs.length; i++) {
    const d = POOL_DELTAS[evs[i]];
    if (!midway(a, d, b)) continue;
    for (let j = 0; j < evs.length; j++) {
      const e = POOL_DELTAS[evs[j]];
      if (d.total + e.total === dt && d.free + e.free === df && d.resv + e.resv === dr && d.surp + e.surp === ds) return true;
    }
  }
  return false;
}

/** a + d keeps the invariants and lies in searchPool's box (within 2 of the range from a to b) */
function midway(a: PoolCounters, d: PoolCounters, b: PoolCounters): boolean {
  const t = a.total + d.total;
  const f = a.free + d.free;
  const r = a.resv + d.resv;
  const s = a.surp + d.surp;
  if (t < 0 || f < 0 || r < 0 || s < 0 || f > t || r > f || s > t) return false;
  const near = (x: number, p: number, q: number) => x >= Math.min(p, q) - 2 && x <= Math.max(p, q) + 2;
  return near(t, a.total, b.total) && near(f, a.free, b.free) && near(r, a.resv, b.resv) && near(s, a.surp, b.surp);
}

/**
 * What searchPool's answer depends on. In coordinates relative to a (x = a + y) its box is
 * [min(0, d) - 2, max(0, d) + 2] per counter (d = b - a) and the invariants are y_i >= -a_i,
 * y_free - y_total <= a_total - a_free, y_resv - y_free <= a_free - a_resv and
 * y_surp - y_total <= a_total - a_surp: the search (its graph, its order, its state count) is the
 * same for every a with the same d and the same seven bounds. A bound the whole box keeps is
 * clipped to the box's extreme (a_i >= 2 - min(0, d_i) for the first four, the box's largest
 * difference for the others), so a pool far from its limits shares one entry per d and op.
 */
function searchKey(op: string, a: PoolCounters, b: PoolCounters): string {
  const dt = b.total - a.total;
  const df = b.free - a.free;
  const dr = b.resv - a.resv;
  const ds = b.surp - a.surp;
  // the box relative to a: [l, h] per counter (the largest total is not a bound of any invariant)
  const lt = Math.min(0, dt) - 2;
  const lf = Math.min(0, df) - 2;
  const hf = Math.max(0, df) + 2;
  const lr = Math.min(0, dr) - 2;
  const hr = Math.max(0, dr) + 2;
  const ls = Math.min(0, ds) - 2;
  const hs = Math.max(0, ds) + 2;
  const ct = Math.min(a.total, -lt);
  const cf = Math.min(a.free, -lf);
  const cr = Math.min(a.resv, -lr);
  const cs = Math.min(a.surp, -ls);
  const cft = Math.min(a.total - a.free, hf - lt);
  const crf = Math.min(a.free - a.resv, hr - lf);
  const cst = Math.min(a.total - a.surp, hs - lt);
  return `${op}|${dt},${df},${dr},${ds}|${ct},${cf},${cr},${cs},${cft},${crf},${cst}`;
}

/**
 * At least the number of states searchPool can see from a in the box [lo, hi]: a, and the states
 * of the box that keep the invariants, a counter no event changes fixed at a's value (Infinity
 * when the box is too large to count).
 */
function statesBound(evs: PoolEventType[], a: PoolCounters, lo: number[], hi: number[]): number {
  const K = ['total', 'free', 'resv', 'surp'] as const;
  const from = K.map((c, i) => (evs.every((e) => POOL_DELTAS[e][c] === 0) ? a[c] : Math.max(0, lo[i])));
  const to = K.map((c, i) => (evs.every((e) => POOL_DELTAS[e][c] === 0) ? a[c] : hi[i]));
  if ((to[0] - from[0] + 1) * (to[1] - from[1] + 1) > 1 << 14) return Infinity;
  // (within [x, y] and at most z)
  const upTo = (x: number, y: number, z: number) => Math.max(0, Math.min(y, z) - Math.max(x, 0) + 1);
  let count = 1;
  for (let t = from[0]; t <= to[0]; t++) {
    const surp = upTo(from[3], to[3], t);
    for (let f = Math.max(from[1], 0); f <= Math.min(to[1], t); f++) count += surp * upTo(from[2], to[2], f);
  }
  return count;
}

/** The events, those whose change points most towards b - a last. */
function towards(evs: PoolEventType[], a: PoolCounters, b: PoolCounters): PoolEventType[] {
  const score = (e: PoolEventType) => {
    const d = POOL_DELTAS[e];
    return d.total * (b.total - a.total) + d.free * (b.free - a.free) + d.resv * (b.resv - a.resv) + d.surp * (b.surp - a.surp);
  };
  return [...evs].sort((x, y) => score(x) - score(y));
}

/** the states a search has queued, five numbers each: the four counters and the state's number */
const QUEUE = new Int32Array(5 * (SEARCH_LIMIT + 32));

/** The states a search has seen: a stamp per state of the box when it is small, else a Set. */
const STAMPED_BOX = 1 << 20;
let stamps = new Uint32Array(1024);
let generation = 0;

/**
 * The breadth-first search of poolStepAllowed. A state (t, f, r, s) of the box [lo, hi] (per
 * counter) is numbered (t - lo_t) * M_t + (f - lo_f) * M_f + (r - lo_r) * M_r + (s - lo_s) (mixed
 * radix): inside the box an event adds the same number to every state's number, computed once.
 */
function searchPool(evs: PoolEventType[], a: PoolCounters, b: PoolCounters): boolean {
  const lt = Math.min(a.total, b.total) - 2;
  const lf = Math.min(a.free, b.free) - 2;
  const lr = Math.min(a.resv, b.resv) - 2;
  const ls = Math.min(a.surp, b.surp) - 2;
  const ht = Math.max(a.total, b.total) + 2;
  const hf = Math.max(a.free, b.free) + 2;
  const hr = Math.max(a.resv, b.resv) + 2;
  const hs = Math.max(a.surp, b.surp) + 2;
  const mr = hs - ls + 1;
  const mf = mr * (hr - lr + 1);
  const mt = mf * (hf - lf + 1);
  const box = mt * (ht - lt + 1);
  const n = evs.length;
  // Fewer states than SEARCH_LIMIT to see: the search never gives up and answers whether b is
  // reachable at all, which a depth-first search answers as well, from the events that lead
  // towards b (tried first: pushed last), in a few steps per event to b where b is reachable.
  const deep = statesBound(evs, a, [lt, lf, lr, ls], [ht, hf, hr, hs]) < SEARCH_LIMIT;
  const order = deep ? towards(evs, a, b) : evs;
  const deltas = new Int32Array(5 * n);
  for (let i = 0; i < n; i++) {
    const d = POOL_DELTAS[order[i]];
    deltas.set([d.total, d.free, d.resv, d.surp, d.total * mt + d.free * mf + d.resv * mr + d.surp], 5 * i);
  }
  const target = (b.total - lt) * mt + (b.free - lf) * mf + (b.resv - lr) * mr + (b.surp - ls);
  const start = (a.total - lt) * mt + (a.free - lf) * mf + (a.resv - lr) * mr + (a.surp - ls);
  const big = box > STAMPED_BOX ? new Set<number>([start]) : null;
  if (!big) {
    if (stamps.length < box) stamps = new Uint32Array(Math.max(box, 2 * stamps.length));
    if (++generation === 0xffffffff) {
      stamps.fill(0);
      generation = 1;
    }
    stamps[start] = generation;
  }
  const gen = generation;
  const st = stamps;
  let seen = 1;
  // FIFO (LIFO when deep) of states: fewer than SEARCH_LIMIT + one expansion are ever added
  const queue = QUEUE;
  queue[0] = a.total;
  queue[1] = a.free;
  queue[2] = a.resv;
  queue[3] = a.surp;
  queue[4] = start;
  let head = 0;
  let tail = 5;
  while (head < tail && seen < SEARCH_LIMIT) {
    const at = deep ? (tail -= 5) : head;
    const t = queue[at];
    const f = queue[at + 1];
    const r = queue[at + 2];
    const s = queue[at + 3];
    const id = queue[at + 4];
    if (!deep) head += 5;
    for (let i = 0; i < 5 * n; i += 5) {
      const nt = t + deltas[i];
      const nf = f + deltas[i + 1];
      const nr = r + deltas[i + 2];
      const ns = s + deltas[i + 3];
      // poolInvariant, then the box
      if (nt < 0 || nf < 0 || nr < 0 || ns < 0 || nf > nt || nr > nf || ns > nt) continue;
      if (nt < lt || nt > ht || nf < lf || nf > hf || nr < lr || nr > hr || ns < ls || ns > hs) continue;
      const nid = id + deltas[i + 4];
      if (big ? big.has(nid) : st[nid] === gen) continue;
      if (nid === target) return true;
      if (big) big.add(nid);
      else st[nid] = gen;
      seen++;
      queue[tail] = nt;
      queue[tail + 1] = nf;
      queue[tail + 2] = nr;
      queue[tail + 3] = ns;
      queue[tail + 4] = nid;
      tail += 5;
    }
  }
  return false;
}
