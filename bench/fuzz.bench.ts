/**
 * Campaign throughput: executions per second of 3 threads x 10 ops on `small` (mainline), with the
 * whole property catalogue checked as a campaign checks it (per step / at quiescence, stopping at
 * the first violation), on one core. Goal (issue 5): >= 2,000 executions/s/core.
 * Also: the same cases with no property (the simulator alone) and with refines-model alone.
 */
import fc from 'fast-check';
import { resolveConfig } from '../src/kernel/config.js';
import { caseArb } from '../src/harness/arbitraries.js';
import { caseRunner } from '../src/harness/fuzz.js';
import { OPS } from '../src/harness/ops/index.js';
import { PROPERTIES, getProperty } from '../properties/index.js';
import { median, type Bench } from './util.js';

function rates(opNames: string[]) {
  const cfg = resolveConfig('small');
  const cases = fc.sample(caseArb(cfg, { threads: 3, ops: 10, opNames }), { seed: 42, numRuns: 300 });
  const runner = caseRunner('small', 'mainline');
  const rate = (props: typeof PROPERTIES) => {
    const rounds: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t0 = process.hrtime.bigint();
      for (const c of cases) runner.run(c, props);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      rounds.push((cases.length * 1000) / ms);
    }
    return Math.round(median(rounds));
  };
  rate(PROPERTIES); // warm-up
  return {
    cases: cases.length,
    executionsPerSecAllProperties: rate(PROPERTIES),
    executionsPerSecNoProperties: rate([]),
    executionsPerSecRefinesModelOnly: rate([getProperty('refines-model')]),
  };
}

const bench: Bench = () => ({
  shape: '3 threads x 10 ops, small, mainline, one core',
  goal: 2000,
  allOps: rates(Object.keys(OPS).filter((n) => !n.startsWith('test_'))),
  buddyOps: rates(['alloc_pages', 'free_pages', 'drain_all_pages']),
});

export default bench;
