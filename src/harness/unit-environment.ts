// How the shipped systemd unit starts the daemon: the environment it gives it (its Environment=
// lines: NODE_OPTIONS, MALLOC_ARENA_MAX) and the node flags of its ExecStart=, read from
// systemd/mmsd.service so that what measures or tests the daemon "as the unit runs it" cannot drift
// from the unit (issue 19, DESIGN.md §8).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const UNIT = fileURLToPath(new URL('../../systemd/mmsd.service', import.meta.url));

/**
 * The environment the shipped unit gives the daemon: every `Environment=` line, in systemd's syntax
 * (assignments separated by spaces, each optionally in double quotes; later lines win).
 */
export function unitEnvironment(unit = UNIT): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(unit, 'utf8').split('\n')) {
    const m = /^Environment=(.*)$/.exec(line);
    if (!m) continue;
    for (const [, quoted, bare] of m[1].matchAll(/"([^"]*)"|(\S+)/g)) {
      const assignment = quoted ?? bare;
      const eq = assignment.indexOf('=');
      if (eq <= 0) throw new Error(`${unit}: not a NAME=VALUE assignment in Environment=: ${assignment}`);
      env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
  }
  return env;
}

/** The node options the shipped unit gives the daemon (its NODE_OPTIONS). */
export function unitNodeOptions(unit = UNIT): string[] {
  return splitNodeOptions(unitEnvironment(unit).NODE_OPTIONS);
}

export function splitNodeOptions(value: string | undefined): string[] {
  return (value ?? '').split(/\s+/).filter((o) => o !== '');
}

/**
 * The node flags on the unit's command line: `ExecStart=/usr/bin/node FLAG… SCRIPT ARG…` gives node
 * FLAG… (node 20 takes every V8 flag there, but refuses most of them in NODE_OPTIONS); none when
 * ExecStart= runs a script (`/usr/bin/mmsd`) directly. Each flag must be one word (`--name=value`).
 */
export function unitNodeArgs(unit = UNIT): string[] {
  const lines = readFileSync(unit, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('ExecStart='));
  if (lines.length !== 1) throw new Error(`${unit}: expected one ExecStart= line, found ${lines.length}`);
  // systemd's prefixes (-, @, :, +, !) before the path change how it runs, not what.
  const [program, ...rest] = lines[0].slice('ExecStart='.length).replace(/^[-@:+!]+/, '').split(/\s+/).filter((w) => w !== '');
  if (!/(^|\/)node(js)?$/.test(program ?? '')) return [];
  const flags: string[] = [];
  for (const word of rest) {
    if (!word.startsWith('-')) return flags;
    flags.push(word);
  }
  throw new Error(`${unit}: ExecStart= runs node without a script`);
}

/** How the daemon is started: its environment and node's flags before the script. */
export interface DaemonLaunch {
  env: Record<string, string>;
  nodeArgs: string[];
}

/** How the shipped unit starts the daemon: its Environment= lines and the node flags of its ExecStart=. */
export function unitLaunch(unit = UNIT): DaemonLaunch {
  return { env: unitEnvironment(unit), nodeArgs: unitNodeArgs(unit) };
}

/** The prefix of a node flag meant for node's command line rather than NODE_OPTIONS (`argv:--lite-mode`). */
export const ARGV_PREFIX = 'argv:';

/**
 * The daemon's launch from the command line's extra arguments: `NAME=VALUE` assignments, node
 * options (`--…`, joined into NODE_OPTIONS) and node flags for its command line (`argv:--…`). None:
 * the unit's. Any: they replace the unit's.
 */
export function launchFromArgs(args: string[]): DaemonLaunch {
  if (args.length === 0) return unitLaunch();
  const env: Record<string, string> = {};
  const options: string[] = [];
  const nodeArgs: string[] = [];
  for (const a of args) {
    if (a.startsWith(ARGV_PREFIX) && a.slice(ARGV_PREFIX.length).startsWith('--')) nodeArgs.push(a.slice(ARGV_PREFIX.length));
    else if (a.startsWith('--')) options.push(a);
    else if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) env[a.slice(0, a.indexOf('='))] = a.slice(a.indexOf('=') + 1);
    else throw new Error(`neither a node option (--…), a node flag for the command line (${ARGV_PREFIX}--…) nor NAME=VALUE: ${a}`);
  }
  if (options.length) env.NODE_OPTIONS = options.join(' ');
  return { env, nodeArgs };
}
