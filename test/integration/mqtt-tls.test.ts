// The MQTT front door over TLS with a client certificate, a username and a password read from a
// file (DESIGN.md §3 `mqtt.ca`, `mqtt.cert`, `mqtt.key`, `mqtt.passwordFile`); the password is
// never logged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { MqttService } from '../../src/api/mqtt/index.js';
import { FakeContext } from '../helpers/fake-context.js';
import { Mosquitto, MqttObserver, runTool } from '../helpers/mosquitto.js';

const PASSWORD = 's3cret-Pa55word-XYZ';
let dir: string;
let broker: Mosquitto;

async function openssl(...args: string[]): Promise<void> {
  const r = await runTool('openssl', args);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmsd-mqtt-tls-'));
  const f = (n: string) => join(dir, n);
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=mmsd test CA');
  await writeFile(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const who of ['server', 'client']) {
    await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who === 'server' ? 'localhost' : 'mmsd'}`);
    await openssl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.pem`), '-days', '2', ...(who === 'server' ? ['-extfile', f('san.ext')] : []));
  }
  const pw = await runTool('mosquitto_passwd', ['-c', '-b', f('passwd'), 'mmsd', PASSWORD]);
  if (pw.code !== 0) throw new Error(pw.stderr);
  await writeFile(f('password'), `${PASSWORD}\n`, { mode: 0o600 });
  broker = await Mosquitto.start({
    listener: ['listener {port} 127.0.0.1', `cafile ${f('ca.pem')}`, `certfile ${f('server.pem')}`, `keyfile ${f('server.key')}`, 'require_certificate true'],
    allowAnonymous: false,
    extraConfig: [`password_file ${f('passwd')}`],
  });
});

afterAll(async () => {
  await broker?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('MQTT over TLS with a password file', () => {
  it('connects with the CA, client certificate and password, and never logs the password', async () => {
    const f = (n: string) => join(dir, n);
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const ctx = new FakeContext({ autoSend: true });
    const url = `mqtts://127.0.0.1:${broker.port}`;
    const service = new MqttService({
      ctx,
      config: { url, username: 'mmsd', passwordFile: f('password'), ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key'), baseTopic: 'tls', clientId: 'mmsd-tls' },
      logger: pino({ level: 'trace' }, sink),
    });
    const tls = { ca: await readFile(f('ca.pem')), cert: await readFile(f('client.pem')), key: await readFile(f('client.key')), username: 'mmsd', password: PASSWORD };
    const observer = await MqttObserver.connect(url, ['tls/#'], tls);
    try {
      await service.start();
      expect(service.connected).toBe(true);
      await observer.client.publishAsync('tls/send', JSON.stringify({ id: 't-1', to: ['12345'] }), { qos: 1 });
      await observer.waitForJson('tls/message/t-1', { status: 'sent' });
    } finally {
      await service.stop();
      await observer.end();
    }
    const log = lines.join('');
    expect(log).toContain('connected to the MQTT broker');
    expect(log).not.toContain(PASSWORD);
  });

  it('does not get in with a wrong password, and keeps trying in the background', async () => {
    const f = (n: string) => join(dir, n);
    await writeFile(f('wrong'), 'nope\n');
    const service = new MqttService({
      ctx: new FakeContext(),
      config: { url: `mqtts://127.0.0.1:${broker.port}`, username: 'mmsd', passwordFile: f('wrong'), ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key'), baseTopic: 'tls', clientId: 'mmsd-tls-bad' },
      logger: pino({ level: 'silent' }),
      connectTimeoutMs: 1500,
    });
    try {
      await service.start();
      expect(service.connected).toBe(false);
    } finally {
      await service.stop();
    }
  });

  it('fails start() with a clear error when a file cannot be read', async () => {
    const service = new MqttService({
      ctx: new FakeContext(),
      config: { url: `mqtts://127.0.0.1:${broker.port}`, passwordFile: join(dir, 'missing'), baseTopic: 'tls', clientId: 'x' },
      logger: pino({ level: 'silent' }),
    });
    await expect(service.start()).rejects.toThrow(/mqtt\.passwordFile .*missing: ENOENT/);
  });
});
