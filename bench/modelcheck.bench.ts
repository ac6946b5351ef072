/**
 * Model checker throughput: distinct states per second of `mmcheck check` workloads, in one
 * process after a warm-up pass (the CLI figures of small sets are mostly JIT warm-up):
 *  - the buddy set on mainline with every property (what `mmcheck check` prints as "buddy on mainline");
 *  - every buggy profile's own set with its expected property (shortest-counterexample search);
 *  - every 7th program of --all-programs 3 with no property (kernel exceptions and deadlocks only,
 *    as `--property kernel-bug`), in this thread and on two worker threads (`--workers 2`: wall
 *    time only, the workers' CPU is not this process's).
 * Medians over rounds; the machine is shared, so compare figures measured in the same run only.
 * statesPerCpuSec divides by this process's user CPU time instead of wall time: steadier than
 * statesPerSec when other work shares the cores. Goal: 100,000 states/s.
 */
import { checkPrograms } from '../src/harness/modelcheck.js';
import { checkProgramsParallel } from '../src/harness/modelcheck-parallel.js';
import { allPrograms, buggyProfiles, getProgramSet, loadSet, setForProfile } from '../src/harness/program-sets.js';
import { getProfile } from '../src/kernel/profiles.js';
import { PROPERTIES, getProperty, type Property } from '../properties/index.js';
import { median, type Bench } from './util.js';

type Job = { programs: Parameters<typeof checkPrograms>[0]; properties: Property[]; workers?: number };

function rate(jobs: Job[], rounds: number): { statesPerSec: number; statesPerCpuSec: number | null; states: number; ms: number } {
  const rs: number[] = [];
  const cpu: number[] = [];
  const ms: number[] = [];
  let states = 0;
  for (let r = 0; r < rounds; r++) {
    let s = 0;
    let t = 0;
    const u0 = process.cpuUsage().user;
    for (const j of jobs) {
      const res = j.workers ? checkProgramsParallel(j.programs, { properties: j.properties }, j.workers) : checkPrograms(j.programs, { properties: j.properties });
      s += res.stats.states;
      t += res.stats.ms;
    }
    const cpuMs = (process.cpuUsage().user - u0) / 1000;
    states = s;
    ms.push(t);
    rs.push((s * 1000) / t);
    cpu.push((s * 1000) / cpuMs);
  }
  // The workers' CPU time is not this process's: no per-CPU figure for them.
  const perCpu = jobs.some((j) => j.workers) ? null : Math.round(median(cpu));
  return { statesPerSec: Math.round(median(rs)), statesPerCpuSec: perCpu, states, ms: Math.round(median(ms)) };
}

const bench: Bench = () => {
  const buddy: Job[] = [{ programs: loadSet(getProgramSet('buddy'), 'mainline').programs, properties: PROPERTIES }];
  const buggy: Job[] = buggyProfiles().flatMap((b) => {
    const set = setForProfile(b);
    return set ? [{ programs: loadSet(set, b).programs, properties: [getProperty(getProfile(b).buggy!.property)] }] : [];
  });
  const all3: Job[] = [{ programs: allPrograms(3, 'mainline').filter((_, i) => i % 7 === 0), properties: [] }];
  const all3Workers: Job[] = [{ ...all3[0], workers: 2 }];
  for (const j of [buddy, buggy, all3, all3Workers]) rate(j, 1); // warm-up
  return {
    goal: 100_000,
    buddyAllProperties: rate(buddy, 7),
    buggyProfilesOwnSets: rate(buggy, 5),
    allPrograms3Every7thKernelBug: rate(all3, 3),
    allPrograms3Every7thKernelBugWorkers2: rate(all3Workers, 3),
  };
};

export default bench;
