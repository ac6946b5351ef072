/**
 * The model checker's 64-bit state fingerprint (src/harness/state-hash.ts) against the exact state:
 * the mechanisms' cheaper part forms (typed arrays summed incrementally, numeric hashes) must tell
 * states apart exactly as their strings do, the incremental sums must not go stale, and the
 * fingerprints of the states explored must not collide. The cross-check mode compares both on
 * every state visited and throws on a mismatch.
 */
import { describe, expect, it } from 'vitest';
import { CrossCheck, Hasher, checkPrograms, kernelFingerprint } from '../src/harness/modelcheck.js';
import { allPrograms, buggyProfiles, getProgramSet, loadSet, setForProfile } from '../src/harness/program-sets.js';
import { getProfile } from '../src/kernel/profiles.js';
import { PROPERTIES, getProperty } from '../properties/index.js';
import { parseProgram } from '../src/harness/program.js';
import { OPS, defineOp } from '../src/harness/ops/index.js';
import { createKernel } from '../src/kernel/index.js';
import { VisitedTable } from '../src/harness/visited.js';
import { exactMachineKey } from '../src/harness/state-hash.js';
import type { Kernel } from '../src/kernel/machine.js';
import type { KGen } from '../src/kernel/sched.js';

describe('model checker fingerprints', () => {
  it('fingerprints match exact states one to one over every 2-op program and the buggy profiles\' own sets', () => {
    // Every other 2-op program (the vocabulary: buddy, contig, CMA, hugetlb pools and demote,
    // offline, virtio-mem) with no property, then each buggy profile's set with its property.
    const progs = allPrograms(2, 'mainline').filter((_, i) => i % 2 === 0);
    const fast = checkPrograms(progs, { properties: [] });
    const crossed = checkPrograms(progs, { properties: [], crossCheck: true });
    expect(crossed.stats).toMatchObject({ schedules: fast.stats.schedules, states: fast.stats.states, steps: fast.stats.steps, pruned: fast.stats.pruned });
    expect(fast.stats.states).toBeGreaterThan(5000);
    for (const b of buggyProfiles()) {
      const set = setForProfile(b);
      if (!set) continue;
      const props = [getProperty(getProfile(b).buggy!.property)];
      const r = checkPrograms(loadSet(set, b).programs, { properties: props, crossCheck: true });
      expect(r.violations.length, b).toBeGreaterThan(0);
    }
    const buddy = checkPrograms(loadSet(getProgramSet('buddy'), 'mainline').programs, { properties: PROPERTIES, crossCheck: true });
    expect(buddy.violations).toEqual([]);
  });

  it('the cross-check throws on two states under one fingerprint, and on one state under two', () => {
    const fp = (x: number) => {
      const h = new Hasher();
      h.add(x);
      return h;
    };
    const c = new CrossCheck();
    c.check('s1', fp(1));
    c.check('s1', fp(1));
    c.check('s2', fp(2));
    expect(() => c.check('s3', fp(1))).toThrow(/two different states/);
    expect(() => c.check('s2', fp(3))).toThrow(/two fingerprints/);
  });

  it('catches a part form that misses what its string describes', () => {
    // CMA's form is its bitmaps (area names are fixed at boot); a test op renames an area with
    // a lost update (serial runs append two marks, interleaved ones one), which only the string
    // sees: two final states differ in the exact key under one fingerprint.
    defineOp({
      name: 'test_fp_rename_cma',
      summary: 'test',
      fields: {},
      run: function* (k: Kernel): KGen<{ result: '0' }> {
        const area = (k.ext.cma as { areas: { name: string }[] }).areas[0];
        const seen = area.name;
        yield 'test:read';
        area.name = `${seen}+`;
        return { result: '0' };
      },
    });
    try {
      const prog = parseProgram({ config: 'tiny', profile: 'mainline', threads: [[{ op: 'test_fp_rename_cma' }], [{ op: 'test_fp_rename_cma' }]] });
      expect(() => checkPrograms([{ prog }], { properties: [], snapshot: false })).not.toThrow();
      expect(() => checkPrograms([{ prog }], { properties: [], snapshot: false, crossCheck: true })).toThrow(/two different states/);
    } finally {
      delete OPS.test_fp_rename_cma;
    }
  });

  it('a mechanism change moves the fingerprint, and undoing it moves it back', () => {
    const k = createKernel('tiny', 'mainline');
    const boot = kernelFingerprint(k).value();
    const plugged = (k.ext.virtioMem as { plugged: Uint8Array }).plugged;
    const bitmap = (k.ext.cma as { areas: { bitmap: Uint8Array }[] }).areas[0].bitmap;
    const h = (k.ext.hugetlb as { hstates: { max: number }[] }).hstates[0];
    const vm = k.ext.virtioMem as { hotplugActive: boolean };
    const key = exactMachineKey(k);
    for (const [change, undo] of [
      [() => (plugged[1] = 0), () => (plugged[1] = 1)],
      [() => (bitmap[3] = 1), () => (bitmap[3] = 0)],
      [() => h.max++, () => h.max--],
      // vm->hotplug_active decides what a later MEM_CANCEL_* does: a part with arrays and a hash
      [() => (vm.hotplugActive = true), () => (vm.hotplugActive = false)],
    ] as const) {
      change();
      expect(kernelFingerprint(k).value()).not.toBe(boot);
      expect(exactMachineKey(k)).not.toBe(key);
      undo();
      expect(kernelFingerprint(k).value()).toBe(boot);
      expect(exactMachineKey(k)).toBe(key);
    }
  });

  it('the visited table keeps every state and its records through growth', () => {
    const t = new VisitedTable(4);
    const n = 5000;
    // Keys colliding in their low bits (the slot index) but not in their high ones.
    for (let i = 0; i < n; i++) expect(t.addNew(i, i & 7, i % 100)).toBe(true);
    expect(t.size).toBe(n);
    for (let i = 0; i < n; i++) {
      expect(t.addNew(i, i & 7, 0)).toBe(false);
      expect(t.records(i, i & 7)).toEqual([i % 100]);
    }
    t.set(17, 1, [3, 4]);
    expect(t.records(17, 1)).toEqual([3, 4]);
    t.set(17, 1, [5]);
    expect(t.records(17, 1)).toEqual([5]);
    expect(t.records(n, 0)).toEqual([]);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.records(1, 1)).toEqual([]);
  });
});
