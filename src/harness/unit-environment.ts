// The environment the shipped systemd unit gives the daemon (its Environment= lines: NODE_OPTIONS,
// MALLOC_ARENA_MAX), read from systemd/mmsd.service so that what measures or tests the daemon "as
// the unit runs it" cannot drift from the unit (issue 19, DESIGN.md §8).
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
 * The daemon's environment from the command line's extra arguments: `NAME=VALUE` assignments and
 * node options (`--…`, joined into NODE_OPTIONS). None: the unit's. Any: they replace the unit's.
 */
export function environmentFromArgs(args: string[]): Record<string, string> {
  if (args.length === 0) return unitEnvironment();
  const env: Record<string, string> = {};
  const options: string[] = [];
  for (const a of args) {
    if (a.startsWith('--')) options.push(a);
    else if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) env[a.slice(0, a.indexOf('='))] = a.slice(a.indexOf('=') + 1);
    else throw new Error(`neither a node option (--…) nor NAME=VALUE: ${a}`);
  }
  if (options.length) env.NODE_OPTIONS = options.join(' ');
  return env;
}
