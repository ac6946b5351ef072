/**
 * `mmcheck check` on a profile not marked buggy: a shortest violation that vanishes with a patch
 * (mmcheck profiles --patches) is a known race, reported under `known`, and the set is checked
 * again with the patch applied; --strict (attribute = false) reports it as a violation.
 */
import { describe, expect, it } from 'vitest';
import { checkJobs, runJobAttributing, type CheckRunOptions } from '../src/cli/check.js';
import { getProperty, PROPERTIES } from '../properties/index.js';

const opts: CheckRunOptions = { properties: PROPERTIES, preemptions: 2, maxDepth: 400, symmetry: true, out: null };

describe('mmcheck check: known races', () => {
  const [job] = checkJobs({ scenario: 'cma-retype', profile: 'mainline' });

  it('the goto-done race of alloc_contig_range on mainline is known: no new violation, the patch listed', () => {
    const r = runJobAttributing(job, opts, true);
    expect(r.violation).toBeNull();
    expect(r.patches).toEqual(['contig-isolate-fail-return']);
    expect(r.known).toHaveLength(1);
    expect(r.known![0]).toMatchObject({ patch: 'contig-isolate-fail-return', property: 'kernel-bug', program: 'contig-vs-cma', steps: 8, preemptions: 2 });
    expect(r.profile).toBe('mainline');
  });

  it('strict: the same race is a violation, nothing attributed', () => {
    const r = runJobAttributing(job, opts, false);
    expect(r.violation).toMatchObject({ property: 'kernel-bug', program: 'contig-vs-cma', steps: 8, preemptions: 2 });
    expect(r.known).toEqual([]);
  });

  it('counts add up both rounds (mainline, then mainline+contig-isolate-fail-return)', () => {
    const r = runJobAttributing(job, opts, true);
    const [patched] = checkJobs({ scenario: 'cma-retype', profile: 'mainline+contig-isolate-fail-return' });
    const again = runJobAttributing(patched, opts, true);
    const strict = runJobAttributing(job, opts, false);
    expect(again.violation).toBeNull();
    expect(r.schedules).toBe(strict.schedules + again.schedules);
    expect(r.states).toBe(strict.states + again.states);
  });

  it('a buggy profile set is checked for its own property; a violation that is not a known race stays one', () => {
    const [own] = checkJobs({ profile: 'v5.19-cma-retype' });
    const r = runJobAttributing(own, { ...opts, properties: [getProperty('cma-ownership')], prefer: 'cma-ownership' }, true);
    expect(r.violation).toMatchObject({ property: 'cma-ownership', steps: 5 });
    expect(r.known).toEqual([]);
  });
});
