import type { ParseArgsConfig } from 'node:util';

export interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run: (opts: Record<string, any>, positionals: string[]) => Promise<number> | number;
}
