/**
 * refines-model's shortcuts (issue 5 throughput) against the pfn-by-pfn definition: the run
 * scanners against plain loops (also their 64-bit float reads, with the values whose patterns
 * compare equal unequal bits: +0/-0, NaN); the abstract state of every pfn and the coverage
 * counted per pfn after every step of campaigns; the boot abstraction reused only for the machine
 * it was made for; free blocks judged as runs with PageBuddy pfns planted inside; the model's
 * verdicts kept per op (a pair allowed for one op reported for another); and the watched huge
 * heads skipped while their words stay put, against heads met through their tails and flag-only
 * changes planted behind the dirty tracker's back.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createKernel } from '../src/kernel/index.js';
import { Memmap } from '../src/kernel/memmap.js';
import { snapshotKernel } from '../src/kernel/snapshot.js';
import { resolveConfig } from '../src/kernel/config.js';
import { hstateByName, setMaxHugePages } from '../src/kernel/hugetlb.js';
import { MIGRATE_ISOLATE, MIGRATE_TYPES, PG_buddy, PG_head, PG_lru, PG_valid, PG_hugetlb, PG_hugetlb_freed, PG_offline, PG_tail } from '../src/kernel/types.js';
import { caseArb } from '../src/harness/arbitraries.js';
import { caseRunner } from '../src/harness/fuzz.js';
import { OPS } from '../src/harness/ops/index.js';
import type { Property } from '../properties/index.js';
import { createRefinement } from '../properties/refines-model.js';
import { bareRun, keyedRun, replaceRun } from '../properties/memmap-scan.js';
import { A_NONE, abstractState } from '../models/abstraction.js';
import { COVERAGE, resetCoverage } from '../models/coverage.js';
import { STATE_INDEX, allowedClosure, directTransition, isModelledOp } from '../models/page-model.js';

function drive<T>(g: Generator<unknown, T, void>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

describe('refines-model shortcuts', () => {
  it('keyedRun and bareRun take the runs a pfn-by-pfn loop takes, at any alignment', () => {
    const k = createKernel('tiny', 'mainline');
    const { flags, refcount, owner, next } = k.mm;
    const base = { flags: flags.slice(), refcount: refcount.slice(), owner: owner.slice(), next: next.slice() };
    const abs = new Uint8Array(k.nrPfns);
    // Runs of a kind: 0 PageOffline, 1 tails of one head, 2 one owner's pages, 3 bare frames; a
    // pfn is one of the run (null, mostly) or a mix of values the runs compare.
    const KEYS = [PG_valid | PG_offline, PG_valid | PG_tail, PG_valid | PG_lru, PG_valid];
    const odd = fc.tuple(fc.nat(3), fc.nat(3), fc.nat(1), fc.nat(1), fc.nat(1));
    const pfn = fc.oneof({ arbitrary: fc.constant(null), weight: 12 }, { arbitrary: odd, weight: 1 });
    fc.assert(
      fc.property(fc.nat(k.nrPfns - 80), fc.array(pfn, { minLength: 1, maxLength: 70 }), fc.nat(3), (s, mix, kind) => {
        flags.set(base.flags);
        refcount.set(base.refcount);
        owner.set(base.owner);
        next.set(base.next);
        abs.fill(0);
        mix.forEach((m, i) => {
          const [a, f, o, n, rc] = m ?? [0, kind, kind === 2 ? 1 : 0, 1, 0];
          abs[s + i] = a === 3 ? 1 : 0;
          flags[s + i] = KEYS[f] | (a === 2 ? PG_buddy : 0);
          owner[s + i] = o;
          next[s + i] = n;
          refcount[s + i] = rc;
        });
        const e = s + mix.length;
        const want = abs.slice();
        const same = kind === 1 ? next : kind === 2 ? owner : null;
        const mask = kind === 0 ? PG_valid | PG_offline | PG_buddy : 0xffff;
        const fits = (p: number) => kind === 3
          ? flags[p] === PG_valid && refcount[p] === 0 && owner[p] === 0
          : (flags[p] & mask) === KEYS[kind] && (same === null || same[p] === 1);
        let q = s;
        for (; q < e && want[q] === 0 && fits(q); q++) want[q] = 2;
        const got = kind === 3 ? bareRun(k.mm, abs, s, e, 0, 2) : keyedRun(k.mm, abs, s, e, 0, 2, mask, KEYS[kind], same, 1);
        expect(got).toBe(q);
        expect([...abs]).toEqual([...want]);
      }),
      { seed: 53, numRuns: 2000 },
    );
  });

  it('keyedRun four pfns a read takes the runs a pfn-by-pfn loop takes, for any key and value (0, -0 and NaN patterns too)', () => {
    // (flags of four pfns and `same` of two read as 64-bit floats: key 0 and v 0 read as +0, equal
    // to a read with only a sign bit set (flags 0x8000, same -2^31); key 0xffff and v -1 read as NaN)
    const k = createKernel('tiny', 'mainline');
    const { flags, next } = k.mm;
    const base = { flags: flags.slice(), next: next.slice() };
    const abs = new Uint8Array(k.nrPfns);
    const KEYS = [0, 0x8000, 0xffff, PG_valid | PG_tail];
    const VS = [0, 1, -1, -(2 ** 31), 0x7ff00000];
    fc.assert(
      fc.property(fc.nat(k.nrPfns - 100), fc.nat(90), fc.array(fc.tuple(fc.nat(89), fc.nat(2)), { maxLength: 3 }), fc.nat(3), fc.nat(3), fc.nat(4), fc.nat(4), (s, len, odd, key, okey, v, ov) => {
        flags.set(base.flags);
        next.set(base.next);
        abs.fill(0);
        const e = s + len;
        flags.fill(KEYS[key], s, e);
        next.fill(VS[v], s, e);
        for (const [i, what] of odd) {
          if (i >= len) continue;
          if (what === 0) flags[s + i] = KEYS[okey];
          else if (what === 1) next[s + i] = VS[ov];
          else abs[s + i] = 1;
        }
        const want = abs.slice();
        let q = s;
        for (; q < e && want[q] === 0 && flags[q] === KEYS[key] && next[q] === VS[v]; q++) want[q] = 2;
        expect(keyedRun(k.mm, abs, s, e, 0, 2, 0xffff, KEYS[key], next, VS[v])).toBe(q);
        expect([...abs]).toEqual([...want]);
      }),
      { seed: 59, numRuns: 3000 },
    );
    flags.set(base.flags);
    next.set(base.next);
  });

  it('keyedRun over a long range (native compares of the whole range first) takes the run a pfn-by-pfn loop takes', () => {
    // One abs, flags or `same` value planted anywhere in ranges of hundreds of pfns (the first,
    // the last, the middle: what the compares of the whole range must see), or none.
    const n = 1500;
    const mm = new Memmap(n, 1);
    const abs = new Uint8Array(n);
    const key = PG_valid | PG_tail;
    fc.assert(
      fc.property(fc.nat(600), fc.integer({ min: 256, max: 890 }), fc.option(fc.tuple(fc.nat(889), fc.nat(2), fc.integer({ min: 1, max: 0xffff }))), (s, len, odd) => {
        const e = s + len;
        abs.fill(0);
        mm.flags.fill(key);
        mm.next.fill(7);
        if (odd) {
          const q = s + (odd[0] % len);
          if (odd[1] === 0) abs[q] = 1 + (odd[2] % 200);
          else if (odd[1] === 1) mm.flags[q] = key ^ odd[2];
          else mm.next[q] = 7 + odd[2] * 65536;
        }
        const want = abs.slice();
        let q = s;
        for (; q < e && want[q] === 0 && mm.flags[q] === key && mm.next[q] === 7; q++) want[q] = 2;
        expect(keyedRun(mm, abs, s, e, 0, 2, 0xffff, key, mm.next, 7)).toBe(q);
        expect(abs).toEqual(want);
      }),
      { seed: 61, numRuns: 600 },
    );
  });

  it('keyedRun four pfns a read under a mask takes the runs a pfn-by-pfn loop takes (bits outside the mask ignored)', () => {
    const k = createKernel('tiny', 'mainline');
    const { flags } = k.mm;
    const base = flags.slice();
    const abs = new Uint8Array(k.nrPfns);
    const mask = PG_valid | PG_offline | PG_buddy;
    const key = PG_valid | PG_offline;
    // flags planted: outside the mask (PG_lru, PG_tail: still of the run), PageBuddy, not offline
    const PLANT = [key | PG_lru, key | PG_tail, key | PG_buddy, PG_valid];
    fc.assert(
      fc.property(fc.nat(k.nrPfns - 100), fc.nat(90), fc.array(fc.tuple(fc.nat(89), fc.nat(4)), { maxLength: 3 }), (s, len, odd) => {
        flags.set(base);
        abs.fill(0);
        const e = s + len;
        flags.fill(key, s, e);
        for (const [i, what] of odd) {
          if (i >= len) continue;
          if (what < 4) flags[s + i] = PLANT[what];
          else abs[s + i] = 1;
        }
        const want = abs.slice();
        let q = s;
        for (; q < e && want[q] === 0 && (flags[q] & mask) === key; q++) want[q] = 2;
        expect(keyedRun(k.mm, abs, s, e, 0, 2, mask, key, null, 0)).toBe(q);
        expect([...abs]).toEqual([...want]);
      }),
      { seed: 67, numRuns: 3000 },
    );
    flags.set(base);
  });

  it('bareRun four pfns a read takes the runs a pfn-by-pfn loop takes, with -0 patterns planted (refcount -2^15, owner -2^31)', () => {
    const k = createKernel('tiny', 'mainline');
    const { flags, refcount, owner } = k.mm;
    const base = { flags: flags.slice(), refcount: refcount.slice(), owner: owner.slice() };
    const abs = new Uint8Array(k.nrPfns);
    fc.assert(
      fc.property(fc.nat(k.nrPfns - 100), fc.nat(90), fc.array(fc.tuple(fc.nat(89), fc.nat(4)), { maxLength: 3 }), (s, len, odd) => {
        flags.set(base.flags);
        refcount.set(base.refcount);
        owner.set(base.owner);
        abs.fill(0);
        const e = s + len;
        flags.fill(PG_valid, s, e);
        refcount.fill(0, s, e);
        owner.fill(0, s, e);
        for (const [i, what] of odd) {
          if (i >= len) continue;
          if (what === 0) refcount[s + i] = -(2 ** 15);
          else if (what === 1) owner[s + i] = -(2 ** 31);
          else if (what === 2) flags[s + i] = PG_valid | PG_lru;
          else if (what === 3) refcount[s + i] = 1;
          else abs[s + i] = 1;
        }
        const want = abs.slice();
        let q = s;
        for (; q < e && want[q] === 0 && flags[q] === PG_valid && refcount[q] === 0 && owner[q] === 0; q++) want[q] = 2;
        expect(bareRun(k.mm, abs, s, e, 0, 2)).toBe(q);
        expect([...abs]).toEqual([...want]);
      }),
      { seed: 61, numRuns: 3000 },
    );
    flags.set(base.flags);
    refcount.set(base.refcount);
    owner.set(base.owner);
  });

  it('replaceRun replaces what a byte-by-byte loop replaces, at any alignment', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), fc.nat(80), fc.nat(80), fc.nat(3), (bytes, a, b, k) => {
        // mostly one value, so that runs are long
        const buf = new Uint8Array(96);
        buf.set(bytes.map((x) => (x % 8 === 0 ? x : 7)), k);
        const want = buf.slice();
        const s = Math.min(a, b, 96);
        const e = Math.min(Math.max(a, b), 96);
        let q = s;
        for (; q < e && want[q] === 7; q++) want[q] = 9;
        expect(replaceRun(buf, s, e, 7, 9)).toBe(q);
        expect([...buf]).toEqual([...want]);
      }),
      { seed: 47, numRuns: 2000 },
    );
  });

  it('replaceRun eight bytes a read replaces what a byte loop replaces, for any values (0, 0x80 and 0xff too)', () => {
    // (eight zero bytes and a word ending in 0x80 read as +0 and -0, which compare equal; eight
    // 0xff bytes read as a NaN; a buffer at an offset of 4 has no 64-bit view)
    const V = [0, 1, 7, 9, 0x80, 0xff];
    fc.assert(
      fc.property(fc.array(fc.nat(207), { maxLength: 4 }), fc.nat(48), fc.nat(208), fc.constantFrom(...V), fc.constantFrom(...V), fc.constantFrom(...V), fc.boolean(), (holes, s, len, from, to, other, shifted) => {
        const mem = new Uint8Array(216);
        const buf = shifted ? mem.subarray(4, 212) : mem.subarray(0, 208);
        buf.fill(from);
        for (const h of holes) buf[h] = other;
        const want = buf.slice();
        const e = Math.min(s + len, buf.length);
        let q = s;
        for (; q < e && want[q] === from; q++) want[q] = to;
        expect(replaceRun(buf, s, e, from, to)).toBe(q);
        expect([...buf]).toEqual([...want]);
      }),
      { seed: 53, numRuns: 3000 },
    );
  });

  it('count each step\'s coverage as pfn-by-pfn judging would (runs counted by length, pfns visited twice counted once)', () => {
    const opNames = Object.keys(OPS).filter((x) => !x.startsWith('test_'));
    const bad: string[] = [];
    let compared = 0;
    const mirror: Property = {
      name: 'mirror', statement: '', kernelRef: '', guards: '', when: 'step',
      create(k) {
        const r = createRefinement(k);
        const ref = r.abs.slice();
        const running: string[] = [];
        let failed = false;
        return {
          check(ctx) {
            if (failed) return null;
            const states = COVERAGE.states.slice();
            const transitions = COVERAGE.transitions.slice();
            if (r.check(ctx.step, ctx.started, ctx.finished)) return (failed = true), null;
            for (const s of ctx.started) running[s.thread] = s.op.op;
            const op = running[k.current];
            const modelled = op !== undefined && isModelledOp(op);
            for (let p = 0; p < k.nrPfns; p++) {
              const to = abstractState(k, p, ref[p]);
              if (to === ref[p]) continue;
              states[to]++;
              const d = modelled ? directTransition(op, ref[p], to) : -1;
              if (d >= 0) transitions[d]++;
              ref[p] = to;
            }
            compared++;
            const what = `${k.profile.name} step ${ctx.step}`;
            if (bad.length < 5 && states.some((n, i) => n !== COVERAGE.states[i])) bad.push(`${what}: state counts ${COVERAGE.states} instead of ${states}`);
            if (bad.length < 5 && transitions.some((n, i) => n !== COVERAGE.transitions[i])) bad.push(`${what}: transition counts differ`);
            const p = ref.findIndex((s, i) => s !== r.abs[i]);
            if (p >= 0 && bad.length < 5) bad.push(`${what} pfn ${p}: ${r.abs[p]} instead of ${ref[p]}`);
            return null;
          },
        };
      },
    };
    const hotplug = opNames.filter((x) => /virtio|offline|online|alloc_pages|free_pages/.test(x));
    const huge = opNames.filter((x) => /huge|demote|contig|cma/.test(x));
    for (const [config, profile, ops] of [['tiny', 'mainline', opNames], ['tiny-hugetlb-cma', 'demote-cma-lost', opNames], ['tiny', 'mainline', hotplug], ['tiny-hugetlb-cma', 'mainline', huge]] as const) {
      const runner = caseRunner(config, profile);
      for (const c of fc.sample(caseArb(resolveConfig(config), { threads: 3, ops: 8, opNames: [...ops] }), { seed: 37, numRuns: 30 })) runner.run(c, [mirror]);
    }
    expect(bad).toEqual([]);
    expect(compared).toBeGreaterThan(1000);
  });

  it('start from the abstraction of the machine handed over, booted, changed or restored', () => {
    const k = createKernel('tiny', 'mainline');
    const walked = () => Array.from({ length: k.nrPfns }, (_, p) => abstractState(k, p, A_NONE));
    const snap = snapshotKernel(k);
    expect([...createRefinement(k).abs]).toEqual(walked());
    k.current = 0;
    drive(setMaxHugePages(k, hstateByName(k, '2M')!, 2));
    // (the same config and profile objects, other counters: not the boot's abstraction)
    expect([...createRefinement(k).abs]).toEqual(walked());
    snap.restore();
    expect([...createRefinement(k).abs]).toEqual(walked());
    expect([...createRefinement(createKernel('tiny', 'v5.11')).abs]).toEqual(walked());
  });

  it('judge a free block moved to another list as pfn-by-pfn abstraction does, PageBuddy pfns planted inside or not', () => {
    // A whole block moved to the ISOLATE list of its order (move_to_free_list): its bare frames
    // are judged as one run while no PageBuddy pfn lies between the head and them. Planted ones
    // (not on any list) are the heads of their own frames; pfns after them keep their state.
    const plant = fc.tuple(fc.nat(1023), fc.nat(3));
    fc.assert(
      fc.property(fc.nat(63), fc.array(plant, { maxLength: 3 }), (pick, planted) => {
        const k = createKernel('tiny', 'mainline');
        const r = createRefinement(k);
        const ref = r.abs.slice();
        const { flags, order, onList } = k.mm;
        const heads = [...Array(k.nrPfns).keys()].filter((p) => flags[p] & PG_buddy && order[p] >= 2);
        const h = heads[pick % heads.length];
        const z = k.zones.find((x) => x.listBase <= onList[h] - 1 && onList[h] - 1 < x.pcpBase)!;
        for (const [at, o] of planted) {
          const b = h + 1 + (at % ((1 << order[h]) - 1));
          flags[b] |= PG_buddy;
          order[b] = Math.min(o, order[h] - 1);
        }
        k.mm.listDel(h);
        k.mm.listAdd(z.listBase + order[h] * MIGRATE_TYPES + MIGRATE_ISOLATE, h, false);
        expect(r.check(0, [])).toBeNull();
        for (let p = 0; p < k.nrPfns; p++) ref[p] = abstractState(k, p, ref[p]);
        expect([...r.abs]).toEqual([...ref]);
      }),
      { seed: 43, numRuns: 200 },
    );
  });

  it('judge a pair of states per op: allowed for one op, still reported for another, and a reported pair judged again', () => {
    // (the verdicts are kept per op across checkers; a disallowed pair is never kept)
    const FREE = STATE_INDEX.free;
    const ISOLATED = STATE_INDEX.isolated;
    const modelled = Object.keys(OPS).filter((o) => isModelledOp(o));
    const yes = modelled.find((o) => directTransition(o, FREE, ISOLATED) >= 0)!;
    const no = modelled.find((o) => directTransition(o, FREE, ISOLATED) < 0 && !allowedClosure(o, FREE, ISOLATED))!;
    expect(yes && no).toBeTruthy();
    const k = createKernel('tiny', 'mainline');
    k.current = 0;
    const { flags, order, onList } = k.mm;
    const heads = [...Array(k.nrPfns).keys()].filter((p) => flags[p] & PG_buddy && onList[p] > 0);
    expect(heads.length).toBeGreaterThan(4);
    const isolate = (h: number) => {
      const z = k.zones.find((x) => x.listBase <= onList[h] - 1 && onList[h] - 1 < x.pcpBase)!;
      k.mm.listDel(h);
      k.mm.listAdd(z.listBase + order[h] * MIGRATE_TYPES + MIGRATE_ISOLATE, h, false);
    };
    const run = (r: ReturnType<typeof createRefinement>, step: number, op: string, h: number) => {
      isolate(h);
      return r.check(step, [{ thread: 0, op: { op } }]);
    };
    expect(run(createRefinement(k), 0, no, heads[0])).toMatch(new RegExp(`went from free to isolated .* during ${no}`));
    const r = createRefinement(k);
    expect(run(r, 1, yes, heads[1])).toBeNull();
    expect(run(r, 2, yes, heads[2])).toBeNull();
    expect(run(r, 3, no, heads[3])).toMatch(new RegExp(`went from free to isolated .* during ${no}`));
    expect(run(createRefinement(k), 4, no, heads[4])).toMatch(new RegExp(`went from free to isolated .* during ${no}`));
  });

  it('see the head of a huge page first met through its tails in a step after the heads were last seen', () => {
    const k = createKernel('tiny', 'mainline');
    const r = createRefinement(k);
    const ref = r.abs.slice();
    const check = (step: number) => {
      expect(r.check(step, [])).toBeNull();
      for (let p = 0; p < k.nrPfns; p++) ref[p] = abstractState(k, p, ref[p]);
      expect([...r.abs]).toEqual([...ref]);
    };
    k.current = 0;
    const h2m = hstateByName(k, '2M')!;
    drive(setMaxHugePages(k, h2m, 1));
    check(0);
    check(1);
    // A free block made a free huge page by flags alone, and only its tails reported touched (an
    // allocation over them): the head's state changed, and nothing visits it but the huge heads.
    const { flags, order, next } = k.mm;
    const h = [...Array(k.nrPfns).keys()].find((p) => flags[p] & PG_buddy && order[p] === h2m.order)!;
    expect(h).toBeDefined();
    const n = 1 << h2m.order;
    flags[h] = PG_valid | PG_head | PG_hugetlb | PG_hugetlb_freed;
    order[h] = h2m.order;
    for (let p = h + 1; p < h + n; p++) {
      flags[p] = PG_valid | PG_tail;
      next[p] = h;
    }
    k.newAllocation({ id: 'tails', kind: 'contig', pfn: h + 1, nrPages: n - 1, order: 0, migratetype: 0, pinned: false });
    check(2);
    check(3);
  });

  it('see a flag-only change of a watched huge page between steps that touched nothing', () => {
    // Mutations of the words the huge-head shortcut compares, none seen by the dirty tracker: the
    // head's HPageFreed or PageOffline, the last tail's PageOffline or PG_tail, the head's order
    // grown by one. (Not shrunk: the pages past a shrunk extent are walked once, as demote's new
    // heads are, and not watched after that, shortcut or not.)
    const mutation = fc.tuple(fc.nat(7), fc.nat(4), fc.boolean());
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 8 }), (muts) => {
        const k = createKernel('tiny', 'mainline');
        const r = createRefinement(k);
        const ref = r.abs.slice();
        let step = 0;
        const check = () => {
          expect(r.check(step++, [])).toBeNull();
          for (let p = 0; p < k.nrPfns; p++) ref[p] = abstractState(k, p, ref[p]);
          expect([...r.abs]).toEqual([...ref]);
        };
        k.current = 0;
        drive(setMaxHugePages(k, hstateByName(k, '2M')!, 4));
        check();
        check();
        const { flags, order } = k.mm;
        const heads = [...Array(k.nrPfns).keys()].filter((p) => (flags[p] & (PG_hugetlb | PG_head)) === (PG_hugetlb | PG_head));
        expect(heads.length).toBeGreaterThan(0);
        for (const [i, kind, idle] of muts) {
          const h = heads[i % heads.length];
          const last = h + (1 << order[h]) - 1;
          if (kind === 0) flags[h] ^= PG_hugetlb_freed;
          else if (kind === 1) flags[h] ^= PG_offline;
          else if (kind === 2) flags[last] ^= PG_offline;
          else if (kind === 3) flags[last] ^= PG_tail;
          else if (h + (2 << order[h]) <= k.nrPfns) order[h]++;
          check();
          if (idle) check();
        }
      }),
      { seed: 41, numRuns: 150 },
    );
  });
  it('judge a pool counter moved on a step that touched no pfn, also after a restore', () => {
    // The counters are compared with those last read off the hstates kept since boot (most steps
    // move nothing): a counter moved alone, behind the dirty tracker's back, is still judged at
    // that step, and a restore puts back the counters they are compared with.
    const k = createKernel('tiny', 'mainline');
    const h = hstateByName(k, '2M')!;
    k.current = 0;
    const r = createRefinement(k);
    const start = [{ thread: 0, op: { op: 'alloc_pages' } }];
    expect(r.check(0, start)).toBeNull();
    r.checkpoint(0);
    h.free++;
    expect(r.check(1, [])).toMatch(/^hstate 0: counters Total 0 Free 1 Rsvd 0 Surp 0 break the pool model's invariants/);
    h.free--;
    r.restore(0);
    expect(r.check(2, [])).toBeNull();
    h.nr++;
    h.free++;
    expect(r.check(3, [])).toMatch(/^hstate 0: alloc_pages \(thread 0\) moved the pool from Total 0 Free 0 Rsvd 0 Surp 0 to Total 1 Free 1 Rsvd 0 Surp 0/);
    h.nr--;
    h.free--;
    r.restore(0);
    h.resv++;
    expect(r.check(4, [])).toMatch(/break the pool model's invariants/);
    h.resv--;
    h.surplus++;
    h.nr++;
    const r2 = createRefinement(k);
    // (a new checker starts from the counters as they are)
    expect(r2.check(0, start)).toBeNull();
    h.surplus--;
    expect(r2.check(1, [])).toMatch(/^hstate 0: alloc_pages \(thread 0\) moved the pool/);
  });

  it('list an unmodelled op in the coverage again at its next step after a coverage reset', () => {
    // (an op is added once per reset: the reset is what empties the list)
    const unmodelled = 'an_op_without_a_model';
    expect(isModelledOp(unmodelled)).toBe(false);
    const k = createKernel('tiny', 'mainline');
    k.current = 0;
    const r = createRefinement(k);
    resetCoverage();
    expect(r.check(0, [{ thread: 0, op: { op: unmodelled } }])).toBeNull();
    expect([...COVERAGE.unmodelledOps]).toEqual([unmodelled]);
    resetCoverage();
    expect([...COVERAGE.unmodelledOps]).toEqual([]);
    expect(r.check(1, [])).toBeNull();
    expect([...COVERAGE.unmodelledOps]).toEqual([unmodelled]);
    // another thread's step (no op yet) adds nothing; the op's thread's next one finds it listed
    resetCoverage();
    k.current = 1;
    expect(r.check(2, [])).toBeNull();
    expect([...COVERAGE.unmodelledOps]).toEqual([]);
    k.current = 0;
    expect(r.check(3, [])).toBeNull();
    expect(r.check(4, [])).toBeNull();
    expect([...COVERAGE.unmodelledOps]).toEqual([unmodelled]);
  });

  it('judge the head of a free block moved to another list by its own history (dissolved after a huge state), and report it', () => {
    // The head's state is the block's (its history decides free against dissolved, as for any
    // pfn of the block): histories planted on the head and inside, the block isolated, then put
    // back (each a change of class: the whole block is reported).
    const HIST = [STATE_INDEX.free, STATE_INDEX['huge-free'], STATE_INDEX['huge-in-use'], STATE_INDEX.dissolved, STATE_INDEX.isolated];
    const plant = fc.tuple(fc.constantFrom(...HIST), fc.constantFrom(...HIST), fc.nat(1023));
    fc.assert(
      fc.property(fc.nat(63), plant, plant, (pick, there, back) => {
        const k = createKernel('tiny', 'mainline');
        const r = createRefinement(k);
        const { flags, order, onList } = k.mm;
        const heads = [...Array(k.nrPfns).keys()].filter((p) => flags[p] & PG_buddy && order[p] >= 2);
        const h = heads[pick % heads.length];
        const list = onList[h] - 1;
        const z = k.zones.find((x) => x.listBase <= list && list < x.pcpBase)!;
        for (const [[hHead, hIn, at], to] of [[there, z.listBase + order[h] * MIGRATE_TYPES + MIGRATE_ISOLATE], [back, list]] as const) {
          r.abs[h] = hHead;
          r.abs[h + 1 + (at % ((1 << order[h]) - 1))] = hIn;
          const ref = r.abs.slice();
          k.mm.listDel(h);
          k.mm.listAdd(to, h, false);
          expect(r.check(to === list ? 1 : 0, [])).toBeNull();
          for (let p = 0; p < k.nrPfns; p++) ref[p] = abstractState(k, p, ref[p]);
          expect([...r.abs]).toEqual([...ref]);
        }
      }),
      { seed: 71, numRuns: 200 },
    );
    // a disallowed move of the head is reported at the head
    const no = Object.keys(OPS).find((o) => isModelledOp(o) && directTransition(o, STATE_INDEX['huge-free'], STATE_INDEX.isolated) < 0 && !allowedClosure(o, STATE_INDEX['huge-free'], STATE_INDEX.isolated))!;
    const k = createKernel('tiny', 'mainline');
    k.current = 0;
    const r = createRefinement(k);
    const { flags, order, onList } = k.mm;
    const h = [...Array(k.nrPfns).keys()].find((p) => flags[p] & PG_buddy && order[p] >= 2)!;
    r.abs[h] = STATE_INDEX['huge-free'];
    const z = k.zones.find((x) => x.listBase <= onList[h] - 1 && onList[h] - 1 < x.pcpBase)!;
    k.mm.listDel(h);
    k.mm.listAdd(z.listBase + order[h] * MIGRATE_TYPES + MIGRATE_ISOLATE, h, false);
    expect(r.check(0, [{ thread: 0, op: { op: no } }])).toBe(`pfn ${h} went from huge-free to isolated in thread 0 during ${no}: the page model allows no such transition`);
  });
});
