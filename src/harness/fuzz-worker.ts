/** One slice of a campaign in a worker thread (see fuzz-parallel.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { runCampaignAll, type CampaignOptions } from './fuzz.js';

const opts = workerData as CampaignOptions;
const result = runCampaignAll({
  ...opts,
  onProgress: (p) => parentPort?.postMessage({ type: 'progress', executions: p.executions }),
});
parentPort?.postMessage({ type: 'result', result: { ...result, violations: result.violations } });
