/**
 * Ops of memory hot(un)plug and virtio-mem: offline_pages / online_pages of a memory block
 * (/sys/devices/system/memory/memoryN/state), virtio_mem_unplug / virtio_mem_plug of the device's
 * region (sizes in bytes, "2M" / "1G" accepted).
 */
import { offlineBlock, onlineBlock } from '../../kernel/memory_hotplug.js';
import { virtioMemPlug, virtioMemUnplug } from '../../kernel/virtio_mem.js';
import { flat, type KGen } from '../../kernel/sched.js';
import { defineOp, type OpResult } from './registry.js';

defineOp({
  name: 'offline_pages',
  summary: 'offline memory block N (signal_after: a fatal signal is pending after that many retry passes)',
  fields: { block: { type: 'count' }, signal_after: { type: 'count', optional: true } },
  *run(k, a): KGen<OpResult> {
    const r = yield* flat(offlineBlock(k, a.block, { signalAfter: a.signal_after }));
    return { result: r as OpResult['result'] };
  },
});

defineOp({
  name: 'online_pages',
  summary: 'online memory block N to a zone (Normal or Movable; the zone whose span holds it)',
  fields: { block: { type: 'count' }, zone: { type: 'zone' } },
  *run(k, a): KGen<OpResult> {
    const r = yield* flat(onlineBlock(k, a.block, a.zone));
    return { result: r as OpResult['result'] };
  },
});

defineOp({
  name: 'virtio_mem_unplug',
  summary: 'ask virtio-mem to unplug `bytes` of its region (subblocks via alloc_contig_range)',
  fields: { bytes: { type: 'bytes' } },
  *run(k, a): KGen<OpResult> {
    if (!k.cfg.virtioMem) return { result: '-EINVAL' };
    const r = yield* flat(virtioMemUnplug(k, a.bytes));
    return { result: r.result as OpResult['result'], unplugged: r.unpluggedBytes, contig_calls: r.stats.attempts, failures: r.stats.failures };
  },
});

defineOp({
  name: 'virtio_mem_plug',
  summary: 'ask virtio-mem to plug `bytes` back (removed blocks are onlined to ZONE_MOVABLE)',
  fields: { bytes: { type: 'bytes' } },
  *run(k, a): KGen<OpResult> {
    if (!k.cfg.virtioMem) return { result: '-EINVAL' };
    const r = yield* flat(virtioMemPlug(k, a.bytes));
    return { result: r.result as OpResult['result'], plugged: r.pluggedBytes };
  },
});
