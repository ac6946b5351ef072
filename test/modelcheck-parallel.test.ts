/**
 * `mmcheck check --workers N` (src/harness/modelcheck-parallel.ts) reports what the sequential
 * checker reports: programs handed out to worker threads, results merged in program order.
 */
import { describe, expect, it } from 'vitest';
import { checkPrograms, type SetResult } from '../src/harness/modelcheck.js';
import { checkProgramsParallel } from '../src/harness/modelcheck-parallel.js';
import { allPrograms, buggyProfiles, loadSet, setForProfile } from '../src/harness/program-sets.js';
import { getProfile } from '../src/kernel/profiles.js';
import { PROPERTIES, getProperty } from '../properties/index.js';

/** Everything but the times. */
function verdict(r: SetResult) {
  const { ms: _ms, ...stats } = r.stats;
  const v = (x: SetResult['violations'][number]) => ({ index: x.index, name: x.name, profile: x.prog.profile.name, ...x.violation });
  return { programs: r.programs, stats, complete: r.complete, violations: r.violations.map(v), shortest: r.shortest && v(r.shortest), first: r.first?.schedules };
}

describe('parallel model checking', () => {
  it('gives the sequential verdicts, counts and shortest counterexamples', { timeout: 120_000 }, () => {
    const jobs = [
      { progs: allPrograms(2, 'mainline').filter((_, i) => i % 7 === 0), properties: PROPERTIES },
      { progs: allPrograms(2, 'mainline+contig-isolate-fail-return').filter((_, i) => i % 4 === 1), properties: [] },
      ...buggyProfiles().flatMap((b) => {
        const set = setForProfile(b);
        return set ? [{ progs: loadSet(set, b).programs, properties: [getProperty(getProfile(b).buggy!.property)] }] : [];
      }),
    ];
    for (const j of jobs) {
      const seq = checkPrograms(j.progs, { properties: j.properties });
      const par = checkProgramsParallel(j.progs, { properties: j.properties }, 2);
      expect(verdict(par)).toEqual(verdict(seq));
    }
  });
});
