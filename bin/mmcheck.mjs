#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npx mmcheck` works right after `npm ci`.
import { register } from 'tsx/esm/api';

// `mmcheck ... | head` must not die with a stack trace.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
