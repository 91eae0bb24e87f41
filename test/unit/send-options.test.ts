// The one table of send options (src/core/options.ts) and every part that reads it: validation, the
// D-Bus and MQTT doors, mmsctl, and the sender's sendparam. Each row goes through all of them, so a
// new row is checked end to end without a line of this file changing.
import { describe, expect, it } from 'vitest';
import { convertOptions, optionsToVariants } from '../../src/api/dbus/convert.js';
import { parseSendPayload } from '../../src/api/mqtt/schema.js';
import { EXIT, main } from '../../src/cli/mmsctl.js';
import { RequestError } from '../../src/core/errors.js';
import { mergeSendParams, pickSendParams, sameSendParams, SEND_OPTIONS, SEND_PARAM_KEYS, type SendParams } from '../../src/core/options.js';
import { validateRequest } from '../../src/core/validate.js';

const limits = { maxMessageBytes: 1000, allowedDirs: [] };
const DEFAULTS: SendParams = { validity: 6, priority: 3, deliveryReport: false, readReport: false, visibility: 2, class: 4 };

/** A value the option accepts and one it refuses. */
function values(o: (typeof SEND_OPTIONS)[number]): { good: number | boolean; bad: unknown } {
  return o.type === 'boolean' ? { good: true, bad: 1 } : { good: o.range[1], bad: o.range[1] + 1 };
}

async function refusedName(options: unknown): Promise<string> {
  try {
    await validateRequest({ to: ['+15550000001'], options }, limits);
  } catch (err) {
    if (err instanceof RequestError) return err.errorName;
    throw err;
  }
  return 'accepted';
}

describe.each(SEND_OPTIONS.map((o) => [o.key, o] as const))('option %s', (key, o) => {
  const { good, bad } = values(o);

  it('is validated by its range or type', async () => {
    const req = await validateRequest({ to: ['+15550000001'], options: { [key]: good } }, limits);
    expect(req.options).toEqual({ [key]: good });
    expect(await refusedName({ [key]: bad })).toBe('InvalidOption');
    if (o.type === 'integer') expect(await refusedName({ [key]: o.range[0] - 1 })).toBe('InvalidOption');
  });

  it('travels over D-Bus under its name and signature, both ways', () => {
    const variants = optionsToVariants({ [key]: good });
    expect(Object.keys(variants)).toEqual([o.dbus]);
    expect(variants[o.dbus].signature).toBe(o.type === 'boolean' ? 'b' : 'u');
    expect(convertOptions(variants)).toEqual({ options: { [key]: good } });
  });

  it('is read from an MQTT request under its name', () => {
    const r = parseSendPayload(Buffer.from(JSON.stringify({ to: ['+15550000001'], options: { [o.mqtt]: good } })));
    expect(r.ok && r.value.options).toEqual({ [key]: good });
  });

  it('is a flag of mmsctl send, in its help', async () => {
    const out: string[] = [];
    await main(['--help'], { out: (l) => out.push(l), err: () => undefined });
    expect(out.join('\n')).toContain(`[--${o.cli.flag}`);
    if (o.type === 'integer') {
      const err: string[] = [];
      const code = await main(['send', '--to', '+15550000001', `--${o.cli.flag}`, 'x'], { out: () => undefined, err: (l) => err.push(l) });
      expect(code).toBe(EXIT.usage);
      expect(err.join('\n')).toContain(`--${o.cli.flag} takes a number`);
    }
  });

  it(o.sendParam ? 'overrides its sendparam slot for the message' : 'is no sendparam slot', () => {
    const merged = mergeSendParams(DEFAULTS, { [key]: good });
    if (o.sendParam) expect(merged).toEqual({ ...DEFAULTS, [key]: good });
    else expect(merged).toEqual(DEFAULTS);
  });
});

describe('sendparam', () => {
  it('keeps the slots in the order of AT+QMMSCFG="sendparam" (spec §2.1)', () => {
    expect(SEND_PARAM_KEYS).toEqual(['validity', 'priority', 'deliveryReport', 'readReport', 'visibility', 'class']);
    expect(Object.keys(mergeSendParams(DEFAULTS, { class: 0, validity: 1 }))).toEqual(SEND_PARAM_KEYS);
  });

  it('picks the slots out of the mms.* settings and compares them slot by slot', () => {
    const settings = { ...DEFAULTS, mmsc: 'http://mmsc.example/', charset: 'UTF8' };
    expect(pickSendParams(settings)).toEqual(DEFAULTS);
    expect(sameSendParams(DEFAULTS, { ...DEFAULTS })).toBe(true);
    expect(sameSendParams(DEFAULTS, undefined)).toBe(false);
    for (const key of SEND_PARAM_KEYS) {
      const changed = { ...DEFAULTS, [key]: typeof DEFAULTS[key] === 'boolean' ? !DEFAULTS[key] : -1 };
      expect(sameSendParams(DEFAULTS, changed), key).toBe(false);
    }
  });

  it('has the names of core for every door (no two rows share a key, a D-Bus name, an MQTT name or a flag)', () => {
    for (const field of ['key', 'dbus', 'mqtt'] as const) expect(new Set(SEND_OPTIONS.map((o) => o[field])).size).toBe(SEND_OPTIONS.length);
    expect(new Set(SEND_OPTIONS.map((o) => o.cli.flag)).size).toBe(SEND_OPTIONS.length);
  });
});
