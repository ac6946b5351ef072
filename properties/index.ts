/** The property catalogue: stable names, as they appear in counterexample files and CLI output. */
import type { Property } from './property.js';
import pageConservation from './page-conservation.js';
import freelistCounters from './freelist-counters.js';
import noCrossMerge from './no-cross-migratetype-merge.js';
import { ConfigError } from '../src/kernel/types.js';

export const PROPERTIES: Property[] = [pageConservation, freelistCounters, noCrossMerge];

export function getProperty(name: string): Property {
  const p = PROPERTIES.find((x) => x.name === name);
  if (!p) throw new ConfigError(`unknown property '${name}' (known: ${PROPERTIES.map((x) => x.name).join(', ')})`);
  return p;
}

export type { Property, Checker, CheckContext, OpEvent } from './property.js';
