/**
 * A program: machine config, kernel profile, threads of operations and an optional schedule.
 * Parsing validates everything up front; a malformed program is a one-line ConfigError.
 */
import { resolveConfig, type MachineConfig } from '../kernel/config.js';
import { getProfile, type Profile } from '../kernel/profiles.js';
import { ConfigError } from '../kernel/types.js';
import { validateOp, type Op } from './ops/index.js';

export interface Program {
  config: string | MachineConfig;
  profile: string;
  threads: Op[][];
  schedule?: number[];
}

export interface ParsedProgram {
  config: MachineConfig;
  profile: Profile;
  threads: Op[][];
  schedule: number[];
  /** the config as given (a name stays a name) */
  configSpec: string | MachineConfig;
}

export function parseProgram(raw: unknown, where = 'program'): ParsedProgram {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${where}: must be a JSON object`);
  const p = raw as Record<string, unknown>;
  for (const key of Object.keys(p)) {
    if (!['config', 'profile', 'threads', 'schedule', 'comment'].includes(key)) throw new ConfigError(`${where}: unknown field '${key}'`);
  }
  if (p.config === undefined) throw new ConfigError(`${where}: field 'config' is missing`);
  const config = resolveConfig(p.config);
  const profile = getProfile(typeof p.profile === 'string' ? p.profile : 'mainline');
  if (p.profile !== undefined && typeof p.profile !== 'string') throw new ConfigError(`${where}: field 'profile' must be a string`);
  if (!Array.isArray(p.threads) || p.threads.length === 0) throw new ConfigError(`${where}: field 'threads' must be a non-empty list of op lists`);
  const hstates = config.hstates.map((h) => h.name);
  const threads = p.threads.map((t, ti) => {
    if (!Array.isArray(t)) throw new ConfigError(`${where}: thread ${ti} must be a list of ops`);
    return t.map((op, oi) => validateOp(op, `${where}: thread ${ti} op ${oi}`, hstates));
  });
  let schedule: number[] = [];
  if (p.schedule !== undefined) {
    if (!Array.isArray(p.schedule) || !p.schedule.every((c) => Number.isInteger(c) && c >= 0)) {
      throw new ConfigError(`${where}: field 'schedule' must be a list of non-negative integers`);
    }
    schedule = p.schedule as number[];
  }
  return { config, profile, threads, schedule, configSpec: p.config as string | MachineConfig };
}
