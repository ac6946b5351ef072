// The vitest configuration of the mutation run (stryker.config.json): the normal one plus a pinned
// fast-check seed (test/setup/fixed-seed.ts). Not used by `npm test`.
// Left out: the fuzz campaigns (thousands of seeded runs per test: every mutant they cover would pay
// for them), the XState model's own path tests (they test the model, and they change often) and the
// model-checker tests (9 s of exhaustive exploration per covering mutant: they made the run of
// src/kernel/ take hours; the kernel unit tests kill what they killed).
import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

export default mergeConfig(
  base,
  defineConfig({
    test: {
      setupFiles: ['test/setup/fixed-seed.ts'],
      // One module graph for all test files: each mutant's run no longer re-imports the kernel per
      // file (3x faster per mutant; meminfo.ts gave the same killed/survived counts both ways).
      isolate: false,
      exclude: [
        'test/campaign.test.ts',
        'test/model-paths.test.ts',
        'test/modelcheck.test.ts',
        'test/checker-speedups.test.ts',
        'node_modules/**',
      ],
    },
  }),
);
