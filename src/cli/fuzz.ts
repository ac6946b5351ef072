/**
 * mmcheck fuzz: a campaign (src/harness/fuzz.ts). Progress on a terminal, a summary (or --json),
 * exit 1 when a violation was found, with the replay command of the saved counterexample.
 */
import { getProfile } from '../kernel/profiles.js';
import { resolveConfig } from '../kernel/config.js';
import { OPS } from '../harness/ops/index.js';
import { parseDuration, selectProperties, type CampaignOptions, type CampaignViolation } from '../harness/fuzz.js';
import { runCampaignParallel } from '../harness/fuzz-parallel.js';
import { coverageReport } from '../../models/coverage.js';
import { defaultOutDir } from '../harness/corpus.js';
import type { Command } from './command.js';
import { UsageError, print, printJson } from './io.js';

function int(name: string, v: unknown, min: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`fuzz: --${name} must be an integer >= ${min}`);
  return n;
}

function parseShard(v: unknown): [number, number] {
  if (v === undefined) return [0, 1];
  const m = /^(\d+)\/(\d+)$/.exec(String(v));
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new UsageError(`fuzz: --shard must be i/n with 0 <= i < n (got '${String(v)}')`);
  return [Number(m[1]), Number(m[2])];
}

/**
 * The default machine when --config is not given: `small`, except for the known-buggy profiles
 * whose bug needs geometry `small` lacks (a gigantic page does not fit in 64 MiB; demote-with-CMA
 * needs a hugetlb_cma area) or shows within seconds at tiny scale (seed 004's pageblock corner
 * cases: pageblock order 2, MAX_ORDER 4).
 */
const BUG_CONFIG: Record<string, string> = {
  'rfc-2021-02': 'tiny',
  'pageblock-naive': 'tiny',
  'demote-cma-lost': 'tiny-hugetlb-cma',
  'v5.19-cma-retype': 'tiny',
};

function violationSummary(v: CampaignViolation) {
  return { property: v.property, file: v.file, ops: v.ops, preemptions: v.preemptions, steps: v.steps, message: v.message, fastcheck: { seed: v.seed, path: v.path } };
}

function printViolation(what: string, v: ReturnType<typeof violationSummary>): void {
  print(`${what} ${v.property}: ${v.message}`);
  print(`  minimal counterexample: ${v.ops} ops, ${v.preemptions} preemptions, ${v.steps} steps${v.file ? ` -> ${v.file}` : ''}`);
  if (v.file) print(`  replay: npx mmcheck replay ${v.file} --trace`);
}

export const fuzz: Command = {
  summary: 'a fast-check campaign of interleaved operations; shrinks and saves what it finds',
  usage: '[--profile P] [--config C] [--property NAME]... [--runs N | --time 60s] [--seed S] [--threads N] [--ops N] [--scheduler random|pct] [--depth D] [--workers N] [--shard i/n] [--op NAME]... [--out DIR] [--strict] [--json]',
  options: {
    profile: { type: 'string' },
    config: { type: 'string' },
    property: { type: 'string', multiple: true },
    runs: { type: 'string' },
    time: { type: 'string' },
    seed: { type: 'string' },
    threads: { type: 'string' },
    ops: { type: 'string' },
    scheduler: { type: 'string' },
    depth: { type: 'string' },
    workers: { type: 'string' },
    shard: { type: 'string' },
    out: { type: 'string' },
    op: { type: 'string', multiple: true },
    strict: { type: 'boolean' },
  },
  async run(o) {
    const profile = getProfile(o.profile ?? 'mainline').name;
    const config = o.config ?? BUG_CONFIG[profile] ?? 'small';
    resolveConfig(config);
    const properties = (o.property as string[] | undefined)?.flatMap((p) => p.split(',')).filter(Boolean) ?? null;
    selectProperties(properties);
    const scheduler = o.scheduler ?? 'random';
    if (scheduler !== 'random' && scheduler !== 'pct') throw new UsageError(`fuzz: --scheduler must be random or pct (got '${scheduler}')`);
    let runs = o.runs !== undefined ? int('runs', o.runs, 1, 0) : undefined;
    let timeMs = o.time !== undefined ? parseDuration(o.time) : undefined;
    // The default campaign (npm run fuzz) is bounded: 30 seconds.
    if (runs === undefined && timeMs === undefined) timeMs = 30_000;
    const seed = o.seed !== undefined ? int('seed', o.seed, 0, 0) : (Date.now() ^ (process.pid << 8)) >>> 0;
    const opts: CampaignOptions = {
      config,
      profile,
      properties,
      runs,
      timeMs,
      seed,
      threads: int('threads', o.threads, 1, 3),
      ops: int('ops', o.ops, 1, 10),
      scheduler,
      pctDepth: int('depth', o.depth, 1, 3),
      // The regression corpus holds bugs of buggy profiles only; what a campaign finds on a
      // profile not marked buggy is an open finding, to triage (counterexamples/findings/README.md).
      out: o.out ?? defaultOutDir(profile),
      shard: parseShard(o.shard),
      strict: !!o.strict,
    };
    const opNames = (o.op as string[] | undefined)?.flatMap((x) => x.split(',')).filter(Boolean);
    if (opNames) {
      for (const n of opNames) if (!OPS[n]) throw new UsageError(`fuzz: unknown op '${n}' (known: ${Object.keys(OPS).sort().join(', ')})`);
      opts.opNames = opNames;
    }
    const workers = int('workers', o.workers, 1, 1);
    const tty = !o.json && process.stderr.isTTY;
    if (tty) {
      opts.onProgress = (p) => {
        const rate = p.elapsedMs > 0 ? Math.round((p.executions * 1000) / p.elapsedMs) : 0;
        process.stderr.write(`\r${profile}: ${p.executions} executions, ${(p.elapsedMs / 1000).toFixed(1)}s, ${rate}/s   `);
      };
    }
    const res = await runCampaignParallel(opts, workers);
    if (tty) process.stderr.write('\n');
    const coverage = coverageReport(res.coverage, Object.keys(OPS));
    const summary = {
      profile: res.profile,
      config: res.config,
      seed,
      shard: `${opts.shard![0]}/${opts.shard![1]}`,
      executions: res.executions,
      elapsedMs: res.elapsedMs,
      violations: res.violations.map(violationSummary),
      // Known races: violations that vanish with a patch (mmcheck profiles --patches); the
      // campaign went on with the patch applied. --strict reports them as violations.
      known: res.known.map((v) => ({ patch: v.patch, ...violationSummary(v) })),
      patches: res.patches,
      coverage: properties && !properties.includes('refines-model') ? { ...coverage, note: 'refines-model was not checked: abstract coverage not measured' } : coverage,
    };
    if (o.json) printJson(summary);
    else {
      print(`${summary.profile} on ${summary.config}: ${summary.executions} executions in ${(summary.elapsedMs / 1000).toFixed(1)}s (seed ${seed}, shard ${summary.shard})`);
      print(`coverage: abstract states ${coverage.states}, transitions ${coverage.transitions}`);
      if (!summary.violations.length) print(summary.known.length ? 'no new violation' : 'no violation');
      for (const v of summary.known) printViolation(`known race (vanishes with patch ${v.patch}; went on with it applied)`, v);
      for (const v of summary.violations) printViolation('VIOLATION', v);
    }
    return res.violations.length ? 1 : 0;
  },
};
