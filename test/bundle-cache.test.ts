/**
 * bin/load.mjs keeps the CLI's esbuild bundles under node_modules/.cache/mmcheck, one per state of
 * the sources: pruneBundles leaves the one in use and the few most recently built, nothing else.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error: a plain .mjs module of bin/ without type declarations
import { pruneBundles } from '../bin/load.mjs';

function bundle(cache: string, name: string, ageS: number, done = true): string {
  const d = join(cache, name);
  mkdirSync(d);
  if (done) writeFileSync(join(d, 'done'), '');
  const t = Date.now() / 1000 - ageS;
  utimesSync(d, t, t);
  return d;
}

describe('bundle cache pruning', () => {
  it('keeps the bundle in use, the four newest others and unfinished builds', () => {
    const cache = mkdtempSync(join(tmpdir(), 'mmcheck-cache-'));
    for (let i = 0; i < 8; i++) bundle(cache, `b${i}`, 100 * (i + 1));
    const inUse = bundle(cache, 'oldest-in-use', 10_000);
    bundle(cache, 'tmp-1-2', 20_000, false);
    pruneBundles(cache, inUse);
    expect(readdirSync(cache).sort()).toEqual(['b0', 'b1', 'b2', 'b3', 'oldest-in-use', 'tmp-1-2']);
  });

  it('does nothing (and does not throw) on a missing cache', () => {
    expect(() => pruneBundles(join(tmpdir(), 'mmcheck-no-such-cache'), '')).not.toThrow();
  });
});
