// The module's session (src/modem/session.ts): what a restart, a bring-up and another SIM make the
// driver write again, and the RAM files a restart makes untrusted.
import { describe, expect, it } from 'vitest';
import { ModuleSession } from '../../src/modem/session.js';
import type { SendParams } from '../../src/modem/types.js';

const DEFAULTS: SendParams = { validity: 6, priority: 3, deliveryReport: false, readReport: false, visibility: 2, class: 4 };

/** A write that records itself under `name`. */
function writer(log: string[], name: string): () => Promise<void> {
  return () => {
    log.push(name);
    return Promise.resolve();
  };
}

describe('ModuleSession', () => {
  it('writes a charset only when another one is or may be in force', async () => {
    const s = new ModuleSession();
    const log: string[] = [];
    await s.useCharset('ASCII', writer(log, 'ASCII'));
    await s.useCharset('ASCII', writer(log, 'ASCII'));
    await s.useCharset('UTF8', writer(log, 'UTF8'));
    expect(log).toEqual(['ASCII', 'UTF8']);
    expect(s.charset).toBe('UTF8');
  });

  it('holds no charset or sendparam after a write that failed (the module may have taken it or not)', async () => {
    const s = new ModuleSession();
    await s.useCharset('ASCII', () => Promise.resolve());
    await s.writeSendParams(DEFAULTS, () => Promise.resolve());
    await expect(s.useCharset('GBK', () => Promise.reject(new Error('ERROR')))).rejects.toThrow('ERROR');
    await expect(s.writeSendParams({ ...DEFAULTS, priority: 1 }, () => Promise.reject(new Error('ERROR')))).rejects.toThrow('ERROR');
    expect(s.charset).toBeUndefined();
    expect(s.sendParams).toBeUndefined();
    expect(s.needsSendParams(DEFAULTS)).toBe(true);
  });

  it('keeps the sendparam slots only, and tells whether a message needs them written', async () => {
    const s = new ModuleSession();
    await s.writeSendParams({ ...DEFAULTS, mmsc: 'http://mmsc' } as SendParams, () => Promise.resolve());
    expect(s.sendParams).toEqual(DEFAULTS);
    expect(s.needsSendParams(DEFAULTS)).toBe(false);
    expect(s.needsSendParams({ ...DEFAULTS, deliveryReport: true })).toBe(true);
  });

  it('clears the edit buffer once until something is edited', async () => {
    const s = new ModuleSession();
    const log: string[] = [];
    await s.clearEditBuffer(writer(log, 'clear'));
    await s.clearEditBuffer(writer(log, 'clear'));
    s.editing();
    await s.clearEditBuffer(writer(log, 'clear'));
    expect(log).toEqual(['clear', 'clear']);
  });

  it('forgets every setting at a bring-up but keeps the epoch and the files staged in it', async () => {
    const s = new ModuleSession();
    await s.useCharset('ASCII', () => Promise.resolve());
    await s.writeSendParams(DEFAULTS, () => Promise.resolve());
    s.mmsApplied('270011234567890');
    s.recordStaged('m1', ['photo.jpg']);
    s.forget();
    expect([s.charset, s.sendParams, s.mmsConfigured, s.epoch]).toEqual([undefined, undefined, false, 0]);
    expect(s.stagedFor('m1')).toEqual(['photo.jpg']);
  });

  it('begins a new epoch at a module restart: settings and staged files are gone', async () => {
    const s = new ModuleSession();
    await s.writeSendParams(DEFAULTS, () => Promise.resolve());
    s.mmsApplied('270011234567890');
    s.recordStaged('m1', ['photo.jpg']);
    s.reset();
    expect(s.epoch).toBe(1);
    expect(s.stagedFor('m1')).toBeUndefined();
    expect([s.sendParams, s.mmsConfigured]).toEqual([undefined, false]);
  });

  it('makes the MMS settings stale for another SIM, not for the same one', () => {
    const s = new ModuleSession();
    s.mmsApplied('270011234567890');
    expect(s.appliedForOtherSim('270011234567890')).toBe(false);
    expect(s.appliedForOtherSim('310260000000001')).toBe(true);
  });
});
