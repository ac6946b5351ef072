/**
 * The kernel core: order-0 alloc+free pairs per second on `small` (through pcp and buddy, the
 * paths a fuzz run takes), boot time and bytes per pfn for vm-5g and big-64g, each beside a bare
 * typed-array pass over the same number of pfns measured in the same run.
 */
import { createKernel } from '../src/kernel/index.js';
import { allocFromZonelist, clearPage, freePages, prepNewPage, zonelist } from '../src/kernel/page_alloc.js';
import { MIGRATE_MOVABLE, MIGRATE_UNMOVABLE } from '../src/kernel/types.js';
import { bareArrayPass, median, medianMs, timeMs } from './util.js';

function allocFreePairs(pairs: number): number {
  const k = createKernel('small', 'mainline');
  const held = new Int32Array(64);
  const reqM = { order: 0, migratetype: MIGRATE_MOVABLE };
  const reqU = { order: 0, migratetype: MIGRATE_UNMOVABLE };
  const zlM = zonelist(k, reqM);
  const zlU = zonelist(k, reqU);
  return timeMs(() => {
    for (let i = 0; i < pairs; i += 64) {
      for (let j = 0; j < 64; j++) {
        const unm = (j & 7) === 0;
        const p = allocFromZonelist(k, unm ? zlU : zlM, unm ? reqU : reqM);
        prepNewPage(k, p, 0, 1, 0, 0);
        held[j] = p;
      }
      for (let j = 0; j < 64; j++) {
        clearPage(k, held[j], 0);
        freePages(k, held[j], 0);
      }
    }
  });
}

function bootFigures(config: string, runs: number) {
  let k = createKernel(config, 'mainline');
  const bootMs = medianMs(runs, () => {
    k = createKernel(config, 'mainline');
  });
  const n = k.nrPfns;
  const bare = new Uint16Array(n);
  const passMs = medianMs(runs, () => bareArrayPass(bare, 0, n));
  const pbBytes = k.pb.mt.byteLength + k.pb.isolate.byteLength;
  return {
    pfns: n,
    bootMs: +bootMs.toFixed(1),
    bareArrayPassMs: +passMs.toFixed(2),
    bootVsPass: +(bootMs / passMs).toFixed(1),
    bytesPerPfn: +((k.mm.bytesPerPfn() * n + pbBytes) / n).toFixed(2),
  };
}

export default function bench() {
  const pairs = 2_000_000;
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) runs.push(allocFreePairs(pairs));
  const ms = median(runs);
  const bare = new Uint16Array(16384);
  const passNs = medianMs(5, () => { for (let r = 0; r < 122; r++) bareArrayPass(bare, 0, 16384); }) * 1e6 / (122 * 16384);
  return {
    order0AllocFreePairsPerSec: Math.round(pairs / (ms / 1000)),
    nsPerPair: +((ms * 1e6) / pairs).toFixed(1),
    bareArrayNsPerPfn: +passNs.toFixed(2),
    'vm-5g': bootFigures('vm-5g', 5),
    'big-64g': bootFigures('big-64g', 3),
  };
}
