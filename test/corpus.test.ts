/**
 * The counterexample corpus as regression tests: every file in counterexamples/ still fails on its
 * (buggy) profile, and passes on the fixed profile it names. Files are replayed without fast-check.
 */
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listCounterexamples, loadCounterexample } from '../src/harness/corpus.js';
import { replayFile } from '../src/harness/replay.js';
import { PATCHES, getProfile } from '../src/kernel/profiles.js';

const dir = fileURLToPath(new URL('../counterexamples', import.meta.url));
const files = listCounterexamples(dir);

describe('counterexample corpus', () => {
  it('holds a counterexample for every buggy profile', () => {
    const profiles = new Set(files.map((f) => loadCounterexample(f).ce.profile));
    for (const p of ['rfc-2021-02', 'pageblock-naive', 'demote-cma-lost']) expect(profiles).toContain(p);
  });

  for (const f of files) {
    const name = f.slice(dir.length + 1);
    it(`${name} still fails on its profile and passes on its fixed profile`, () => {
      const { ce } = loadCounterexample(f);
      const bad = replayFile(f);
      expect(bad.reproduced).toBe(true);
      expect(bad.violation!.property).toBe(ce.property);
      // The same trace, byte for byte, on a second replay.
      expect(replayFile(f).traceHash).toBe(bad.traceHash);
      const fixed = ce.fixedProfile ?? getProfile(ce.profile).fixedBy;
      expect(fixed).toBeTruthy();
      const good = replayFile(f, { profile: fixed! });
      expect(good.reproduced).toBe(false);
      // "Passes": the file's property holds. Another finding on the fixed profile (an open one,
      // e.g. the v5.19+ isolation-undo race of counterexamples/findings/) is not this file's bug.
      expect(good.violations.filter((v) => v.property === ce.property)).toEqual([]);
    });
  }

  it('a corrupt file is a one-line error naming the problem', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'mmcheck-ce-'));
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ format: 'other' }));
    expect(() => replayFile(bad)).toThrow(/format must be 'mmcheck-counterexample\/1'/);
    const first = files[0];
    const ce = JSON.parse(readFileSync(first, 'utf8'));
    writeFileSync(bad, JSON.stringify({ ...ce, property: 'no-such-property' }));
    expect(() => replayFile(bad)).toThrow(/unknown property 'no-such-property'/);
  });

  it('--trace lists every step with thread, op, kernel function and the views that changed', () => {
    const r = replayFile(files[0], { trace: true });
    expect(r.trace!.length).toBe(r.steps);
    expect(r.trace!.some((s) => Object.keys(s.changed).length > 0)).toBe(true);
    expect(r.trace!.every((s) => typeof s.at === 'string' && s.thread >= 0)).toBe(true);
  });
});

describe('known races: each finding a patch claims reproduces on its profile and vanishes with the patch', () => {
  const findings = fileURLToPath(new URL('../counterexamples/findings', import.meta.url));
  for (const patch of Object.values(PATCHES)) {
    for (const name of patch.findings) {
      it(`${patch.name}: ${name}`, () => {
        const f = join(findings, name);
        const { ce } = loadCounterexample(f);
        expect(replayFile(f).reproduced).toBe(true);
        expect(replayFile(f, { profile: `${ce.profile}+${patch.name}` }).reproduced).toBe(false);
      });
    }
  }
});

// Findings that upstream has since fixed (counterexamples/findings/README.md): each reproduces on
// its profile and vanishes on the first profile with the fix, as its verdict says.
describe('upstream-fixed findings: reproduce on their profile, vanish on the fixed kernel', () => {
  const findings = fileURLToPath(new URL('../counterexamples/findings', import.meta.url));
  const FIXED: [file: string, fixedOn: string][] = [
    ['v5.19-refines-model-211b73c6.json', 'mainline'], // dissolve_free_huge_page surplus fix (2025)
    ['v5.19-freelist-counters-nr-free-4ad42624.json', 'v6.10'], // freelist hygiene accounting
    ['v5.19-bounded-progress-50e371c2.json', 'v6.10'], // straddling LRU folio fails the isolation
  ];
  for (const [name, fixedOn] of FIXED) {
    it(`${name}: fixed on ${fixedOn}`, () => {
      const f = join(findings, name);
      expect(replayFile(f).reproduced).toBe(true);
      expect(replayFile(f, { profile: fixedOn }).reproduced).toBe(false);
    });
  }
});
