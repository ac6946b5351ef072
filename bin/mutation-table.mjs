#!/usr/bin/env node
// npm run mutate:table [-- REPORT.json...]: the mutation score per file, as the README's markdown
// table, from Stryker JSON reports (default: every reports/mutation/*.json, one per file when the
// files were mutated one run each; a report names its files, the newest report of a file wins).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

const dir = 'reports/mutation';
let paths = process.argv.slice(2);
try {
  if (paths.length === 0) paths = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => join(dir, f));
} catch {
  console.error(`mutation-table: no ${dir}/ (run npm run mutate first)`);
  process.exit(2);
}
const newest = new Map();
for (const p of paths) {
  let report;
  try {
    report = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    console.error(`mutation-table: ${p}: not a readable JSON report (${e.code ?? e.message})`);
    process.exit(2);
  }
  if (!report || typeof report.files !== 'object') {
    console.error(`mutation-table: ${p}: not a Stryker JSON report (no 'files')`);
    process.exit(2);
  }
  const mtime = statSync(p).mtimeMs;
  for (const [file, f] of Object.entries(report.files)) {
    const prev = newest.get(file);
    if (!prev || prev.mtime < mtime) newest.set(file, { mtime, mutants: f.mutants });
  }
}
const COLS = ['Killed', 'Timeout', 'Survived', 'NoCoverage'];
const rows = [...newest].sort(([a], [b]) => a.localeCompare(b)).map(([file, { mutants }]) => {
  const n = Object.fromEntries(COLS.map((c) => [c, mutants.filter((m) => m.status === c).length]));
  const valid = COLS.reduce((s, c) => s + n[c], 0);
  return { file: basename(file), total: valid, ...n };
});
const pct = (r) => (r.total ? ((100 * (r.Killed + r.Timeout)) / r.total).toFixed(1) : '-');
const sum = rows.reduce((s, r) => ({ file: '**total**', total: s.total + r.total, ...Object.fromEntries(COLS.map((c) => [c, s[c] + r[c]])) }), { total: 0, Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0 });
console.log('| file | mutants | killed | timed out | survived | no coverage | score |');
console.log('|---|---|---|---|---|---|---|');
for (const r of [...rows, sum]) console.log(`| ${r.file} | ${r.total} | ${r.Killed} | ${r.Timeout} | ${r.Survived} | ${r.NoCoverage} | ${r === sum ? `**${pct(r)} %**` : `${pct(r)} %`} |`);
