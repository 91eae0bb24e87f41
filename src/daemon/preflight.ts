// What a valid configuration still needs from the machine (DESIGN.md §14), checked without
// touching anything: the files it names are readable, its topics usable, a front door enabled.
// `mmsd --check-config` prints the result; `mmsd` refuses to start on a problem (exit 78).
import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { Topics } from '../api/mqtt/topics.js';
import type { Config } from '../config/load.js';

export interface Preflight {
  /** Each one stops the daemon from starting: one line naming the key and what to fix. */
  problems: string[];
  /** Worth a line, not a refusal. */
  warnings: string[];
}

export interface PreflightOptions {
  env: NodeJS.ProcessEnv;
  /** Where a system bus policy for org.example.Mms1 may be installed. */
  policyDirs?: readonly string[];
}

const POLICY_FILE = 'org.example.Mms1.conf';
const POLICY_DIRS = ['/etc/dbus-1/system.d', '/usr/share/dbus-1/system.d'];

/** Opens `path` for reading and closes it: exactly what the daemon will do, nothing written. */
async function unreadable(path: string): Promise<string | undefined> {
  try {
    const fh = await open(path, 'r');
    await fh.close();
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

export async function preflight(config: Config, opts: PreflightOptions): Promise<Preflight> {
  const problems: string[] = [];
  const warnings: string[] = [];

  if (config.mqtt.enabled) {
    try {
      new Topics(config.mqtt.baseTopic, config.mqtt.sendTopic);
    } catch (err) {
      problems.push((err as Error).message);
    }
    const files: Array<[string, string]> = [
      ['passwordFile', config.mqtt.passwordFile],
      ['ca', config.mqtt.ca],
      ['cert', config.mqtt.cert],
      ['key', config.mqtt.key],
    ];
    for (const [key, path] of files) {
      if (path === '') continue;
      const code = await unreadable(path);
      if (code !== undefined) problems.push(`mqtt.${key}: cannot read ${path} (${code}); create it, or change mqtt.${key}`);
    }
  }

  try {
    const st = await stat(config.outbox.dir);
    if (!st.isDirectory()) problems.push(`outbox.dir: ${config.outbox.dir} is not a directory`);
  } catch (err) {
    // Absent is fine: the daemon creates it (systemd's StateDirectory= normally has).
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      problems.push(`outbox.dir: cannot reach ${config.outbox.dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }

  if (!config.dbus.enabled && !config.mqtt.enabled) {
    warnings.push('no front door: dbus.enabled and mqtt.enabled are both false, so nothing can submit a message');
  }
  // The system bus refuses the name without the policy file (§14); a bus of one's own
  // (DBUS_SYSTEM_BUS_ADDRESS) has its own policy.
  if (config.dbus.enabled && config.dbus.bus === 'system' && !opts.env.DBUS_SYSTEM_BUS_ADDRESS) {
    const dirs = opts.policyDirs ?? POLICY_DIRS;
    const found = await Promise.all(dirs.map((d) => access(`${d}/${POLICY_FILE}`, constants.F_OK).then(() => true, () => false)));
    if (!found.includes(true)) {
      warnings.push(`dbus: ${POLICY_FILE} is not in ${dirs.join(' or ')}: the system bus will refuse mmsd its name (docs/install.md, "D-Bus policy")`);
    }
  }
  return { problems, warnings };
}
