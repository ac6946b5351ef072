/** mmcheck scenario NAME [--profile P ...] [--json]: a named, reproducible experiment. */
import { CASES, formatTable, runScenario, type CaseName } from '../../scenarios/virtio-mem-unplug.js';
import { getProfile } from '../kernel/profiles.js';
import type { Command } from './command.js';
import { UsageError, print, printJson } from './io.js';

const SCENARIOS: Record<string, { summary: string; defaultProfiles: string[] }> = {
  'virtio-mem-unplug': {
    summary: "seed 001: vm-5g, 512 huge pages partly in ZONE_MOVABLE, unplug 1 GiB via virtio-mem; cases (a) free, (b) idle, (c) busy, (d) 2048 pages",
    defaultProfiles: ['v5.11', 'v5.13'],
  },
};

export const scenario: Command = {
  summary: 'run a named experiment (virtio-mem-unplug: the table of seed 001)',
  usage: 'NAME [--profile P]... [--case a|b|c|d]... [--json]',
  options: { profile: { type: 'string', multiple: true }, case: { type: 'string', multiple: true } },
  run(o, pos) {
    if (pos.length !== 1) throw new UsageError(`scenario: give exactly one name (known: ${Object.keys(SCENARIOS).join(', ')})`);
    const sc = SCENARIOS[pos[0]];
    if (!sc) throw new UsageError(`scenario: unknown scenario '${pos[0]}' (known: ${Object.keys(SCENARIOS).join(', ')})`);
    const profiles: string[] = o.profile?.length ? o.profile : sc.defaultProfiles;
    for (const p of profiles) getProfile(p);
    const cases = (o.case?.length ? o.case : [...CASES]) as CaseName[];
    for (const c of cases) if (!(CASES as readonly string[]).includes(c)) throw new UsageError(`scenario: unknown case '${c}' (known: ${CASES.join(', ')})`);
    const rows = runScenario(profiles, cases);
    if (o.json) printJson({ scenario: pos[0], config: 'vm-5g', rows });
    else {
      print(`scenario ${pos[0]}: ${sc.summary}\n`);
      print(formatTable(rows));
    }
    return 0;
  },
};
