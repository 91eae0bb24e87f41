// The footprint benchmark runs the daemon in the environment the shipped unit gives it: the unit's
// Environment= lines read in systemd's syntax, so that the bench and the unit cannot drift apart.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { environmentFromArgs, unitEnvironment, unitNodeOptions } from '../../src/harness/unit-environment.js';

const dir = mkdtempSync(join(tmpdir(), 'mmsd-footprint-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function unit(text: string): string {
  const file = join(dir, `u${Math.random().toString(36).slice(2)}.service`);
  writeFileSync(file, text);
  return file;
}

describe('unitEnvironment', () => {
  it('reads every Environment= line, quoted assignments whole, later ones winning', () => {
    const file = unit(
      [
        '[Service]',
        '# Environment=IGNORED=1',
        'Environment="NODE_OPTIONS=--max-semi-space-size=2 --jitless" MALLOC_ARENA_MAX=4',
        'ExecStart=/usr/bin/mmsd',
        'Environment=MALLOC_ARENA_MAX=2 EMPTY=',
      ].join('\n'),
    );
    expect(unitEnvironment(file)).toEqual({ NODE_OPTIONS: '--max-semi-space-size=2 --jitless', MALLOC_ARENA_MAX: '2', EMPTY: '' });
    expect(unitNodeOptions(file)).toEqual(['--max-semi-space-size=2', '--jitless']);
  });

  it('names an assignment without a name', () => {
    expect(() => unitEnvironment(unit('Environment==x\n'))).toThrow(/not a NAME=VALUE assignment in Environment=: =x/);
  });

  it('gives no node options to a unit without NODE_OPTIONS', () => {
    expect(unitNodeOptions(unit('[Service]\nEnvironment=MALLOC_ARENA_MAX=2\n'))).toEqual([]);
  });

  it('reads the shipped unit: its NODE_OPTIONS', () => {
    expect(unitNodeOptions()).toEqual(expect.arrayContaining(['--max-semi-space-size=2', '--max-old-space-size=256', '--jitless']));
  });
});

describe('environmentFromArgs (the command line of dist/bench/footprint.js)', () => {
  it('is the unit environment without arguments', () => {
    expect(environmentFromArgs([])).toEqual(unitEnvironment());
  });

  it('joins node options into NODE_OPTIONS beside NAME=VALUE assignments, replacing the unit', () => {
    expect(environmentFromArgs(['MALLOC_ARENA_MAX=1', '--max-semi-space-size=1', '--v8-pool-size=1'])).toEqual({
      MALLOC_ARENA_MAX: '1',
      NODE_OPTIONS: '--max-semi-space-size=1 --v8-pool-size=1',
    });
  });

  it('refuses anything else by name', () => {
    expect(() => environmentFromArgs(['jitless'])).toThrow(/neither a node option \(--…\) nor NAME=VALUE: jitless/);
  });
});
