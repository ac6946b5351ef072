// The vitest configuration of the mutation run (stryker.config.json): the normal one plus a pinned
// fast-check seed (test/setup/fixed-seed.ts). Not used by `npm test`.
// Left out: the fuzz campaigns (thousands of seeded runs per test: every mutant they cover would pay
// for them) and the XState model's own path tests (they test the model, and they change often).
import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

export default mergeConfig(
  base,
  defineConfig({
    test: {
      setupFiles: ['test/setup/fixed-seed.ts'],
      exclude: ['test/campaign.test.ts', 'test/model-paths.test.ts', 'node_modules/**'],
    },
  }),
);
