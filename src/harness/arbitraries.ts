/**
 * fast-check generators of campaign cases: thread programs drawn from the op vocabulary (the OPS
 * registry, so an op module that lands joins campaigns without changes here) and a schedule as a
 * plain array of numbers (0 = keep running, c > 0 = switch to the c-th next runnable thread), which
 * fast-check shrinks like any array. fc.scheduler is deliberately not used: it does not shrink
 * kernel-thread interleavings and it drives promises, not our generators.
 *
 * Arguments are valid (they pass validateOp) and biased towards the places where the kernel has
 * corner cases: pageblock and MAX_ORDER-1 boundaries, ranges that hold huge pages (hstate-aligned),
 * the CMA areas, memory blocks, the virtio-mem region.
 */
import fc from 'fast-check';
import type { MachineConfig } from '../kernel/config.js';
import { OPS, type Op, type OpSpec } from './ops/index.js';
import type { FieldSpec } from './ops/registry.js';

export interface CaseShape {
  threads: number;
  /** ops per thread (maximum; shrinking makes them shorter) */
  ops: number;
  /** op names to draw from (default: every registered op) */
  opNames?: string[];
  /** ids per thread: small so that frees meet earlier allocations */
  idsPerThread?: number;
}

export interface FuzzCase {
  threads: Op[][];
  schedule: number[];
}

/** Geometry the argument generators are biased by. */
export interface Geometry {
  nrPfns: number;
  pb: number;
  maxBlock: number;
  hugeOrders: number[];
  cma: { base: number; count: number }[];
  blocks: number;
  blockPages: number;
  virtio?: { start: number; end: number };
  nodes: number;
}

export function geometry(cfg: MachineConfig): Geometry {
  const end = Math.max(...cfg.nodes.flatMap((n) => n.zones.map((z) => z.endPfn)));
  return {
    nrPfns: end,
    pb: 1 << cfg.pageblockOrder,
    maxBlock: 1 << cfg.maxOrder,
    hugeOrders: cfg.hstates.map((h) => h.order),
    cma: cfg.cma.map((a) => ({ base: a.basePfn, count: a.count })),
    blocks: Math.floor(end / cfg.memoryBlockPages),
    blockPages: cfg.memoryBlockPages,
    virtio: cfg.virtioMem ? { start: cfg.virtioMem.startPfn, end: cfg.virtioMem.endPfn } : undefined,
    nodes: cfg.nodes.length,
  };
}

/** An aligned pfn: a multiple of `unit` in [0, nrPfns). */
function alignedPfn(g: Geometry, unit: number): fc.Arbitrary<number> {
  const n = Math.max(1, Math.floor(g.nrPfns / unit));
  return fc.nat({ max: n - 1 }).map((i) => i * unit);
}

/** A [start, end) range biased to pageblock / MAX_ORDER-1 / huge-page boundaries and the CMA area. */
function rangeArb(g: Geometry): fc.Arbitrary<[number, number]> {
  const units = [g.pb, g.maxBlock, ...g.hugeOrders.map((o) => 1 << o).filter((u) => u <= g.nrPfns / 2)];
  // One arbitrary per unit, built once: chain() keeps the one it returns in every drawn case's
  // shrink context, and arbitraries are stateless, so the draws are the same.
  const perUnit = new Map(units.map((u) => [u, fc.tuple(alignedPfn(g, u), fc.integer({ min: 1, max: 4 })).map(([s, n]) => [s, Math.min(g.nrPfns, s + n * u)] as [number, number])]));
  const aligned = fc.constantFrom(...units).chain((u) => perUnit.get(u)!);
  // Ranges that start or end inside a MAX_ORDER-1 block at a pageblock boundary (seed 004).
  const straddle = fc.tuple(alignedPfn(g, g.maxBlock), fc.nat({ max: Math.max(0, g.maxBlock / g.pb - 1) }), fc.integer({ min: 1, max: 3 }))
    .map(([s, k, n]) => [s + k * g.pb, Math.min(g.nrPfns, s + k * g.pb + n * g.pb)] as [number, number]);
  const arbs: fc.Arbitrary<[number, number]>[] = [aligned, straddle];
  for (const a of g.cma) {
    arbs.push(fc.tuple(fc.nat({ max: Math.max(0, a.count / g.pb - 1) }), fc.integer({ min: 1, max: 2 }))
      .map(([k, n]) => [a.base + k * g.pb, Math.min(a.base + a.count, a.base + (k + n) * g.pb)] as [number, number]));
  }
  return fc.oneof(...arbs).filter(([s, e]) => e > s);
}

/**
 * The ranges an op with [start, end) may be given. alloc_contig_range's kernel-doc makes the caller
 * guarantee that nobody else changes the migratetype of those pageblocks: the op stands for a caller
 * that owns its range. virtio-mem's device memory is the driver's (its own alloc_contig_range calls
 * are the virtio_mem_unplug op, and it offlines and removes blocks there), and no uncoordinated
 * kernel caller reaches it (gigantic alloc_contig_pages has no __GFP_MOVABLE: ZONE_NORMAL only), so
 * the op does not target it. CMA areas stay: alloc_contig_pages does reach them (real races).
 */
function ownedRangeArb(opName: string, g: Geometry): fc.Arbitrary<[number, number]> {
  const v = g.virtio;
  if (opName !== 'alloc_contig_range' || !v) return rangeArb(g);
  return rangeArb(g).filter(([s, e]) => e <= v.start || s >= v.end);
}

function bytesArb(g: Geometry): fc.Arbitrary<number> {
  const unitPages = [g.pb, g.maxBlock, g.blockPages];
  return fc.tuple(fc.constantFrom(...unitPages), fc.integer({ min: 1, max: 4 })).map(([u, n]) => u * n * 4096);
}

/**
 * One field of an op: the arbitrary drawn, and how the op's single map turns the drawn value into
 * the field's (undefined: as drawn). Clamping and id naming are done there rather than by a
 * fast-check map layer each: a map allocates a Value and a shrink context per draw, which was most
 * of a campaign's generation time; a map draws nothing, so the cases are the same.
 */
interface FieldDraw {
  arb: fc.Arbitrary<unknown>;
  conv?: (v: any) => unknown;
}

/** A value for one field, chosen by the field's name first (the vocabulary is stable), then its type. */
function fieldArb(opName: string, name: string, f: FieldSpec, g: Geometry, hstates: string[], ids: string[]): FieldDraw {
  const clamp = (arb: fc.Arbitrary<number>): FieldDraw => ({ arb, conv: (v: number) => Math.max(f.min ?? 0, f.max !== undefined ? Math.min(f.max, v) : v) });
  switch (f.type) {
    case 'id':
      return { arb: fc.nat({ max: ids.length - 1 }), conv: (i: number) => ids[i] };
    case 'migratetype':
      // alloc_pages: what a GFP mask can ask for (no caller asks for MIGRATE_CMA);
      // alloc_contig_range: MOVABLE (alloc_contig_pages, virtio-mem) or CMA (cma_alloc).
      return { arb: opName === 'alloc_pages' ? fc.constantFrom('movable', 'movable', 'unmovable', 'reclaimable') : fc.constantFrom('movable', 'movable', 'cma') };
    case 'hstate':
      return { arb: fc.constantFrom(...(hstates.length ? hstates : ['2M'])) };
    case 'bool':
      return { arb: fc.boolean() };
    case 'zone':
      return { arb: fc.constantFrom('Normal', 'Movable') };
    case 'bytes':
      return { arb: bytesArb(g) };
    case 'string':
      return { arb: fc.constantFrom('a', 'b') };
    default:
      break;
  }
  const log2pb = Math.log2(g.pb);
  const log2max = Math.log2(g.maxBlock);
  switch (name) {
    case 'order':
      return clamp(fc.oneof(fc.constantFrom(0, 0, 1, 3, log2pb - 1, log2pb, log2max), fc.nat({ max: log2max })));
    case 'node':
      return clamp(fc.nat({ max: g.nodes - 1 }));
    case 'block':
      return clamp(fc.nat({ max: Math.max(0, g.blocks - 1) }));
    case 'area':
      return clamp(fc.nat({ max: Math.max(0, g.cma.length - 1) }));
    case 'count':
      return clamp(fc.oneof(fc.nat({ max: 4 }), fc.constantFrom(g.pb, g.maxBlock, 1, 2)));
    case 'nr_pages':
      // alloc_contig_pages callers ask for gigantic pages or whole subblocks; it tries every
      // nr_pages-aligned position of every zone, so tiny requests cost O(memory) attempts.
      return clamp(fc.constantFrom(g.pb, g.maxBlock, 2 * g.pb, ...g.hugeOrders.map((o) => 1 << o).filter((n) => n <= g.nrPfns / 4)));
    case 'align':
      return clamp(fc.constantFrom(0, log2pb, log2max));
    case 'pages':
    case 'index':
      return clamp(fc.nat({ max: 4 }));
    default:
      return clamp(fc.oneof(fc.nat({ max: 8 }), fc.nat({ max: g.nrPfns - 1 })));
  }
}

/**
 * The values of fc.record(model) without the record object: fc.record draws exactly
 * tuple(...values, boolean()) (the boolean: whether the object gets a null prototype) and maps it
 * to an object. Drawing the same tuple keeps every seed's cases and shrink paths what they were.
 */
function recordValues(arbs: fc.Arbitrary<unknown>[]): fc.Arbitrary<unknown[]> {
  return fc.tuple(...arbs, fc.boolean());
}

/**
 * One op of thread `tid`, built as validateOp would normalise it: fields in the spec's order,
 * absent optional ones left out. Every draw is valid by construction (values are clamped to the
 * field's bounds and picked from its vocabulary; test/campaign.test.ts checks that validateOp
 * keeps every generated op as it is).
 */
function opArb(spec: OpSpec, g: Geometry, hstates: string[], tid: number, nIds: number): fc.Arbitrary<Op> {
  const ids = Array.from({ length: nIds }, (_, i) => `t${tid}.${i}`);
  const hasRange = 'start' in spec.fields && 'end' in spec.fields;
  // alloc_contig_range(MIGRATE_CMA) is what cma_alloc does on its own area; any other caller asks
  // for MIGRATE_MOVABLE. A range is CMA iff it lies inside a CMA area.
  const inCma = (s: number, e: number) => g.cma.some((a) => s >= a.base && e <= a.base + a.count);
  const arbs: fc.Arbitrary<unknown>[] = [];
  /** per field in spec order: where its value comes from (a drawn value's index, or the range) */
  const plan: { name: string; at: number | 'start' | 'end' | 'range-mt'; conv?: (v: any) => unknown }[] = [];
  for (const [name, f] of Object.entries(spec.fields)) {
    if (hasRange && (name === 'start' || name === 'end')) {
      plan.push({ name, at: name });
      continue;
    }
    const d = fieldArb(spec.name, name, f, g, hstates, ids);
    // A campaign's offline_pages always carries a pending-signal bound: without one a page that
    // never migrates makes the kernel loop forever, which is its documented behaviour, not a bug.
    if (name === 'signal_after') arbs.push(fc.integer({ min: 1, max: 8 }));
    else arbs.push(f.optional ? fc.option(d.arb, { nil: undefined, freq: 3 }) : d.arb);
    // The migratetype is still drawn (the same draws), then decided by the range.
    plan.push({ name, at: hasRange && name === 'migratetype' ? 'range-mt' : arbs.length - 1, conv: name === 'signal_after' ? undefined : d.conv });
  }
  const build = (vals: unknown[], range?: [number, number]): Op => {
    const op: Op = { op: spec.name };
    for (const p of plan) {
      let v: unknown;
      if (typeof p.at === 'number') v = vals[p.at];
      else if (p.at === 'start') v = range![0];
      else if (p.at === 'end') v = range![1];
      else v = inCma(range![0], range![1]) ? 'cma' : 'movable';
      if (v !== undefined) op[p.name] = p.conv ? p.conv(v) : v;
    }
    return op;
  };
  const base = recordValues(arbs);
  return hasRange ? fc.tuple(base, ownedRangeArb(spec.name, g)).map(([vals, r]) => build(vals, r)) : base.map((vals) => build(vals));
}

export function threadArb(cfg: MachineConfig, shape: CaseShape, tid: number): fc.Arbitrary<Op[]> {
  const g = geometry(cfg);
  const hstates = cfg.hstates.map((h) => h.name);
  const names = (shape.opNames ?? Object.keys(OPS)).filter((n) => OPS[n]).sort();
  const nIds = shape.idsPerThread ?? 3;
  // Ops that take memory are drawn more often than the others: they create the state the rest act on.
  const choices = names.map((n) => ({ weight: OPS[n].takes ? 3 : 2, arbitrary: opArb(OPS[n], g, hstates, tid, nIds) }));
  return fc.array(fc.oneof(...choices), { minLength: 1, maxLength: shape.ops });
}

/** Uniform schedules: mostly 0 (keep running), occasional switches. Shrinks towards fewer, smaller choices. */
export function scheduleArb(threads: number, maxLength: number): fc.Arbitrary<number[]> {
  if (threads < 2) return fc.constant([]);
  const choice = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: threads - 1 }) });
  return fc.array(choice, { maxLength });
}

export function caseArb(cfg: MachineConfig, shape: CaseShape, schedule?: fc.Arbitrary<number[]>): fc.Arbitrary<FuzzCase> {
  const ts = Array.from({ length: shape.threads }, (_, t) => threadArb(cfg, shape, t));
  const sched = schedule ?? scheduleArb(shape.threads, shape.threads * shape.ops * 4);
  // fc.record({ threads, schedule }) drawn as its values (recordValues). The thread arrays are
  // copied: fast-check hands the same array to every shrink candidate that keeps that thread.
  return recordValues([fc.tuple(...ts), sched]).map(([threads, schedule]) => ({ threads: (threads as Op[][]).map((t) => [...t]), schedule: schedule as number[] }));
}
