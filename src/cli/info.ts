/** mmcheck configs | profiles | properties | meminfo: what exists. */
import { CONFIGS, describeConfig, resolveConfig } from '../kernel/config.js';
import { createKernel } from '../kernel/index.js';
import { formatMeminfo, formatPagetypeinfo, meminfo, pagetypeinfo } from '../kernel/meminfo.js';
import { PATCHES, PROFILES, getProfile, patchApplies } from '../kernel/profiles.js';
import { PROPERTIES } from '../../properties/index.js';
import { OPS } from '../harness/ops/index.js';
import type { Command } from './command.js';
import { print, printJson, readJsonFile } from './io.js';

export const configs: Command = {
  summary: 'list the machine configs and their geometry',
  usage: '[--json]',
  options: {},
  run(o) {
    const list = Object.values(CONFIGS).map(describeConfig);
    if (o.json) printJson(list);
    else for (const c of list) {
      const zones = c.nodes.flatMap((n) => n.zones.map((z) => `node${n.id}/${z.name} [${z.startPfn}, ${z.endPfn})`)).join(', ');
      print(`${c.name.padEnd(11)} maxOrder ${c.maxOrder}, pageblockOrder ${c.pageblockOrder}, ${zones}; hstates ${c.hstates.map((h) => `${h.name}=order ${h.order}`).join(', ')}; CMA ${c.cma.map((a) => `${a.name} [${a.basePfn}, +${a.count})`).join(', ') || 'none'}; memory block ${c.memoryBlockPages} pages`);
    }
    return 0;
  },
};

export const profiles: Command = {
  summary: 'list the kernel profiles, and what each buggy one is expected to violate (--patches: the patches for known races)',
  usage: '[--patches] [--json]',
  options: { patches: { type: 'boolean' } },
  run(o) {
    if (o.patches) {
      const patches = Object.values(PATCHES).map((p) => ({ ...p, appliesTo: Object.values(PROFILES).filter((f) => patchApplies(p, f.switches)).map((f) => f.name) }));
      if (o.json) printJson(patches);
      else for (const p of patches) print(`${p.name.padEnd(28)} (apply as PROFILE+${p.name}; changes ${p.appliesTo.join(', ')}) ${p.description}`);
      return 0;
    }
    const list = Object.values(PROFILES).map((p) => ({ name: p.name, description: p.description, buggy: p.buggy ?? null, fixedBy: p.fixedBy ?? null, switches: p.switches }));
    if (o.json) printJson(list);
    else for (const p of list) print(`${p.name.padEnd(16)} ${p.buggy ? `[buggy: expect ${p.buggy.property}] ` : ''}${p.description}`);
    return 0;
  },
};

export const properties: Command = {
  summary: 'list the invariants the checker knows',
  usage: '[--json]',
  options: {},
  run(o) {
    const list = PROPERTIES.map((p) => ({ name: p.name, when: p.when, statement: p.statement, kernelRef: p.kernelRef, guards: p.guards }));
    if (o.json) printJson(list);
    else for (const p of list) print(`${p.name.padEnd(28)} (${p.when}) ${p.statement}`);
    return 0;
  },
};

export const ops: Command = {
  summary: 'list the operations a program may use, with their fields',
  usage: '[--json]',
  options: {},
  run(o) {
    const list = Object.values(OPS).map((s) => ({ name: s.name, summary: s.summary, fields: s.fields }));
    if (o.json) printJson(list);
    else for (const s of list) print(`${s.name.padEnd(22)} {${Object.entries(s.fields).map(([n, f]) => `${n}${f.optional ? '?' : ''}`).join(', ')}}  ${s.summary}`);
    return 0;
  },
};

export const meminfoCmd: Command = {
  summary: '/proc/meminfo (and --pagetypeinfo) of a freshly booted machine',
  usage: '--config C [--profile P] [--pagetypeinfo] [--json]',
  options: { config: { type: 'string' }, profile: { type: 'string' }, pagetypeinfo: { type: 'boolean' } },
  run(o) {
    const spec = o.config ?? 'small';
    const cfg = spec.endsWith('.json') ? resolveConfig(readJsonFile(spec, 'config')) : resolveConfig(spec);
    const k = createKernel(cfg, getProfile(o.profile ?? 'mainline'));
    const m = meminfo(k);
    if (o.json) printJson(o.pagetypeinfo ? { meminfo: m, pagetypeinfo: pagetypeinfo(k) } : m);
    else {
      print(formatMeminfo(m));
      if (o.pagetypeinfo) print(`\n${formatPagetypeinfo(pagetypeinfo(k))}`);
    }
    return 0;
  },
};
