/**
 * mmcheck bugs: the harness's own measure of bug-finding power. For every buggy profile
 * (profiles.ts `buggy`), against the property it is expected to violate:
 *  - the fuzzer (src/harness/fuzz.ts) with uniform random schedules and with PCT: found or not,
 *    time and executions to the first violation, and the shrunk counterexample's length
 *    (ops, preemptions, steps);
 *  - the model checker (src/harness/modelcheck.ts) on the profile's built-in program set
 *    (src/harness/program-sets.ts) plus every program of up to 2 ops over the small vocabulary:
 *    time and schedules to the first violation, and the shortest counterexample's length;
 *  - the model checker on the fuzzer's shrunk program: the shortest schedule for that program, so
 *    the fuzzer's schedule shrinking is compared with the optimum on the same program.
 * Both tools run on the same config (the set's), so their lengths are comparable.
 * A finding counts as the planted bug only when its counterexample does not violate the property
 * on the profile's fixed profile (`fixedBy`): otherwise it is a false alarm of the property or a
 * bug every profile shares, and the table says so.
 */
import { getProfile } from '../kernel/profiles.js';
import { runCampaign, parseDuration, type CampaignResult } from '../harness/fuzz.js';
import { checkProgram, checkPrograms, toCounterexample, type FoundViolation, type SetResult } from '../harness/modelcheck.js';
import { allPrograms, buggyProfiles, loadSet, setForProfile } from '../harness/program-sets.js';
import { parseProgram, type ParsedProgram } from '../harness/program.js';
import { runProgram } from '../harness/executor.js';
import type { Counterexample } from '../harness/corpus.js';
import type { Property } from '../../properties/index.js';
import { getProperty } from '../../properties/index.js';
import type { Command } from './command.js';
import { UsageError, print, printJson } from './io.js';

export interface Length {
  ops: number;
  preemptions: number;
  steps: number;
}

export interface FuzzRow {
  found: boolean;
  /** the counterexample passes on the fixed profile (null: no fixed profile or nothing found) */
  confirmed: boolean | null;
  seconds: number | null;
  executions: number | null;
  totalExecutions: number;
  shrunk: Length | null;
  file: string | null;
}

export interface BugRow {
  profile: string;
  property: string;
  config: string;
  random: FuzzRow;
  pct: FuzzRow;
  check: {
    found: boolean;
    confirmed: boolean | null;
    seconds: number | null;
    schedules: number | null;
    totalSeconds: number;
    programs: number;
    states: number;
    shortest: Length | null;
    program: string | null;
    unavailable: string | null;
  };
  fixedProfile: string | null;
  /** the model checker's shortest schedule for the fuzzer's (random) shrunk program */
  checkOnFuzzProgram: Length | null;
  /** fuzzer's shrunk steps == checker's shortest on the same program */
  shrinkOptimal: boolean | null;
}

/** Does the counterexample violate the property on the fixed profile too? */
function reproducesOn(ce: Counterexample, fixed: string, props: Property[]): boolean {
  const prog = parseProgram({ config: ce.config, profile: fixed, threads: ce.threads, schedule: ce.schedule }, 'counterexample');
  return runProgram(prog, { properties: props, stopAtFirst: true, trace: false }).violations.some((v) => v.property === ce.property);
}

function fuzzRow(r: CampaignResult, fixed: string | null, props: Property[]): FuzzRow {
  const v = r.violations[0];
  return {
    found: !!v,
    confirmed: v && fixed ? !reproducesOn(v.counterexample, fixed, props) : null,
    seconds: r.firstViolation ? r.firstViolation.elapsedMs / 1000 : null,
    executions: r.firstViolation?.executions ?? null,
    totalExecutions: r.executions,
    shrunk: v ? { ops: v.ops, preemptions: v.preemptions, steps: v.steps } : null,
    file: v?.file ?? null,
  };
}

export interface BugsOptions {
  budgetMs: number;
  seed: number;
  threads: number;
  ops: number;
  out: string | null;
  profiles?: string[];
}

/** The checker's shortest violation that is the planted bug (passes on the fixed profile), else the shortest. */
function pickShortest(r: SetResult, fixed: string | null, props: Property[]): { v: FoundViolation; name: string; confirmed: boolean | null } | null {
  const rank = (v: FoundViolation) => v.steps * 1e6 + v.preemptions * 1e3 + v.ops;
  const all = [...r.violations].sort((a, b) => rank(a.violation) - rank(b.violation));
  if (all.length === 0) return null;
  const named = (x: (typeof all)[number]) => x.name ?? String(x.index);
  if (!fixed) return { v: all[0].violation, name: named(all[0]), confirmed: null };
  for (const x of all) if (!reproducesOn(toCounterexample(x.prog, x.violation), fixed, props)) return { v: x.violation, name: named(x), confirmed: true };
  return { v: all[0].violation, name: named(all[0]), confirmed: false };
}

/** One row per buggy profile. */
export function bugRow(profile: string, o: BugsOptions): BugRow {
  const prof = getProfile(profile);
  if (!prof.buggy) throw new UsageError(`bugs: profile '${profile}' is not marked buggy`);
  const property = prof.buggy.property;
  const fixed = prof.fixedBy ?? null;
  const set = setForProfile(profile);
  const config = set?.config ?? 'tiny';
  const configLabel = typeof config === 'string' ? config : String(config.name ?? 'inline');
  const props = [getProperty(property)];
  const campaign = (scheduler: 'random' | 'pct') =>
    runCampaign({ config: config as never, profile, properties: [property], timeMs: o.budgetMs, seed: o.seed, threads: o.threads, ops: o.ops, scheduler, out: o.out });
  const random = campaign('random');
  const pct = campaign('pct');
  const check = checkRow(profile, config, set ? loadSet(set, profile) : null, fixed, props);
  let onFuzz: Length | null = null;
  const rv = random.violations[0];
  if (rv) {
    const c = rv.counterexample;
    const prog = parseProgram({ config: c.config, profile, threads: c.threads }, 'fuzz counterexample');
    const v = checkProgram(prog, { properties: props }).violation;
    if (v) onFuzz = { ops: v.ops, preemptions: v.preemptions, steps: v.steps };
  }
  const rr = fuzzRow(random, fixed, props);
  return {
    profile,
    property,
    config: configLabel,
    fixedProfile: fixed,
    random: rr,
    pct: fuzzRow(pct, fixed, props),
    check,
    checkOnFuzzProgram: onFuzz,
    shrinkOptimal: rr.shrunk && onFuzz ? rr.shrunk.steps === onFuzz.steps : null,
  };
}

/** The model checker over the built-in set plus every program of up to 2 ops on the set's config. */
function checkRow(profile: string, config: unknown, loaded: ReturnType<typeof loadSet> | null, fixed: string | null, props: Property[]): BugRow['check'] {
  const progs: { name: string; prog: ParsedProgram }[] = loaded && !loaded.unavailable ? [...loaded.programs] : [];
  progs.push(...allPrograms(2, profile, config as string | Record<string, unknown>));
  const r = checkPrograms(progs, { properties: props });
  const s = pickShortest(r, fixed, props);
  return {
    found: !!s,
    confirmed: s ? s.confirmed : null,
    seconds: r.first ? r.first.ms / 1000 : null,
    schedules: r.first?.schedules ?? null,
    totalSeconds: r.stats.ms / 1000,
    programs: r.programs,
    states: r.stats.states,
    shortest: s ? { ops: s.v.ops, preemptions: s.v.preemptions, steps: s.v.steps } : null,
    program: s?.name ?? null,
    unavailable: loaded?.unavailable ?? null,
  };
}

const len = (l: Length | null): string => (l ? `${l.ops}/${l.preemptions}/${l.steps}` : '-');
const secs = (s: number | null): string => (s === null ? '-' : `${s.toFixed(2)}s`);

const alarm = (confirmed: boolean | null): string => (confirmed === false ? ' FALSE ALARM (also on fixed)' : '');

function fuzzCell(f: FuzzRow): string {
  return f.found ? `found ${secs(f.seconds)} ${f.executions} ex, shrunk ${len(f.shrunk)}${alarm(f.confirmed)}` : `not found (${f.totalExecutions} ex)`;
}

export function formatBugsTable(rows: BugRow[]): string {
  const head = ['profile', 'property', 'fuzz random', 'fuzz pct', 'check (set + all 2-op programs)', 'check on fuzz program'];
  const body = rows.map((r) => [
    r.profile,
    r.property,
    fuzzCell(r.random),
    fuzzCell(r.pct),
    r.check.found ? `found ${secs(r.check.seconds)} ${r.check.schedules} sched, shortest ${len(r.check.shortest)}${alarm(r.check.confirmed)}` : 'not found',
    r.checkOnFuzzProgram ? `shortest ${len(r.checkOnFuzzProgram)}${r.shrinkOptimal ? ' (= shrunk)' : ''}` : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line), '', 'lengths are ops/preemptions/steps; times and executions are to the first violation (before shrinking)'].join('\n');
}

export const bugs: Command = {
  summary: 'bug-finding power: fuzzer (random, PCT) and model checker on every buggy profile',
  usage: '[--budget 60s] [--seed S] [--profile P...] [--threads N] [--ops N] [--out DIR] [--json]',
  options: {
    budget: { type: 'string' },
    seed: { type: 'string' },
    profile: { type: 'string', multiple: true },
    threads: { type: 'string' },
    ops: { type: 'string' },
    out: { type: 'string' },
  },
  run(o) {
    const int = (name: string, v: unknown, dflt: number, min: number): number => {
      if (v === undefined) return dflt;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) throw new UsageError(`bugs: --${name} must be an integer >= ${min}`);
      return n;
    };
    const opts: BugsOptions = {
      budgetMs: parseDuration(o.budget ?? '60s'),
      seed: int('seed', o.seed, 1, 0),
      threads: int('threads', o.threads, 2, 1),
      ops: int('ops', o.ops, 3, 1),
      out: o.out ?? null,
    };
    const profiles: string[] = o.profile ?? buggyProfiles();
    const rows: BugRow[] = [];
    for (const p of profiles) {
      if (!o.json && process.stderr.isTTY) process.stderr.write(`${p}...\n`);
      rows.push(bugRow(p, opts));
    }
    if (o.json) printJson({ budgetSeconds: opts.budgetMs / 1000, seed: opts.seed, threads: opts.threads, ops: opts.ops, rows });
    else print(formatBugsTable(rows));
    // 0: every planted bug was found by every tool; 1: something was missed (a regression).
    const ok = (found: boolean, confirmed: boolean | null) => found && confirmed !== false;
    return rows.every((r) => ok(r.random.found, r.random.confirmed) && ok(r.pct.found, r.pct.confirmed) && ok(r.check.found, r.check.confirmed)) ? 0 : 1;
  },
};
