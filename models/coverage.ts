/**
 * Abstract coverage of a campaign: how often each abstract state was entered and each model
 * transition taken (counted by the refinement checker), and which ops ran without a model.
 * Process-wide counters: a campaign resets them, runs, and reads them; worker threads send theirs
 * back to be merged.
 */
import { MODEL_TRANSITIONS, PAGE_STATES } from './page-model.js';

export interface CoverageCounts {
  states: number[];
  transitions: number[];
  unmodelledOps: string[];
}

export const COVERAGE = {
  states: new Uint32Array(PAGE_STATES.length),
  transitions: new Uint32Array(MODEL_TRANSITIONS.length),
  unmodelledOps: new Set<string>(),
};

/**
 * resetCoverage calls so far: the only way an op leaves unmodelledOps, so an op added since the
 * last one need not be added again (the refinement checker asks at every step).
 */
export let coverageResets = 0;

export function resetCoverage(): void {
  coverageResets++;
  COVERAGE.states.fill(0);
  COVERAGE.transitions.fill(0);
  COVERAGE.unmodelledOps.clear();
}

export function snapshotCoverage(): CoverageCounts {
  return { states: [...COVERAGE.states], transitions: [...COVERAGE.transitions], unmodelledOps: [...COVERAGE.unmodelledOps] };
}

export function mergeCoverage(into: CoverageCounts, c: CoverageCounts): CoverageCounts {
  c.states.forEach((n, i) => (into.states[i] += n));
  c.transitions.forEach((n, i) => (into.transitions[i] += n));
  into.unmodelledOps = [...new Set([...into.unmodelledOps, ...c.unmodelledOps])].sort();
  return into;
}

export function emptyCoverage(): CoverageCounts {
  return { states: PAGE_STATES.map(() => 0), transitions: MODEL_TRANSITIONS.map(() => 0), unmodelledOps: [] };
}

/** The campaign summary: covered/total and what was never reached (restricted to ops that exist). */
export function coverageReport(c: CoverageCounts, ops?: string[]): Record<string, unknown> {
  const relevant = MODEL_TRANSITIONS.map((t, i) => ({ t, i })).filter(({ t }) => !ops || ops.includes(t.op));
  const covered = relevant.filter(({ i }) => c.transitions[i] > 0);
  const statesCovered = PAGE_STATES.filter((_, i) => c.states[i] > 0);
  return {
    states: `${statesCovered.length}/${PAGE_STATES.length}`,
    transitions: `${covered.length}/${relevant.length}`,
    statesNeverReached: PAGE_STATES.filter((_, i) => c.states[i] === 0),
    transitionsNeverReached: relevant.filter(({ i }) => c.transitions[i] === 0).map(({ t }) => `${t.from} -${t.op}-> ${t.to}`),
    modelTransitionsTotal: MODEL_TRANSITIONS.length,
    unmodelledOps: c.unmodelledOps,
  };
}
