/**
 * `mmcheck check --workers N`: the programs of a set checked by N worker threads, results merged
 * in program order (mergeResults), so the report is the one checkPrograms gives: the same
 * violations, shortest counterexamples and counts. Only the times differ: `stats.ms` is the wall
 * time of the whole set (so states/s is the set's throughput), `first` adds up the per-program
 * times before the first violation as the sequential checker would.
 *
 * Programs are handed out one at a time from a shared counter (their costs differ by orders of
 * magnitude). The workers stay alive between sets (a worker boots the TypeScript sources, its
 * template machines and verified snapshots once), unref'd so they never keep the process up.
 * The caller stays synchronous: it blocks on a shared flag per worker and takes the answer with
 * receiveMessageOnPort, so the command's code paths are those of the sequential checker.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { mergeResults, type CheckOptions, type CheckResult, type SetResult } from './modelcheck.js';
import type { ParsedProgram } from './program.js';
import type { Op } from './ops/index.js';

/** What a worker needs to rebuild a program (ParsedProgram holds profiles and configs with functions). */
export interface ProgramSpec {
  config: ParsedProgram['configSpec'];
  profile: string;
  threads: Op[][];
}

/** The options a worker needs, with the properties by name. */
export type WireOptions = Omit<CheckOptions, 'properties'> & { properties: string[] };

export interface Task {
  specs: ProgramSpec[];
  options: WireOptions;
  /** the next program index to take (shared by the workers of one task) */
  next: Int32Array;
}

/** A worker's answer: its programs' results by index, or the error it stopped on. */
export type Answer = { results: [number, CheckResult][] } | { error: string };

interface PoolWorker {
  worker: Worker;
  port: MessagePort;
  /** 0 while the worker is busy, 1 when it has answered */
  done: Int32Array;
}

const POOL: PoolWorker[] = [];

function spawn(): PoolWorker {
  const done = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('./modelcheck-worker.mjs', import.meta.url), { workerData: { port: port2, done }, transferList: [port2] });
  worker.unref();
  port1.unref();
  return { worker, port: port1, done };
}

/** Checks the programs on `workers` threads; the result is checkPrograms' (times aside). */
export function checkProgramsParallel(progs: { prog: ParsedProgram; name?: string }[], options: CheckOptions & { stopAtFirst?: boolean }, workers: number): SetResult {
  const t0 = performance.now();
  const n = Math.min(workers, progs.length);
  while (POOL.length < n) POOL.push(spawn());
  const { properties, stopAtFirst: _s, ...rest } = options;
  const task: Task = {
    specs: progs.map(({ prog }) => ({ config: prog.configSpec, profile: prog.profile.name, threads: prog.threads })),
    options: { ...rest, properties: properties.map((p) => p.name) },
    next: new Int32Array(new SharedArrayBuffer(4)),
  };
  const pool = POOL.slice(0, n);
  for (const w of pool) {
    Atomics.store(w.done, 0, 0);
    w.port.postMessage(task);
  }
  const results = new Map<number, CheckResult>();
  for (const w of pool) {
    while (Atomics.load(w.done, 0) === 0) Atomics.wait(w.done, 0, 0, 1000);
    const answer = receiveMessageOnPort(w.port)?.message as Answer | undefined;
    if (!answer || 'error' in answer) throw new Error(`check worker: ${answer ? answer.error : 'no answer'}`);
    for (const [i, r] of answer.results) results.set(i, r);
  }
  const set = mergeResults(progs, (i) => results.get(i)!, options.stopAtFirst ?? false);
  set.stats.ms = performance.now() - t0;
  return set;
}
