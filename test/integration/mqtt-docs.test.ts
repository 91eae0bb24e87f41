// Runs the command blocks of docs/mqtt.md ("Try it") verbatim against the MQTT front door; only the
// broker address comes from the clients' config files ($XDG_CONFIG_HOME).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { MqttService } from '../../src/api/mqtt/index.js';
import { FakeContext } from '../helpers/fake-context.js';
import { Mosquitto, until } from '../helpers/mosquitto.js';
import { pseudoImage } from '../helpers/stack.js';

let broker: Mosquitto;
let dir: string;
/** Each ```sh block of "Try it", as one script. */
let commands: string[];
/** The photo the examples attach: larger than one command-line argument can carry in base64. */
const PHOTO_BYTES = 150 * 1024;
const ctx = new FakeContext();
let service: MqttService;
const background: ChildProcess[] = [];

beforeAll(async () => {
  broker = await Mosquitto.start();
  dir = await mkdtemp(join(tmpdir(), 'mmsd-mqtt-docs-'));
  await mkdir(join(dir, 'xdg'));
  for (const tool of ['mosquitto_pub', 'mosquitto_sub']) await writeFile(join(dir, 'xdg', tool), `-h 127.0.0.1\n-p ${broker.port}\n`);
  await writeFile(join(dir, 'photo.jpg'), pseudoImage(PHOTO_BYTES, 3));
  const doc = await readFile(new URL('../../docs/mqtt.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Try it'));
  commands = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1].trim());
  service = new MqttService({ ctx, config: { url: broker.url, baseTopic: 'mmsd', clientId: 'mmsd-docs' }, logger: pino({ level: 'silent' }) });
  await service.start();
});

afterAll(async () => {
  for (const p of background) if (p.pid !== undefined && p.exitCode === null) process.kill(-p.pid, 'SIGTERM');
  await service.stop();
  await broker.dispose();
  await rm(dir, { recursive: true, force: true });
});

function env(): NodeJS.ProcessEnv {
  return { ...process.env, XDG_CONFIG_HOME: join(dir, 'xdg') };
}

/** Starts a (subscribing) command line in the background; its output accumulates in `out.text`. */
async function startBackground(line: string, ready: string): Promise<{ text: string }> {
  const out = { text: '' };
  const p = spawn('bash', ['-c', line], { cwd: dir, env: env(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  background.push(p);
  p.stdout.on('data', (d: Buffer) => (out.text += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out.text += d.toString()));
  // A subscriber is in place once a retained message (or our probe) arrives on its topics.
  await until(() => out.text.includes(ready), `${line} to be ready`);
  return out;
}

async function run(line: string): Promise<void> {
  const p = spawn('bash', ['-c', line], { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => p.once('close', resolve));
  expect(code, `${line}\n${err}`).toBe(0);
}

describe('docs/mqtt.md examples', () => {
  it('has the commands this test runs', () => {
    expect(commands.map((c) => c.split(/\s/)[0])).toEqual([
      'mosquitto_sub', 'mosquitto_pub', 'mosquitto_sub', 'mosquitto_pub', 'mosquitto_pub', '{', 'base64',
    ]);
    // The file recipes publish a file, not a command-line argument.
    for (const recipe of commands.slice(5)) expect(recipe.split('\n').at(-1)).toMatch(/^mosquitto_pub .* -f request\.json$/);
  });

  it('works as documented', async () => {
    const [watch, send, replies, sendWithReply, cancel, sendFile, sendFileJq] = commands as [string, string, string, string, string, string, string];
    const watched = await startBackground(watch, 'mmsd/availability online');

    await run(send);
    await until(() => watched.text.includes('mmsd/message/hello-1 {"id":"hello-1","status":"queued"'), 'hello-1 queued');
    expect(ctx.attachments.get('hello-1')![0].data.toString()).toBe('Hello from mmsd!');
    ctx.patch('hello-1', { status: 'sending', attempts: 1 });
    ctx.patch('hello-1', { status: 'sent' });
    await until(() => watched.text.includes('"id":"hello-1","status":"sent"'), 'hello-1 sent');

    // The reply subscriber prints nothing until something arrives: probe it first.
    const replyOut = { text: '' };
    const p = spawn('bash', ['-c', replies], { cwd: dir, env: env(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    background.push(p);
    p.stdout.on('data', (d: Buffer) => (replyOut.text += d.toString()));
    const deadline = Date.now() + 15_000;
    while (!replyOut.text.includes('probe probe\n')) {
      if (Date.now() > deadline) throw new Error(`the reply subscriber never got the probe: ${replyOut.text}`);
      await run('mosquitto_pub -V 5 -q 1 -t myapp/replies -D publish correlation-data probe -m probe');
      await new Promise((r) => setTimeout(r, 100));
    }

    await run(sendWithReply);
    await until(() => replyOut.text.includes('req-7 {"id":"hello-2","status":"queued"'), 'the queued reply with its correlation data');
    await run(cancel);
    await until(() => replyOut.text.includes('req-7 {"id":"hello-2","status":"cancelled"'), 'the cancelled reply');
    await until(() => watched.text.includes('"id":"hello-2","status":"cancelled"'), 'hello-2 cancelled');

    // 150 KB: base64 on the command line would exceed Linux's 128 KiB per argument.
    const photo = await readFile(join(dir, 'photo.jpg'));
    expect(Buffer.byteLength(photo.toString('base64'))).toBeGreaterThan(128 * 1024);
    await run(sendFile);
    await until(() => watched.text.includes('"id":"pic-1","status":"queued"'), 'pic-1 queued');
    expect(ctx.attachments.get('pic-1')).toEqual([{ name: 'photo.jpg', contentType: 'image/jpeg', data: photo }]);
    await run(sendFileJq);
    await until(() => watched.text.includes('"id":"pic-2","status":"queued"'), 'pic-2 queued');
    expect(ctx.attachments.get('pic-2')).toEqual([{ name: 'photo.jpg', contentType: 'image/jpeg', data: photo }]);
  });

  it('would fail with the old recipe, base64 in the argument, for this photo', async () => {
    // What the docs showed before: the kernel refuses to start mosquitto_pub.
    const old = `mosquitto_pub -V 5 -q 1 -t mmsd/send -m "{\\"id\\":\\"pic-old\\",\\"to\\":[\\"+4917012345678\\"],\\"attachments\\":[{\\"name\\":\\"photo.jpg\\",\\"data\\":\\"$(base64 -w0 photo.jpg)\\"}]}"`;
    const p = spawn('bash', ['-c', old], { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => p.once('close', resolve));
    expect(code).not.toBe(0);
    expect(err).toMatch(/Argument list too long/);
    expect(ctx.get('pic-old')).toBeUndefined();
  });
});
