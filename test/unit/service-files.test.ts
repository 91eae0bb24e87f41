// The shipped udev rule and systemd unit carry the fields install.md and DESIGN.md §6 promise.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

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

  it('runs as its own user with the serial group and a state directory', () => {
    for (const l of ['User=mmsd', 'SupplementaryGroups=dialout', 'StateDirectory=mmsd', 'ConfigurationDirectory=mmsd', 'Restart=on-failure']) {
      expect(has(l), l).toBe(true);
    }
  });

  it('does not break V8 or hide the serial devices', () => {
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=yes/m);
    expect(unit).not.toMatch(/^PrivateDevices=yes/m);
    expect(has('DevicePolicy=closed')).toBe(true);
    expect(has('DeviceAllow=char-ttyUSB rw')).toBe(true);
  });
});
