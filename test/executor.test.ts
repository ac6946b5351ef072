import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { runProgram, traceHash, outcomeJson } from '../src/harness/executor.js';
import { parseProgram } from '../src/harness/program.js';
import { createKernel } from '../src/kernel/index.js';
import { pagetypeinfo } from '../src/kernel/meminfo.js';
import { PROPERTIES } from '../properties/index.js';
import { OPS, defineOp } from '../src/harness/ops/index.js';
import { KernelBug } from '../src/kernel/types.js';
import { Mutex, Scheduler, mutexLock, mutexUnlock, type KGen } from '../src/kernel/sched.js';

const mixed = JSON.parse(readFileSync(new URL('../examples/programs/buddy-mixed.json', import.meta.url), 'utf8'));

function perOrder(info: ReturnType<typeof pagetypeinfo>): number[][] {
  return info.zones.map((z) => Object.values(z.free).reduce((acc, row) => acc.map((v, i) => v + row[i])));
}

describe('executor', () => {
  it('mixed orders and migratetypes on tiny: everything merges back to the boot free lists', () => {
    const prog = parseProgram(mixed);
    const out = runProgram(prog, { properties: PROPERTIES });
    expect(out.violations).toEqual([]);
    expect(out.results.every((r) => r.result.result === '0')).toBe(true);
    const boot = createKernel(prog.config, prog.profile);
    expect(perOrder(pagetypeinfo(out.kernel))).toEqual(perOrder(pagetypeinfo(boot)));
    expect(out.kernel.zones.map((z) => z.freePages)).toEqual(boot.zones.map((z) => z.freePages));
  });

  it('the same program and schedule give the same trace twice; another schedule another trace', () => {
    const prog = parseProgram(mixed);
    const a = runProgram(prog);
    const b = runProgram(prog);
    expect(traceHash(a.trace)).toBe(traceHash(b.trace));
    expect(JSON.stringify(outcomeJson(a))).toBe(JSON.stringify(outcomeJson(b)));
    const c = runProgram({ ...prog, schedule: [1, 1, 1, 1, 1, 1, 1, 1] });
    expect(traceHash(c.trace)).not.toBe(traceHash(a.trace));
  });

  it('every op that takes memory reports its pfn', () => {
    const out = runProgram(parseProgram(mixed));
    const allocs = out.results.filter((r) => r.op.op === 'alloc_pages');
    expect(allocs.length).toBeGreaterThan(0);
    for (const r of allocs) expect(typeof r.result.pfn).toBe('number');
  });

  it('bad programs are one-line errors naming the op and field', () => {
    expect(() => parseProgram({ config: 'tiny', threads: [[{ op: 'alloc_pagez' }]] })).toThrow(/thread 0 op 0: unknown op 'alloc_pagez'/);
    expect(() => parseProgram({ config: 'tiny', threads: [[{ op: 'alloc_pages', id: 'a', order: -1, migratetype: 'movable' }]] })).toThrow(/field 'order' must be in/);
    expect(() => parseProgram({ config: 'tiny', threads: [[{ op: 'alloc_pages', id: 'a', order: 0, migratetype: 'sticky' }]] })).toThrow(/field 'migratetype' must be one of/);
    expect(() => parseProgram({ config: 'tiny', profile: 'v0', threads: [[]] })).toThrow(/unknown profile 'v0'/);
    expect(() => parseProgram({ config: 'tiny', threads: [[]], schedule: [-1] })).toThrow(/schedule/);
  });

  it('a kernel exception is reported as a finding (kernel-bug), not a crash', () => {
    defineOp({
      name: 'test_kernel_bug',
      summary: 'test only: BUG() inside the kernel',
      fields: {},
      *run() {
        yield 'before_bug';
        throw new KernelBug('VM_BUG_ON_PAGE(PageBuddy(page))');
      },
    });
    try {
      const out = runProgram(parseProgram({ config: 'tiny', threads: [[{ op: 'alloc_pages', id: 'a', order: 0, migratetype: 'movable' }, { op: 'test_kernel_bug' }]] }));
      expect(out.violations.map((v) => v.property)).toEqual(['kernel-bug']);
      expect(out.violations[0].message).toMatch(/VM_BUG_ON_PAGE/);
    } finally {
      delete OPS.test_kernel_bug;
    }
  });
});

describe('scheduler', () => {
  function* worker(k: { current: number }, m: Mutex, log: string[], name: string): KGen<void> {
    yield* mutexLock(k, m);
    log.push(`${name}+`);
    yield 'critical';
    log.push(`${name}-`);
    mutexUnlock(m);
  }

  it('a thread waiting on a held mutex is not runnable; choices pick the next runnable thread', () => {
    const k = { current: 0 };
    const m = new Mutex('cma_mutex');
    const log: string[] = [];
    const s = new Scheduler(k);
    s.spawn(worker(k, m, log, 'a'));
    s.spawn(worker(k, m, log, 'b'));
    const r = s.run([0, 1, 1, 1]);
    expect(r.end).toBe('done');
    // b asked for the mutex while a held it: it only ran again once a had released it.
    expect(log).toEqual(['a+', 'a-', 'b+', 'b-']);
    expect(r.preemptions).toBe(1);
  });

  it('all threads blocked is a deadlock; an endless loop is a livelock', () => {
    const k = { current: 0 };
    const m1 = new Mutex('m1');
    const m2 = new Mutex('m2');
    function* ab(first: Mutex, second: Mutex): KGen<void> {
      yield* mutexLock(k, first);
      yield 'between';
      yield* mutexLock(k, second);
    }
    const s = new Scheduler(k);
    s.spawn(ab(m1, m2));
    s.spawn(ab(m2, m1));
    expect(s.run([0, 1, 1]).end).toBe('deadlock');
    const s2 = new Scheduler(k, 50);
    s2.spawn((function* spin(): KGen<void> { for (;;) yield 'retry'; })());
    expect(s2.run().end).toBe('livelock');
  });
});
