/**
 * Counterexample files (format `mmcheck-counterexample/1`): everything needed to replay a violation
 * without fast-check — config, profile, thread programs, schedule, the property and the step it
 * broke — plus the fast-check seed/path it came from and, for reading, the trace.
 * Files are written atomically (temporary file + rename).
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineConfig } from '../kernel/config.js';
import { ConfigError } from '../kernel/types.js';
import { PROFILES } from '../kernel/profiles.js';
import { writeFileAtomic, readJsonFile } from '../cli/io.js';
import { parseProgram, type ParsedProgram } from './program.js';
import type { Op } from './ops/index.js';

export const CE_FORMAT = 'mmcheck-counterexample/1';

export interface Counterexample {
  format: typeof CE_FORMAT;
  property: string;
  profile: string;
  /** the fixed profile this one is compared with (the replay must pass there) */
  fixedProfile?: string | null;
  config: string | MachineConfig;
  threads: Op[][];
  schedule: number[];
  violation: { message: string; step: number };
  /** where it came from: fast-check seed and path, or the model checker */
  fastcheck?: { seed: number; path: string } | null;
  source?: 'fuzz' | 'check' | 'manual';
  /** size after shrinking */
  stats?: { ops: number; preemptions: number; steps: number };
  /** for reading only: thread and kernel function per step */
  trace?: string[];
}

/** Validates a parsed counterexample file; a one-line ConfigError names what is wrong. */
export function parseCounterexample(raw: unknown, where: string): { ce: Counterexample; program: ParsedProgram } {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${where}: not a counterexample object`);
  const c = raw as Record<string, unknown>;
  if (c.format !== CE_FORMAT) throw new ConfigError(`${where}: format must be '${CE_FORMAT}'`);
  if (typeof c.property !== 'string') throw new ConfigError(`${where}: field 'property' must be a string`);
  if (!c.violation || typeof c.violation !== 'object') throw new ConfigError(`${where}: field 'violation' is missing`);
  const program = parseProgram({ config: c.config, profile: c.profile, threads: c.threads, schedule: c.schedule ?? [] }, where);
  return { ce: c as unknown as Counterexample, program };
}

export function loadCounterexample(path: string): { ce: Counterexample; program: ParsedProgram } {
  return parseCounterexample(readJsonFile(path, 'counterexample'), path);
}

/** FNV-1a of the replayable part: the file name is stable for the same counterexample. */
export function counterexampleHash(ce: Counterexample): string {
  const s = JSON.stringify([ce.property, ce.profile, ce.config, ce.threads, ce.schedule]);
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** Saves to DIR/<profile>-<property>-<hash>.json atomically; returns the path. */
export function saveCounterexample(dir: string, ce: Counterexample): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${ce.profile}-${ce.property}-${counterexampleHash(ce)}.json`);
  writeFileAtomic(path, `${JSON.stringify(ce, null, 2)}\n`);
  return path;
}

/**
 * Where a new counterexample goes by default: the regression corpus (replayed by npm test against
 * the profile and its fix) for profiles marked buggy, counterexamples/findings/ for any other
 * profile — a violation there is an open finding to triage, not yet a regression test.
 */
export function defaultOutDir(profile: string): string {
  return PROFILES[profile]?.buggy ? 'counterexamples' : join('counterexamples', 'findings');
}

export function listCounterexamples(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => join(dir, f));
  } catch {
    return [];
  }
}
