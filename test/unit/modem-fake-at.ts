// A scripted AtCommander for the modem driver's unit tests: answers from a table (a healthy
// module by default) or one-shot scripts, records the transcript, routes URCs through the real
// router of src/at to whoever registered them, and emits connected/disconnected.
import { TypedEmitter } from '../../src/core/events.js';
import { pino } from 'pino';
import { AtErrorResult, ClosedError, CmeError, TimeoutError } from '../../src/at/errors.js';
import type {
  AtCommander,
  AtCommanderEvents,
  AtResponse,
  CommandOptions,
  DataModeProtocol,
  DataModeReply,
  DataModeSession,
  PduCommandOptions,
  PduResponse,
} from '../../src/at/types.js';
import { UrcRouter, type UrcHandler, type UrcOptions } from '../../src/at/urc-router.js';
import { checksum16 } from '../../src/at/checksum.js';
import type { ModemConfig } from '../../src/modem/config.js';
import type { QuectelModem } from '../../src/modem/quectel.js';
import type { ModemState, ModemStatus } from '../../src/modem/types.js';

/** Info lines, an error to throw, or a function of the command giving either (possibly later). */
export type Reply = string[] | Error | ((cmd: string) => string[] | Error | Promise<string[] | Error>);

export const cme = (code: number) => new CmeError('(fake)', code);
export const error = () => new AtErrorResult('(fake)');

/** The answers of a healthy, registered module with no active context. */
export const HEALTHY: ReadonlyMap<string, Reply> = new Map<string, Reply>([
  ['AT+CGSN', ['866758040000001']],
  ['AT+CGMI', ['Quectel']],
  ['AT+CGMM', ['EC25']],
  ['AT+CGMR', ['Revision: EC25EFAR06A11M4G']],
  ['AT+CPIN?', ['+CPIN: READY']],
  ['AT+CGREG?', ['+CGREG: 2,1,"1A2B","01C3D4E",7']],
  ['AT+CEREG?', ['+CEREG: 2,1,"1A2B","01C3D4E",7']],
  ['AT+CGATT?', ['+CGATT: 1']],
  ['AT+CSQ', ['+CSQ: 21,99']],
  ['AT+COPS?', ['+COPS: 0,0,"Test Net",7']],
  ['AT+QIACT?', []],
  ['AT+CIMI', ['001010123456789']],
  ['AT+QCCID', ['+QCCID: 89860000000000000001']],
  ['AT+QSPN', ['+QSPN: "Test Net","Test","Test SPN",0,"00101"']],
  ['AT+QICSGP=1', ['+QICSGP: 1,"internet","","",0']],
]);

/**
 * What the fake module does for a data-mode command other than an upload (FakeAt.transfer): the
 * lines before OK once the host wrote its block (a URL, a request), or, for a download, the bytes
 * after CONNECT and the text after them up to OK — cut where the protocol's rawBytesAfter says,
 * as the channel does.
 */
export interface FakeTransfer {
  afterSend?: (data: Buffer) => string[] | Error;
  download?: { data: Buffer; trailer: string };
}

export class FakeAt extends TypedEmitter<AtCommanderEvents> implements AtCommander {
  isConnected = true;
  /** The URC registrations the driver made; a handler that throws fails the test. */
  readonly urcs = new UrcRouter((err) => {
    throw err;
  });
  /** Every command written, in order (uploads included). */
  readonly transcript: string[] = [];
  readonly commandOptions: { cmd: string; opts?: CommandOptions }[] = [];
  /** Every data-mode transfer: its command, the bytes the protocol sent, the options. */
  readonly uploads: { cmd: string; data: Buffer; opts?: CommandOptions; writes: number[] }[] = [];
  private readonly table = new Map<string, Reply>(HEALTHY);
  private readonly scripts = new Map<string, Reply[]>();
  private readonly transfers = new Map<string, FakeTransfer | Error | ((cmd: string) => FakeTransfer | Error)>();

  /** The lasting answer to `cmd`. */
  reply(cmd: string, r: Reply): this {
    this.table.set(cmd, r);
    return this;
  }

  /** One-shot answers to `cmd`, used in order before the lasting one. */
  script(cmd: string, ...rs: Reply[]): this {
    this.scripts.set(cmd, [...(this.scripts.get(cmd) ?? []), ...rs]);
    return this;
  }

  /** How the module answers data-mode commands starting with `prefix` (an Error: instead of CONNECT). */
  transfer(prefix: string, t: FakeTransfer | Error | ((cmd: string) => FakeTransfer | Error)): this {
    this.transfers.set(prefix, t);
    return this;
  }

  count(cmd: string): number {
    return this.transcript.filter((c) => c === cmd).length;
  }

  clear(): void {
    this.transcript.length = 0;
  }

  onUrc(prefix: string, handler: UrcHandler, opts?: UrcOptions): () => void {
    return this.urcs.add(prefix, handler, opts);
  }

  /** The module sends a URC (with its trailing lines); false when nobody registered for it. */
  urc(line: string, ...trailing: string[]): boolean {
    const routed = this.urcs.route(line);
    for (const t of trailing) this.urcs.take(t);
    return routed;
  }

  disconnect(): void {
    this.isConnected = false;
    this.emit('disconnected', new Error('fake port lost'));
  }

  connect(): void {
    this.isConnected = true;
    this.emit('connected');
  }

  command(cmd: string, opts: PduCommandOptions): Promise<PduResponse>;
  command(cmd: string, opts?: CommandOptions): Promise<AtResponse>;
  /** A PDU command's lines are header, PDU, header, PDU …: paired as the channel does. */
  async command(cmd: string, opts?: CommandOptions): Promise<AtResponse | PduResponse> {
    if (!this.isConnected) throw new ClosedError(cmd);
    this.transcript.push(cmd);
    this.commandOptions.push({ cmd, opts });
    const queued = this.scripts.get(cmd);
    let r: Reply = queued?.shift() ?? this.table.get(cmd) ?? [];
    if (typeof r === 'function') r = await r(cmd);
    if (r instanceof Error) throw r;
    if (!opts?.pdu) return { lines: r };
    const lines = r;
    return { lines, pdus: lines.flatMap((header, i) => (i % 2 === 0 ? [{ header, body: lines[i + 1] ?? '' }] : [])) };
  }

  /**
   * Runs the protocol against a module that takes an ACK-mode upload of the size the command
   * announces: "A" after each block but the last, then "+QFUPL: <size>,<checksum>".
   */
  async dataMode<R>(cmd: string, protocol: DataModeProtocol<R>, opts?: CommandOptions): Promise<R> {
    if (!this.isConnected) throw new ClosedError(cmd);
    this.transcript.push(cmd);
    const key = [...this.transfers.keys()].filter((k) => cmd.startsWith(k)).sort((a, b) => b.length - a.length)[0];
    if (key !== undefined) return this.runTransfer(cmd, key, protocol, opts);
    const size = Number(/^AT\+QFUPL="[^"]*",(\d+)/.exec(cmd)?.[1] ?? NaN);
    const got: Buffer[] = [];
    const record = { cmd, data: Buffer.alloc(0), opts, writes: [] as number[] };
    this.uploads.push(record);
    const session: DataModeSession = {
      command: cmd,
      connectLine: 'CONNECT',
      log: silentLogger,
      send: async (data: Buffer): Promise<DataModeReply> => {
        await Promise.resolve();
        got.push(Buffer.from(data));
        record.writes.push(data.length);
        record.data = Buffer.concat(got);
        if (record.data.length < size) return { kind: 'token', token: 'A' };
        return { kind: 'final', lines: [`+QFUPL: ${record.data.length},${checksum16(record.data).toString(16)}`] };
      },
      receive: () => Promise.reject(new Error(`FakeAt: ${cmd} is no download`)),
    };
    return protocol.run(session);
  }

  private async runTransfer<R>(cmd: string, key: string, protocol: DataModeProtocol<R>, opts?: CommandOptions): Promise<R> {
    await Promise.resolve();
    const entry = this.transfers.get(key);
    const t = typeof entry === 'function' ? entry(cmd) : entry;
    if (t === undefined) throw new Error(`FakeAt: no transfer for ${cmd}`);
    if (t instanceof Error) throw t;
    const record = { cmd, data: Buffer.alloc(0), opts, writes: [] as number[] };
    this.uploads.push(record);
    let finalLines: string[] | undefined;
    const timeout = (): TimeoutError => new TimeoutError(cmd, opts?.timeoutMs ?? 0);
    const session: DataModeSession = {
      command: cmd,
      connectLine: 'CONNECT',
      log: silentLogger,
      send: async (data: Buffer): Promise<DataModeReply> => {
        await Promise.resolve();
        record.data = Buffer.concat([record.data, data]);
        const r = t.afterSend?.(record.data) ?? [];
        if (r instanceof Error) throw r;
        return { kind: 'final', lines: r };
      },
      receive: async (until): Promise<DataModeReply> => {
        await Promise.resolve();
        if (!t.download) throw new Error(`FakeAt: ${cmd} is no download`);
        if (until === 'final') {
          if (finalLines === undefined) throw timeout();
          return { kind: 'final', lines: finalLines };
        }
        const n = protocol.rawBytesAfter?.('CONNECT') ?? 0;
        const stream = Buffer.concat([t.download.data, Buffer.from(t.download.trailer, 'latin1')]);
        const rest = stream.subarray(n).toString('latin1').split(/\r\n/).map((l) => l.trim()).filter((l) => l !== '');
        const ok = rest.indexOf('OK');
        // Fewer bytes than the protocol waits for: the module's OK was eaten as data; nothing else comes.
        if (n > stream.length || ok < 0) throw timeout();
        finalLines = rest.slice(0, ok);
        return { kind: 'bytes', data: stream.subarray(0, n) };
      },
    };
    return protocol.run(session);
  }

  escapeDataMode(): Promise<void> {
    return Promise.resolve();
  }
}

export const silentLogger = pino({ level: 'silent' });

export function testConfig(over: Partial<ModemConfig> = {}): ModemConfig {
  return {
    pdp: { contextId: 1, apn: 'internet', username: '', password: '', auth: 0 },
    mms: {
      mmsc: 'http://mmsc.example/mms',
      proxyHost: '10.0.0.172',
      proxyPort: 80,
      charset: 'UTF8',
      validity: 6,
      priority: 3,
      deliveryReport: false,
      readReport: false,
      visibility: 2,
      class: 4,
      supportField: 0,
      connectTimeoutS: 125,
    },
    healthIntervalS: 30,
    commandTimeoutMs: 5000,
    rebootMinIntervalS: 600,
    ...over,
  };
}

/** The bring-up transcript of DESIGN.md §6 for `testConfig()` against a healthy module. */
export const STARTUP: readonly string[] = [
  'AT',
  'ATE0',
  'AT+CMEE=1',
  'AT+CGSN',
  'AT+CGMI',
  'AT+CGMM',
  'AT+CGMR',
  'AT+CGREG=2',
  'AT+CEREG=2',
  'AT+CPIN?',
  'AT+CGREG?',
  'AT+CEREG?',
  'AT+CGATT?',
  'AT+CSQ',
  'AT+COPS?',
  'AT+CIMI',
  'AT+QCCID',
  'AT+QSPN',
  'AT+QIACT?',
  'AT+QICSGP=1,1,"internet","","",0',
  'AT+QIACT=1',
  'AT+QMMSCFG="contextid",1',
  'AT+QMMSCFG="mmsc","http://mmsc.example/mms"',
  'AT+QMMSCFG="proxy","10.0.0.172",80',
  'AT+QMMSCFG="sendparam",6,3,0,0,2,4',
  'AT+QMMSCFG="character","ASCII"',
  'AT+QMMSCFG="supportfield",0',
  'AT+QMMSCFG="connecttimeout",125',
];

/** Resolves with the status once the modem is in `state` (now or later). */
export function whenState(modem: QuectelModem, state: ModemState): Promise<ModemStatus> {
  if (modem.status.state === state) return Promise.resolve(modem.status);
  return nextState(modem, state);
}

/** Resolves with the next 'status' event whose state is `state` (not the current one). */
/** Starts the modem, waits until it is ready, and forgets the start-up's commands. */
export async function startReady(modem: QuectelModem, at: FakeAt): Promise<void> {
  await modem.start();
  await whenState(modem, 'ready');
  at.clear();
}

export function nextState(modem: QuectelModem, state: ModemState): Promise<ModemStatus> {
  return new Promise((resolve) => {
    const on = (s: ModemStatus): void => {
      if (s.state !== state) return;
      modem.off('status', on);
      resolve(s);
    };
    modem.on('status', on);
  });
}

/** A promise with its resolve exposed, to hold a command's answer until the test releases it. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
