/**
 * Benchmark helpers. Benchmarks print JSON and are never part of `npm test`. This machine is shared
 * and noisy: report medians over several runs, each beside a baseline measured in the same run.
 */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Milliseconds of one call of fn. */
export function timeMs(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Median milliseconds over `runs` calls (after one warm-up call). */
export function medianMs(runs: number, fn: () => void): number {
  fn();
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(timeMs(fn));
  return median(xs);
}

/** The bare typed-array pass the issues compare against: one read-modify-write per pfn. */
export function bareArrayPass(arr: Uint16Array, start: number, n: number): number {
  let s = 0;
  for (let i = start; i < start + n; i++) {
    arr[i] ^= 1;
    s += arr[i];
  }
  return s;
}

/** A bench module: returns its figures as plain JSON. */
export type Bench = () => Record<string, unknown> | Promise<Record<string, unknown>>;
