/** Every op module registers itself here; import this to get the whole vocabulary. */
import './buddy.js';
import './contig.js';
import './hugetlb.js';
import './hotplug.js';

export { OPS, defineOp, validateOp, parseBytes, type Op, type OpResult, type OpSpec } from './registry.js';
