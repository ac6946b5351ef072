// How the command-line entry points load the TypeScript sources (no build step).
//
// First choice: esbuild bundles of the entry points (code split into shared chunks), built on first
// use and cached under node_modules/.cache/mmcheck/<hash of the sources>. The fallback is tsx, which
// transforms module by module with keepNames: every closure the simulator creates is then given its
// `name` through Object.defineProperty, which costs a fuzz campaign 15-20 % of its executions per
// second (bench/fuzz.bench.ts). Same code, same results: only how it is loaded differs.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Directories whose sources a bundle may include. */
const SOURCES = ['src', 'models', 'properties', 'scenarios', 'bench'];

/** size and mtime of every source file, and esbuild's version: a new hash when anything changes. */
function sourcesHash(esbuildVersion, entries) {
  const h = createHash('sha256').update(`${esbuildVersion}\n${JSON.stringify(entries)}\n`);
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'tmp') walk(p);
      } else if (/\.(ts|mjs|json)$/.test(e.name)) {
        const s = statSync(p);
        h.update(`${relative(ROOT, p)} ${s.size} ${s.mtimeMs}\n`);
      }
    }
  };
  for (const d of SOURCES) walk(join(ROOT, d));
  return h.digest('hex').slice(0, 16);
}

/**
 * The directory holding `<name>.mjs` for every entry ({ name: path from the project root }), or
 * null when no bundle can be had (esbuild missing, a build error, a read-only tree): the caller
 * falls back to tsx. Built into a private directory and renamed into place, so that concurrent
 * commands never see half a bundle.
 */
export async function bundledEntries(entries) {
  if (process.env.MMCHECK_TSX) return null;
  try {
    const esbuild = await import('esbuild');
    const cache = join(ROOT, 'node_modules', '.cache', 'mmcheck');
    const dir = join(cache, sourcesHash(esbuild.version, entries));
    if (existsSync(join(dir, 'done'))) return dir;
    mkdirSync(cache, { recursive: true });
    const tmp = join(cache, `tmp-${process.pid}-${Date.now()}`);
    await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: Object.entries(entries).map(([out, src]) => ({ in: src, out })),
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      packages: 'external',
      logLevel: 'silent',
    });
    writeFileSync(join(tmp, 'done'), '');
    try {
      renameSync(tmp, dir);
    } catch {
      // another command built the same bundle meanwhile: use theirs
      rmSync(tmp, { recursive: true, force: true });
    }
    pruneBundles(cache, dir);
    return existsSync(join(dir, 'done')) ? dir : null;
  } catch {
    return null;
  }
}

/** Bundles kept besides the one just built: those of the last few trees a command ran from. */
const KEEP_BUNDLES = 4;

/**
 * Removes all but the KEEP_BUNDLES most recently built bundles (a tree edited for a day leaves one
 * per build otherwise). A command still running from a removed one has already imported it; a
 * command starting meanwhile finds its bundle gone and builds it again. Best effort.
 */
export function pruneBundles(cache, keep) {
  try {
    const old = readdirSync(cache)
      .map((name) => join(cache, name))
      .filter((d) => d !== keep && existsSync(join(d, 'done')))
      .map((d) => [d, statSync(d).mtimeMs])
      .sort((a, b) => b[1] - a[1])
      .slice(KEEP_BUNDLES);
    for (const [d] of old) rmSync(d, { recursive: true, force: true });
  } catch {
    // (another command pruning at the same time: nothing lost)
  }
}

/** Imports entry `name` from the bundles, or `tsxPath` (from the project root) through tsx. */
export async function loadEntry(entries, name, tsxPath) {
  const dir = await bundledEntries(entries);
  if (dir) return import(pathToFileURL(join(dir, `${name}.mjs`)).href);
  const { register } = await import('tsx/esm/api');
  register();
  return import(pathToFileURL(join(ROOT, tsxPath)).href);
}
