/** One slice of a campaign in a worker thread (see fuzz-parallel.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { runCampaign, type CampaignOptions } from './fuzz.js';

const opts = workerData as CampaignOptions;
const result = runCampaign({
  ...opts,
  onProgress: (p) => parentPort?.postMessage({ type: 'progress', executions: p.executions }),
});
parentPort?.postMessage({ type: 'result', result: { ...result, violations: result.violations } });
