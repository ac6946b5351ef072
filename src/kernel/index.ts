/**
 * Building a machine: construct the state, boot it, and wire the mechanisms to each other.
 * The wiring below is the only place where the alloc_contig_range <-> hugetlb cycle is closed.
 */
import { resolveConfig, type MachineConfig } from './config.js';
import { Kernel } from './machine.js';
import { bootMemory } from './page_alloc.js';
import { installHugetlb } from './hugetlb.js';
import { installContig } from './contig.js';
import { installCma } from './cma.js';
import { installHotplug } from './memory_hotplug.js';
import { installVirtioMem } from './virtio_mem.js';
import { getProfile, type Profile } from './profiles.js';
import { MIGRATE_UNMOVABLE } from './types.js';

export function createKernel(config: MachineConfig | string, profile: Profile | string): Kernel {
  const cfg = typeof config === 'string' ? resolveConfig(config) : config;
  const prof = typeof profile === 'string' ? getProfile(profile) : profile;
  const k = new Kernel(cfg, prof);
  const boot = k.newAllocation({ id: '@boot', kind: 'boot', pfn: 0, nrPages: 0, order: 0, migratetype: MIGRATE_UNMOVABLE, pinned: false });
  bootMemory(k, boot.handle);
  installHugetlb(k);
  installContig(k);
  installCma(k);
  installHotplug(k);
  installVirtioMem(k);
  return k;
}

export { Kernel } from './machine.js';
