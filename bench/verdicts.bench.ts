/**
 * Not a timing: a digest of what fixed campaigns conclude (every case's steps and violation
 * messages, and the page model's state and transition coverage) on mainline and the buggy
 * profiles. A change made for speed must leave it as it was: run `npm run bench -- verdicts`
 * before and after and compare the digests (the counts say where a difference lies).
 */
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { resolveConfig } from '../src/kernel/config.js';
import { caseArb } from '../src/harness/arbitraries.js';
import { caseRunner } from '../src/harness/fuzz.js';
import { OPS } from '../src/harness/ops/index.js';
import { PROPERTIES } from '../properties/index.js';
import { COVERAGE } from '../models/coverage.js';
import type { Bench } from './util.js';

const CAMPAIGNS = [
  ['small', 'mainline', 3, 10], ['tiny', 'mainline', 3, 8], ['tiny', 'rfc-2021-02', 3, 6], ['tiny', 'pageblock-naive', 3, 6],
  ['tiny-hugetlb-cma', 'demote-cma-lost', 3, 6], ['tiny', 'v5.19-cma-retype', 3, 6],
] as const;

const bench: Bench = () => {
  const hash = createHash('sha1');
  const campaigns = CAMPAIGNS.map(([config, profile, threads, ops]) => {
    const cases = fc.sample(caseArb(resolveConfig(config), { threads, ops, opNames: Object.keys(OPS).filter((n) => !n.startsWith('test_')) }), { seed: 7, numRuns: 200 });
    const runner = caseRunner(config, profile);
    COVERAGE.states.fill(0);
    COVERAGE.transitions.fill(0);
    let violations = 0;
    let steps = 0;
    for (const c of cases) {
      const o = runner.run(c, PROPERTIES);
      hash.update(JSON.stringify([o.steps, o.violations]));
      violations += o.violations.length;
      steps += o.steps;
    }
    hash.update(JSON.stringify([[...COVERAGE.states], [...COVERAGE.transitions]]));
    return { config, profile, cases: cases.length, steps, violations };
  });
  return { digest: hash.digest('hex'), campaigns };
};

export default bench;
