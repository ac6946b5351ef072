/**
 * Built-in program sets for the model checker (`mmcheck check --scenario NAME`, and `mmcheck bugs`):
 * small thread programs on the `tiny` config that exhibit each buggy profile's race, plus the
 * exhaustive enumeration of all programs up to a size over a small op vocabulary
 * (`--all-programs N`).
 *
 * tiny: pfns 0..255, pageblock order 2 (4 pages), MAX_ORDER-1 blocks of 16 pages, Normal 0..127
 * (0..3 reserved, 4..7 boot unmovable), Movable 128..255, CMA area 'reserved' at 64..95,
 * hstates 2M (order 2) and 1G (order 5, gigantic), memory blocks of 32 pages, 2 cpus.
 *
 * A set whose ops are not (yet) in the vocabulary, or that a config rejects, is reported as
 * unavailable instead of failing the whole command.
 */
import { ConfigError } from '../kernel/types.js';
import { createKernel } from '../kernel/index.js';
import { PROFILES } from '../kernel/profiles.js';
import { OPS, validateOp, type Op } from './ops/index.js';
import { parseProgram, type ParsedProgram } from './program.js';

export interface NamedProgram {
  name: string;
  threads: Op[][];
}

export interface ProgramSet {
  name: string;
  description: string;
  /** the buggy profile this set exhibits (undefined: a set every profile should pass) */
  profile?: string;
  /** a named config or an inline one ({ base, ... } as programs accept) */
  config: string | Record<string, unknown>;
  programs: NamedProgram[];
}

const alloc = (id: string, order: number, migratetype = 'movable'): Op => ({ op: 'alloc_pages', id, order, migratetype });
const free = (id: string): Op => ({ op: 'free_pages', id });
const drain: Op = { op: 'drain_all_pages' };
const contig = (id: string, start: number, end: number): Op => ({ op: 'alloc_contig_range', id, start, end, migratetype: 'movable' });
const freeContig = (id: string): Op => ({ op: 'free_contig_range', id });
const cma = (id: string, count: number): Op => ({ op: 'cma_alloc', id, area: 'reserved', count });
const cmaRelease = (id: string): Op => ({ op: 'cma_release', id });
const hugepages = (hstate: string, count: number): Op => ({ op: 'set_nr_hugepages', hstate, count });
const demote = (hstate: string): Op => ({ op: 'demote', hstate });

const contigCma = (id: string, start: number, end: number): Op => ({ op: 'alloc_contig_range', id, start, end, migratetype: 'cma' });

/**
 * tiny with its CMA area at 68..91: pageblock-aligned (what v5.19's cmaAlign 'pageblock' allows)
 * but not MAX_ORDER-1 aligned, so CMA and MOVABLE pageblocks share the MAX_ORDER-1 block 64..79
 * (and 80..95): the geometry seed 004 is about.
 */
const TINY_CMA_PB = { base: 'tiny', name: 'tiny-cma-pb', cma: [{ name: 'reserved', basePfn: 68, count: 24, orderPerBit: 0 }] };

export const PROGRAM_SETS: ProgramSet[] = [
  {
    name: 'buddy',
    description: 'allocations, frees and pcp drains racing on two cpus (every profile must pass)',
    config: 'tiny',
    programs: [
      { name: 'alloc-free-vs-drain', threads: [[alloc('a', 0), free('a')], [drain]] },
      { name: 'order0-vs-order2', threads: [[alloc('a', 0), free('a')], [alloc('b', 2, 'unmovable'), free('b')]] },
      { name: 'two-frees-merge', threads: [[alloc('a', 1), free('a')], [alloc('b', 1), free('b'), drain]] },
      {
        name: 'three-cpus-churn',
        threads: [
          [alloc('a', 0), alloc('a2', 0), free('a'), alloc('c', 1), free('a2'), free('c')],
          [alloc('b', 2, 'unmovable'), drain, free('b'), alloc('b2', 0)],
          [alloc('d', 0), free('d'), alloc('e', 3), free('e')],
        ],
      },
    ],
  },
  {
    name: 'pageblock-naive',
    profile: 'pageblock-naive',
    description: 'seed 004: pageblock-granular isolation and CMA alignment (v5.19) without the straddling-buddy handling, on a CMA area that starts inside a MAX_ORDER-1 block (pfn 68); CMA allocations and a contiguous allocation in neighbouring pageblocks of one MAX_ORDER-1 block',
    config: TINY_CMA_PB,
    programs: [
      { name: 'cma-alloc-release', threads: [[cma('m', 4), cmaRelease('m')]] },
      { name: 'contig-cma-block', threads: [[contigCma('c', 68, 72), freeContig('c')]] },
      { name: 'cma-vs-cma', threads: [[cma('m', 4), cmaRelease('m')], [cma('n', 4), cmaRelease('n')]] },
      { name: 'contig-vs-cma', threads: [[contig('c', 64, 68), freeContig('c')], [cma('m', 4), cmaRelease('m')]] },
    ],
  },
  {
    name: 'cma-retype',
    profile: 'v5.19-cma-retype',
    description: 'v5.19 as released: a MOVABLE alloc_contig_range whose boundary pageblock is CMA isolates it with the caller\'s type and the undo re-types it MOVABLE (fixed by 80e2b584f3ab)',
    config: 'tiny',
    programs: [
      { name: 'contig-on-cma-block', threads: [[contig('c', 64, 68)]] },
      // offline_pages isolates with MIGRATE_MOVABLE too (memory block 2 is the CMA area)
      { name: 'offline-cma-block', threads: [[{ op: 'offline_pages', block: 2, signal_after: 1 }]] },
      { name: 'contig-straddling-cma-start', threads: [[contig('c', 62, 66), freeContig('c')]] },
      { name: 'contig-vs-cma', threads: [[contig('c', 62, 66)], [cma('m', 4), cmaRelease('m')]] },
    ],
  },
  {
    name: 'rfc-recursion',
    profile: 'rfc-2021-02',
    description: "seed 000: the RFC's alloc_and_dissolve_huge_page replaces a free gigantic page in the range through alloc_contig_pages, re-entering alloc_contig_range",
    config: 'tiny',
    programs: [
      // The first gigantic page lands at pfn 32 (0..31 holds reserved and boot pages); one of its
      // pages in the range is enough to make the RFC replace it (the fuzzer shrinks to that too).
      { name: 'contig-over-free-gigantic', threads: [[hugepages('1G', 1), contig('c', 32, 33)]] },
      // 32..64: with a range inside one pageblock of the gigantic page, mainline hits the known
      // `goto done` race between the two threads' isolations (patch contig-isolate-fail-return).
      { name: 'gigantic-vs-contig', threads: [[hugepages('1G', 1)], [contig('c', 32, 64)]] },
    ],
  },
  {
    name: 'demote-cma',
    profile: 'demote-cma-lost',
    description: 'seed 002: a gigantic page from CMA demoted, its pieces freed to buddy instead of cma_release',
    config: 'tiny-hugetlb-cma',
    programs: [
      { name: 'demote-then-shrink', threads: [[hugepages('1G', 1), demote('1G'), hugepages('2M', 0)]] },
      { name: 'demote-vs-shrink', threads: [[hugepages('1G', 1), demote('1G')], [hugepages('2M', 0)]] },
    ],
  },
];

export function getProgramSet(name: string): ProgramSet {
  const s = PROGRAM_SETS.find((x) => x.name === name);
  if (!s) throw new ConfigError(`unknown scenario '${name}' (known: ${PROGRAM_SETS.map((x) => x.name).join(', ')})`);
  return s;
}

/** The set that exhibits a buggy profile's bug, if there is one. */
export function setForProfile(profile: string): ProgramSet | undefined {
  return PROGRAM_SETS.find((s) => s.profile === profile);
}

/** Profiles marked buggy in profiles.ts, in declaration order. */
export function buggyProfiles(): string[] {
  return Object.values(PROFILES).filter((p) => p.buggy).map((p) => p.name);
}

export interface LoadedSet {
  set: ProgramSet;
  programs: { name: string; prog: ParsedProgram }[];
  /** why the set cannot run here (ops not in the vocabulary, config unknown), or null */
  unavailable: string | null;
}

/** Parses a set's programs against a profile (default: the set's own, else mainline). */
export function loadSet(set: ProgramSet, profile?: string): LoadedSet {
  const prof = profile ?? set.profile ?? 'mainline';
  const missing = [...new Set(set.programs.flatMap((p) => p.threads.flat().map((o) => o.op)))].filter((o) => !OPS[o]);
  if (missing.length > 0) return { set, programs: [], unavailable: `ops not in the vocabulary yet: ${missing.join(', ')}` };
  try {
    const programs = set.programs.map((p) => ({ name: p.name, prog: parseProgram({ config: set.config, profile: prof, threads: p.threads }, `${set.name}/${p.name}`) }));
    // Some geometries are impossible under some profiles (a pageblock-aligned CMA area before v5.19).
    if (programs.length > 0) createKernel(programs[0].prog.config, programs[0].prog.profile);
    return { set, programs, unavailable: null };
  } catch (e) {
    if (e instanceof ConfigError) return { set, programs: [], unavailable: e.message };
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// All programs up to a size.

/** Op instances of the small vocabulary; `$` is replaced by an id unique to the thread and slot. */
const ATOMS: Op[] = [
  alloc('$', 0),
  alloc('$', 2, 'unmovable'),
  alloc('$', 4),
  drain,
  contig('$', 132, 136),
  contig('$', 128, 144),
  contig('$', 62, 66),
  cma('$', 4),
  hugepages('2M', 1),
  hugepages('1G', 1),
  demote('1G'),
  // memory block 2 is the CMA area (64..95), block 4 the first of ZONE_MOVABLE (128..159)
  { op: 'offline_pages', block: 2, signal_after: 1 },
  { op: 'offline_pages', block: 4, signal_after: 1 },
  { op: 'virtio_mem_unplug', bytes: 16384 },
];
/** Frees that follow an allocation atom in the same thread (its id). */
const FREES: Record<string, (id: string) => Op> = { alloc_pages: free, alloc_contig_range: freeContig, cma_alloc: cmaRelease };

/** The atoms usable on a config (op known, arguments valid there). */
function usableAtoms(hstates: string[], atoms: Op[] = ATOMS): Op[] {
  return atoms.filter((a) => {
    if (!OPS[a.op]) return false;
    try {
      validateOp({ ...a, ...(a.id ? { id: 'x' } : {}) }, 'atom', hstates);
      return true;
    } catch {
      return false;
    }
  });
}

/** One thread's op sequences of exactly `n` ops: atoms, and frees of what the thread holds. */
function threadSequences(atoms: Op[], n: number, tid: number): Op[][] {
  const out: Op[][] = [];
  const rec = (seq: Op[], held: Op[]): void => {
    if (seq.length === n) {
      out.push(seq);
      return;
    }
    const slot = `t${tid}${String.fromCharCode(97 + seq.length)}`;
    for (const a of atoms) {
      if (!a.id) rec([...seq, a], held);
      else {
        const op = { ...a, id: slot };
        rec([...seq, op], FREES[a.op] ? [...held, op] : held);
      }
    }
    for (const h of held) rec([...seq, FREES[h.op](h.id as string)], held.filter((x) => x !== h));
  };
  rec([], []);
  return out;
}

/**
 * The empty program, every one-op program, then every two-thread program of 2..maxOps ops in
 * total (each thread at least one op) over the small vocabulary, smallest first.
 */
export function allPrograms(maxOps: number, profile: string, config: string | Record<string, unknown> = 'tiny', vocabulary: Op[] = ATOMS): { name: string; prog: ParsedProgram }[] {
  if (!Number.isInteger(maxOps) || maxOps < 1 || maxOps > 4) throw new ConfigError(`--all-programs: N must be 1..4 (got ${maxOps})`);
  const base = parseProgram({ config, profile, threads: [[]] }, 'all-programs');
  const atoms = usableAtoms(base.config.hstates.map((h) => h.name), vocabulary);
  // The empty program first: what boot alone leaves behind is checked at quiescence too.
  const out: { name: string; prog: ParsedProgram }[] = [make([[]])];
  for (let total = 1; total <= maxOps; total++) {
    if (total === 1) {
      for (const t0 of threadSequences(atoms, 1, 0)) out.push(make([t0]));
      continue;
    }
    for (let n0 = 1; n0 < total; n0++) {
      for (const t0 of threadSequences(atoms, n0, 0)) for (const t1 of threadSequences(atoms, total - n0, 1)) out.push(make([t0, t1]));
    }
  }
  return out;

  function make(threads: Op[][]): { name: string; prog: ParsedProgram } {
    const name = threads.map((t) => t.map((o) => o.op).join('+') || '(no ops)').join(' | ');
    return { name, prog: { ...base, threads, schedule: [] } };
  }
}
