/** CLI plumbing: usage errors (exit 2), JSON files, atomic writes. */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { ConfigError } from '../kernel/types.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(`cannot read ${what} '${path}'`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${what} '${path}' is not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
}

/** Write to a temporary file and rename: never a half-written file. */
export function writeFileAtomic(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function print(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

export function printJson(v: unknown): void {
  print(JSON.stringify(v, null, 2));
}
