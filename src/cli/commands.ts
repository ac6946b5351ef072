/** The subcommands; each lives in its own file. */
import type { Command } from './command.js';
import { configs, meminfoCmd, ops, profiles, properties } from './info.js';
import { run } from './run.js';

export const COMMANDS: Record<string, Command> = {
  run,
  configs,
  profiles,
  properties,
  ops,
  meminfo: meminfoCmd,
};
