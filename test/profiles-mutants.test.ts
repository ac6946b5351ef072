/**
 * The kernel profiles (src/kernel/profiles.ts), written against the survivors of a mutation run:
 * which switch each release flips (with the upstream commit that flipped it), what the buggy
 * profiles promise (a property the checker knows, a fixed profile to compare with), the patches for
 * known races (which profiles they change, their findings on disk) and the profile-name grammar
 * `base+patch[+patch...]` with its errors. The campaign tests that exercise patches end to end
 * (test/campaign.test.ts) are too slow for the mutation run; these are not.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PATCHES, PROFILES, applyPatches, getProfile, patchApplies, withSwitches, type Switches } from '../src/kernel/profiles.js';
import { getProperty } from '../properties/index.js';
import { ConfigError } from '../src/kernel/types.js';

/** The switches of `to` that differ from `from`'s, with their new values. */
function diff(from: Switches, to: Switches): Partial<Switches> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(to)) if (from[k as keyof Switches] !== v) out[k] = v;
  return out as Partial<Switches>;
}

const sw = (name: string) => getProfile(name).switches;

describe('the release ladder', () => {
  it('v5.11: the state before the hugetlb series', () => {
    expect(sw('v5.11')).toEqual({
      mergeRule: 'v5.10', // __free_one_page fences only ISOLATE (with has_isolate_pageblock)
      hygiene: false,
      isolateMode: 'replace',
      contigGranularity: 'max-order', // pfn_max_align_down/up in alloc_contig_range
      unmovableRangeOfInterest: false,
      cmaAlign: 'max-order',
      contigErrnos: false,
      hugetlbContig: 'none', // isolate_migratepages_block fails on any PageHuge
      lazyReplacement: false,
      pfnRangeValidContig: 'v5.10', // page_count() and PageHuge() reject a candidate range
      hvo: false,
      demote: 'none',
      dissolveSurplusFix: false,
      offlineReplacesFreeHuge: false, // never merged in any release
      offlinePcpDisable: true, // ec6e8c7e0314, v5.11
      pcpBulkFree: 'v5.10', // batch_free round robin over the MIGRATE_PCPTYPES lists
      pcpFreeFactor: false, // pcp->batch per bulk free
      virtioMemSubblock: 'max-order',
      virtioMemRetries: 5, // virtio_mem_fake_offline: 5 tries on ZONE_MOVABLE
      fallback: 'v5.10', // steal_suitable_fallback
      hugetlbDequeueSkipsIsolated: false,
      hugetlbMigrateThisNode: false, // fresh hugetlb migration targets may come from any node
      isolateUndoFix: false,
      isolateSingleSavedMt: false,
      contigIsolateFailUndo: false, // `return ret` after a failed start_isolate_page_range
      contigGetOnlineMems: false, // no kernel holds get_online_mems() there
      unsetIsolateLargeBuddy: true, // every kernel
      demoteSurplus: true, // every kernel with demote
    });
  });

  it('each release changes exactly the switches its kernel changed', () => {
    const steps: Array<[string, string, Partial<Switches>]> = [
      // Oscar Salvador's series: isolate_or_dissolve_huge_page, errnos out of
      // isolate_migratepages_*, pfn_range_valid_contig no longer skips hugetlb/refcounted pages.
      ['v5.11', 'v5.13', { contigErrnos: true, hugetlbContig: 'v5.13', pfnRangeValidContig: 'v5.13' }],
      ['v5.13', 'v5.14', { hvo: true, pcpBulkFree: 'v5.14', pcpFreeFactor: true }], // HugeTLB Vmemmap Optimisation; high-order pcp lists (44042b449872)
      // demote with cma_pages_valid; undo_isolate_page_range on the failure path (Miaohe Lin).
      ['v5.14', 'v5.16', { demote: 'cma_pages_valid', isolateUndoFix: true }],
      ['v5.16', 'v5.18', { mergeRule: 'v5.18', pcpBulkFree: 'v5.18' }], // 1dd214b8f21c; 8b10b465d0e1, d61372bc41cf
      // Zi Yan: pageblock-granular alloc_contig_range and CMA, has_unmovable_pages'
      // range of interest (844fbae63e1f), virtio-mem pageblock subblocks, the `goto done` undo.
      ['v5.18', 'v5.19', { contigGranularity: 'pageblock', unmovableRangeOfInterest: true, cmaAlign: 'pageblock', virtioMemSubblock: 'pageblock', contigIsolateFailUndo: true }],
      // Johannes Weiner's freelist hygiene, lazy replacement (831bc31a5e82, 6.9), the hugetlb check
      // back in pfn_range_valid_contig, dequeue skipping isolated pageblocks, MR_CONTIG_RANGE's fresh
      // hugetlb migration targets on the source node only (htlb_allow_alloc_fallback, 6.9).
      ['v5.19', 'v6.10', { mergeRule: 'v6.10', hygiene: true, fallback: 'v6.10', lazyReplacement: true, pfnRangeValidContig: 'v6.x', hugetlbDequeueSkipsIsolated: true, hugetlbMigrateThisNode: true, pcpFreeFactor: false }], // free_factor gave way to free_count and pcp->high auto-tuning in v6.7 (not modelled)
      ['v6.10', 'mainline', { isolateMode: 'bit', dissolveSurplusFix: true }],
    ];
    for (const [from, to, changes] of steps) expect([from, to, diff(sw(from), sw(to))]).toEqual([from, to, changes]);
  });

  it('the buggy profiles are their base release with the bug switched in, and name a property that catches it', () => {
    const buggy = Object.values(PROFILES).filter((p) => p.buggy).map((p) => [p.name, p.fixedBy, p.buggy!.property, diff(sw(p.fixedBy!), p.switches)]);
    expect(buggy).toEqual([
      ['rfc-2021-02', 'v5.13', 'no-gigantic-recursion', { contigErrnos: false, hugetlbContig: 'rfc', pfnRangeValidContig: 'v5.10' }],
      ['demote-cma-lost', 'v5.16', 'cma-ownership', { demote: 'lost' }],
      ['v5.19-cma-retype', 'v5.19', 'cma-ownership', { isolateSingleSavedMt: true }],
      ['pageblock-naive', 'v5.19', 'no-cross-migratetype-merge', { contigGranularity: 'pageblock-naive', mergeRule: 'v5.10' }],
    ]);
    for (const p of Object.values(PROFILES)) {
      if (!p.buggy) {
        expect([p.name, p.fixedBy]).toEqual([p.name, undefined]);
        continue;
      }
      expect(getProperty(p.buggy.property).name).toBe(p.buggy.property);
      expect(p.buggy.bug.length).toBeGreaterThan(40);
      expect(PROFILES[p.fixedBy!].buggy).toBeUndefined();
    }
  });

  it('every profile is listed under its own name with a description (mmcheck profiles)', () => {
    expect(Object.keys(PROFILES)).toEqual([
      'v5.11', 'rfc-2021-02', 'v5.13', 'v5.14', 'v5.16', 'demote-cma-lost', 'v5.18', 'v5.19', 'v5.19-cma-retype', 'pageblock-naive', 'v6.10', 'mainline',
    ]);
    for (const [name, p] of Object.entries(PROFILES)) {
      expect(p.name).toBe(name);
      expect(p.description.length).toBeGreaterThan(60);
    }
  });
});

describe('patches for known races', () => {
  const findings = fileURLToPath(new URL('../counterexamples/findings', import.meta.url));

  it('each patch flips the switch of its race, on the profiles whose kernels have the race', () => {
    const appliesTo = Object.fromEntries(Object.values(PATCHES).map((p) => [p.name, [p.switches, Object.values(PROFILES).filter((f) => patchApplies(p, f.switches)).map((f) => f.name)]]));
    const all = Object.keys(PROFILES);
    expect(appliesTo).toEqual({
      // the `goto done` undo exists from v5.19 on
      'contig-isolate-fail-return': [{ contigIsolateFailUndo: false }, ['v5.19', 'v5.19-cma-retype', 'pageblock-naive', 'v6.10', 'mainline']],
      'contig-get-online-mems': [{ contigGetOnlineMems: true }, all],
      'unset-isolate-pageblock-buddy': [{ unsetIsolateLargeBuddy: false }, all],
      'demote-persistent-only': [{ demoteSurplus: false }, all],
    });
  });

  it('a patch applies when any one of its switches differs (fuzz.ts tries only those)', () => {
    const two = { ...PATCHES['contig-get-online-mems'], switches: { contigGetOnlineMems: true, unsetIsolateLargeBuddy: true } };
    expect(patchApplies(two, sw('mainline'))).toBe(true);
    expect(patchApplies(two, { ...sw('mainline'), contigGetOnlineMems: true })).toBe(false);
    expect(patchApplies({ ...two, switches: {} }, sw('mainline'))).toBe(false);
  });

  it('each patch is listed under its name, describes its fix and race, and its findings are saved counterexamples of a profile it applies to', () => {
    for (const [name, p] of Object.entries(PATCHES)) {
      expect(p.name).toBe(name);
      expect(p.description.length).toBeGreaterThan(60);
      expect(p.race.length).toBeGreaterThan(40);
      expect(p.findings.length).toBeGreaterThan(0);
      for (const f of p.findings) {
        const file = join(findings, f);
        expect([f, existsSync(file)]).toEqual([f, true]);
        const ce = JSON.parse(readFileSync(file, 'utf8')) as { profile: string };
        expect(patchApplies(p, getProfile(ce.profile).switches)).toBe(true);
      }
    }
  });
});

describe('profile names: base+patch[+patch...]', () => {
  it('a plain name is the profile itself', () => {
    expect(getProfile('v5.19')).toBe(PROFILES['v5.19']);
    expect(getProfile('pageblock-naive').buggy?.property).toBe('no-cross-migratetype-merge');
  });

  it('patches apply left to right onto a copy; a patched buggy profile no longer promises its bug', () => {
    const before = { ...sw('mainline') };
    const p = getProfile('mainline+contig-get-online-mems+demote-persistent-only');
    expect(p.name).toBe('mainline+contig-get-online-mems+demote-persistent-only');
    expect(diff(sw('mainline'), p.switches)).toEqual({ contigGetOnlineMems: true, demoteSurplus: false });
    expect(p.description).toBe(PROFILES.mainline.description);
    expect(sw('mainline')).toEqual(before);
    const naive = getProfile('pageblock-naive+contig-isolate-fail-return');
    expect([naive.buggy, naive.fixedBy, naive.switches.contigGranularity]).toEqual([undefined, 'v5.19', 'pageblock-naive']);
    // applyPatches with no patch keeps the name and the promise.
    const same = applyPatches(PROFILES['demote-cma-lost'], []);
    expect([same.name, same.buggy?.property, same.switches]).toEqual(['demote-cma-lost', 'cma-ownership', sw('demote-cma-lost')]);
  });

  it('unknown profiles, unknown patches and patches that change nothing are configuration errors naming what is known', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(err(() => getProfile('v9.9'))).toBe(`unknown profile 'v9.9' (known: ${Object.keys(PROFILES).join(', ')})`);
    expect(err(() => getProfile('v9.9+contig-get-online-mems'))).toMatch(/^unknown profile 'v9.9'/);
    expect(err(() => getProfile('mainline+nope'))).toBe(`unknown patch 'nope' in profile 'mainline+nope' (known: ${Object.keys(PATCHES).join(', ')})`);
    expect(err(() => getProfile('v5.18+contig-isolate-fail-return'))).toBe("patch 'contig-isolate-fail-return' changes nothing on profile 'v5.18'");
    // A patch applied twice changes nothing the second time.
    expect(err(() => getProfile('mainline+contig-get-online-mems+contig-get-online-mems'))).toBe("patch 'contig-get-online-mems' changes nothing on profile 'mainline'");
    expect(err(() => getProfile('v6.10+contig-isolate-fail-return'))).toBe('no error');
  });

  it('withSwitches: a named or given profile with some switches changed, never promising a bug', () => {
    const a = withSwitches('v5.19-cma-retype', { isolateSingleSavedMt: false });
    expect([a.name, a.buggy, a.fixedBy, diff(sw('v5.19'), a.switches)]).toEqual(['v5.19-cma-retype+', undefined, 'v5.19', {}]);
    const b = withSwitches(PROFILES['v6.10'], { offlineReplacesFreeHuge: true }, 'proposal');
    expect([b.name, diff(sw('v6.10'), b.switches), b.description]).toEqual(['proposal', { offlineReplacesFreeHuge: true }, PROFILES['v6.10'].description]);
    const c = withSwitches('mainline+contig-get-online-mems', {});
    expect([c.name, c.switches.contigGetOnlineMems]).toEqual(['mainline+contig-get-online-mems+', true]);
    expect(sw('v6.10').offlineReplacesFreeHuge).toBe(false);
  });
});
