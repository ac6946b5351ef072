/**
 * Ops of the hugetlb pools: writes to nr_hugepages (set_max_huge_pages), hugetlbfs mappings with
 * reservations (mmap / fault / munmap), demote. Results are kernel errno names; a fault reports the
 * pfn it got and the content token it wrote.
 */
import {
  demoteHugePage, hstateByName, hugetlbFault, hugetlbMmap, hugetlbMunmap, setMaxHugePages, type Hstate,
} from '../../kernel/hugetlb.js';
import type { Kernel } from '../../kernel/machine.js';
import { flat, type KGen } from '../../kernel/sched.js';
import { defineOp, type OpResult } from './registry.js';

function hstate(k: Kernel, name: string): Hstate | undefined {
  return hstateByName(k, name);
}

function nodeOk(k: Kernel, node: unknown): boolean {
  return node === undefined || k.cfg.nodes.some((n) => n.id === node);
}

defineOp({
  name: 'set_nr_hugepages',
  summary: 'write nr_hugepages of an hstate (node: the per-node sysfs file); grows or shrinks the pool',
  fields: { hstate: { type: 'hstate' }, count: { type: 'count' }, node: { type: 'int', optional: true } },
  *run(k, a): KGen<OpResult> {
    const h = hstate(k, a.hstate);
    if (!h || !nodeOk(k, a.node)) return { result: '-EINVAL' };
    const r = yield* flat(setMaxHugePages(k, h, a.count, a.node));
    return { result: r.result as OpResult['result'], nr_hugepages: r.nr };
  },
});

defineOp({
  name: 'hugetlb_mmap',
  summary: 'mmap `pages` huge pages of a hugetlbfs file: reserves them (surplus within overcommit)',
  fields: { id: { type: 'id' }, hstate: { type: 'hstate' }, pages: { type: 'count', min: 1 } },
  *run(k, a): KGen<OpResult> {
    const h = hstate(k, a.hstate);
    if (!h) return { result: '-EINVAL' };
    const r = yield* hugetlbMmap(k, a.id, h, a.pages);
    return { result: r as OpResult['result'] };
  },
});

defineOp({
  name: 'hugetlb_fault',
  summary: 'touch page `index` of a hugetlb mapping: consumes its reservation, reports the pfn',
  takes: true,
  fields: { id: { type: 'id' }, index: { type: 'count' } },
  *run(k, a): KGen<OpResult> {
    const r = yield* hugetlbFault(k, a.id, a.index);
    const out: OpResult = { result: r.result as OpResult['result'] };
    if (r.pfn !== undefined) out.pfn = r.pfn;
    if (r.token !== undefined) out.token = r.token;
    return out;
  },
});

defineOp({
  name: 'hugetlb_munmap',
  summary: 'unmap a hugetlb mapping: its pages are freed, unused reservations returned',
  fields: { id: { type: 'id' } },
  *run(k, a): KGen<OpResult> {
    return { result: (yield* hugetlbMunmap(k, a.id)) as OpResult['result'] };
  },
});

defineOp({
  name: 'demote',
  summary: 'demote one free huge page of an hstate into pages of the next smaller hstate (v5.16+)',
  fields: { hstate: { type: 'hstate' }, node: { type: 'int', optional: true } },
  *run(k, a): KGen<OpResult> {
    const h = hstate(k, a.hstate);
    if (!h || !nodeOk(k, a.node)) return { result: '-EINVAL' };
    const r = yield* flat(demoteHugePage(k, h, a.node));
    const out: OpResult = { result: r.result as OpResult['result'], demoted: r.demoted };
    if (r.pfn !== undefined) out.pfn = r.pfn;
    return out;
  },
});
