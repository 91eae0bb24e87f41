// An independent reading of our encoders: Wireshark's dissectors (tshark) decode the PDUs we make
// and must find what we put in. SMS TPDUs go into a pcap with a user link type mapped to gsm_sms
// (which reassembles segments and hands port 2948 to WSP and MMSE); MMS PDUs travel in a WSP push
// over UDP to port 2948; what the loopback MMSC serves and takes over HTTP (the M-Retrieve.conf of
// a message for the gateway, an M-NotifyResp.ind posted back) goes over TCP port 80, where the HTTP
// dissector hands it to MMSE. tshark and text2pcap must be installed (Debian: apt-get install tshark).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/dbus-daemon.js';
import { encodeAcknowledgeInd, encodeDeliveryInd, encodeNotificationInd, encodeNotifyRespInd, encodeReadOrigInd } from '../../src/mms/notification.js';
import { encodeRetrieveConf } from '../../src/mms/retrieve.js';
import { encodeDeliverPdus, encodeMmsPushSms, encodeWspPush, textUserData } from '../../src/sim/sms-encode.js';
import { MMS_APPLICATION_ID, MMS_CONTENT_TYPE } from '../../src/inbound/wap-push.js';
import { pino } from 'pino';
import { LoopbackMmsc } from '../../src/sim/mmsc.js';
import { sampleInboundRequest } from '../../src/sim/mmsc-inbox.js';

let dir: string;
let env: NodeJS.ProcessEnv;

/** Writes one packet per line in text2pcap's hex dump form. */
function hexDump(packets: Buffer[]): string {
  return packets.map((p) => `000000 ${p.toString('hex').replace(/../g, '$& ')}\n`).join('');
}

/** Runs tshark on a capture and returns one record per frame: field name → value. */
async function dissect(pcap: string, fields: string[], extra: string[] = []): Promise<Record<string, string>[]> {
  const r = await run('tshark', ['-r', pcap, ...extra, '-T', 'fields', '-E', 'separator=\t', '-E', 'occurrence=a', '-E', 'aggregator=;', ...fields.flatMap((f) => ['-e', f])], { env });
  if (r.code !== 0) throw new Error(`tshark failed (${r.code}): ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => Object.fromEntries(line.split('\t').map((v, i) => [fields[i], v])));
}

async function capture(name: string, packets: Buffer[], text2pcapArgs: string[]): Promise<string> {
  const txt = join(dir, `${name}.txt`);
  const pcap = join(dir, `${name}.pcap`);
  await writeFile(txt, hexDump(packets));
  const r = await run('text2pcap', ['-q', ...text2pcapArgs, txt, pcap], { env });
  if (r.code !== 0) throw new Error(`text2pcap failed (${r.code}): ${r.stderr}`);
  return pcap;
}

/** The TPDU of a `+CMGR` PDU: Wireshark's gsm_sms starts after the SMSC field (TS 27.005 §3.1). */
function tpdu(hex: string): Buffer {
  const b = Buffer.from(hex, 'hex');
  return b.subarray(b[0] + 1);
}

/** tshark prints dates as "Nov 14, 2023 22:13:20.000000000 UTC" (TZ=UTC). */
function seconds(tsharkDate: string): number {
  return Date.parse(tsharkDate.replace(/\.\d+ UTC$/, ' UTC')) / 1000;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmsd-tshark-'));
  // Our own Wireshark profile directory: a user's preferences must not change the dissection.
  env = { ...process.env, TZ: 'UTC', WIRESHARK_CONFIG_DIR: dir };
  for (const tool of ['tshark', 'text2pcap']) {
    const r = await run(tool, ['--version'], { env });
    if (r.code !== 0) throw new Error(`${tool} is not installed (Debian/Ubuntu: apt-get install tshark); the Wireshark cross-check of the codecs needs it`);
  }
});

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('Wireshark reads our SMS-DELIVER PDUs', () => {
  const when = new Date('2024-05-06T07:08:09Z');
  const notification = encodeNotificationInd({
    transactionId: 'TX-1',
    mmsVersion: '1.2',
    from: '+4915',
    subject: 'Holiday pictures',
    messageClass: 'personal',
    messageSize: 300_000,
    expiry: { relative: 604_800 },
    contentLocation: `http://mmsc.example/m/${'x'.repeat(200)}`,
  });
  const sms = [
    ...encodeDeliverPdus({ originator: 'Tele2', encoding: 'gsm7', timestamp: when, timezoneMinutes: 120, userData: textUserData('hello [x] €', 'gsm7') }),
    ...encodeDeliverPdus({
      originator: '+8613800138000',
      smsc: '+8613800100500',
      encoding: 'ucs2',
      timestamp: when,
      timezoneMinutes: -300,
      userData: textUserData('中兴通讯 😀', 'ucs2'),
    }),
    ...encodeMmsPushSms(notification, { originator: '+4917', timestamp: when, ref: 0x1234, refBits: 16 }),
    ...encodeDeliverPdus({ originator: '12345', encoding: 'gsm7', timestamp: when, userData: textUserData('{}'.repeat(100), 'gsm7') }, 77, 8),
  ];
  const fields = [
    'gsm_sms.tp-mti',
    'gsm_sms.tp-oa',
    'gsm_sms.dis_field_addr.num_type',
    'gsm_sms.sms_text',
    'gsm_sms.scts.year',
    'gsm_sms.scts.month',
    'gsm_sms.scts.day',
    'gsm_sms.scts.hour',
    'gsm_sms.scts.minutes',
    'gsm_sms.scts.seconds',
    'gsm_sms.scts.timezone',
    'gsm_sms.udh.mm.msg_id',
    'gsm_sms.udh.mm.msg_parts',
    'gsm_sms.udh.mm.msg_part',
    'gsm_sms.destination_port',
    'gsm_sms.originator_port',
    'wsp.TID',
    'wsp.pdu_type',
    'wsp.header.content_type',
    'wsp.header.x_wap_application_id',
    'mmse.message_type',
    'mmse.transaction_id',
    'mmse.mms_version',
    'mmse.from',
    'mmse.subject',
    'mmse.message_class.id',
    'mmse.message_size',
    'mmse.expiry.rel',
    'mmse.content_location',
  ];
  let frames: Record<string, string>[];

  beforeAll(async () => {
    // DLT 147 (USER0) mapped to the gsm_sms dissector; SC→MS direction reads MTI 0 as SMS-DELIVER.
    const pcap = await capture('sms', sms.map(tpdu), ['-l', '147']);
    frames = await dissect(pcap, fields, ['-o', 'uat:user_dlts:"User 0 (DLT=147)","gsm_sms","0","","0",""']);
  });

  it('makes eight frames, each an SMS-DELIVER', () => {
    expect(sms).toHaveLength(8);
    expect(frames.map((f) => f['gsm_sms.tp-mti'])).toEqual(Array(8).fill('0'));
  });

  it('reads the alphanumeric sender, the GSM 7-bit text with its extension table, and the time stamp', () => {
    const f = frames[0];
    expect([f['gsm_sms.tp-oa'], f['gsm_sms.dis_field_addr.num_type'], f['gsm_sms.sms_text']]).toEqual(['Tele2', '5', 'hello [x] €']);
    // 07:08:09 UTC at GMT+2 is 09:08:09 local, zone 8 quarter hours.
    const scts = ['year', 'month', 'day', 'hour', 'minutes', 'seconds', 'timezone'].map((k) => f[`gsm_sms.scts.${k}`]);
    expect(scts).toEqual(['24', '5', '6', '9', '8', '9', '8']);
  });

  it('reads the international sender and the UCS2 text, a surrogate pair included', () => {
    const f = frames[1];
    expect([f['gsm_sms.tp-oa'], f['gsm_sms.dis_field_addr.num_type'], f['gsm_sms.sms_text']]).toEqual(['8613800138000', '1', '中兴通讯 😀']);
    expect([f['gsm_sms.scts.hour'], f['gsm_sms.scts.timezone']]).toEqual(['2', '20']); // GMT-5: 02:08 local
  });

  it('reads the three segments of the WAP push: 16-bit reference, ports 9200 → 2948', () => {
    const push = frames.slice(2, 5);
    expect(push.map((f) => [f['gsm_sms.udh.mm.msg_id'], f['gsm_sms.udh.mm.msg_parts'], f['gsm_sms.udh.mm.msg_part']])).toEqual([
      ['4660', '3', '1'],
      ['4660', '3', '2'],
      ['4660', '3', '3'],
    ]);
    expect(push.map((f) => [f['gsm_sms.destination_port'], f['gsm_sms.originator_port'], f['gsm_sms.tp-oa']])).toEqual(Array(3).fill(['2948', '9200', '4917']));
  });

  it('reassembles them into the WSP push and the M-Notification.ind we encoded', () => {
    const f = frames[4];
    expect([f['wsp.TID'], f['wsp.pdu_type'], f['wsp.header.content_type'], f['wsp.header.x_wap_application_id']]).toEqual([
      '0x01',
      '0x06',
      MMS_CONTENT_TYPE,
      MMS_APPLICATION_ID,
    ]);
    expect(f['mmse.message_type']).toBe('0x82');
    expect(f['mmse.transaction_id']).toBe('TX-1');
    expect(f['mmse.mms_version']).toBe('1.2');
    expect(f['mmse.from']).toBe('+4915/TYPE=PLMN');
    expect(f['mmse.subject']).toBe('Holiday pictures');
    expect(f['mmse.message_class.id']).toBe('0x80');
    expect(Number(f['mmse.message_size'])).toBe(300_000);
    expect(Number(f['mmse.expiry.rel'])).toBe(604_800);
    expect(f['mmse.content_location']).toBe(`http://mmsc.example/m/${'x'.repeat(200)}`);
  });

  it('reads a 7-bit message in three segments with an 8-bit reference, no escape pair cut', () => {
    const seg = frames.slice(5);
    expect(seg.map((f) => [f['gsm_sms.udh.mm.msg_id'], f['gsm_sms.udh.mm.msg_parts'], f['gsm_sms.udh.mm.msg_part']])).toEqual([
      ['77', '3', '1'],
      ['77', '3', '2'],
      ['77', '3', '3'],
    ]);
    // The first two frames show their own text (152 of 153 septets: 76 escaped characters, the
    // next would be cut in two); the last shows the texts of all three, reassembled in order.
    expect([seg[0]['gsm_sms.sms_text'], seg[1]['gsm_sms.sms_text']]).toEqual(['{}'.repeat(38), '{}'.repeat(38)]);
    expect(seg[2]['gsm_sms.sms_text'].split(';')).toEqual(['{}'.repeat(38), '{}'.repeat(38), '{}'.repeat(24)]);
  });
});

describe('Wireshark reads our MMS PDUs in a WSP push', () => {
  const date = 1_700_000_000;
  const pdus = [
    encodeDeliveryInd({ mmsVersion: '1.2', messageId: 'mid-1', to: '+15551234', date, status: 'rejected' }),
    encodeReadOrigInd({ mmsVersion: '1.2', messageId: 'm9', to: '+4911', from: '+4922', date, readStatus: 'read' }),
    encodeNotifyRespInd({ transactionId: 'T1', mmsVersion: '1.2', status: 'retrieved', reportAllowed: true }),
    encodeAcknowledgeInd({ transactionId: 'T2', mmsVersion: '1.2', reportAllowed: false }),
    encodeRetrieveConf({
      transactionId: 'R1',
      mmsVersion: '1.2',
      messageId: 'msg-1',
      date,
      from: '+4912',
      to: ['+4913', '+4914'],
      cc: ['a@example.com'],
      subject: 'Retrieved',
      contentType: 'application/vnd.wap.multipart.related',
      type: 'application/smil',
      start: '<smil>',
      parts: [
        { contentType: 'application/smil', name: 'smil.smil', contentLocation: 'smil.smil', contentId: '<smil>', charset: 'utf-8', data: Buffer.from('<smil/>') },
        { contentType: 'text/plain', charset: 'gbk', name: 'a.txt', contentLocation: 'a.txt', data: Buffer.from([0xc4, 0xe3]) },
        { contentType: 'image/jpeg', name: 'p.jpg', contentLocation: 'p.jpg', data: Buffer.from([0xff, 0xd8, 0xff, 0xd9]) },
      ],
    }),
  ];
  const fields = [
    'udp.dstport',
    'wsp.header.content_type',
    'wsp.header.x_wap_application_id',
    'mmse.message_type',
    'mmse.transaction_id',
    'mmse.message_id',
    'mmse.from',
    'mmse.to',
    'mmse.cc',
    'mmse.date',
    'mmse.status',
    'mmse.read_status',
    'mmse.report_allowed',
    'mmse.subject',
    'wsp.header.content_location',
    'wsp.parameter.name',
    'wsp.parameter.charset',
    'wsp.parameter.start',
  ];
  let frames: Record<string, string>[];

  beforeAll(async () => {
    const pushes = pdus.map((body, i) => encodeWspPush({ tid: i, contentType: { mediaType: MMS_CONTENT_TYPE, params: {} }, applicationId: MMS_APPLICATION_ID, body }));
    const pcap = await capture('wsp', pushes, ['-u', '9200,2948']);
    frames = await dissect(pcap, fields);
  });

  it('reads M-Delivery.ind: Message-ID, To, Date and X-Mms-Status rejected (0x82)', () => {
    const f = frames[0];
    expect([f['udp.dstport'], f['mmse.message_type'], f['mmse.message_id'], f['mmse.to'], f['mmse.status']]).toEqual(['2948', '0x86', 'mid-1', '+15551234/TYPE=PLMN', '0x82']);
    expect(seconds(f['mmse.date'])).toBe(date);
  });

  it('reads M-Read-Orig.ind: From, To and X-Mms-Read-Status read (0x80)', () => {
    const f = frames[1];
    expect([f['mmse.message_type'], f['mmse.message_id'], f['mmse.to'], f['mmse.from'], f['mmse.read_status']]).toEqual(['0x88', 'm9', '+4911/TYPE=PLMN', '+4922/TYPE=PLMN', '0x80']);
    expect(seconds(f['mmse.date'])).toBe(date);
  });

  it('reads M-NotifyResp.ind (retrieved, report allowed) and M-Acknowledge.ind (report not allowed)', () => {
    expect([frames[2]['mmse.message_type'], frames[2]['mmse.transaction_id'], frames[2]['mmse.status'], frames[2]['mmse.report_allowed']]).toEqual(['0x83', 'T1', '0x81', '0x80']);
    expect([frames[3]['mmse.message_type'], frames[3]['mmse.transaction_id'], frames[3]['mmse.report_allowed']]).toEqual(['0x85', 'T2', '0x81']);
  });

  it('reads M-Retrieve.conf: headers, multipart.related with start, and each part', () => {
    const f = frames[4];
    expect([f['mmse.message_type'], f['mmse.transaction_id'], f['mmse.message_id'], f['mmse.from'], f['mmse.to'], f['mmse.cc'], f['mmse.subject']]).toEqual([
      '0x84',
      'R1',
      'msg-1',
      '+4912/TYPE=PLMN',
      '+4913/TYPE=PLMN;+4914/TYPE=PLMN',
      'a@example.com',
      'Retrieved',
    ]);
    expect(seconds(f['mmse.date'])).toBe(date);
    expect(f['wsp.header.content_type'].split(';')).toEqual([MMS_CONTENT_TYPE, 'application/vnd.wap.multipart.related', 'application/smil', 'text/plain', 'image/jpeg']);
    expect(f['wsp.parameter.start']).toBe('<smil>');
    expect(f['wsp.header.content_location'].split(';')).toEqual(['smil.smil', 'a.txt', 'p.jpg']);
    expect(f['wsp.parameter.name'].split(';')).toEqual(['smil.smil', 'a.txt', 'p.jpg']);
    expect(f['wsp.parameter.charset'].split(';').map((c) => c.toLowerCase())).toEqual(['utf-8', 'gbk']);
  });
});

/** Writes `request` on a fresh connection to port `port` and resolves with every byte of the answer. */
function exchange(port: number, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = net.connect({ host: '127.0.0.1', port }, () => sock.end(request));
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

describe('Wireshark reads what the loopback MMSC serves and takes over HTTP', () => {
  const fields = [
    'http.request.method',
    'http.request.uri',
    'http.response.code',
    'http.content_type',
    'mmse.message_type',
    'mmse.transaction_id',
    'mmse.message_id',
    'mmse.from',
    'mmse.to',
    'mmse.subject',
    'mmse.status',
    'mmse.report_allowed',
    'wsp.header.content_type',
    'wsp.parameter.name',
    'wsp.parameter.start',
  ];
  let mmsc: LoopbackMmsc;
  let receipt: ReturnType<LoopbackMmsc['receive']>;
  let response: Record<string, string>;
  let post: Record<string, string>;
  let acks: ReturnType<LoopbackMmsc['receivedAcks']>;

  beforeAll(async () => {
    mmsc = new LoopbackMmsc({ logger: pino({ level: 'silent' }) });
    const { url } = await mmsc.start();
    const port = Number(new URL(url).port);
    receipt = mmsc.receive(sampleInboundRequest());
    const host = new URL(receipt.contentLocation).host;
    // The request a host writes to the module in request-header mode: proxy form, as on MMS APNs.
    const got = await exchange(port, Buffer.from(`GET ${receipt.contentLocation} HTTP/1.1\r\nHost: ${host}\r\nAccept: application/vnd.wap.mms-message\r\nConnection: close\r\n\r\n`));
    const resp = encodeNotifyRespInd({ transactionId: receipt.transactionId, mmsVersion: '1.2', status: 'retrieved', reportAllowed: false });
    const postBytes = Buffer.concat([
      Buffer.from(`POST ${url} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: ${MMS_CONTENT_TYPE}\r\nContent-Length: ${resp.length}\r\nConnection: close\r\n\r\n`),
      resp,
    ]);
    const answer = await exchange(port, postBytes);
    expect(answer.toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    acks = mmsc.receivedAcks();
    await mmsc.stop();
    // One TCP segment each way: the response from port 80, the post to it.
    [response] = await dissect(await capture('http-get', [got], ['-T', '80,40000']), fields);
    [post] = await dissect(await capture('http-post', [postBytes], ['-T', '40001,80']), fields);
  });

  it('reads the served M-Retrieve.conf: headers, the Chinese subject, multipart.related with SMIL as start', () => {
    expect([response['http.response.code'], response['http.content_type']]).toEqual(['200', MMS_CONTENT_TYPE]);
    expect([response['mmse.message_type'], response['mmse.transaction_id'], response['mmse.message_id'], response['mmse.from'], response['mmse.to']]).toEqual([
      '0x84',
      receipt.transactionId,
      receipt.messageId,
      '+8613800138000/TYPE=PLMN',
      '+491700000001/TYPE=PLMN',
    ]);
    // Wireshark 4.0's MMSE shows the text of a charset-tagged Encoded-string-value raw, as ASCII:
    // the Quote (0x7F) WSP §8.4.2.1 puts before a first octet ≥ 0x80, then the 15 UTF-8 octets of
    // the five characters, each a U+FFFD. Later versions may decode it.
    expect(['门口的照片', `\x7f${'\uFFFD'.repeat(Buffer.byteLength('门口的照片'))}`]).toContain(response['mmse.subject']);
    expect(response['wsp.header.content_type'].split(';')).toEqual(['application/vnd.wap.multipart.related', 'application/smil', 'text/plain', 'image/jpeg']);
    expect(response['wsp.parameter.start']).toBe('<smil>');
    expect(response['wsp.parameter.name'].split(';')).toEqual(['smil.smil', 'text.txt', 'photo.jpg']);
  });

  it('reads the M-NotifyResp.ind posted in proxy form, which the MMSC recorded', () => {
    expect([post['http.request.method'], post['http.request.uri'], post['http.content_type']]).toEqual(['POST', expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/mms$/), MMS_CONTENT_TYPE]);
    expect([post['mmse.message_type'], post['mmse.transaction_id'], post['mmse.status'], post['mmse.report_allowed']]).toEqual(['0x83', receipt.transactionId, '0x81', '0x81']);
    expect(acks).toMatchObject([{ type: 'notifyresp', transactionId: receipt.transactionId, status: 'retrieved', reportAllowed: false, id: receipt.id }]);
  });
});
