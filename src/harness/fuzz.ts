/**
 * Campaigns: fast-check generates thread programs and schedules (arbitraries.ts, pct.ts), each case
 * runs on a fresh machine under the executor with the property catalogue checked after every step
 * or at quiescence. On a violation fast-check shrinks the case, then a 1-minimal pass on the
 * explicit trace (shrink.ts) keeps the same property violated with fewer ops and preemptions, and
 * the result is saved as a counterexample file (corpus.ts) that replays without fast-check.
 *
 * Determinism: a campaign is a function of (config, profile, properties, seed, shape, runs, shard).
 * `--shard i/n` runs the i-th of n disjoint, deterministic slices (its own derived seed and its
 * share of the runs), so a CI matrix can spread one campaign; `--workers N` does the same across
 * worker threads of one machine. With `--time` the number of runs depends on the machine's speed,
 * but every run that happens is reproducible from the seed and path saved with it.
 */
import fc from 'fast-check';
import { PATCHES, applyPatches, getProfile, patchApplies, type Profile } from '../kernel/profiles.js';
import { resolveConfig, type MachineConfig } from '../kernel/config.js';
import { ConfigError } from '../kernel/types.js';
import { PROPERTIES, getProperty, type Property } from '../../properties/index.js';
import { emptyCoverage, mergeCoverage, resetCoverage, snapshotCoverage, type CoverageCounts } from '../../models/coverage.js';
import { caseArb, type FuzzCase } from './arbitraries.js';
import { pctScheduleArb } from './pct.js';
import { runProgram, type RunOutcome } from './executor.js';
import { createKernel } from '../kernel/index.js';
import { SCHEDULE_CHOICE } from '../kernel/sched.js';
import { snapshotKernel } from '../kernel/snapshot.js';
import { prepareDirtyTracking, resetDirtyTracking } from '../../properties/dirty.js';
import type { ParsedProgram } from './program.js';
import { minimize, countOps, type TraceCase, type Verdict } from './shrink.js';
import { CE_FORMAT, saveCounterexample, type Counterexample } from './corpus.js';
import { OPS } from './ops/index.js';

export interface CampaignOptions {
  config: string | MachineConfig;
  profile: string;
  /** property names to check (default: the whole catalogue) */
  properties?: string[] | null;
  runs?: number;
  timeMs?: number;
  seed: number;
  threads: number;
  ops: number;
  scheduler: 'random' | 'pct';
  /** PCT bug depth d (d - 1 change points) */
  pctDepth?: number;
  /** directory for counterexamples; null: do not save */
  out: string | null;
  /** [i, n]: the i-th of n slices (0-based) */
  shard?: [number, number];
  /** restrict the op vocabulary */
  opNames?: string[];
  /** called about twice a second */
  onProgress?: (p: { executions: number; elapsedMs: number }) => void;
  /** stop when this returns true (another worker found something) */
  shouldStop?: () => boolean;
  /** `runs` is already this slice's share (runCampaignAll) */
  runsAreSliced?: boolean;
  /** report every violation, also those a patch attributes to a known race (runCampaignAll) */
  strict?: boolean;
}

export interface CampaignViolation {
  property: string;
  message: string;
  file: string | null;
  ops: number;
  preemptions: number;
  steps: number;
  seed: number;
  path: string;
  counterexample: Counterexample;
}

export interface CampaignResult {
  profile: string;
  config: string;
  seed: number;
  shard: [number, number];
  executions: number;
  elapsedMs: number;
  /** when the first failing case ran, before shrinking (mmcheck bugs) */
  firstViolation?: { executions: number; elapsedMs: number };
  violations: CampaignViolation[];
  /** violations that vanish with a patch (profiles.ts PATCHES): known races, not new findings */
  known: KnownRace[];
  /** the patches the campaign went on with after attributing a violation to them */
  patches: string[];
  coverage: CoverageCounts;
}

export interface KnownRace extends CampaignViolation {
  patch: string;
}

/** "60s", "2m", "500ms", "1h" or plain seconds -> milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new ConfigError(`bad duration '${s}' (examples: 60s, 2m, 500ms)`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * mult);
}

/** The seed of slice i: a fixed mix of the campaign seed and the slice index. */
export function shardSeed(seed: number, i: number): number {
  if (i === 0) return seed >>> 0;
  let h = (seed ^ Math.imul(i, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export function shardRuns(runs: number, [i, n]: [number, number]): number {
  return Math.floor(runs / n) + (i < runs % n ? 1 : 0);
}

export function selectProperties(names?: string[] | null): Property[] {
  if (!names || names.length === 0) return PROPERTIES;
  return names.map((n) => (n === 'kernel-bug' ? null : getProperty(n))).filter((p): p is Property => p !== null);
}

export interface CaseRunner {
  base: Omit<ParsedProgram, 'threads' | 'schedule'>;
  run(c: TraceCase, props: Property[]): RunOutcome;
}

/**
 * The schedule a campaign runs: the generated choices, then the scheduler's fixed policy (keep
 * running) with a switch to the next runnable thread every `slice` steps. A kernel retry loop that
 * spins until another thread makes progress ("not yet enqueued: retry", cond_resched()) is not a
 * livelock on a real machine, where the scheduler is fair; without the periodic switch the fixed
 * policy would run the spinning thread forever. `materializeSchedule` writes the tail out as plain
 * choices, so a saved counterexample replays with the plain scheduler.
 */
export const FAIR_SLICE = 500;

export function fairSchedule(base: readonly number[], slice = FAIR_SLICE): number[] {
  const tail = (i: number) => ((i - base.length + 1) % slice === 0 ? 1 : 0);
  const LENGTH = 1_000_000_000;
  // The same choices as the index access below, for the scheduler's run loop (sched.ts), which
  // asks for i + 1 after i: the tail's phase, (i - n + 1) % slice, is then the last one plus one
  // (no division on every step); any other i computes it.
  const n = base.length;
  let last = -2;
  let phase = 0;
  const choiceAt = (i: number): number | undefined => {
    if (i < n) return base[i];
    if (i >= LENGTH) return undefined;
    phase = i === last + 1 ? (phase + 1 === slice ? 0 : phase + 1) : (i - n + 1) % slice;
    last = i;
    return phase === 0 ? 1 : 0;
  };
  return new Proxy(base as number[], {
    get(target, prop, recv) {
      if (prop === SCHEDULE_CHOICE) return choiceAt;
      if (prop === 'length') return LENGTH;
      if (typeof prop === 'string') {
        const i = Number(prop);
        if (Number.isInteger(i) && i >= 0) return i < target.length ? target[i] : tail(i);
      }
      return Reflect.get(target, prop, recv);
    },
  });
}

export function materializeSchedule(base: readonly number[], steps: number, slice = FAIR_SLICE): number[] {
  const out = [...base];
  for (let i = base.length; i <= steps; i++) out.push((i - base.length + 1) % slice === 0 ? 1 : 0);
  while (out.length && out[out.length - 1] === 0) out.pop();
  return out;
}

/**
 * Runs cases on one machine booted once: each case starts from the booted state restored from a
 * snapshot (src/kernel/snapshot.ts), which is cheaper than booting (memmap_init + freeing all
 * memory) for every execution. `fresh: true` boots a new machine per case instead.
 */
export function caseRunner(config: string | MachineConfig, profile: string | Profile, opts: { fresh?: boolean } = {}): CaseRunner {
  const cfg = resolveConfig(config);
  const prof = typeof profile === 'string' ? getProfile(profile) : profile;
  const base = { config: cfg, profile: prof, configSpec: config };
  const k = opts.fresh ? null : createKernel(cfg, prof);
  // The checkers' dirty-pfn tracker becomes part of the snapshot (see prepareDirtyTracking).
  if (k) prepareDirtyTracking(k);
  const snap = k ? snapshotKernel(k) : null;
  let used = false;
  return {
    base,
    run: (c, props) => {
      if (snap && used) snap.restore();
      if (k) resetDirtyTracking(k);
      used = true;
      // (a literal, not `{ ...base, threads, schedule }`: V8 adds fields to a spread copy slowly, ~2 us a case)
      const prog: ParsedProgram = { config: cfg, profile: prof, configSpec: config, threads: c.threads, schedule: fairSchedule(c.schedule) };
      return runProgram(prog, { properties: props, stopAtFirst: true, trace: false, kernel: k ?? undefined });
    },
  };
}

/** The violation of `target` (or the first one) in an outcome. */
function violationOf(o: RunOutcome, target: string | null): RunOutcome['violations'][number] | undefined {
  return target ? o.violations.find((v) => v.property === target) : o.violations[0];
}

export function runCampaign(opts: CampaignOptions): CampaignResult {
  const shard = opts.shard ?? [0, 1];
  const seed = shardSeed(opts.seed, shard[0]);
  const runner = caseRunner(opts.config, opts.profile);
  const cfg = runner.base.config;
  const props = selectProperties(opts.properties);
  const wanted = opts.properties && opts.properties.length ? new Set(opts.properties) : null;
  const opNames = opts.opNames ?? Object.keys(OPS).filter((n) => !n.startsWith('test_'));
  const shape = { threads: opts.threads, ops: opts.ops, opNames };
  const steps = opts.threads * opts.ops * 3;
  const sched = opts.scheduler === 'pct' ? pctScheduleArb(opts.threads, opts.pctDepth ?? 3, steps) : undefined;
  const arb = caseArb(cfg, shape, sched);
  resetCoverage();
  const t0 = Date.now();
  let executions = 0;
  let firstViolation: CampaignResult['firstViolation'];
  let lastProgress = t0;
  let target: string | null = null;
  let targetProps = props;
  const predicate = (c: FuzzCase): boolean => {
    executions++;
    if (opts.onProgress && (executions & 15) === 0) {
      const now = Date.now();
      if (now - lastProgress > 500) {
        lastProgress = now;
        opts.onProgress({ executions, elapsedMs: now - t0 });
      }
    }
    const o = runner.run(c, targetProps);
    const v = violationOf(o, target);
    if (!v || (wanted && !wanted.has(v.property))) return true;
    if (!target) {
      target = v.property;
      firstViolation = { executions, elapsedMs: Date.now() - t0 };
      // While shrinking only the violated property matters (and it keeps the same one).
      targetProps = props.filter((p) => p.name === target);
    }
    return false;
  };
  const runs = opts.runs !== undefined ? (opts.runsAreSliced ? opts.runs : shardRuns(opts.runs, shard)) : undefined;
  const params: fc.Parameters<[FuzzCase]> = {
    seed,
    numRuns: runs ?? 1_000_000_000,
    interruptAfterTimeLimit: opts.timeMs,
    markInterruptAsFailure: false,
    endOnFailure: false,
    verbose: 0,
  };
  let res: fc.RunDetails<[FuzzCase]>;
  if (opts.shouldStop) {
    const stop = opts.shouldStop;
    res = fc.check(fc.property(arb, (c) => (stop() && !target) || predicate(c)), params);
  } else res = fc.check(fc.property(arb, predicate), params);
  // A case that threw outside the kernel (the executor turns kernel exceptions into kernel-bug) is
  // a harness defect: never let it pass as "no violation".
  if (res.failed && !target) throw res.errorInstance instanceof Error ? res.errorInstance : new Error(String(res.errorInstance ?? 'campaign failed'));
  const violations: CampaignViolation[] = [];
  if (res.failed && res.counterexample && target) {
    violations.push(finishViolation(runner, props, target, res.counterexample[0], opts, seed, res.counterexamplePath ?? ''));
  }
  return {
    profile: runner.base.profile.name,
    config: cfg.name,
    seed,
    shard,
    executions,
    firstViolation,
    elapsedMs: Date.now() - t0,
    violations,
    known: [],
    patches: [],
    coverage: snapshotCoverage(),
  };
}

/**
 * The patch (profiles.ts PATCHES) under which a counterexample no longer violates its property:
 * the violation is then a known race that patch fixes. Only patches that change the profile are
 * tried; a patch can shift the schedule (it removes or adds yield points), so the attribution is
 * a triage aid, reported with the saved file, not a proof.
 */
export function knownRaceOf(profile: Profile, ce: Counterexample): string | null {
  const props = selectProperties([ce.property]);
  const config = resolveConfig(ce.config);
  for (const patch of Object.values(PATCHES)) {
    if (!patchApplies(patch, profile.switches)) continue;
    const patched = applyPatches(profile, [patch.name]);
    const o = runProgram({ config, configSpec: ce.config, profile: patched, threads: ce.threads, schedule: ce.schedule }, { properties: props, stopAtFirst: true, trace: false });
    if (!o.violations.some((v) => v.property === ce.property)) return patch.name;
  }
  return null;
}

/** Names a campaign can report: the catalogue plus the executor's own kernel-bug finding. */
export const REPORTABLE = () => [...PROPERTIES.map((p) => p.name), 'kernel-bug'];

/**
 * A campaign that goes on after a violation: each found property is shrunk and saved, then the
 * search continues (with a fresh derived seed) for the properties not yet violated, until the runs
 * or the time are used up. The summary lists one minimal counterexample per violated property.
 * On a profile not marked buggy (and without `strict`), a violation that vanishes with a patch
 * (knownRaceOf) is listed under `known` instead, and the search goes on with that patch applied
 * and the property still checked: what it finds next is not that race again.
 */
export function runCampaignAll(opts: CampaignOptions): CampaignResult {
  const t0 = Date.now();
  let remaining = opts.properties && opts.properties.length ? [...opts.properties] : REPORTABLE();
  const all: CampaignResult[] = [];
  // A buggy profile's violations are its point; elsewhere a known race must not hide new bugs.
  const attribute = !opts.strict && !getProfile(opts.profile).buggy;
  let profile = opts.profile;
  const known: KnownRace[] = [];
  const patches: string[] = [];
  const sliceRuns = opts.runs !== undefined ? shardRuns(opts.runs, opts.shard ?? [0, 1]) : undefined;
  for (let round = 0; remaining.length > 0; round++) {
    const used = all.reduce((n, r) => n + r.executions, 0);
    const elapsed = Date.now() - t0;
    if (sliceRuns !== undefined && used >= sliceRuns) break;
    if (opts.timeMs !== undefined && elapsed >= opts.timeMs) break;
    const r = runCampaign({
      ...opts,
      profile,
      properties: remaining,
      seed: round === 0 ? opts.seed : shardSeed(opts.seed, 1000 + round),
      runs: sliceRuns !== undefined ? Math.max(1, sliceRuns - used) : undefined,
      runsAreSliced: true,
      timeMs: opts.timeMs !== undefined ? opts.timeMs - elapsed : undefined,
    });
    all.push(r);
    if (!r.violations.length) break;
    const fresh: CampaignViolation[] = [];
    for (const v of r.violations) {
      const patch = attribute ? knownRaceOf(getProfile(profile), v.counterexample) : null;
      if (!patch) fresh.push(v);
      else {
        // Go on with the patch applied: the same race would otherwise be found again and again.
        known.push({ ...v, patch });
        patches.push(patch);
        profile = `${profile}+${patch}`;
      }
    }
    r.violations = fresh;
    const found = new Set(fresh.map((v) => v.property));
    remaining = remaining.filter((n) => !found.has(n));
  }
  const first = all[0];
  const coverage = all.reduce((c, r) => mergeCoverage(c, r.coverage), emptyCoverage());
  return {
    ...first,
    profile: opts.profile,
    executions: all.reduce((n, r) => n + r.executions, 0),
    elapsedMs: Date.now() - t0,
    violations: all.flatMap((r) => r.violations),
    known,
    patches,
    coverage,
  };
}

/**
 * The explicit schedule to save. The fair tail (a switch every FAIR_SLICE steps, written out by
 * materializeSchedule) matters where a thread spins until another makes progress; where the
 * generated choices alone, then the plain policy, show the violation too (one thread spinning on
 * its own: a livelock up to the op step bound), the file keeps those choices instead of one entry
 * per step (100 000 of them).
 */
export function plainOrFair(runner: CaseRunner, only: Property[], target: string, c: TraceCase, steps: number): number[] {
  const fair = materializeSchedule(c.schedule, steps);
  const plain = materializeSchedule(c.schedule, c.schedule.length - 1);
  if (fair.length <= plain.length + FAIR_SLICE) return fair;
  const o = runProgram({ ...runner.base, threads: c.threads, schedule: plain }, { properties: only, stopAtFirst: true, trace: false });
  return violationOf(o, target) ? plain : fair;
}

/** The trace a file keeps for reading: every step up to MAX_TRACE_LINES, then how many more. */
const MAX_TRACE_LINES = 2000;
function traceLines(trace: { thread: number; at: string }[]): string[] {
  const lines = trace.slice(0, MAX_TRACE_LINES).map((r) => `t${r.thread} ${r.at}`);
  if (trace.length > MAX_TRACE_LINES) lines.push(`... ${trace.length - MAX_TRACE_LINES} more steps (mmcheck replay --trace prints them)`);
  return lines;
}

/** 1-minimal pass, final run, save. */
function finishViolation(runner: CaseRunner, props: Property[], target: string, c: FuzzCase, opts: CampaignOptions, seed: number, path: string): CampaignViolation {
  const only = props.filter((p) => p.name === target);
  // Ops, then preemptions, then steps (minimize's ranking).
  const fails = (x: TraceCase): Verdict => {
    const o = runner.run(x, only);
    return violationOf(o, target) ? { steps: o.steps, preemptions: o.preemptions } : false;
  };
  const shrunk = minimize({ threads: c.threads, schedule: c.schedule }, fails);
  const first = runProgram({ ...runner.base, threads: shrunk.threads, schedule: fairSchedule(shrunk.schedule) }, { properties: only, stopAtFirst: true, trace: true });
  const min = { threads: shrunk.threads, schedule: plainOrFair(runner, only, target, shrunk, first.steps) };
  const out = runProgram({ ...runner.base, threads: min.threads, schedule: min.schedule }, { properties: only, stopAtFirst: true, trace: true });
  const v = violationOf(out, target) ?? { property: target, message: '(did not reproduce after minimisation)', step: -1 };
  const profile = runner.base.profile;
  const ce: Counterexample = {
    format: CE_FORMAT,
    property: target,
    profile: profile.name,
    fixedProfile: profile.fixedBy ?? null,
    config: runner.base.configSpec,
    threads: min.threads,
    schedule: min.schedule,
    violation: { message: v.message, step: v.step },
    fastcheck: { seed, path },
    source: 'fuzz',
    stats: { ops: countOps(min), preemptions: out.preemptions, steps: out.steps },
    trace: traceLines(out.trace),
  };
  const file = opts.out ? saveCounterexample(opts.out, ce) : null;
  return { property: target, message: v.message, file, ops: countOps(min), preemptions: out.preemptions, steps: out.steps, seed, path, counterexample: ce };
}
