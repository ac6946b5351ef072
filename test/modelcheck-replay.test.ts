/**
 * The model checker skips stateless checkers (Property.stateless) on the prefix steps a schedule
 * replays: what it finds and counts is what it finds with every checker on every step.
 */
import { describe, expect, it } from 'vitest';
import { checkPrograms, type SetResult } from '../src/harness/modelcheck.js';
import { allPrograms, buggyProfiles, getProgramSet, loadSet, setForProfile } from '../src/harness/program-sets.js';
import { PROPERTIES } from '../properties/index.js';

/** Everything but the times. */
function verdict(r: SetResult) {
  const { ms: _ms, ...stats } = r.stats;
  const v = (x: SetResult['violations'][number]) => ({ index: x.index, profile: x.prog.profile.name, ...x.violation });
  return { programs: r.programs, stats, complete: r.complete, violations: r.violations.map(v), shortest: r.shortest && v(r.shortest) };
}

describe('stateless checkers skip replayed steps', () => {
  it('the stateless properties are the ones whose checkers keep nothing across steps', () => {
    expect(PROPERTIES.filter((p) => p.stateless).map((p) => p.name).sort()).toEqual([
      'cma-ownership', 'contig-postcondition', 'freelist-counters', 'hugetlb-counters', 'isolation-restored',
      'no-cross-migratetype-merge', 'offline-completeness', 'page-conservation',
    ]);
  });

  it('same states, schedules, violations and shortest counterexamples with the whole catalogue', { timeout: 120_000 }, () => {
    const jobs = [
      loadSet(getProgramSet('buddy'), 'mainline').programs,
      allPrograms(2, 'mainline').filter((_, i) => i % 5 === 0),
      ...buggyProfiles().flatMap((b) => {
        const set = setForProfile(b);
        return set ? [loadSet(set, b).programs] : [];
      }),
    ];
    let found = 0;
    for (const progs of jobs) {
      const skipping = verdict(checkPrograms(progs, { properties: PROPERTIES }));
      const every = verdict(checkPrograms(progs, { properties: PROPERTIES, skipStatelessOnReplay: false }));
      expect(skipping).toEqual(every);
      found += skipping.violations.length;
    }
    // the buggy profiles' sets violate properties: the comparison covers findings, not silence
    expect(found).toBeGreaterThan(3);
  });
});
