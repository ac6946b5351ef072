/** One worker of the parallel model checker (see modelcheck-parallel.ts). */
import { workerData, type MessagePort } from 'node:worker_threads';
import { getProperty } from '../../properties/index.js';
import { checkProgram, type CheckResult } from './modelcheck.js';
import type { Answer, Task } from './modelcheck-parallel.js';
import { parseProgram } from './program.js';

const { port, done } = workerData as { port: MessagePort; done: Int32Array };

port.on('message', (task: Task) => {
  let answer: Answer;
  try {
    answer = { results: run(task) };
  } catch (e) {
    answer = { error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
  port.postMessage(answer);
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
});

/** Takes programs from the shared counter until there are none left. */
function run(task: Task): [number, CheckResult][] {
  const options = { ...task.options, properties: task.options.properties.map(getProperty) };
  const out: [number, CheckResult][] = [];
  for (let i = Atomics.add(task.next, 0, 1); i < task.specs.length; i = Atomics.add(task.next, 0, 1)) {
    const prog = parseProgram({ ...task.specs[i] }, `program ${i}`);
    out.push([i, checkProgram(prog, options)]);
  }
  return out;
}
