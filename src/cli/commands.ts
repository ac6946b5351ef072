/** The subcommands; each lives in its own file. */
import type { Command } from './command.js';
import { configs, meminfoCmd, ops, profiles, properties } from './info.js';
import { run } from './run.js';
import { check } from './check.js';
import { bugs } from './bugs.js';
import { fuzz } from './fuzz.js';
import { replay } from './replay.js';
import { scenario } from './scenario.js';

export const COMMANDS: Record<string, Command> = {
  run,
  configs,
  profiles,
  properties,
  ops,
  meminfo: meminfoCmd,
  check,
  bugs,
  fuzz,
  replay,
  scenario,
};
