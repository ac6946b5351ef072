/**
 * Seed 001's experiment (David Hildenbrand, quoted in Oscar Salvador's cover letter): a VM with
 * 4 GiB + 1 GiB of virtio-mem memory onlined to ZONE_MOVABLE (config vm-5g), 512 huge pages of
 * 2 MiB — they land in ZONE_MOVABLE first (the highest zone of GFP_HIGHUSER_MOVABLE's zonelist) —
 * then unplug 1 GiB via virtio-mem:
 *   (a) the huge pages free;
 *   (b) allocated and populated, idle;
 *   (c) populated and accessed in a loop: the page being migrated is busy once (an extra reference
 *       while the user touches it, dropped before the driver's retry);
 *   (d) the extreme case: 2048 huge pages, so replacements for free pages cannot be allocated.
 * For each case: bytes unplugged, alloc_contig_range calls and failures the driver saw, the
 * "PFNs busy" reports, HugePages_Total/Free before and after.
 */
import { createKernel } from '../src/kernel/index.js';
import type { Kernel } from '../src/kernel/machine.js';
import { meminfo } from '../src/kernel/meminfo.js';
import { getProfile, type Profile } from '../src/kernel/profiles.js';
import type { KGen } from '../src/kernel/sched.js';
import { hstateByName, hugetlbFault, hugetlbMmap, hugetlbPages, setMaxHugePages } from '../src/kernel/hugetlb.js';
import { virtioMemUnplug } from '../src/kernel/virtio_mem.js';

export const CASES = ['a', 'b', 'c', 'd'] as const;
export type CaseName = (typeof CASES)[number];

const DESCRIPTION: Record<CaseName, string> = {
  a: '512 free huge pages',
  b: '512 huge pages populated, idle',
  c: '512 huge pages populated, accessed in a loop',
  d: '2048 free huge pages (no room for replacements)',
};

export interface CaseRow {
  case: CaseName;
  description: string;
  profile: string;
  result: string;
  requestedMiB: number;
  unpluggedMiB: number;
  contigCalls: number;
  failures: Record<string, number>;
  pfnsBusy: number;
  hugePagesInMovable: number;
  totalBefore: number;
  freeBefore: number;
  totalAfter: number;
  freeAfter: number;
}

/** Runs a kernel generator alone; `onYield` sees every yield point (the scenario's "user"). */
function drive<T>(g: KGen<T>, onYield?: (at: string) => void): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
    if (typeof r.value === 'string') onYield?.(r.value);
  }
}

function setup(k: Kernel, c: CaseName): void {
  const h = hstateByName(k, '2M')!;
  drive(setMaxHugePages(k, h, c === 'd' ? 2048 : 512));
  if (c === 'b' || c === 'c') {
    drive(hugetlbMmap(k, 'user', h, 512));
    for (let i = 0; i < 512; i++) drive(hugetlbFault(k, 'user', i));
  }
}

export function runCase(profile: Profile | string, c: CaseName): CaseRow {
  const prof = typeof profile === 'string' ? getProfile(profile) : profile;
  const k = createKernel('vm-5g', prof);
  setup(k, c);
  const before = meminfo(k);
  const movable = k.zones.find((z) => z.isMovable())!;
  const inMovable = hugetlbPages(k).filter((p) => movable.contains(p.pfn)).length;
  // (c): the user holds the page that is migrated first (the highest in-use page) while the
  // driver's first attempt runs; it lets go before the retry.
  let busy = -1;
  if (c === 'c') {
    busy = Math.max(...hugetlbPages(k).filter((p) => p.state === 'in-use').map((p) => p.pfn));
    k.mm.refcount[busy]++;
  }
  const ev0 = k.events.length;
  const r = drive(virtioMemUnplug(k, 1 << 30), (at) => {
    if (busy >= 0 && at === 'virtio_mem_fake_offline:retry') {
      k.mm.refcount[busy]--;
      busy = -1;
    }
  });
  const after = meminfo(k);
  const busyEvents = k.events.slice(ev0).filter((e) => /PFNs busy/.test(e)).length;
  return {
    case: c,
    description: DESCRIPTION[c],
    profile: prof.name,
    result: r.result,
    requestedMiB: 1024,
    unpluggedMiB: r.unpluggedBytes / (1 << 20),
    contigCalls: r.stats.attempts,
    failures: r.stats.failures,
    pfnsBusy: busyEvents,
    hugePagesInMovable: inMovable,
    totalBefore: before.HugePages_Total,
    freeBefore: before.HugePages_Free,
    totalAfter: after.HugePages_Total,
    freeAfter: after.HugePages_Free,
  };
}

export function runScenario(profiles: string[], cases: readonly CaseName[] = CASES): CaseRow[] {
  const rows: CaseRow[] = [];
  for (const c of cases) for (const p of profiles) rows.push(runCase(p, c));
  return rows;
}

export function formatTable(rows: CaseRow[]): string {
  const head = ['case', 'profile', 'unplugged', 'contig calls', 'failures', 'PFNs busy', 'HugePages_Total', 'HugePages_Free', 'in MOVABLE'];
  const body = rows.map((r) => [
    `(${r.case}) ${r.description}`,
    r.profile,
    `${r.unpluggedMiB}/${r.requestedMiB} MiB`,
    String(r.contigCalls),
    Object.entries(r.failures).map(([e, n]) => `${e} x${n}`).join(', ') || '-',
    String(r.pfnsBusy),
    `${r.totalBefore} -> ${r.totalAfter}`,
    `${r.freeBefore} -> ${r.freeAfter}`,
    String(r.hugePagesInMovable),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)].join('\n');
}
