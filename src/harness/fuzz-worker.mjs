// Worker-thread entry of `mmcheck fuzz --workers N`: loads the TypeScript sources through tsx,
// like bin/mmcheck.mjs, then runs one slice of the campaign.
import { register } from 'tsx/esm/api';

register();
await import('./fuzz-worker.ts');
