/**
 * alloc_contig_range of N free pages (N = 512, one x86-64 pageblock, and N = 2^18, all of vm-5g's
 * 1 GiB ZONE_MOVABLE) beside a bare typed-array pass over N pfns measured in the same run.
 * Only alloc_contig_range is timed; free_contig_range and drain_all_pages restore the state
 * between runs. Goal: ratio <= 20.
 */
import { createKernel } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/machine.js';
import type { KGen } from '../src/kernel/sched.js';
import { allocContigRange, freeContigRange } from '../src/kernel/contig.js';
import { drainPagesZone } from '../src/kernel/page_alloc.js';
import { MIGRATE_MOVABLE } from '../src/kernel/types.js';
import { bareArrayPass, median, medianMs, timeMs } from './util.js';

function drive<T>(g: KGen<T>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

function one(k: Kernel, start: number, n: number, runs: number) {
  const times: number[] = [];
  const warm = 3; // JIT warm-up runs, not counted
  for (let i = 0; i < runs + warm; i++) {
    let ret = '';
    const t = timeMs(() => {
      ret = drive(allocContigRange(k, start, start + n, MIGRATE_MOVABLE, { id: 'bench' }));
    });
    if (ret !== '0') throw new Error(`alloc_contig_range(${start}, ${start + n}) = ${ret}`);
    if (i >= warm) times.push(t);
    k.dropAllocation(k.lookup('bench')!.handle);
    freeContigRange(k, start, n);
    for (const z of k.zones) for (let c = 0; c < k.cfg.cpus; c++) drainPagesZone(k, z, c);
  }
  // The baseline is sub-microsecond for small N: time a batch of passes and divide.
  const arr = new Uint16Array(k.nrPfns);
  const reps = Math.max(1, Math.floor((1 << 20) / n));
  const bare = medianMs(Math.max(runs, 9), () => {
    for (let r = 0; r < reps; r++) bareArrayPass(arr, start, n);
  }) / reps;
  const ms = median(times);
  return { pages: n, allocContigRangeMs: +ms.toFixed(4), bareArrayPassMs: +bare.toFixed(5), ratio: +(ms / bare).toFixed(1) };
}

export default function contigBench() {
  const out: Record<string, unknown> = {};
  for (const profile of ['v5.19', 'mainline']) {
    const k = createKernel('vm-5g', profile);
    const movable = k.zones.find((z) => z.isMovable())!;
    out[profile] = {
      n512: one(k, movable.start + 4096, 512, 201),
      n262144: one(k, movable.start, 1 << 18, 9),
    };
  }
  return out;
}
