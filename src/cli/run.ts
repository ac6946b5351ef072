/** mmcheck run PROGRAM.json: run a scripted program and print results, views and violations. */
import { formatMeminfo, formatPagetypeinfo } from '../kernel/meminfo.js';
import { getProfile } from '../kernel/profiles.js';
import { outcomeJson, runProgram } from '../harness/executor.js';
import { parseProgram } from '../harness/program.js';
import { PROPERTIES } from '../../properties/index.js';
import type { Command } from './command.js';
import { UsageError, print, printJson, readJsonFile } from './io.js';

export const run: Command = {
  summary: 'run a scripted program (config, profile, threads of ops, schedule)',
  usage: 'PROGRAM.json [--profile P] [--trace] [--json]',
  options: { profile: { type: 'string' }, trace: { type: 'boolean' } },
  run(o, pos) {
    if (pos.length !== 1) throw new UsageError('run: give exactly one PROGRAM.json');
    const prog = parseProgram(readJsonFile(pos[0], 'program'), pos[0]);
    const profile = o.profile ? getProfile(o.profile) : undefined;
    const out = runProgram(prog, { properties: PROPERTIES, profile });
    const j = outcomeJson(out);
    if (o.json) printJson(j);
    else {
      for (const r of j.results as Record<string, unknown>[]) {
        const { thread, index, op, result, ...rest } = r;
        const extra = Object.entries(rest).map(([key, v]) => `${key}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
        print(`[t${thread}#${index}] ${String(op).padEnd(20)} ${String(result).padEnd(7)} ${extra}`);
      }
      if (o.trace) for (const s of out.trace) print(`  step ${s.step}: t${s.thread} ${s.at}`);
      print(`\n${formatMeminfo(j.meminfo)}\n\n${formatPagetypeinfo(j.pagetypeinfo)}\n`);
      print(`steps ${j.steps}, preemptions ${j.preemptions}`);
      for (const v of j.violations) print(`VIOLATION ${v.property} at step ${v.step}: ${v.message}`);
      if (j.violations.length === 0) print('all properties held');
    }
    return j.violations.length > 0 ? 1 : 0;
  },
};
