/** Runs every benchmark module (or those named) and prints one JSON object. */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bench } from './util.js';

const here = dirname(fileURLToPath(import.meta.url));

export async function main(names: string[]): Promise<number> {
  const mods = readdirSync(here).filter((f) => f.endsWith('.bench.ts')).map((f) => f.replace(/\.bench\.ts$/, '')).sort();
  const unknown = names.filter((n) => !mods.includes(n));
  if (unknown.length) {
    process.stderr.write(`mmcheck-bench: unknown benchmark '${unknown[0]}' (known: ${mods.join(', ')})\n`);
    return 2;
  }
  const out: Record<string, unknown> = { node: process.version, date: new Date().toISOString() };
  for (const m of names.length ? names : mods) {
    const bench = (await import(join(here, `${m}.bench.ts`))).default as Bench;
    out[m] = await bench();
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  return 0;
}
