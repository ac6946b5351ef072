/** Read-only access to the hugetlb pools for properties (absent when hugetlb is not installed). */
import type { Kernel } from '../src/kernel/machine.js';
import type { HugetlbState } from '../src/kernel/hugetlb.js';

export function hugetlbOf(k: Kernel): HugetlbState | undefined {
  return k.ext.hugetlb as HugetlbState | undefined;
}
