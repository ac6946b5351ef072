/**
 * Setup for the mutation run (vitest.stryker.config.ts): a fixed fast-check seed. @fast-check/vitest
 * names each property test "... (with seed=N)" with a fresh N per run, and Stryker matches tests by
 * name between its coverage run and its mutant runs: a changing name scores every mutant 0 %.
 */
import fc from 'fast-check';

fc.configureGlobal({ seed: 0x6d6d63, numRuns: 50 });
