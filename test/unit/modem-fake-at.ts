// A scripted AtCommander for the modem driver's unit tests: answers from a table (a healthy
// module by default) or one-shot scripts, records the transcript, and emits urc/connected/disconnected.
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { AtErrorResult, ClosedError, CmeError } from '../../src/at/errors.js';
import type { AtCommander, AtResponse, CommandOptions, UploadOptions, UploadResult } from '../../src/at/types.js';
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

export class FakeAt extends EventEmitter implements AtCommander {
  isConnected = true;
  /** Every command written, in order (uploads included). */
  readonly transcript: string[] = [];
  readonly commandOptions: { cmd: string; opts?: CommandOptions }[] = [];
  readonly uploads: { cmd: string; data: Buffer; opts?: UploadOptions }[] = [];
  private readonly table = new Map<string, Reply>(HEALTHY);
  private readonly scripts = new Map<string, Reply[]>();

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

  count(cmd: string): number {
    return this.transcript.filter((c) => c === cmd).length;
  }

  clear(): void {
    this.transcript.length = 0;
  }

  urc(line: string): void {
    this.emit('urc', line);
  }

  disconnect(): void {
    this.isConnected = false;
    this.emit('disconnected', new Error('fake port lost'));
  }

  connect(): void {
    this.isConnected = true;
    this.emit('connected');
  }

  async command(cmd: string, opts?: CommandOptions): Promise<AtResponse> {
    if (!this.isConnected) throw new ClosedError(cmd);
    this.transcript.push(cmd);
    this.commandOptions.push({ cmd, opts });
    const queued = this.scripts.get(cmd);
    let r: Reply = queued?.shift() ?? this.table.get(cmd) ?? [];
    if (typeof r === 'function') r = await r(cmd);
    if (r instanceof Error) throw r;
    return { lines: r };
  }

  async upload(cmd: string, data: Buffer, opts?: UploadOptions): Promise<UploadResult> {
    if (!this.isConnected) throw new ClosedError(cmd);
    this.transcript.push(cmd);
    this.uploads.push({ cmd, data, opts });
    await Promise.resolve();
    opts?.onProgress?.(data.length, data.length);
    const checksum = checksum16(data);
    return { lines: [`+QFUPL: ${data.length},${checksum.toString(16)}`], size: data.length, checksum };
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
