import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkProgram, checkPrograms, kernelFingerprint, toCounterexample } from '../src/harness/modelcheck.js';
import { allPrograms, loadSet, getProgramSet, buggyProfiles, setForProfile } from '../src/harness/program-sets.js';
import { getProfile } from '../src/kernel/profiles.js';
import { getProperty } from '../properties/index.js';
import { parseCounterexample } from '../src/harness/corpus.js';
import { runProgram } from '../src/harness/executor.js';
import { parseProgram } from '../src/harness/program.js';
import { createKernel } from '../src/kernel/index.js';
import { snapshotKernel } from '../src/kernel/snapshot.js';
import { PROPERTIES, type Property } from '../properties/index.js';
import { OPS, defineOp } from '../src/harness/ops/index.js';
import { Mutex, mutexLock, mutexUnlock, type KGen } from '../src/kernel/sched.js';
import { KernelBug } from '../src/kernel/types.js';
import type { Kernel } from '../src/kernel/machine.js';

/**
 * A planted bug: "an allocation never starts while drain_all_pages is half-way through its cpus".
 * drain_all_pages yields between cpus and zones, so the property breaks only when another thread
 * is scheduled into that window: a concurrency bug with a known shape and a shortest length that
 * the test computes by brute force over every schedule.
 */
const plantedOverlap: Property = {
  name: 'planted-drain-overlap',
  statement: 'no alloc_pages starts while a drain_all_pages is in flight',
  kernelRef: 'test only',
  guards: 'nothing: a planted bug for the model checker',
  when: 'step',
  create() {
    const inFlight = new Set<number>();
    return {
      check(ctx) {
        for (const s of ctx.started) {
          if (s.op.op === 'drain_all_pages') inFlight.add(s.thread);
          else if (s.op.op === 'alloc_pages' && inFlight.size > 0) return `alloc_pages of thread ${s.thread} started during a drain`;
        }
        for (const f of ctx.finished) if (f.op.op === 'drain_all_pages') inFlight.delete(f.thread);
        return null;
      },
    };
  },
};

const drainVsAlloc = parseProgram({
  config: 'tiny',
  profile: 'mainline',
  threads: [[{ op: 'drain_all_pages' }], [{ op: 'alloc_pages', id: 'a', order: 0, migratetype: 'movable' }, { op: 'free_pages', id: 'a' }]],
});

/** Shortest violating schedule length by brute force: every choice list (values 0..2) up to `max`. */
function bruteForceShortest(threads: unknown[][], prop: Property, max: number): number {
  let best = Infinity;
  const rec = (sched: number[]): void => {
    const prog = parseProgram({ config: 'tiny', profile: 'mainline', threads, schedule: sched });
    const o = runProgram(prog, { properties: [prop], stopAtFirst: true });
    const v = o.violations.find((w) => w.property === prop.name);
    if (v) best = Math.min(best, v.step + 1);
    if (sched.length < max) for (const c of [0, 1, 2]) rec([...sched, c]);
  };
  rec([]);
  return best;
}

/** Shortest run (in steps) over every schedule of choices 0..1 up to 8 long that `length` accepts. */
function bruteForceShortestRun(prog: ReturnType<typeof parseProgram>, length: (o: ReturnType<typeof runProgram>) => number | null): number {
  let best = Infinity;
  const rec = (sched: number[]): void => {
    const n = length(runProgram({ ...prog, schedule: sched }, { stopAtFirst: true }));
    if (n !== null) best = Math.min(best, n);
    if (sched.length < 8) for (const c of [0, 1]) rec([...sched, c]);
  };
  rec([]);
  return best;
}

/**
 * Shortest (steps, then preemptions) by deepening from above: a fresh search per bound, one step
 * below the last violation found until none is, then fewer preemptions at that length. What the
 * checker did before it searched by branch and bound.
 */
function deepeningShortest(prog: ReturnType<typeof parseProgram>, props: Property[]): { steps: number; preemptions: number } | null {
  const search = (maxDepth: number, preemptions = 2) => checkProgram(prog, { properties: props, shortest: false, maxDepth, preemptions }).violation;
  let v = search(400);
  if (!v) return null;
  for (let s = search(v.steps - 1); s; s = v.steps > 1 ? search(v.steps - 1) : null) v = s;
  for (let p = v.preemptions - 1; p >= 0; p--) {
    const f = search(v.steps, p);
    if (!f) break;
    v = f;
  }
  return { steps: v.steps, preemptions: v.preemptions };
}

describe('model checker', () => {
  it('finds a planted race with the shortest length, and the counterexample replays', () => {
    const r = checkProgram(drainVsAlloc, { properties: [plantedOverlap] });
    expect(r.violation).not.toBeNull();
    const v = r.violation!;
    expect(v.property).toBe('planted-drain-overlap');
    const shortest = bruteForceShortest(drainVsAlloc.threads, plantedOverlap, 6);
    expect(v.steps).toBe(shortest);
    expect(v.preemptions).toBeGreaterThanOrEqual(1);
    expect(v.replayed).toBe(true);
    // The saved file goes through the corpus parser and reproduces with runProgram.
    const ce = toCounterexample(drainVsAlloc, v);
    const { program } = parseCounterexample(JSON.parse(JSON.stringify(ce)), 'ce');
    const o = runProgram(program, { properties: [plantedOverlap], stopAtFirst: true });
    expect(o.violations[0]).toMatchObject({ property: 'planted-drain-overlap', step: ce.violation.step });
    // The free_pages op never started before the violation: the counterexample drops it.
    expect(ce.threads[1].map((op) => op.op)).toEqual(['alloc_pages']);
    expect(ce.source).toBe('check');
  });

  it('branch and bound finds the shortest violation that deepening from above finds, on the planted race and every buggy profile', () => {
    const planted = checkProgram(drainVsAlloc, { properties: [plantedOverlap] }).violation!;
    expect({ steps: planted.steps, preemptions: planted.preemptions }).toEqual(deepeningShortest(drainVsAlloc, [plantedOverlap]));
    for (const name of ['rfc-2021-02', 'demote-cma-lost', 'v5.19-cma-retype', 'pageblock-naive']) {
      const props = [getProperty(getProfile(name).buggy!.property)];
      const programs = loadSet(setForProfile(name)!, name).programs;
      let violating = 0;
      for (const { name: prog, prog: p } of programs) {
        const v = checkProgram(p, { properties: props }).violation;
        const d = deepeningShortest(p, props);
        expect(v && { steps: v.steps, preemptions: v.preemptions }, `${name} ${prog}`).toEqual(d);
        if (v) {
          violating++;
          expect(v.replayed).toBe(true);
        }
      }
      expect(violating, name).toBeGreaterThan(0);
    }
  });

  it('finds nothing where the property holds, and explores the scope completely', () => {
    const r = checkProgram(drainVsAlloc, { properties: PROPERTIES });
    expect(r.violation).toBeNull();
    expect(r.complete).toBe(true);
    expect(r.stats.states).toBeGreaterThan(5);
    // Without the preemption budget the planted race cannot happen either.
    expect(checkProgram(drainVsAlloc, { properties: [plantedOverlap], preemptions: 0 }).violation).toBeNull();
  });

  it('symmetry of identical threads on one cpu cuts the states and keeps the violation', () => {
    const alloc = { op: 'alloc_pages', id: 'a', order: 0, migratetype: 'movable' };
    const prog = parseProgram({ config: 'tiny', profile: 'mainline', threads: [[{ op: 'drain_all_pages' }], [alloc], [{ op: 'drain_all_pages' }]] });
    const sym = checkProgram(prog, { properties: [plantedOverlap] });
    const noSym = checkProgram(prog, { properties: [plantedOverlap], symmetry: false });
    expect(sym.violation).not.toBeNull();
    expect(noSym.violation).not.toBeNull();
    expect(sym.violation!.steps).toBe(noSym.violation!.steps);
    const full = { properties: PROPERTIES, shortest: false };
    const a = checkProgram(prog, full);
    const b = checkProgram(prog, { ...full, symmetry: false });
    expect(a.violation).toBeNull();
    expect(a.stats.states).toBeLessThan(b.stats.states);
    expect(a.stats.schedules).toBeLessThan(b.stats.schedules);
  });

  it('gives the same result twice; fingerprints prune schedules without changing the verdict', () => {
    const a = checkProgram(drainVsAlloc, { properties: [plantedOverlap] });
    const b = checkProgram(drainVsAlloc, { properties: [plantedOverlap] });
    expect(JSON.stringify(b.violation)).toBe(JSON.stringify(a.violation));
    expect(b.stats.schedules).toBe(a.stats.schedules);
    expect(b.stats.states).toBe(a.stats.states);
    const alloc = (id: string, order: number) => ({ op: 'alloc_pages', id, order, migratetype: 'movable' });
    const merging = parseProgram({
      config: 'tiny',
      profile: 'mainline',
      threads: [[alloc('a', 0), { op: 'free_pages', id: 'a' }, alloc('c', 1)], [alloc('b', 1), { op: 'drain_all_pages' }, { op: 'free_pages', id: 'b' }]],
    });
    const set = [{ name: 'merging', prog: merging }, ...loadSet(getProgramSet('buddy')).programs];
    const withFp = checkPrograms(set, { properties: PROPERTIES, preemptions: 4 });
    const without = checkPrograms(set, { properties: PROPERTIES, preemptions: 4, fingerprints: false });
    expect(withFp.violations).toEqual([]);
    expect(without.violations).toEqual([]);
    expect(withFp.stats.pruned).toBeGreaterThan(0);
    expect(withFp.stats.schedules).toBeLessThan(without.stats.schedules);
    expect(withFp.stats.steps).toBeLessThan(without.stats.steps);
  });

  it('a restored snapshot is the booted machine again, and a fresh boot explores the same states', () => {
    const k = createKernel('tiny', 'mainline');
    const boot = kernelFingerprint(k).value();
    const snap = snapshotKernel(k);
    const o = runProgram(drainVsAlloc);
    expect(kernelFingerprint(o.kernel).value()).not.toBe(boot);
    // Run the same program on an instance of the snapshot, then restore.
    const inst = snap.instance();
    inst.mm.flags[200] ^= 1;
    inst.zones[0].freePages += 7;
    inst.newAllocation({ id: 'x', kind: 'pages', pfn: 9, nrPages: 1, order: 0, migratetype: 0, pinned: false });
    expect(kernelFingerprint(inst).value()).not.toBe(boot);
    expect(kernelFingerprint(snap.instance()).value()).toBe(boot);
    const a = checkProgram(drainVsAlloc, { properties: PROPERTIES, snapshot: true });
    const b = checkProgram(drainVsAlloc, { properties: PROPERTIES, snapshot: false });
    expect(a.snapshot).toBe(true);
    expect(b.stats).toMatchObject({ schedules: a.stats.schedules, states: a.stats.states, steps: a.stats.steps });
  });

  it('one restored template kernel with incremental fingerprints explores exactly the states of fresh boots, mechanisms included', () => {
    // snapshot: false boots a machine per schedule and hashes it from scratch (every fingerprint
    // part built); snapshot: true restores one kernel in place, keeps the dirty tracker and the
    // checkers' buffers, sums the memmap incrementally and reuses the booted mechanisms' parts.
    const sets = [loadSet(getProgramSet('rfc-recursion'), 'mainline'), loadSet(getProgramSet('demote-cma'), 'mainline'), loadSet(getProgramSet('demote-cma'))];
    for (const l of sets) {
      const a = checkPrograms(l.programs, { properties: PROPERTIES });
      const b = checkPrograms(l.programs, { properties: PROPERTIES, snapshot: false });
      expect(b.stats, l.set.name).toMatchObject({ schedules: a.stats.schedules, states: a.stats.states, steps: a.stats.steps, pruned: a.stats.pruned });
      expect(b.violations.map((v) => v.violation)).toEqual(a.violations.map((v) => v.violation));
    }
  });

  it('the incremental fingerprint equals one computed from scratch, whatever was written and undone', () => {
    const arrays = (k: Kernel) => [k.mm.flags, k.mm.order, k.mm.refcount, k.mm.next, k.mm.owner, k.mm.token, k.mm.onList, k.mm.listHead, k.pb.mt, k.pb.isolate, k.zones[0].nrFree, k.zones[1].pcpCount];
    const write = fc.tuple(fc.nat(11), fc.nat(255), fc.integer({ min: -3, max: 70000 }));
    const k = createKernel('tiny', 'mainline');
    const boot = kernelFingerprint(k).value();
    fc.assert(
      fc.property(fc.array(fc.array(write, { maxLength: 8 }), { maxLength: 5 }), (batches) => {
        const undo: [ArrayLike<number> & { [i: number]: number }, number, number][] = [];
        for (const batch of batches) {
          for (const [a, i, v] of batch) {
            const arr = arrays(k)[a] as unknown as { [i: number]: number; length: number };
            const j = i % arr.length;
            undo.push([arr, j, arr[j]]);
            arr[j] = v;
          }
          // Hashed after every batch (incrementally), then compared with a fresh machine given
          // the same contents (hashed once, from scratch).
          const now = kernelFingerprint(k).value();
          const fresh = createKernel('tiny', 'mainline');
          arrays(fresh).forEach((arr, n) => arr.set(arrays(k)[n] as never));
          expect(now).toBe(kernelFingerprint(fresh).value());
        }
        for (const [arr, j, v] of undo.reverse()) arr[j] = v;
        expect(kernelFingerprint(k).value()).toBe(boot);
      }),
      { seed: 21, numRuns: 60 },
    );
  });

  it('finds a deadlock (lock order inversion) and a kernel exception, each with a replayable shortest schedule', () => {
    // Test-only ops; their locks live on the kernel (k.ext) so that snapshot restore resets them.
    const locks = (k: Kernel): { a: Mutex; b: Mutex } => (k.ext.testLocks ??= { a: new Mutex('A'), b: new Mutex('B') }) as { a: Mutex; b: Mutex };
    const lockPair = (first: 'a' | 'b') =>
      function* (k: Kernel): KGen<{ result: '0' }> {
        const l = locks(k);
        const [x, y] = first === 'a' ? [l.a, l.b] : [l.b, l.a];
        yield* mutexLock(k, x);
        yield 'between_locks';
        yield* mutexLock(k, y);
        mutexUnlock(y);
        mutexUnlock(x);
        return { result: '0' };
      };
    defineOp({ name: 'test_mc_lock_ab', summary: 'test', fields: {}, run: lockPair('a') });
    defineOp({ name: 'test_mc_lock_ba', summary: 'test', fields: {}, run: lockPair('b') });
    defineOp({
      name: 'test_mc_window',
      summary: 'test',
      fields: {},
      *run(k) {
        k.ext.testWindow = 1;
        yield 'window_open';
        k.ext.testWindow = 0;
        return { result: '0' };
      },
    });
    defineOp({
      name: 'test_mc_bug_in_window',
      summary: 'test',
      fields: {},
      *run(k) {
        if (k.ext.testWindow === 1) throw new KernelBug('hit the window');
        return { result: '0' };
      },
    });
    try {
      const dl = parseProgram({ config: 'tiny', profile: 'mainline', threads: [[{ op: 'test_mc_lock_ab' }], [{ op: 'test_mc_lock_ba' }]] });
      const d = checkProgram(dl, { properties: [] }).violation!;
      expect(d.property).toBe('bounded-progress');
      expect(d.replayed).toBe(true);
      const o = runProgram({ ...dl, threads: d.threads, schedule: d.schedule });
      expect(o.end).toBe('deadlock');
      expect(d.steps).toBe(o.steps);
      // Both threads take their first lock and block on the second one.
      expect(d.steps).toBe(bruteForceShortestRun(dl, (r) => (r.end === 'deadlock' ? r.steps : null)));
      expect(d.preemptions).toBe(1);
      const bug = parseProgram({ config: 'tiny', profile: 'mainline', threads: [[{ op: 'test_mc_window' }], [{ op: 'test_mc_bug_in_window' }]] });
      const b = checkProgram(bug, { properties: [] }).violation!;
      expect(b.property).toBe('kernel-bug');
      expect(b.message).toMatch(/hit the window/);
      expect(b.replayed).toBe(true);
      expect(b.steps).toBe(bruteForceShortestRun(bug, (r) => {
        const v = r.violations.find((w) => w.property === 'kernel-bug');
        return v ? v.step + 1 : null;
      }));
    } finally {
      for (const n of ['test_mc_lock_ab', 'test_mc_lock_ba', 'test_mc_window', 'test_mc_bug_in_window']) delete OPS[n];
    }
  });

  it('every buggy profile\'s built-in set violates its expected property, and its fixed profile does not', () => {
    for (const name of buggyProfiles()) {
      const prof = getProfile(name);
      const set = setForProfile(name);
      expect(set, `a program set for ${name}`).toBeDefined();
      const props = [getProperty(prof.buggy!.property)];
      const found = checkPrograms(loadSet(set!, name).programs, { properties: props }).violations.filter((v) => v.violation.property === prof.buggy!.property);
      expect(found.length, `${name}: ${prof.buggy!.property}`).toBeGreaterThan(0);
      expect(found.every((v) => v.violation.replayed)).toBe(true);
      // The shortest witness program passes on the fixed profile (other programs of a set may show
      // races the fix does not address, e.g. concurrent isolation undo).
      const witness = found.reduce((a, b) => (b.violation.steps < a.violation.steps ? b : a));
      const onFixed = checkProgram({ ...witness.prog, profile: getProfile(prof.fixedBy!) }, { properties: props });
      expect(onFixed.violation?.property, `${prof.fixedBy} fixes ${name} (${witness.name})`).not.toBe(prof.buggy!.property);
    }
  });

  it('snapshot restore puts every kind of mechanism state back in place, keeping object identity', () => {
    const k = createKernel('tiny', 'mainline');
    const shared = { owner: -1, list: [1, 2, 3] };
    const state = { n: 1, arr: [shared, 7], map: new Map<string, object>([['a', shared]]), set: new Set([1, 2]), bits: new Uint8Array([1, 0, 1]), nested: { deep: { x: 5 } } };
    k.ext.testState = state;
    const snap = snapshotKernel(k);
    expect(snap.objects).toBeGreaterThan(10);
    expect(snap.unchanged(k.ext)).toBe(true);
    expect(snap.unchanged({})).toBe(false);
    const inst = snap.instance();
    expect(inst).not.toBe(k);
    expect(inst.ext).toBe(k.ext);
    const s = inst.ext.testState as typeof state & { added?: number };
    s.n = 2;
    s.arr.push(9);
    s.arr[0] = { owner: 3, list: [] };
    s.map.set('b', {});
    s.map.delete('a');
    s.set.add(3);
    s.bits[1] = 9;
    s.nested.deep.x = 6;
    s.nested = { deep: { x: 0 } };
    shared.owner = 4;
    shared.list.length = 0;
    s.added = 1;
    inst.nextToken += 5;
    expect(snap.unchanged(k.ext)).toBe(false);
    expect(snap.unchanged(state.set)).toBe(false);
    expect(snap.unchanged(k.mm)).toBe(true);
    expect(snap.unchanged(state.nested.deep)).toBe(false); // a new object: not recorded
    snap.restore();
    expect(snap.unchanged(k.ext)).toBe(true);
    state.bits[2] = 1; // the value it had: still unchanged
    expect(snap.unchanged(state.bits)).toBe(true);
    (state as { added?: number }).added = undefined; // a new field, even undefined, is a change
    expect(snap.unchanged(state)).toBe(false);
    snap.restore();
    expect(snap.unchanged(k.ext)).toBe(true);
    expect(k.ext.testState).toBe(state);
    expect(state.n).toBe(1);
    expect(state.arr).toEqual([shared, 7]);
    expect(state.arr[0]).toBe(shared);
    expect([...state.map.entries()]).toEqual([['a', shared]]);
    expect([...state.set]).toEqual([1, 2]);
    expect([...state.bits]).toEqual([1, 0, 1]);
    expect(state.nested.deep.x).toBe(5);
    expect(shared).toEqual({ owner: -1, list: [1, 2, 3] });
    expect('added' in state).toBe(false);
    // Scalars of the kernel object itself live on each instance: a fresh instance starts from the snapshot.
    expect(snap.instance().nextToken).toBe(k.nextToken);
  });

  it('enumerates all small programs over the vocabulary, each valid on tiny', () => {
    const two = allPrograms(2, 'mainline');
    expect(two.length).toBeGreaterThan(10);
    expect(two.every(({ prog }) => prog.threads.flat().length <= 2)).toBe(true);
    const names = new Set(two.map((p) => p.name));
    expect(names.has('drain_all_pages | drain_all_pages')).toBe(true);
    expect(() => allPrograms(9, 'mainline')).toThrow(/1\.\.4/);
  });
});
