/** The property catalogue: stable names, as they appear in counterexample files and CLI output. */
import type { Property } from './property.js';
import pageConservation from './page-conservation.js';
import freelistCounters from './freelist-counters.js';
import noCrossMerge from './no-cross-migratetype-merge.js';
import hugepagesTotalStable from './hugepages-total-stable.js';
import noGiganticRecursion from './no-gigantic-recursion.js';
import hugetlbCounters from './hugetlb-counters.js';
import isolationRestored from './isolation-restored.js';
import noDataLoss from './no-data-loss.js';
import contigPostcondition from './contig-postcondition.js';
import cmaOwnership from './cma-ownership.js';
import boundedProgress from './bounded-progress.js';
import refinesModel from './refines-model.js';
import offlineCompleteness from './offline-completeness.js';
import { ConfigError } from '../src/kernel/types.js';

export const PROPERTIES: Property[] = [
  pageConservation, freelistCounters, noCrossMerge, hugepagesTotalStable, noGiganticRecursion, hugetlbCounters,
  isolationRestored, noDataLoss, contigPostcondition, cmaOwnership, boundedProgress, refinesModel, offlineCompleteness,
];

export function getProperty(name: string): Property {
  const p = PROPERTIES.find((x) => x.name === name);
  if (!p) throw new ConfigError(`unknown property '${name}' (known: ${PROPERTIES.map((x) => x.name).join(', ')})`);
  return p;
}

export type { Property, Checker, CheckContext, OpEvent } from './property.js';
