/**
 * Graph exploration of the page model with xstate/graph: the shortest event path to every abstract
 * state, and to every transition (the shortest path to its source plus the transition itself).
 * test/model-paths.test.ts turns each path into a directed program run against the simulator.
 * `filterEvents` keeps the exploration to ops the vocabulary has (a mechanism not installed yet
 * contributes no paths).
 */
import { getShortestPaths } from 'xstate/graph';
import { MODEL_TRANSITIONS, PAGE_STATES, pageModel, type ModelTransition, type PageEvent, type PageState } from './page-model.js';

export interface ModelPath {
  /** what the path reaches: a state, or a transition */
  target: string;
  /** the model state at the end */
  state: PageState;
  /** for a transition path: the state the last event starts from */
  from?: PageState;
  /** events after boot, in order */
  events: PageEvent[];
}

const BOOT_EVENTS: PageEvent[] = (['hole', 'free', 'allocated-unmovable', 'offline'] as PageState[]).map((to) => ({ type: 'boot', to }));

function allEvents(): PageEvent[] {
  const seen = new Set<string>();
  const out: PageEvent[] = [...BOOT_EVENTS];
  for (const t of MODEL_TRANSITIONS) {
    const key = `${t.op}>${t.to}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ type: t.op, to: t.to });
    }
  }
  return out;
}

/** Shortest paths to every state reachable with the allowed ops (boot always allowed). */
export function shortestStatePaths(allowed: (op: string, to: PageState) => boolean): ModelPath[] {
  const paths = getShortestPaths(pageModel, {
    events: allEvents(),
    // A page frame starts free; the other boot states (holes, boot allocations) never change.
    filterEvents: (_snap, ev) => (ev.type === 'boot' ? ev.to === 'free' : allowed(ev.type, ev.to)),
  });
  const out: ModelPath[] = [];
  for (const p of paths) {
    const state = p.state.value as string;
    if (state === 'boot' || !(PAGE_STATES as readonly string[]).includes(state)) continue;
    out.push({ target: state, state: state as PageState, events: p.steps.map((s) => s.event as PageEvent).filter((e) => e.type !== 'boot' && e.type !== 'xstate.init') });
  }
  return out.sort((a, b) => a.target.localeCompare(b.target));
}

/** For every transition whose source is reachable: the path to the source plus the transition. */
export function transitionPaths(allowed: (op: string, to: PageState) => boolean): ModelPath[] {
  const toState = new Map(shortestStatePaths(allowed).map((p) => [p.state, p]));
  const out: ModelPath[] = [];
  for (const t of MODEL_TRANSITIONS as ModelTransition[]) {
    if (!allowed(t.op, t.to)) continue;
    const src = t.from === 'free' ? { events: [] as PageEvent[] } : toState.get(t.from);
    if (!src) continue;
    out.push({ target: `${t.from} -${t.op}-> ${t.to}`, state: t.to, from: t.from, events: [...src.events, { type: t.op, to: t.to }] });
  }
  return out;
}
