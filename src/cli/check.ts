/**
 * mmcheck check: exhaustive small-scope model checking (src/harness/modelcheck.ts) of a program
 * (--program FILE), a built-in program set (--scenario NAME, src/harness/program-sets.ts) or every
 * program up to N ops over a small vocabulary (--all-programs N). With none of these: each buggy
 * profile's own set, then every set against mainline (or against --profile P).
 * A violation is saved as a counterexample (source 'check') that `mmcheck replay` reads.
 */
import { getProfile } from '../kernel/profiles.js';
import { knownRaceOf } from '../harness/fuzz.js';
import { checkProgramsParallel } from '../harness/modelcheck-parallel.js';
import { checkPrograms, toCounterexample, type CheckStats, type SetResult } from '../harness/modelcheck.js';
import { allPrograms, buggyProfiles, getProgramSet, loadSet, PROGRAM_SETS, setForProfile } from '../harness/program-sets.js';
import { parseProgram, type ParsedProgram } from '../harness/program.js';
import { defaultOutDir, saveCounterexample } from '../harness/corpus.js';
import { PROPERTIES, getProperty, type Property } from '../../properties/index.js';
import type { Command } from './command.js';
import { UsageError, print, printJson, readJsonFile } from './io.js';

export interface CheckJob {
  label: string;
  profile: string;
  config: string;
  programs: { name: string; prog: ParsedProgram }[];
  unavailable?: string | null;
  /** a buggy profile's own set is checked against the property expected to catch it */
  expected?: string;
}

export interface CheckRunJson {
  set: string;
  profile: string;
  config: string;
  programs: number;
  schedules: number;
  states: number;
  steps: number;
  pruned: number;
  seconds: number;
  statesPerSec: number;
  complete: boolean;
  unavailable: string | null;
  /** violations of other programs (or other properties) than the one reported */
  others: { program: string; property: string; steps: number; preemptions: number; message: string }[];
  /** the properties checked */
  properties?: string[];
  violatingPrograms: number;
  /**
   * Known races met on a profile not marked buggy (without --strict): violations that vanish with
   * a patch (knownRaceOf, `mmcheck profiles --patches`). The set was then checked again with the
   * patch applied; the counts above add up every round.
   */
  known?: (KnownRaceJson & { patch: string })[];
  /** the patches applied, in order (the profile checked last is profile+patch+...) */
  patches?: string[];
  violation: null | KnownRaceJson & {
    step: number;
    schedule: number[];
    replayed: boolean;
  };
}

interface KnownRaceJson {
  program: string;
  property: string;
  message: string;
  steps: number;
  preemptions: number;
  ops: number;
  counterexample: string | null;
}

function intOpt(v: unknown, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`check: --${name} must be an integer >= ${min}`);
  return n;
}

function configName(p: ParsedProgram): string {
  return typeof p.configSpec === 'string' ? p.configSpec : p.config.name;
}

/** The jobs the options ask for. */
export function checkJobs(o: Record<string, any>): CheckJob[] {
  const modes = ['program', 'scenario', 'all-programs'].filter((m) => o[m] !== undefined);
  if (modes.length > 1) throw new UsageError('check: give at most one of --program, --scenario, --all-programs');
  const profile: string | undefined = o.profile;
  if (profile) getProfile(profile);
  if (o.program) {
    const prog = parseProgram(readJsonFile(o.program, 'program'), o.program);
    const p = profile ? { ...prog, profile: getProfile(profile) } : prog;
    return [{ label: o.program, profile: p.profile.name, config: configName(p), programs: [{ name: o.program, prog: p }] }];
  }
  if (o.scenario) return [setJob(o.scenario, profile)];
  if (o['all-programs'] !== undefined) {
    const n = intOpt(o['all-programs'], 'all-programs', 1)!;
    const prof = profile ?? 'mainline';
    return [{ label: `all-programs-${n}`, profile: prof, config: 'tiny', programs: allPrograms(n, prof) }];
  }
  if (profile) {
    const own = setForProfile(profile);
    return own ? [setJob(own.name, profile)] : PROGRAM_SETS.map((s) => setJob(s.name, profile));
  }
  const jobs = buggyProfiles().flatMap((b) => {
    const s = setForProfile(b);
    return s ? [setJob(s.name, b)] : [];
  });
  return jobs.concat(PROGRAM_SETS.map((s) => setJob(s.name, 'mainline')));
}

function setJob(name: string, profile?: string): CheckJob {
  const l = loadSet(getProgramSet(name), profile);
  const prof = profile ?? l.set.profile ?? 'mainline';
  const buggy = getProfile(prof).buggy;
  const expected = buggy && l.set.profile === prof ? buggy.property : undefined;
  const config = typeof l.set.config === 'string' ? l.set.config : String(l.set.config.name ?? 'inline');
  return { label: name, profile: prof, config, programs: l.programs, unavailable: l.unavailable, expected };
}

export interface CheckRunOptions {
  properties: Property[];
  /** report the shortest violation of this property when there is one (a buggy profile's own) */
  prefer?: string;
  preemptions?: number;
  maxDepth?: number;
  symmetry?: boolean;
  /** debug: every state's fingerprint checked against its exact contents (CheckOptions.crossCheck) */
  crossCheck?: boolean;
  /** worker threads checking the programs of a set (modelcheck-parallel.ts; 1: this thread) */
  workers?: number;
  out?: string | null;
}

/** Runs one job; saves its shortest violation (when `out` is set). */
export function runJob(job: CheckJob, opts: CheckRunOptions): { json: CheckRunJson; result: SetResult | null; chosen: Chosen } {
  const empty: CheckStats = { schedules: 0, states: 0, steps: 0, pruned: 0, cutoff: 0, ms: 0 };
  const workers = opts.workers ?? 1;
  const r = job.unavailable ? null : workers > 1 && job.programs.length > 1 ? checkProgramsParallel(job.programs, opts, workers) : checkPrograms(job.programs, opts);
  const st = r?.stats ?? empty;
  const preferred = opts.prefer && r ? r.violations.filter((v) => v.violation.property === opts.prefer) : [];
  const s = preferred.length > 0 ? preferred.reduce((a, b) => (rankOf(b.violation) < rankOf(a.violation) ? b : a)) : r?.shortest;
  const others = r ? r.violations.filter((v) => v !== s) : [];
  let path: string | null = null;
  if (s && opts.out !== null) path = saveCounterexample(opts.out ?? defaultOutDir(job.profile), toCounterexample(s.prog, s.violation));
  const json: CheckRunJson = {
    set: job.label,
    profile: job.profile,
    config: job.config,
    programs: r?.programs ?? 0,
    schedules: st.schedules,
    states: st.states,
    steps: st.steps,
    pruned: st.pruned,
    seconds: Math.round(st.ms) / 1000,
    statesPerSec: st.ms > 0 ? Math.round((st.states / st.ms) * 1000) : 0,
    complete: r?.complete ?? false,
    unavailable: job.unavailable ?? null,
    others: others
      .filter((v) => !s || v.violation.property !== s.violation.property)
      .map((v) => ({ program: v.name ?? String(v.index), property: v.violation.property, steps: v.violation.steps, preemptions: v.violation.preemptions, message: v.violation.message })),
    violatingPrograms: r?.violations.length ?? 0,
    violation: s
      ? {
          program: s.name ?? String(s.index),
          property: s.violation.property,
          message: s.violation.message,
          step: s.violation.step,
          steps: s.violation.steps,
          preemptions: s.violation.preemptions,
          ops: s.violation.ops,
          schedule: s.violation.schedule,
          replayed: s.violation.replayed,
          counterexample: path,
        }
      : null,
  };
  return { json, result: r, chosen: s ?? null };
}

function rankOf(v: { steps: number; preemptions: number; ops: number }): number {
  return v.steps * 1e6 + v.preemptions * 1e3 + v.ops;
}

type Chosen = SetResult['shortest'];

/** The same programs on another profile (a patched one). */
function onProfile(job: CheckJob, profile: string): CheckJob {
  const p = getProfile(profile);
  return { ...job, profile, programs: job.programs.map((x) => ({ name: x.name, prog: { ...x.prog, profile: p } })) };
}

/**
 * Runs a job; on a profile not marked buggy, a shortest violation that vanishes with a patch is a
 * known race: it is listed under `known` and the job runs again with the patch applied, so that
 * what is reported next is not that race again (as `mmcheck fuzz` does).
 */
export function runJobAttributing(job: CheckJob, opts: CheckRunOptions, attribute: boolean): CheckRunJson {
  const known: (KnownRaceJson & { patch: string })[] = [];
  const patches: string[] = [];
  const sum = { schedules: 0, states: 0, steps: 0, pruned: 0, seconds: 0 };
  for (let cur = job; ; ) {
    const { json, chosen } = runJob(cur, opts);
    for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += json[k];
    const patch = attribute && chosen ? knownRaceOf(chosen.prog.profile, toCounterexample(chosen.prog, chosen.violation)) : null;
    if (!patch || patches.includes(patch)) {
      const ms = sum.seconds * 1000;
      return { ...json, ...sum, seconds: Math.round(ms) / 1000, statesPerSec: ms > 0 ? Math.round((sum.states / ms) * 1000) : 0, profile: job.profile, known, patches };
    }
    const { step: _s, schedule: _sc, replayed: _r, ...v } = json.violation!;
    known.push({ patch, ...v });
    patches.push(patch);
    cur = onProfile(cur, `${cur.profile}+${patch}`);
  }
}

function printRun(j: CheckRunJson): void {
  if (j.unavailable) {
    print(`${j.set} on ${j.profile}: not run (${j.unavailable})`);
    return;
  }
  const props = j.properties && j.properties.length <= 2 ? ` [${j.properties.join(', ')}]` : '';
  print(`${j.set} on ${j.profile} (${j.config})${props}: ${j.programs} programs, ${j.schedules} schedules, ${j.states} distinct states, ${j.steps} steps, ${j.seconds.toFixed(2)} s, ${j.statesPerSec} states/s${j.complete ? '' : ' (cut off by --depth)'}`);
  for (const k of j.known ?? []) {
    print(`  known race (vanishes with patch ${k.patch}; checked again with it applied): ${k.property} in ${k.program}, shortest ${k.steps} steps, ${k.preemptions} preemptions, ${k.ops} ops`);
    if (k.counterexample) print(`    saved ${k.counterexample}`);
  }
  const v = j.violation;
  if (!v) {
    print(j.known?.length ? '  no new violation' : '  no violation');
    return;
  }
  print(`  VIOLATION ${v.property} in ${v.program} (${j.violatingPrograms} of ${j.programs} programs violate): shortest ${v.steps} steps, ${v.preemptions} preemptions, ${v.ops} ops; schedule [${v.schedule.join(',')}]${v.replayed ? '' : ' (replay did not reproduce it!)'}`);
  print(`  ${v.message}`);
  if (v.counterexample) print(`  saved ${v.counterexample}`);
  for (const x of j.others) print(`  also: ${x.property} in ${x.program} (${x.steps} steps, ${x.preemptions} preemptions): ${x.message}`);
}

export const check: Command = {
  summary: 'exhaustive small-scope model checking of a program set (shortest counterexample)',
  usage: '[--program FILE | --scenario NAME | --all-programs N] [--profile P] [--preemptions K] [--depth N] [--property NAME...] [--no-symmetry] [--cross-check] [--workers N] [--out DIR | --no-save] [--strict] [--json]',
  options: {
    program: { type: 'string' },
    scenario: { type: 'string' },
    'all-programs': { type: 'string' },
    profile: { type: 'string' },
    preemptions: { type: 'string' },
    depth: { type: 'string' },
    property: { type: 'string', multiple: true },
    'no-symmetry': { type: 'boolean' },
    'cross-check': { type: 'boolean' },
    workers: { type: 'string' },
    out: { type: 'string' },
    'no-save': { type: 'boolean' },
    strict: { type: 'boolean' },
  },
  run(o) {
    const jobs = checkJobs(o);
    // 'kernel-bug' names no property object: kernel exceptions and deadlocks are always reported,
    // so `--property kernel-bug` alone explores with no invariant checks (as `mmcheck fuzz` does).
    const names = o.property ? (o.property as string[]).flatMap((p) => p.split(',')).filter(Boolean) : null;
    const properties = names ? names.filter((n) => n !== 'kernel-bug').map(getProperty) : PROPERTIES;
    const opts: CheckRunOptions = {
      properties,
      preemptions: intOpt(o.preemptions, 'preemptions', 0) ?? 2,
      maxDepth: intOpt(o.depth, 'depth', 1) ?? 400,
      symmetry: !o['no-symmetry'],
      crossCheck: !!o['cross-check'],
      workers: intOpt(o.workers, 'workers', 1) ?? 1,
      // undefined: the regression corpus for buggy profiles, counterexamples/findings/ otherwise
      out: o['no-save'] ? null : o.out,
    };
    const runs: CheckRunJson[] = [];
    for (const job of jobs) {
      // Without --property, a buggy profile's own set is checked for the property that profile is
      // expected to violate (plus kernel exceptions), so that the shortest witness is of its bug.
      const props = !o.property && job.expected ? [getProperty(job.expected)] : properties;
      // A buggy profile's violations are its point; elsewhere a known race must not hide new bugs.
      const attribute = !o.strict && !getProfile(job.profile).buggy;
      const json = runJobAttributing(job, { ...opts, properties: props, prefer: job.expected }, attribute);
      json.properties = props.map((p) => p.name);
      runs.push(json);
      if (!o.json) printRun(json);
    }
    const total = runs.reduce((a, r) => ({ states: a.states + r.states, ms: a.ms + r.seconds * 1000 }), { states: 0, ms: 0 });
    const summary = { preemptions: opts.preemptions, depth: opts.maxDepth, properties: properties.map((p) => p.name), runs, statesPerSec: total.ms > 0 ? Math.round((total.states / total.ms) * 1000) : 0 };
    if (o.json) printJson(summary);
    else if (runs.length > 1) print(`total: ${total.states} distinct states in ${(total.ms / 1000).toFixed(2)} s (${summary.statesPerSec} states/s)`);
    return runs.some((r) => r.violation) ? 1 : 0;
  },
};
