/**
 * The `mmcheck` command. Exit codes: 0 all held, 1 a violation was found or reproduced,
 * 2 bad usage or bad input (one line on stderr, never a stack trace).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../kernel/types.js';
import { UsageError, print } from './io.js';
import { COMMANDS } from './commands.js';

const USAGE = `usage: mmcheck <command> [options]

commands:
${Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(11)} ${c.summary}`).join('\n')}

Every command takes --json. Exit codes: 0 all held, 1 a violation, 2 bad usage or input.`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      print(USAGE);
      return name ? 0 : 2;
    }
    const cmd = COMMANDS[name];
    if (!cmd) throw new UsageError(`unknown command '${name}' (known: ${Object.keys(COMMANDS).join(', ')})`);
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...cmd.options } as ParseArgsConfig['options'], allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError(`${name}: ${(e as Error).message.split('\n')[0]}`);
    }
    if ((parsed.values as Record<string, unknown>).help) {
      print(`usage: mmcheck ${name} ${cmd.usage}\n\n${cmd.summary}`);
      return 0;
    }
    return await cmd.run(parsed.values as Record<string, any>, parsed.positionals);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      process.stderr.write(`mmcheck: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
