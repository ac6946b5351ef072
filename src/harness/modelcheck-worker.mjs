// Worker-thread entry of `mmcheck check --workers N`: loads the TypeScript sources through tsx,
// like bin/mmcheck.mjs, then checks the programs it is handed (modelcheck-worker.ts).
import { register } from 'tsx/esm/api';

register();
await import('./modelcheck-worker.ts');
