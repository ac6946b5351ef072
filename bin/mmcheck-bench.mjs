#!/usr/bin/env node
// npm run bench [-- name...]: runs bench/*.ts modules and prints one JSON object.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../bench/index.ts');
process.exitCode = await main(process.argv.slice(2));
