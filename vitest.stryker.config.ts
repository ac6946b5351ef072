// The vitest configuration of the mutation run (stryker.config.json): the normal one plus a pinned
// fast-check seed (test/setup/fixed-seed.ts). Not used by `npm test`.
import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

export default mergeConfig(base, defineConfig({ test: { setupFiles: ['test/setup/fixed-seed.ts'] } }));
