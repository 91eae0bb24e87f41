// The footprint benchmark runs the daemon as the shipped unit starts it: the unit's Environment=
// lines read in systemd's syntax and the node flags of its ExecStart=, so that the bench and the unit
// cannot drift apart.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { launchFromArgs, unitEnvironment, unitLaunch, unitNodeArgs, unitNodeOptions } from '../../src/harness/unit-environment.js';

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

describe('unitNodeArgs (the node flags of ExecStart=)', () => {
  it('takes the flags between node and the script', () => {
    const file = unit('[Service]\nExecStart=/usr/bin/node --lite-mode --stack-size=500 /usr/lib/mmsd/dist/cli/mmsd.js --config /etc/mmsd/mmsd.json\n');
    expect(unitNodeArgs(file)).toEqual(['--lite-mode', '--stack-size=500']);
  });

  it("looks past systemd's prefixes and takes nodejs and a bare node too", () => {
    expect(unitNodeArgs(unit('ExecStart=-/usr/bin/nodejs --max-lazy /x.js\n'))).toEqual(['--max-lazy']);
    expect(unitNodeArgs(unit('ExecStart=node /x.js --flag\n'))).toEqual([]);
  });

  it('has none when ExecStart= runs the script itself', () => {
    expect(unitNodeArgs(unit('[Service]\nExecStart=/usr/bin/mmsd --config /etc/mmsd/mmsd.json\n'))).toEqual([]);
  });

  it('names a unit without exactly one ExecStart= and node without a script', () => {
    expect(() => unitNodeArgs(unit('[Service]\n'))).toThrow(/expected one ExecStart= line, found 0/);
    expect(() => unitNodeArgs(unit('ExecStart=/usr/bin/node --lite-mode\n'))).toThrow(/ExecStart= runs node without a script/);
  });
});

describe('launchFromArgs (the command line of dist/bench/footprint.js)', () => {
  it("is the unit's launch without arguments", () => {
    expect(launchFromArgs([])).toEqual(unitLaunch());
    expect(unitLaunch().env).toEqual(unitEnvironment());
  });

  it('joins node options into NODE_OPTIONS beside NAME=VALUE assignments, replacing the unit', () => {
    expect(launchFromArgs(['MALLOC_ARENA_MAX=1', '--max-semi-space-size=1', '--v8-pool-size=1'])).toEqual({
      env: { MALLOC_ARENA_MAX: '1', NODE_OPTIONS: '--max-semi-space-size=1 --v8-pool-size=1' },
      nodeArgs: [],
    });
  });

  it("puts argv:--… on node's command line", () => {
    expect(launchFromArgs(['--jitless', 'argv:--lite-mode', 'argv:--max-lazy'])).toEqual({
      env: { NODE_OPTIONS: '--jitless' },
      nodeArgs: ['--lite-mode', '--max-lazy'],
    });
  });

  it('refuses anything else by name', () => {
    expect(() => launchFromArgs(['jitless'])).toThrow(/neither a node option \(--…\), a node flag for the command line \(argv:--…\) nor NAME=VALUE: jitless/);
    expect(() => launchFromArgs(['argv:lite-mode'])).toThrow(/argv:lite-mode/);
  });
});
