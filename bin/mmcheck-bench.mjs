#!/usr/bin/env node
// npm run bench [-- name...]: runs bench/*.bench.ts modules and prints one JSON object. Loaded as
// the campaigns are (bin/load.mjs): bundled, or through tsx.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, loadEntry } from './load.mjs';

const entries = { index: 'bench/index.ts' };
for (const f of readdirSync(join(ROOT, 'bench'))) if (f.endsWith('.bench.ts')) entries[f.replace(/\.ts$/, '')] = `bench/${f}`;
const { main } = await loadEntry(entries, 'index', 'bench/index.ts');
process.exitCode = await main(process.argv.slice(2));
