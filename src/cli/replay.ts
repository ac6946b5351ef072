/** mmcheck replay FILE [--profile P] [--trace]: exit 1 when the violation reproduces, 0 when not. */
import { replayFile } from '../harness/replay.js';
import type { Command } from './command.js';
import { UsageError, print, printJson } from './io.js';

export const replay: Command = {
  summary: 'replay a counterexample file (exit 1 when the violation reproduces)',
  usage: 'FILE.json [--profile P] [--trace] [--json]',
  options: { profile: { type: 'string' }, trace: { type: 'boolean' } },
  run(o, pos) {
    if (pos.length !== 1) throw new UsageError('replay: give exactly one counterexample FILE.json');
    const r = replayFile(pos[0], { profile: o.profile, trace: !!o.trace });
    if (o.json) printJson(r);
    else {
      if (r.trace) {
        for (const s of r.trace) {
          const changed = Object.entries(s.changed).map(([key, [a, b]]) => `${key} ${a}->${b}`).join(', ');
          print(`step ${String(s.step).padStart(4)}  t${s.thread}  ${(s.op ?? '-').padEnd(20)} ${s.at.padEnd(34)} ${changed}`);
        }
      }
      print(`${r.file}: ${r.property} on ${r.profile}: ${r.reproduced ? `REPRODUCED at step ${r.violation!.step}: ${r.violation!.message}` : 'did not reproduce'}`);
      for (const v of r.violations) if (v.property !== r.property) print(`  also: ${v.property} at step ${v.step}: ${v.message}`);
      print(`steps ${r.steps}, preemptions ${r.preemptions}, trace hash ${r.traceHash}`);
    }
    return r.reproduced ? 1 : 0;
  },
};
