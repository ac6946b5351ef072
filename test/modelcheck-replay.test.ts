/**
 * The model checker skips stateless checkers (Property.stateless) on the prefix steps a schedule
 * replays, and restores the other checkers from checkpoints instead of running them there (one set
 * of checkers per search, CheckOptions.checkpoints): what it finds and counts is what it finds
 * with every checker on every step.
 */
import { describe, expect, it } from 'vitest';
import { checkPrograms, type SetResult } from '../src/harness/modelcheck.js';
import { allPrograms, buggyProfiles, getProgramSet, loadSet, setForProfile } from '../src/harness/program-sets.js';
import { PROPERTIES, getProperty, type Property } from '../properties/index.js';
import { createKernel } from '../src/kernel/index.js';
import { dirtyTracker } from '../properties/dirty.js';
import { OP_STEP_BOUND, OpTracker } from '../properties/op-tracking.js';
import { stepWakes, wakeMask, wakesFor } from '../properties/property.js';

function jobs() {
  return [
    loadSet(getProgramSet('buddy'), 'mainline').programs,
    allPrograms(2, 'mainline').filter((_, i) => i % 5 === 0),
    ...buggyProfiles().flatMap((b) => {
      const set = setForProfile(b);
      return set ? [loadSet(set, b).programs] : [];
    }),
  ];
}

/** Everything but the times. */
function verdict(r: SetResult) {
  const { ms: _ms, ...stats } = r.stats;
  const v = (x: SetResult['violations'][number]) => ({ index: x.index, profile: x.prog.profile.name, ...x.violation });
  return { programs: r.programs, stats, complete: r.complete, violations: r.violations.map(v), shortest: r.shortest && v(r.shortest) };
}

describe('stateless checkers skip replayed steps', () => {
  it('the stateless properties are the ones whose checkers keep nothing across steps', () => {
    expect(PROPERTIES.filter((p) => p.stateless).map((p) => p.name).sort()).toEqual([
      'bounded-progress', 'cma-ownership', 'contig-postcondition', 'freelist-counters', 'hugetlb-counters', 'isolation-restored',
      'no-cross-migratetype-merge', 'offline-completeness', 'page-conservation',
    ]);
  });

  it('same states, schedules, violations and shortest counterexamples with the whole catalogue', { timeout: 120_000 }, () => {
    let found = 0;
    for (const progs of jobs()) {
      const skipping = verdict(checkPrograms(progs, { properties: PROPERTIES }));
      const every = verdict(checkPrograms(progs, { properties: PROPERTIES, skipStatelessOnReplay: false }));
      const fresh = verdict(checkPrograms(progs, { properties: PROPERTIES, checkpoints: false }));
      expect(skipping).toEqual(every);
      expect(skipping).toEqual(fresh);
      found += skipping.violations.length;
    }
    // the buggy profiles' sets violate properties: the comparison covers findings, not silence
    expect(found).toBeGreaterThan(3);
  });
});

/** The property with a planted bug: a slot's checkpoint is taken the first time only (stale after). */
function staleCheckpoints(p: Property): Property {
  return {
    ...p,
    create(k) {
      const c = p.create(k);
      const taken = new Set<number>();
      return {
        ...c,
        checkpoint(slot) {
          if (taken.has(slot)) return;
          taken.add(slot);
          c.checkpoint!(slot);
        },
        // (the checker sets its own flag: read through)
        get watching() {
          return c.watching;
        },
      };
    },
  };
}

describe('checkpointed checkers', () => {
  it('the properties with state across steps all checkpoint it', () => {
    const k = createKernel('tiny', 'mainline');
    for (const p of PROPERTIES.filter((x) => !x.stateless)) {
      const c = p.create(k);
      expect([p.name, typeof c.checkpoint, typeof c.restore]).toEqual([p.name, 'function', 'function']);
      c.dispose?.();
    }
  });

  it('a stale checkpoint changes what the search finds (the comparison above would see it)', { timeout: 60_000 }, () => {
    const progs = allPrograms(2, 'mainline').filter((_, i) => i % 5 === 0);
    const good = verdict(checkPrograms(progs, { properties: PROPERTIES }));
    for (const name of ['refines-model', 'no-data-loss', 'hugepages-total-stable']) {
      const props = PROPERTIES.map((p) => (p.name === name ? staleCheckpoints(p) : p));
      expect([name, verdict(checkPrograms(progs, { properties: props }))]).not.toEqual([name, good]);
    }
  });

  it('a check after a restore is handed the same dirty pfns as with every step checked (tracker drained or not)', { timeout: 60_000 }, () => {
    const progs = [...loadSet(getProgramSet('buddy'), 'mainline').programs, ...allPrograms(2, 'mainline').filter((_, i) => i % 9 === 0)];
    // A stateless spy: the ranges the tracker hands each check it runs (skipped on replays).
    // (each its own name: the snapshot check, cached by property names, runs the checkers too)
    const spy = (log: string[], name: string): Property => ({
      name,
      statement: '',
      kernelRef: '',
      guards: '',
      when: 'step',
      stateless: true,
      create(k) {
        const t = dirtyTracker(k);
        return {
          check(ctx) {
            log.push(`${ctx.step}:${t.ranges(ctx.step).join(',')}`);
            return null;
          },
        };
      },
    });
    // With refines-model, which drains the tracker every step (the replay is not recorded), and
    // without it (the check after a replay is handed every pfn the replay touched).
    for (const others of [[getProperty('refines-model'), getProperty('no-data-loss')], [getProperty('no-data-loss'), getProperty('bounded-progress')]]) {
      const a: string[] = [];
      const b: string[] = [];
      checkPrograms(progs, { properties: [...others, spy(a, `spy-a${others.length}${others[0].name}`)] });
      checkPrograms(progs, { properties: [...others, spy(b, `spy-b${others.length}${others[0].name}`)], checkpoints: false });
      expect(a.length).toBeGreaterThan(1000);
      expect(a).toEqual(b);
    }
  });

  it('bounded-progress keeps no count: the op tracker (fed on every step, replays included) wakes it at the step a thread first passes the bound', () => {
    const k = createKernel('tiny', 'mainline');
    const p = getProperty('bounded-progress');
    expect(p.stateless).toBe(true);
    // one checker woken as the executor and the model checker wake it, one called on every step
    // with its own tracker (a checker driven by hand)
    const woken = p.create(k);
    const every = p.create(k);
    const ops = new OpTracker();
    const mask = wakeMask(p);
    let step = 0;
    const got: string[] = [];
    const differ: string[] = [];
    const none: [] = [];
    // `count` steps of thread t, the first starting op `start`, if any
    const run = (t: number, count: number, start?: string) => {
      k.current = t;
      for (let i = 0; i < count; i++) {
        const started = start && i === 0 ? [{ thread: t, index: 0, op: { op: start } }] : none;
        const ctx = { k, step, started, finished: none, quiescent: false, ops };
        ops.update(ctx);
        const a = wakesFor(mask, stepWakes(false, false, false, ops.longOp(), false, false), woken) ? woken.check(ctx) : null;
        const b = every.check({ k, step, started, finished: none, quiescent: false });
        if (a !== b) differ.push(`${step}: ${a} / ${b}`);
        if (a) got.push(`${step}: ${a}`);
        ops.retire(ctx);
        step++;
      }
    };
    run(0, 60_000, 'test_spin');
    run(1, 99_000, 'test_spin');
    // thread 1 starts another op: its count starts again
    run(1, 2_000, 'test_other');
    run(0, 40_000);
    expect(got).toEqual([]);
    run(1, 98_001);
    run(0, 1);
    expect(differ).toEqual([]);
    expect(got).toEqual([
      `${60_000 + 99_000 + 2_000 + 40_000 + 98_000}: test_other in thread 1 ran 100001 steps without returning (bound ${OP_STEP_BOUND})`,
      `${60_000 + 99_000 + 2_000 + 40_000 + 98_001}: test_spin in thread 0 ran 100001 steps without returning (bound ${OP_STEP_BOUND})`,
    ]);
  });
});
