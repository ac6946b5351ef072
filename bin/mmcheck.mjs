#!/usr/bin/env node
// Runs the TypeScript sources directly (bundled on first use, or through tsx: bin/load.mjs), so
// `npx mmcheck` works right after `npm ci`.
import { loadEntry } from './load.mjs';

// `mmcheck ... | head` must not die with a stack trace.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
// The worker threads of --workers load `./fuzz-worker.mjs` / `./modelcheck-worker.mjs` next to the
// code that starts them: in the bundle directory, their bundles; in src/harness, the tsx loaders.
const ENTRIES = { main: 'src/cli/main.ts', 'fuzz-worker': 'src/harness/fuzz-worker.ts', 'modelcheck-worker': 'src/harness/modelcheck-worker.ts' };
const { main } = await loadEntry(ENTRIES, 'main', 'src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
