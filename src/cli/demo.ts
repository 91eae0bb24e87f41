#!/usr/bin/env node
// `npm run demo`: the daemon against the virtual modem and its loopback MMSC on a private D-Bus
// bus; sends one MMS with a UTF-8 subject, a text part and a generated image through
// `mmsctl send --wait`, prints what the MMSC received, and stops everything it started.
import { spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { MMSCTL_BIN, Testbed } from '../harness/testbed.js';

/** A PNG of `w`×`h` RGB pixels: a colour gradient with some noise, so that it weighs something. */
export function makePng(w: number, h: number, seed = 1): Buffer {
  let x = seed;
  const rnd = (): number => ((x = (x * 1103515245 + 12345) >>> 0) >>> 24) & 0x3f;
  const raw = Buffer.alloc(h * (1 + w * 3));
  for (let y = 0; y < h; y++) {
    const row = y * (1 + w * 3);
    raw[row] = 0; // filter: none
    for (let i = 0; i < w; i++) {
      const p = row + 1 + i * 3;
      raw[p] = ((i * 255) / w + rnd()) & 0xff;
      raw[p + 1] = ((y * 255) / h + rnd()) & 0xff;
      raw[p + 2] = (128 + rnd()) & 0xff;
    }
  }
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit, truecolour, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: 'inherit' });
    p.on('error', reject);
    p.on('exit', (code) => resolve(code ?? 1));
  });
}

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

async function main(): Promise<number> {
  const started = Date.now();
  if (!has('dbus-daemon')) {
    console.error('The demo runs a private D-Bus bus: install dbus first (apt-get install -y dbus).');
    return 1;
  }
  // A pty pair needs socat; without it the virtual modem is served over tcp:// (as ser2net would).
  const tcp = !has('socat');
  const line = tcp ? 'tcp://' : 'a pty';
  console.log(`mmsd demo: starting the virtual modem on ${line} (921600 baud), its loopback MMSC, a private D-Bus bus and mmsd …`);
  const tb = await Testbed.start({ dbus: true, tcp, simArgs: ['--baud', '921600'], logLevel: 'info' });
  try {
    await tb.modemReady();
    console.log(`  modem port ${tb.simInfo.port}, MMSC ${tb.simInfo.mmsc}, state dir ${tb.stateDir}\n`);
    const text = join(tb.dir, 'note.txt');
    const picture = join(tb.dir, 'picture.png');
    await writeFile(text, 'Hello from mmsd 👋 — 这是一条测试彩信。\n');
    await writeFile(picture, makePng(200, 160));
    const args = [
      MMSCTL_BIN, 'send', '--bus', 'session',
      '--to', '+15551234567', '--to', 'alice@example.com', '--cc', '+15557654321',
      '--subject', 'Grüße aus dem Router — 你好 📡',
      '--attach', `${text}:text/plain`, '--attach', picture,
      '--wait',
    ];
    console.log(`$ mmsctl ${args.slice(1).map((a) => (/[\s—]/.test(a) ? `'${a}'` : a)).join(' ')}`);
    const code = await run(process.execPath, args, tb.env);
    console.log(`\nmmsctl exited ${code}\n`);
    const received = await tb.received();
    console.log(`The loopback MMSC received ${received.length} message(s):`);
    for (const m of received) {
      console.log(`  id       ${m.id}`);
      console.log(`  to       ${m.to.join(', ')}`);
      if (m.cc.length) console.log(`  cc       ${m.cc.join(', ')}`);
      if (m.bcc.length) console.log(`  bcc      ${m.bcc.join(', ')}`);
      console.log(`  subject  ${m.subject ?? '(none)'}`);
      for (const p of m.parts) console.log(`  part     ${p.name.padEnd(22)} ${p.contentType.padEnd(18)} ${String(p.size).padStart(7)} bytes  sha256 ${p.sha256}`);
    }
    console.log(`\ndone in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return code === 0 && received.length === 1 ? 0 : 1;
  } finally {
    await tb.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`demo failed: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
