/**
 * src/kernel/snapshot.ts: a restored snapshot is the booted machine again, object for object.
 * The model checker and the campaign runner start every schedule / case from a restored snapshot
 * instead of a fresh boot; a restore that misses a field would carry state from one case into the
 * next (a violation found in a case that cannot show it alone, or one hidden). Compared here with a
 * structural dump of everything reachable from the kernel (memmap, pageblocks, zones, registry,
 * every mechanism's state under k.ext), not with the model checker's fingerprint.
 */
import { describe, expect, it } from 'vitest';
import { createKernel } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/machine.js';
import { snapshotKernel } from '../src/kernel/snapshot.js';
import { op } from './helpers.js';

/** Everything reachable from `root` as plain data (functions left out, cycles cut by path). */
function dump(root: unknown): unknown {
  const seen = new Map<object, string>();
  const walk = (x: unknown, path: string): unknown => {
    if (typeof x === 'function') return undefined;
    if (x === null || typeof x !== 'object') return x;
    const again = seen.get(x);
    if (again !== undefined) return { ref: again };
    seen.set(x, path);
    if (ArrayBuffer.isView(x)) return Array.from(x as unknown as ArrayLike<number>);
    if (Array.isArray(x)) return x.map((v, i) => walk(v, `${path}[${i}]`));
    if (x instanceof Map) return { map: [...x].map(([key, v]) => [walk(key, `${path}.k`), walk(v, `${path}.get(${String(key)})`)]) };
    if (x instanceof Set) return { set: [...x].map((v, i) => walk(v, `${path}{${i}}`)) };
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(x).sort()) out[key] = walk((x as Record<string, unknown>)[key], `${path}.${key}`);
    return out;
  };
  return walk(root, 'k');
}

/** Every op family once, so that every mechanism has state to put back. */
const WORKLOAD: Record<string, Record<string, unknown>[]> = {
  'tiny-hugetlb-cma': [
    { op: 'alloc_pages', id: 'a', order: 0, migratetype: 'unmovable' },
    { op: 'alloc_pages', id: 'b', order: 2, migratetype: 'movable', pinned: true },
    { op: 'set_nr_hugepages', hstate: '1G', count: 1 },
    { op: 'set_nr_hugepages', hstate: '2M', count: 2 },
    { op: 'hugetlb_mmap', id: 'm', hstate: '2M', pages: 1 },
    { op: 'hugetlb_fault', id: 'm', index: 0 },
    { op: 'demote', hstate: '1G' },
    { op: 'cma_alloc', id: 'c', area: 0, count: 4 },
    { op: 'alloc_contig_pages', id: 'p', nr_pages: 4 },
    { op: 'free_pages', id: 'a' },
  ],
  small: [
    { op: 'alloc_pages', id: 'a', order: 3, migratetype: 'movable' },
    { op: 'alloc_contig_range', id: 'r', start: 2048, end: 2560, migratetype: 'movable' },
    { op: 'virtio_mem_unplug', bytes: 4 << 20 },
    { op: 'offline_pages', block: 3 },
    { op: 'online_pages', block: 3, zone: 'Movable' },
    { op: 'set_nr_hugepages', hstate: '2M', count: 2 },
    { op: 'drain_all_pages' },
  ],
};

describe('snapshot / restore', () => {
  for (const [config, ops] of Object.entries(WORKLOAD)) {
    it(`${config}: after every op family, restore() gives back the booted machine`, () => {
      const k = createKernel(config, 'mainline');
      const booted = dump(k);
      const snap = snapshotKernel(k);
      const results = ops.map((o) => op(k, o));
      expect(results.filter((r) => (r as { result: string }).result !== '0')).toEqual([]);
      expect(dump(k)).not.toEqual(booted);
      snap.restore();
      expect(dump(k)).toEqual(booted);
      // The same ops from the restored state give the same results: nothing carried over.
      expect(ops.map((o) => op(k, o))).toEqual(results);
      snap.restore();
      expect(dump(k)).toEqual(booted);
    });
  }

  it('an instance() is a new kernel object over the restored state; the original sees the same memmap', () => {
    const k = createKernel('tiny', 'mainline');
    const booted = dump(k);
    const snap = snapshotKernel(k);
    const a: Kernel = snap.instance();
    expect(a).not.toBe(k);
    op(a, { op: 'alloc_pages', id: 'x', order: 1, migratetype: 'movable' });
    expect(a.lookup('x')).toBeDefined();
    const b = snap.instance();
    expect(b.lookup('x')).toBeUndefined();
    expect(dump(b)).toEqual(booted);
  });

  it('objects created during a run are dropped, objects that existed are put back in place', () => {
    const k = createKernel('tiny', 'mainline');
    const snap = snapshotKernel(k);
    const zone = k.zones[0];
    const flags = k.mm.flags;
    const free = zone.freePages;
    op(k, { op: 'alloc_pages', id: 'x', order: 2, migratetype: 'unmovable' });
    (k.ext as Record<string, unknown>).scratch = { made: 'during the run' };
    expect(zone.freePages).toBe(free - 4);
    snap.restore();
    expect(k.zones[0]).toBe(zone);
    expect(k.mm.flags).toBe(flags);
    expect(zone.freePages).toBe(free);
    expect((k.ext as Record<string, unknown>).scratch).toBeUndefined();
  });

  describe('unchanged(root): the model checker keeps the fingerprint of mechanism state nobody touched', () => {
    const ext = (k: Kernel) => k.ext as Record<string, any>;

    it('every root is unchanged right after the snapshot and after a restore; an object not recorded is not', () => {
      const k = createKernel('tiny-hugetlb-cma', 'mainline');
      const snap = snapshotKernel(k);
      const roots = [k.mm.flags, k.zones[0], ...Object.values(ext(k)).filter((v) => v && typeof v === 'object')];
      expect(roots.length).toBeGreaterThan(3);
      for (const r of roots) expect(snap.unchanged(r)).toBe(true);
      op(k, { op: 'set_nr_hugepages', hstate: '2M', count: 2 });
      op(k, { op: 'cma_alloc', id: 'c', area: 0, count: 4 });
      expect(roots.filter((r) => !snap.unchanged(r)).length).toBeGreaterThan(1);
      snap.restore();
      for (const r of roots) expect(snap.unchanged(r)).toBe(true);
      expect(snap.unchanged({})).toBe(false);
    });

    it('a change deep under a root is seen, whatever holds it: typed array, array, Map, Set, object field', () => {
      const k = createKernel('tiny', 'mainline');
      const e = ext(k);
      e.probe = { list: [1, { deep: 2 }], map: new Map<number, unknown>([[1, 'a'], [2, [3]]]), set: new Set<unknown>(['x', 'y']), arr: new Int32Array(4), zero: 0, nan: NaN };
      const snap = snapshotKernel(k);
      const p = e.probe;
      const edits: [string, () => void][] = [
        ['typed array element', () => { p.arr[3] = 1; }],
        ['array element deep in an object', () => { p.list[1].deep = 5; }],
        ['array length', () => { p.list.push(9); }],
        ['Map value', () => { p.map.set(1, 'b'); }],
        ['Map value held by reference', () => { p.map.get(2).push(4); }],
        ['Map key', () => { p.map.delete(1); p.map.set(7, 'a'); }],
        ['Map size', () => { p.map.set(9, 'z'); }],
        ['Set element', () => { p.set.delete('y'); p.set.add('z'); }],
        ['Set size', () => { p.set.add('w'); }],
        ['+0 to -0', () => { p.zero = -0; }],
        ['NaN to a number', () => { p.nan = 1; }],
      ];
      for (const [what, edit] of edits) {
        expect(snap.unchanged(p), what).toBe(true);
        edit();
        expect(snap.unchanged(p), what).toBe(false);
        expect(snap.unchanged(e), what).toBe(false);
        expect(snap.unchanged(k.mm.flags), what).toBe(true);
        snap.restore();
        expect(snap.unchanged(p), what).toBe(true);
      }
      // The same NaN is no change (NaN !== NaN must not read as one).
      p.nan = NaN;
      expect(snap.unchanged(p)).toBe(true);
    });
  });
});
