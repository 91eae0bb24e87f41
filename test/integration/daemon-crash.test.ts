// Crash safety of the send pipeline (DESIGN.md §6, issue 4): the real mmsd killed with SIGKILL at 20
// seeded-random points of its sends and restarted each time; the loopback MMSC counts what left.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type ExpectStatic, type TestContext } from 'vitest';
import { LOG_EVENTS } from '../../src/core/log-events.js';
import type { LogLine, ProcessHandle } from '../../src/harness/testbed.js';
import {
  prng,
  pseudoImage,
  simView,
  startStack,
  until,
  type Stack,
} from '../helpers/stack.js';

/** 20 kill points in all: two daemons (each with its own sim) killed 10 times each, side by side. */
const SEEDS = [0x5eed_2024, 0x0dd_ba11];
const ROUNDS_EACH = 10;
/** How long a kill point may take to come before the daemon is killed anyway. */
const POINT_DEADLINE_MS = 4_000;
const FINAL = new Set(['sent', 'failed', 'cancelled', 'unknown']);

type PointKind = 'time' | 'sending' | 'upload-block' | 'send-accepted' | 'send-result';

interface Point {
  kind: PointKind;
  /** ms after submit ('time') or which occurrence of the event (1-based). */
  n: number;
}

function pickPoint(rnd: () => number): Point {
  const r = rnd();
  if (r < 0.2) return { kind: 'time', n: Math.floor(rnd() * 600) };
  if (r < 0.35) return { kind: 'sending', n: 1 };
  if (r < 0.65) return { kind: 'upload-block', n: 1 + Math.floor(rnd() * 20) };
  if (r < 0.85) return { kind: 'send-accepted', n: 1 };
  return { kind: 'send-result', n: 1 };
}

const MATCHERS: Record<Exclude<PointKind, 'time'>, (l: LogLine) => boolean> = {
  sending: (l) => l.msg === LOG_EVENTS.sending,
  // One 1 KB block of an AT+QFUPL written in ACK mode.
  'upload-block': (l) => l.msg === LOG_EVENTS.txData && typeof l.at === 'string' && l.at.startsWith('AT+QFUPL='),
  // The module answered OK to AT+QMMSEND: from here on a kill may leave the message `unknown`.
  'send-accepted': (l) => l.msg === LOG_EVENTS.rx && typeof l.at === 'string' && l.at.startsWith('AT+QMMSEND=') && l.line === 'OK',
  'send-result': (l) => l.msg === LOG_EVENTS.sendResultUrc,
};

/** Resolves when the n-th line matching `pred` from index `from` on has been logged (or the deadline passed). */
async function nth(d: ProcessHandle, pred: (l: LogLine) => boolean, n: number, from: number, ms: number): Promise<boolean> {
  let seen = 0;
  try {
    await d.waitFor((l) => d.lines.indexOf(l) >= from && pred(l) && ++seen >= n, ms, 'kill point');
    return true;
  } catch {
    return false;
  }
}

/** How the module saw a message's last try end (its transcript, DESIGN.md §6). */
type TryEnd =
  /** Staging or editing when it ended (its daemon killed): requeued, so never the try of an `unknown`. */
  | 'edit'
  /** AT+QMMSEND written while the message was in the edit buffer. */
  | 'send'
  /**
   * Edited to the end, then the next command is the next daemon's first: its daemon was killed
   * between journalling `sendAccepted` and writing AT+QMMSEND. The journal comes first on purpose
   * (a kill between the module's OK and the journal write would otherwise send it twice), so
   * recovery cannot tell this from a kill just after the write: the message is `unknown`.
   */
  | 'killed-before-send';

/** The first command of a restarted daemon: its bring-up `AT`, or the probe after leaving data mode. */
const FIRST_COMMANDS = new Set(['AT', 'AT+CMEE?']);

/**
 * The end of each message's last try in the module's transcript: a try starts with the upload of
 * the message's file (`files`: RAM name → message id) or with its subject in the edit buffer.
 */
function lastTries(transcript: readonly string[], files: ReadonlyMap<string, string>): Map<string, TryEnd> {
  const end = new Map<string, TryEnd>();
  let subject = '';
  let edited = false;
  for (const line of transcript) {
    if (edited) {
      // The command after the last edit step (the message's one attachment): AT+QMMSEND, unless
      // the daemon was killed first (the send lock keeps health polls out of this gap).
      edited = false;
      if (FIRST_COMMANDS.has(line)) end.set(subject, 'killed-before-send');
    }
    const upload = /^AT\+QFUPL="RAM:([^"]*)"/.exec(line);
    const title = /^AT\+QMMSEDIT=4,1,"(.*)"$/.exec(line);
    if (upload && files.has(upload[1])) {
      end.set(files.get(upload[1])!, 'edit');
    } else if (title) {
      subject = title[1];
      end.set(subject, 'edit');
    } else if (line === 'AT+QMMSEDIT=0') {
      subject = '';
    } else if (subject !== '' && line.startsWith('AT+QMMSEDIT=5,')) {
      edited = true;
    } else if (subject !== '' && line.startsWith('AT+QMMSEND=')) {
      end.set(subject, 'send');
    }
  }
  return end;
}

async function saveLogs(s: Stack, seed: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), `mmsd-crash-${seed.toString(16)}-`));
  for (const [i, d] of s.tb.daemons.entries()) {
    const text = [...d.lines.map((l) => JSON.stringify(l)), ...d.stderr.map((l) => `stderr: ${l}`)].join('\n');
    await writeFile(join(dir, `daemon-${String(i).padStart(2, '0')}.log`), `${text}\n`);
  }
  await writeFile(join(dir, 'sim.log'), `${s.tb.sim.stderr.join('\n')}\n`);
  const state = await s.tb.simState().catch((e: unknown) => String(e));
  await writeFile(join(dir, 'sim-state.json'), JSON.stringify(state, null, 2));
  const received = await s.tb.received().catch((e: unknown) => String(e));
  await writeFile(join(dir, 'received.json'), JSON.stringify(received, null, 2));
  process.stderr.write(`daemon-crash (seed ${seed.toString(16)}): logs kept in ${dir}\n`);
}

/**
 * One daemon killed `ROUNDS_EACH` times at points drawn from `seed`, restarted each time; then the
 * queue drains and what the MMSC received is checked against every message's final state.
 */
async function crashRounds(seed: number, { expect, onTestFailed }: TestContext): Promise<void> {
  const s = await startStack({ simArgs: ['--boot-ms', '100'] });
  // A failure keeps every daemon's log, the sim's and its state in a folder named on stderr (from the
  // catch below while the stack still runs; from onTestFailed when the test timed out).
  let kept: Promise<void> | undefined;
  const keepLogs = (): Promise<void> => (kept ??= saveLogs(s, seed));
  onTestFailed(() => keepLogs());
  try {
    await s.tb.modemReady(15_000);
    // ~24 KB at 60 KB/s: an upload lasts about 0.4 s, long enough to be hit.
    await s.tb.fault({ lineRate: 60_000 });
    await killAndCheck(s, seed, expect);
  } catch (err) {
    await keepLogs();
    throw err;
  } finally {
    await s.stop();
  }
}

async function killAndCheck(s: Stack, seed: number, expect: ExpectStatic): Promise<void> {
  const rnd = prng(seed);
  const ids: string[] = [];
  const points: (Point & { hit: boolean })[] = [];
  for (let i = 0; i < ROUNDS_EACH; i++) {
    const id = `crash-${seed.toString(16)}-${String(i).padStart(2, '0')}`;
    const d = s.tb.daemon!;
    const from = d.lines.length;
    const point = pickPoint(rnd);
    await s.client.sendData({ to: ['+15550002000'], subject: id, id }, [{ name: `p${i}.bin`, data: pseudoImage(24 * 1024, i + 1) }]);
    ids.push(id);
    let hit = true;
    if (point.kind === 'time') {
      // A random moment after the submit was acknowledged (durably queued).
      await new Promise((r) => setTimeout(r, point.n));
    } else {
      hit = await nth(d, MATCHERS[point.kind], point.n, from, POINT_DEADLINE_MS);
    }
    points.push({ ...point, hit });
    await d.stop('SIGKILL');
    await s.tb.startDaemon();
    // Never lost: every message handed over so far is known to the restarted daemon.
    const known = new Set((await s.client.list()).map((m) => m.props.Id));
    expect(ids.filter((x) => !known.has(x))).toEqual([]);
  }
  // Most kill points were reached (a point can be missed when the queue was behind).
  expect(points.filter((p) => p.hit).length).toBeGreaterThanOrEqual(ROUNDS_EACH / 2);

  // No more kills: the queue drains, at full line speed (the throttle only made uploads long
  // enough to be hit; what is left queued after the last kill need not take 0.4 s an upload).
  await s.tb.fault({ lineRate: 0 });
  const all = await until(async () => {
    const list = await s.client.list();
    const mine = list.filter((m) => ids.includes(m.props.Id));
    return mine.length === ids.length && mine.every((m) => FINAL.has(m.props.Status)) ? mine : undefined;
  }, 40_000, 'every message to reach a final state', 200);

  const received = await s.tb.received();
  const count = (id: string): number => received.filter((m) => m.subject === id).length;
  const st = await simView(s.tb);
  const lastTry = lastTries(st.transcript, new Map(ids.map((id, i) => [`p${i}.bin`, id])));

  const summary = all.map((m) => ({ id: m.props.Id, status: m.props.Status, atMmsc: count(m.props.Id) }));
  for (const m of summary) {
    if (m.status === 'sent') {
      expect(m, 'sent exactly once').toMatchObject({ atMmsc: 1 });
    } else {
      // §6: unknown only when AT+QMMSEND may have reached the module; it left at most once.
      expect(m.status, m.id).toBe('unknown');
      expect(['send', 'killed-before-send'], `${m.id}: unknown, yet its last try ended before AT+QMMSEND`).toContain(lastTry.get(m.id));
      expect(m.atMmsc, `${m.id}: duplicates`).toBeLessThanOrEqual(1);
    }
  }
  expect(summary.filter((m) => m.status === 'sent').length).toBeGreaterThan(0);

  // No RAM file leaks: leftovers of every crash were deleted.
  const ram = await until(async () => {
    const v = await simView(s.tb);
    return v.ramFiles.length === 0 ? v.ramFiles : undefined;
  }, 10_000, 'no RAM file left').catch(async () => (await simView(s.tb)).ramFiles);
  expect(ram).toEqual([]);
}

describe.concurrent('mmsd killed with SIGKILL in the middle of sends', () => {
  for (const seed of SEEDS) {
    it(`ends every message sent exactly once or unknown, never lost, no RAM file left (seed ${seed.toString(16)})`, async (ctx) => {
      await crashRounds(seed, ctx);
    });
  }
});
