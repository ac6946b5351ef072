/** Runs every benchmark module (or those named) and prints one JSON object. */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Bench } from './util.js';

const here = dirname(fileURLToPath(import.meta.url));

export async function main(names: string[]): Promise<number> {
  // (bench/*.bench.ts through tsx, or their bundles *.bench.mjs: bin/load.mjs)
  const files = new Map(readdirSync(here).filter((f) => /\.bench\.(ts|mjs)$/.test(f)).map((f) => [f.replace(/\.bench\.(ts|mjs)$/, ''), f]));
  const mods = [...files.keys()].sort();
  const unknown = names.filter((n) => !mods.includes(n));
  if (unknown.length) {
    process.stderr.write(`mmcheck-bench: unknown benchmark '${unknown[0]}' (known: ${mods.join(', ')})\n`);
    return 2;
  }
  const out: Record<string, unknown> = { node: process.version, date: new Date().toISOString() };
  for (const m of names.length ? names : mods) {
    const bench = (await import(pathToFileURL(join(here, files.get(m)!)).href)).default as Bench;
    out[m] = await bench();
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  return 0;
}
