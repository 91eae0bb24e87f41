// The shipped udev rule, systemd unit, sysusers.d and tmpfiles.d files carry the fields install.md
// and DESIGN.md §6 and §14 promise, and agree with each other and with the configuration defaults.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { unitEnvironment, unitNodeArgs } from '../../src/harness/unit-environment.js';
import { SCHEMA } from '../../src/config/schema.js';

const root = new URL('../../', import.meta.url);
const read = (p: string): string => readFileSync(new URL(p, root), 'utf8');

function udevRules(text: string): Map<string, string>[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
    .map((l) => {
      const fields = new Map<string, string>();
      for (const m of l.matchAll(/([A-Z_]+(?:\{[A-Za-z_]+\})?)(==|!=|\+=|=|:=)"([^"]*)"/g)) fields.set(`${m[1]}${m[2]}`, m[3]);
      // every comma-separated token must have parsed: no typo slips through
      expect(l.split(/,\s*/).length).toBe(fields.size);
      return fields;
    });
}

describe('udev rule', () => {
  const rules = udevRules(read('udev/90-mmsd.rules'));

  it('matches the Quectel AT port and names it /dev/mmsd-modem', () => {
    expect(rules).toHaveLength(1);
    const r = rules[0];
    expect(r.get('SUBSYSTEM==')).toBe('tty');
    expect(r.get('ENV{ID_VENDOR_ID}==')).toBe('2c7c');
    expect(r.get('ENV{ID_USB_INTERFACE_NUM}==')).toBe('02');
    expect(r.get('SYMLINK+=')).toBe('mmsd-modem');
  });

  it('tells ModemManager to leave the port alone', () => {
    expect(rules[0].get('ENV{ID_MM_PORT_IGNORE}=')).toBe('1');
  });
});

describe('systemd unit', () => {
  const unit = read('systemd/mmsd.service');
  const has = (line: string): boolean => unit.split('\n').includes(line);

  it('is a notify service with a watchdog that children may speak for', () => {
    expect(has('Type=notify')).toBe(true);
    expect(has('NotifyAccess=all')).toBe(true);
    expect(unit).toMatch(/^WatchdogSec=\d+s$/m);
  });

  it('runs as its own user with the serial group and group mms', () => {
    for (const l of ['User=mmsd', 'Group=mmsd', 'SupplementaryGroups=dialout mms', 'ConfigurationDirectory=mmsd', 'Restart=on-failure']) {
      expect(has(l), l).toBe(true);
    }
  });

  it('writes the state directory without re-owning it (tmpfiles.d owns it)', () => {
    // StateDirectory= would chown the whole tree to mmsd:mmsd at every start and shut group mms out
    // of /var/lib/mmsd/incoming.
    expect(unit).not.toMatch(/^StateDirectory/m);
    expect(has('ReadWritePaths=/var/lib/mmsd')).toBe(true);
  });

  it('does not break V8 or hide the serial devices, USB or UART', () => {
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=yes/m);
    expect(unit).not.toMatch(/^PrivateDevices=yes/m);
    expect(has('DevicePolicy=closed')).toBe(true);
    for (const dev of ['ttyUSB', 'ttyACM', 'ttyS', 'ttyAMA']) expect(has(`DeviceAllow=char-${dev} rw`), dev).toBe(true);
  });

  it('gives node only options that node accepts in NODE_OPTIONS (many V8 flags are refused there)', () => {
    const env = unitEnvironment(fileURLToPath(new URL('systemd/mmsd.service', root)));
    expect(env.NODE_OPTIONS).toBeTruthy();
    const r = spawnSync(process.execPath, ['-e', 'process.stdout.write("ok")'], { env: { ...process.env, ...env }, encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/not allowed in NODE_OPTIONS|bad option/);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('ok');
  });

  it("starts node with V8 flags it knows, on the packaged daemon's script (/usr/bin/mmsd by hand has none)", () => {
    const file = fileURLToPath(new URL('systemd/mmsd.service', root));
    const flags = unitNodeArgs(file);
    expect(flags).toContain('--lite-mode');
    // The script where scripts/build-deb puts dist/ (usr/lib/mmsd/dist) and the conffile's path.
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/node (--\S+ )+\/usr\/lib\/mmsd\/dist\/cli\/mmsd\.js --config \/etc\/mmsd\/mmsd\.json$/m);
    expect(read('scripts/build-deb')).toMatch(/lib=\$root\/usr\/lib\/mmsd\n[^]*cp -r "\$work\/dist" "\$lib\/dist"/);
    const r = spawnSync(process.execPath, [...flags, '-e', 'process.stdout.write("ok")'], { env: { ...process.env, ...unitEnvironment(file) }, encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/bad option|unknown flag|not allowed/i);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('ok');
  });
});

interface TmpfilesEntry {
  type: string;
  path: string;
  mode: number;
  user: string;
  group: string;
}

function tmpfiles(text: string): TmpfilesEntry[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
    .map((l) => {
      const [type, path, mode, user, group] = l.trim().split(/\s+/);
      expect(mode, l).toMatch(/^[0-7]{4}$/);
      return { type, path, mode: parseInt(mode, 8), user, group };
    });
}

describe('the state directories (tmpfiles.d) and users (sysusers.d)', () => {
  const dirs = tmpfiles(read('packaging/mmsd.tmpfiles'));
  const byPath = new Map(dirs.map((d) => [d.path, d]));
  const sysusers = read('packaging/mmsd.sysusers')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.match(/"[^"]*"|\S+/g) ?? []);

  /** Whether a member of `group` (not the owner) has `bits` (r=4 w=2 x=1) on `path` and may reach it. */
  const groupMay = (path: string, bits: number): boolean => {
    const entry = byPath.get(path);
    if (!entry || entry.group !== 'mms' || ((entry.mode >> 3) & bits) !== bits) return false;
    const parent = path.slice(0, path.lastIndexOf('/'));
    return !byPath.has(parent) || groupMay(parent, 1);
  };
  const othersMay = (path: string): boolean => (byPath.get(path)!.mode & 0o7) !== 0;

  it('creates the outbox directory, the incoming and the inbox directories, owned by mmsd', () => {
    expect(dirs.map((d) => [d.type, d.path, d.user])).toEqual([
      ['d', SCHEMA.outbox.dir.default, 'mmsd'],
      ['d', SCHEMA.attachments.allowedDirs.default[0], 'mmsd'],
      ['d', '/var/lib/mmsd/inbox', 'mmsd'],
    ]);
  });

  it('lets group mms write into incoming and read the inbox, and nothing more', () => {
    expect(groupMay('/var/lib/mmsd/incoming', 4 | 2 | 1)).toBe(true);
    expect(groupMay('/var/lib/mmsd/inbox', 4 | 1)).toBe(true);
    expect(groupMay('/var/lib/mmsd/inbox', 2)).toBe(false);
    expect(groupMay('/var/lib/mmsd', 4)).toBe(false); // may pass through, not list the spool
    for (const d of dirs) expect(othersMay(d.path), d.path).toBe(false);
  });

  it('keeps group mms on what is dropped or received (setgid directories)', () => {
    expect(byPath.get('/var/lib/mmsd/incoming')!.mode & 0o2000).toBe(0o2000);
    expect(byPath.get('/var/lib/mmsd/inbox')!.mode & 0o2000).toBe(0o2000);
  });

  it('matches the unit: its user owns the directories, its groups read incoming, it may write them', () => {
    const unit = read('systemd/mmsd.service');
    const user = /^User=(.*)$/m.exec(unit)?.[1];
    const groups = /^SupplementaryGroups=(.*)$/m.exec(unit)?.[1].split(' ') ?? [];
    const writable = /^ReadWritePaths=(.*)$/m.exec(unit)?.[1].split(' ') ?? [];
    for (const d of dirs) {
      expect(d.user).toBe(user);
      expect(groups).toContain(d.group);
      expect(writable.some((w) => d.path === w || d.path.startsWith(`${w}/`)), d.path).toBe(true);
    }
  });

  it('declares the service user mmsd (home: the state directory) and the group mms', () => {
    expect(sysusers).toContainEqual(['u', 'mmsd', '-', '"MMS daemon"', '/var/lib/mmsd', '/usr/sbin/nologin']);
    expect(sysusers).toContainEqual(['g', 'mms', '-']);
  });
});
