/**
 * Replaying a counterexample file without fast-check: the program and schedule it holds, on its
 * profile or another one (`--profile`, e.g. the fixed profile), with its property checked. The
 * violation reproduces when the same property is violated. With `trace`, every step is reported
 * with the thread, the op it is running, the kernel function at the yield point that ended the
 * step and the views (/proc/meminfo, /proc/pagetypeinfo cells) that changed.
 */
import { getProfile, type Profile } from '../kernel/profiles.js';
import { meminfo, pagetypeinfo } from '../kernel/meminfo.js';
import type { Kernel } from '../kernel/machine.js';
import { PROPERTIES, getProperty } from '../../properties/index.js';
import { loadCounterexample, parseCounterexample, type Counterexample } from './corpus.js';
import { runProgram, traceHash, type RunOutcome, type Violation } from './executor.js';
import type { ParsedProgram } from './program.js';

export interface TraceStep {
  step: number;
  thread: number;
  op: string | null;
  at: string;
  changed: Record<string, [number, number]>;
}

export interface ReplayResult {
  file: string;
  property: string;
  profile: string;
  reproduced: boolean;
  violation: Violation | null;
  violations: Violation[];
  steps: number;
  preemptions: number;
  traceHash: string;
  trace?: TraceStep[];
}

/** Flat numeric views: meminfo fields and pagetypeinfo cells. */
function views(k: Kernel): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, v] of Object.entries(meminfo(k))) if (typeof v === 'number') out.set(key, v);
  for (const h of k.hstateCounters()) {
    for (const f of ['nr', 'free', 'resv', 'surplus', 'max'] as const) out.set(`hugepages-${h.name}.${f}`, h[f]);
  }
  for (const z of pagetypeinfo(k).zones) {
    for (const [mt, row] of Object.entries(z.free)) row.forEach((n, o) => out.set(`node${z.node}.${z.zone}.${mt}[${o}]`, n));
    for (const [mt, n] of Object.entries(z.blocks)) out.set(`node${z.node}.${z.zone}.blocks.${mt}`, n);
  }
  return out;
}

export function replayProgram(ce: Counterexample, program: ParsedProgram, opts: { profile?: string | Profile; trace?: boolean; file?: string } = {}): ReplayResult {
  const profile = opts.profile ? (typeof opts.profile === 'string' ? getProfile(opts.profile) : opts.profile) : program.profile;
  const props = ce.property === 'kernel-bug' || ce.property === 'bounded-progress' ? PROPERTIES.filter((p) => p.name === ce.property) : [getProperty(ce.property)];
  const steps: TraceStep[] = [];
  let prev: Map<string, number> | null = null;
  const running: (string | null)[] = [];
  const out: RunOutcome = runProgram(program, {
    properties: props,
    profile,
    trace: true,
    onStep: opts.trace
      ? (rec, k, ctx) => {
        for (const s of ctx.started) running[s.thread] = s.op.op;
        if (!prev) prev = views(createBaseline(program, profile));
        const now = views(k);
        const changed: Record<string, [number, number]> = {};
        for (const [key, v] of now) {
          const before = prev.get(key) ?? 0;
          if (before !== v) changed[key] = [before, v];
        }
        prev = now;
        steps.push({ step: rec.step, thread: rec.thread, op: running[rec.thread] ?? null, at: rec.at, changed });
        for (const f of ctx.finished) if (f.thread === rec.thread) running[rec.thread] = null;
      }
      : undefined,
  });
  const v = out.violations.find((x) => x.property === ce.property) ?? null;
  return {
    file: opts.file ?? '',
    property: ce.property,
    profile: profile.name,
    reproduced: v !== null,
    violation: v,
    violations: out.violations,
    steps: out.steps,
    preemptions: out.preemptions,
    traceHash: traceHash(out.trace),
    trace: opts.trace ? steps : undefined,
  };
}

/** The views of the machine before the first step (a fresh boot of the same config and profile). */
function createBaseline(program: ParsedProgram, profile: Profile): Kernel {
  return runProgram({ ...program, profile, threads: [[]], schedule: [] }, { profile }).kernel;
}

export function replayFile(file: string, opts: { profile?: string; trace?: boolean } = {}): ReplayResult {
  const { ce, program } = loadCounterexample(file);
  return replayProgram(ce, program, { ...opts, file });
}

export function replayObject(raw: unknown, opts: { profile?: string; trace?: boolean } = {}): ReplayResult {
  const { ce, program } = parseCounterexample(raw, 'counterexample');
  return replayProgram(ce, program, opts);
}
