/**
 * Model checker throughput: distinct states per second of `mmcheck check` workloads, in one
 * process after a warm-up pass (the CLI figures of small sets are mostly JIT warm-up):
 *  - the buddy set on mainline with every property (what `mmcheck check` prints as "buddy on mainline");
 *  - every buggy profile's own set with its expected property (shortest-counterexample search);
 *  - every 7th program of --all-programs 3 with no property (kernel exceptions and deadlocks only,
 *    as `--property kernel-bug`).
 * Medians over rounds; the machine is shared, so compare figures measured in the same run only.
 * statesPerCpuSec divides by this process's user CPU time instead of wall time: steadier than
 * statesPerSec when other work shares the cores. Goal: 100,000 states/s.
 */
import { checkPrograms } from '../src/harness/modelcheck.js';
import { allPrograms, buggyProfiles, getProgramSet, loadSet, setForProfile } from '../src/harness/program-sets.js';
import { getProfile } from '../src/kernel/profiles.js';
import { PROPERTIES, getProperty, type Property } from '../properties/index.js';
import { median, type Bench } from './util.js';

type Job = { programs: Parameters<typeof checkPrograms>[0]; properties: Property[] };

function rate(jobs: Job[], rounds: number): { statesPerSec: number; statesPerCpuSec: number; states: number; ms: number } {
  const rs: number[] = [];
  const cpu: number[] = [];
  const ms: number[] = [];
  let states = 0;
  for (let r = 0; r < rounds; r++) {
    let s = 0;
    let t = 0;
    const u0 = process.cpuUsage().user;
    for (const j of jobs) {
      const res = checkPrograms(j.programs, { properties: j.properties });
      s += res.stats.states;
      t += res.stats.ms;
    }
    const cpuMs = (process.cpuUsage().user - u0) / 1000;
    states = s;
    ms.push(t);
    rs.push((s * 1000) / t);
    cpu.push((s * 1000) / cpuMs);
  }
  return { statesPerSec: Math.round(median(rs)), statesPerCpuSec: Math.round(median(cpu)), states, ms: Math.round(median(ms)) };
}

const bench: Bench = () => {
  const buddy: Job[] = [{ programs: loadSet(getProgramSet('buddy'), 'mainline').programs, properties: PROPERTIES }];
  const buggy: Job[] = buggyProfiles().flatMap((b) => {
    const set = setForProfile(b);
    return set ? [{ programs: loadSet(set, b).programs, properties: [getProperty(getProfile(b).buggy!.property)] }] : [];
  });
  const all3: Job[] = [{ programs: allPrograms(3, 'mainline').filter((_, i) => i % 7 === 0), properties: [] }];
  for (const j of [buddy, buggy, all3]) rate(j, 1); // warm-up
  return {
    goal: 100_000,
    buddyAllProperties: rate(buddy, 7),
    buggyProfilesOwnSets: rate(buggy, 5),
    allPrograms3Every7thKernelBug: rate(all3, 3),
  };
};

export default bench;
