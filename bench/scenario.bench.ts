/**
 * The seed 001 scenario end to end: boot vm-5g (5 GiB, 1.3 M pfns), allocate 512 huge pages,
 * unplug 1 GiB through virtio-mem (case (a), v5.13: every page replaced, 8 whole-block
 * alloc_contig_range calls). Wall time (median of several runs, each including the boot) and the
 * process's peak RSS. Goal: < 0.5 s, < 200 MB.
 */
import { median, timeMs, type Bench } from './util.js';
import { runCase } from '../scenarios/virtio-mem-unplug.js';
import { createKernel } from '../src/kernel/index.js';

const bench: Bench = () => {
  const runs = 5;
  const rssBase = Math.round(process.resourceUsage().maxRSS / 1024);
  runCase('v5.13', 'a'); // warm-up (JIT); the peak RSS of one whole scenario run is read here
  const rssOne = Math.round(process.resourceUsage().maxRSS / 1024);
  const whole: number[] = [];
  const boot: number[] = [];
  let row = runCase('v5.13', 'a');
  for (let i = 0; i < runs; i++) {
    boot.push(timeMs(() => createKernel('vm-5g', 'v5.13')));
    whole.push(timeMs(() => { row = runCase('v5.13', 'a'); }));
  }
  const v511: number[] = [];
  for (let i = 0; i < 3; i++) v511.push(timeMs(() => runCase('v5.11', 'a')));
  return {
    scenario: 'virtio-mem-unplug (a) on vm-5g: boot + 512 huge pages + unplug 1 GiB',
    runs,
    medianMs: Math.round(median(whole) * 10) / 10,
    bootMedianMs: Math.round(median(boot) * 10) / 10,
    v511MedianMs: Math.round(median(v511) * 10) / 10,
    unpluggedMiB: row.unpluggedMiB,
    hugePagesTotal: `${row.totalBefore} -> ${row.totalAfter}`,
    /** process peak before the scenario (node + tsx + modules) and after one scenario run */
    rssBeforeMB: rssBase,
    peakRssOneRunMB: rssOne,
    /** after every timed run (several 5 GiB machines allocated back to back; GC timing dependent) */
    peakRssAllRunsMB: Math.round(process.resourceUsage().maxRSS / 1024),
    goal: { medianMs: 500, peakRssMB: 200 },
  };
};

export default bench;
