/**
 * `--workers N`: one campaign spread over worker threads. Worker w of N runs slice
 * (shard_i * N + w) of (shard_n * N) — the same deterministic slicing as `--shard`, so
 * `--workers 2` on one machine and `--shard 0/2`, `--shard 1/2` on two machines run the same cases.
 * Results are merged (executions, violations and coverage); each worker goes on after a violation
 * with the properties not yet violated (runCampaignAll).
 */
import { Worker } from 'node:worker_threads';
import { emptyCoverage, mergeCoverage } from '../../models/coverage.js';
import { runCampaignAll, type CampaignOptions, type CampaignResult } from './fuzz.js';

export type WorkerOptions = Omit<CampaignOptions, 'onProgress' | 'shouldStop'>;

export async function runCampaignParallel(opts: CampaignOptions, workers: number): Promise<CampaignResult> {
  const [si, sn] = opts.shard ?? [0, 1];
  if (workers <= 1) return runCampaignAll(opts);
  const t0 = Date.now();
  const progress = new Array<number>(workers).fill(0);
  const results: CampaignResult[] = [];
  const live: Worker[] = [];
  await new Promise<void>((resolve, reject) => {
    let pending = workers;
    for (let w = 0; w < workers; w++) {
      const { onProgress: _p, shouldStop: _s, ...plain } = opts;
      // runs stays the campaign total: runCampaign takes this slice's share of it.
      const wopts: WorkerOptions = { ...plain, shard: [si * workers + w, sn * workers] };
      const worker = new Worker(new URL('./fuzz-worker.mjs', import.meta.url), { workerData: wopts });
      live.push(worker);
      worker.on('message', (m: { type: string; executions?: number; result?: CampaignResult }) => {
        if (m.type === 'progress') {
          progress[w] = m.executions ?? 0;
          opts.onProgress?.({ executions: progress.reduce((a, b) => a + b, 0), elapsedMs: Date.now() - t0 });
        } else if (m.type === 'result' && m.result) {
          results.push(m.result);
          progress[w] = 0;
        }
      });
      worker.on('error', (e) => reject(e));
      worker.on('exit', () => {
        if (--pending === 0) resolve();
      });
    }
  });
  const coverage = results.reduce((c, r) => mergeCoverage(c, r.coverage), emptyCoverage());
  return {
    profile: results[0]?.profile ?? opts.profile,
    config: results[0]?.config ?? String(opts.config),
    seed: opts.seed,
    shard: [si, sn],
    // Workers stopped early report what they had run through their last progress message.
    executions: results.reduce((n, r) => n + r.executions, 0) + progress.reduce((a, b) => a + b, 0),
    elapsedMs: Date.now() - t0,
    // One counterexample per property: the smallest any worker found.
    violations: smallestPer(results.flatMap((r) => r.violations), (v) => v.property),
    known: smallestPer(results.flatMap((r) => r.known), (v) => v.patch),
    patches: [...new Set(results.flatMap((r) => r.patches))],
    coverage,
  };
}

/** The smallest counterexample (fewest ops, then preemptions) per key. */
function smallestPer<T extends { ops: number; preemptions: number }>(items: T[], key: (t: T) => string): T[] {
  const m = new Map<string, T>();
  for (const v of items) {
    const o = m.get(key(v));
    if (!o || v.ops < o.ops || (v.ops === o.ops && v.preemptions < o.preemptions)) m.set(key(v), v);
  }
  return [...m.values()];
}
