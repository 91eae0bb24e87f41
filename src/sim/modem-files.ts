// The virtual module's file commands on its RAM store (Quectel FILE note; DESIGN.md §6, §7):
// AT+QFUPL with its upload data mode (ACK mode, checksum, timeout, "+++" escape), AT+QFDWL,
// AT+QFLST, AT+QFDEL, AT+QFLDS. The store is this capability's; others read it through file() and
// has(), and the HTTP stack writes a response body into it through store().
//
// AT+QFDWL answers CONNECT, the file's bytes, then "+QFDWL: <size>,<checksum>" (the checksum of
// AT+QFUPL) and OK, each framed as a result: a CR LF comes between the data and "+QFDWL:", as
// public code that reads real EC2x modules expects.
//
// AT+QFUPL's data timeout and a framed "+++" both end the upload keeping what arrived:
// "+QFUPL: <received>,<checksum>" + "OK" (FILE note: "the data previously uploaded will be
// preserved into the file"). An "A" follows every complete 1024 bytes, the last block included.
//
// The receive buffer (issue 19): the module stores a complete block in `uploadBlockMs` (blocks one
// after another) and sends its "A" then; bytes not yet stored wait in a buffer of
// `uploadBufferBytes`. A byte that finds it full is lost (a UART without flow control overruns):
// the module then takes nothing more, and once the line has been quiet for OVERRUN_QUIET_MS it
// leaves data mode with "+CME ERROR: 409" (fail to write the file) and keeps no file. A host
// that writes more blocks ahead than the buffer holds is caught, never given a corrupt file.
import { checksum16 } from '../at/checksum.js';
import { intParam, isOmitted, type ParsedCommand } from './at-parser.js';
import { cme, error, ok, type Capability, type CommandTable, type DataSink, type ModuleCore, type Reply } from './modem-capability.js';
import { FILE_ERR, RAM_PREFIX, RamFileStore, isValidRamName, normalizeRamName } from './ram-files.js';

export interface ModemFilesOptions {
  /** RAM file store capacity in bytes. */
  ramBytes: number;
  /** Silence before and after "+++" that makes it an escape in upload data mode. */
  escapeGuardMs: number;
  /** Received upload bytes not yet stored that the module can hold; more are lost. 0: no limit. */
  uploadBufferBytes?: number;
  /** Time to store one complete block before its "A"; 0: at once (the buffer never fills). */
  uploadBlockMs?: number;
}

interface Upload {
  key: string;
  buf: Buffer;
  size: number;
  received: number;
  ack: boolean;
  timeoutMs: number;
  lastByteAt: number;
  /** "+" bytes held back as a possible escape sequence. */
  plus: number;
  timeoutTimer: unknown;
  escapeTimer: unknown;
  /** Bytes stored (and acknowledged); received - stored wait in the receive buffer. */
  stored: number;
  storeTimer: unknown;
  /** Bytes lost to a full receive buffer; once > 0 the upload can only fail. */
  lost: number;
  quietTimer: unknown;
}

const ACK_BLOCK = 1024;
const PLUS = 0x2b;
/** After an overrun: the silence after which the module reports it. */
export const OVERRUN_QUIET_MS = 100;

export class ModemFiles implements Capability {
  readonly name = 'files';
  readonly commands: CommandTable;
  private readonly ram: RamFileStore;
  private readonly guardMs: number;
  private readonly bufferBytes: number;
  private readonly blockMs: number;
  private readonly sink: DataSink = { byte: (b, now) => this.dataByte(b, now) };
  private upload: Upload | undefined;

  constructor(
    private readonly core: ModuleCore,
    opts: ModemFilesOptions,
  ) {
    this.ram = new RamFileStore(opts.ramBytes);
    this.guardMs = opts.escapeGuardMs;
    this.bufferBytes = opts.uploadBufferBytes ?? 0;
    this.blockMs = opts.uploadBlockMs ?? 0;
    this.commands = {
      '+QFUPL': (c) => this.cmdQfupl(c),
      '+QFDWL': (c) => this.cmdQfdwl(c),
      '+QFLST': (c) => this.cmdQflst(c),
      '+QFDEL': (c) => this.cmdQfdel(c),
      '+QFLDS': (c) => this.cmdQflds(c),
    };
  }

  reset(): void {
    this.ram.clear();
    this.upload = undefined;
  }

  halt(): void {
    this.upload = undefined;
  }

  /** Contents of a RAM file ("RAM:x" in any case of the prefix). */
  file(name: string): Buffer | undefined {
    return this.ram.get(normalizeRamName(name));
  }

  has(name: string): boolean {
    return this.ram.has(normalizeRamName(name));
  }

  /**
   * Writes a file the module made itself (AT+QHTTPREADFILE): 0, or the FILE error that stopped it
   * (no space; the name taken meanwhile).
   */
  store(name: string, data: Buffer): number {
    const key = normalizeRamName(name);
    if (this.ram.has(key)) return FILE_ERR.fileExists;
    if (data.length > this.ram.free) return FILE_ERR.noSpace;
    this.ram.put(key, data);
    return 0;
  }

  /** What GET /state shows of the store. */
  state(): { ramFiles: { name: string; size: number }[]; ram: { free: number; total: number } } {
    return {
      ramFiles: this.ram.list().map((f) => ({ name: f.name, size: f.data.length })),
      ram: { free: this.ram.free, total: this.ram.capacity },
    };
  }

  // ── AT+QFUPL and its data mode ──

  private cmdQfupl(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok([`+QFUPL: <filename>,(1-${this.ram.free}),(1-65535),(0,1)`]);
    if (c.form !== 'set' || c.params.length > 4 || !c.params[0]?.quoted) return error();
    const name = c.params[0].value;
    if (!isValidRamName(name)) return cme(FILE_ERR.invalidFileName);
    const key = normalizeRamName(name);
    if (this.ram.has(key)) return cme(FILE_ERR.fileExists);
    const size = isOmitted(c.params[1]) ? 10240 : intParam(c.params[1]);
    const timeoutS = isOmitted(c.params[2]) ? 5 : intParam(c.params[2]);
    const ackMode = isOmitted(c.params[3]) ? 0 : intParam(c.params[3]);
    if (size === undefined || size < 1) return cme(FILE_ERR.invalidInput);
    if (timeoutS === undefined || timeoutS < 1 || timeoutS > 65535) return cme(FILE_ERR.invalidInput);
    if (ackMode === undefined || ackMode > 1) return cme(FILE_ERR.invalidInput);
    if (size > this.ram.capacity) return cme(FILE_ERR.fileTooLarge);
    if (size > this.ram.free) return cme(FILE_ERR.noSpace);
    return {
      lines: [],
      final: 'CONNECT',
      after: () => this.enterUpload(key, size, timeoutS * this.core.secondMs, ackMode === 1),
    };
  }

  private enterUpload(key: string, size: number, timeoutMs: number, ack: boolean): void {
    const now = this.core.clock.now();
    this.core.enterDataMode(this.sink);
    this.upload = {
      key,
      buf: Buffer.alloc(size),
      size,
      received: 0,
      ack,
      timeoutMs,
      lastByteAt: now,
      plus: 0,
      timeoutTimer: undefined,
      escapeTimer: undefined,
      stored: 0,
      storeTimer: undefined,
      lost: 0,
      quietTimer: undefined,
    };
    this.armUploadTimeout(timeoutMs);
  }

  private armUploadTimeout(ms: number): void {
    const up = this.upload;
    if (!up) return;
    up.timeoutTimer = this.core.after(ms, () => {
      if (this.upload !== up) return;
      const idle = this.core.clock.now() - up.lastByteAt;
      if (idle + 0.5 >= up.timeoutMs) this.finishUpload('timeout');
      else this.armUploadTimeout(up.timeoutMs - idle);
    });
  }

  /** One byte in upload data mode: data, or part of a "+++" framed by guard silence (§6). */
  private dataByte(b: number, now: number): void {
    const up = this.upload;
    if (!up) return;
    if (up.escapeTimer !== undefined) {
      // Something followed "+++" within the guard time: it was data after all.
      this.core.cancel(up.escapeTimer);
      up.escapeTimer = undefined;
    }
    const silentBefore = now - up.lastByteAt >= this.guardMs;
    const couldEscape = up.received + up.plus + 1 < up.size;
    if (b === PLUS && up.plus < 3 && couldEscape && (up.plus > 0 || silentBefore)) {
      up.plus++;
      up.lastByteAt = now;
      if (up.plus === 3) up.escapeTimer = this.core.after(this.guardMs, () => this.maybeEscape(up));
      return;
    }
    this.flushPlus(up);
    up.lastByteAt = now;
    if (this.upload === up) this.appendData(up, b);
  }

  private flushPlus(up: Upload): void {
    while (up.plus > 0 && this.upload === up) {
      up.plus--;
      this.appendData(up, PLUS);
    }
    up.plus = 0;
  }

  private maybeEscape(up: Upload): void {
    up.escapeTimer = undefined;
    if (this.upload !== up) return;
    // Bytes that reached the module by now break the silence after "+++".
    if (this.core.processLateInput()) return;
    if (this.core.clock.now() - up.lastByteAt + 0.5 < this.guardMs) return;
    up.plus = 0;
    this.core.log.info({ file: up.key, received: up.received }, 'upload ended by +++');
    this.finishUpload('escape');
  }

  private appendData(up: Upload, b: number): void {
    if (up.lost > 0 || (this.bufferBytes > 0 && up.received - up.stored >= this.bufferBytes)) return this.overrun(up);
    up.buf[up.received++] = b;
    if (up.received % ACK_BLOCK !== 0 && up.received !== up.size) return;
    if (this.blockMs === 0) this.storeUpTo(up, up.received);
    else if (up.storeTimer === undefined) this.storeLater(up);
  }

  /** The next complete block (or the last part) is stored after uploadBlockMs, then the next. */
  private storeLater(up: Upload): void {
    up.storeTimer = this.core.after(this.blockMs, () => {
      up.storeTimer = undefined;
      if (this.upload !== up || up.lost > 0) return;
      this.storeUpTo(up, Math.min(up.stored + ACK_BLOCK, up.size));
      const waiting = up.received - up.stored >= ACK_BLOCK || (up.received === up.size && up.stored < up.size);
      if (this.upload === up && waiting) this.storeLater(up);
    });
  }

  /** Bytes up to `end` are stored: an "A" for each block completed, and the end of the upload. */
  private storeUpTo(up: Upload, end: number): void {
    const blocksBefore = Math.floor(up.stored / ACK_BLOCK);
    up.stored = end;
    const acks = Math.floor(end / ACK_BLOCK) - blocksBefore;
    if (up.ack && acks > 0) this.core.write('A'.repeat(acks));
    if (up.stored === up.size) this.finishUpload('complete');
  }

  /** A byte found the receive buffer full: lost; the module reports it once the line is quiet. */
  private overrun(up: Upload): void {
    if (up.lost++ === 0) {
      this.core.cancel(up.storeTimer);
      up.storeTimer = undefined;
      this.core.log.warn({ file: up.key, received: up.received, buffer: this.bufferBytes }, 'upload receive buffer overrun: bytes lost');
    }
    this.core.cancel(up.quietTimer);
    up.quietTimer = this.core.after(OVERRUN_QUIET_MS, () => {
      if (this.upload !== up) return;
      this.core.cancel(up.timeoutTimer);
      this.core.cancel(up.escapeTimer);
      this.upload = undefined;
      this.core.log.info({ file: up.key, received: up.received, lost: up.lost }, 'upload failed: receive buffer overrun');
      this.core.leaveDataMode(cme(FILE_ERR.writeFailed));
    });
  }

  private finishUpload(reason: 'complete' | 'timeout' | 'escape'): void {
    const up = this.upload;
    if (!up) return;
    this.core.cancel(up.timeoutTimer);
    this.core.cancel(up.escapeTimer);
    this.core.cancel(up.storeTimer);
    this.core.cancel(up.quietTimer);
    this.upload = undefined;
    if (up.lost > 0) {
      this.core.log.info({ file: up.key, received: up.received, lost: up.lost, reason }, 'upload failed: receive buffer overrun');
      this.core.leaveDataMode(cme(FILE_ERR.writeFailed));
      return;
    }
    const data = Buffer.from(up.buf.subarray(0, up.received));
    this.ram.put(up.key, data);
    this.core.log.debug({ file: up.key, size: data.length, reason }, 'upload finished');
    this.core.leaveDataMode(ok([`+QFUPL: ${data.length},${checksum16(data).toString(16)}`]));
  }

  // ── AT+QFDWL ──

  private cmdQfdwl(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok(['+QFDWL: <filename>']);
    if (c.form !== 'set' || c.params.length > 2 || !c.params[0]?.quoted) return error();
    const name = c.params[0].value;
    if (!name.toUpperCase().startsWith(RAM_PREFIX)) return cme(FILE_ERR.fileNotFound);
    if (!isValidRamName(name)) return cme(FILE_ERR.invalidFileName);
    const data = this.ram.get(normalizeRamName(name));
    if (!data) return cme(FILE_ERR.fileNotFound);
    return {
      lines: [],
      final: 'CONNECT',
      after: () => {
        // The bytes go out as one piece; the host's bytes meanwhile are ignored and URCs wait.
        this.core.enterDataMode({ byte: () => undefined });
        this.core.write(data);
        this.core.leaveDataMode(ok([`+QFDWL: ${data.length},${checksum16(data).toString(16)}`]));
      },
    };
  }

  // ── listing, deleting, free space ──

  private cmdQflst(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok();
    if (c.form === 'exec') return ok(); // UFS: nothing stored there in the emulation.
    if (c.form !== 'set' || c.params.length !== 1) return error();
    const pattern = c.params[0].value;
    if (!pattern.toUpperCase().startsWith(RAM_PREFIX)) return pattern.includes('*') ? ok() : cme(FILE_ERR.fileNotFound);
    const files = this.ram.list(normalizeRamName(pattern));
    if (files.length === 0 && !pattern.includes('*')) return cme(FILE_ERR.fileNotFound);
    return ok(files.map((f) => `+QFLST: "${f.name}",${f.data.length}`));
  }

  private cmdQfdel(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok();
    if (c.form !== 'set' || c.params.length !== 1) return error();
    const name = c.params[0].value;
    if (!name.toUpperCase().startsWith(RAM_PREFIX)) return name === '*' ? ok() : cme(FILE_ERR.fileNotFound);
    if (name.slice(RAM_PREFIX.length) === '*') {
      this.ram.clear();
      return ok();
    }
    return this.ram.delete(normalizeRamName(name)) ? ok() : cme(FILE_ERR.fileNotFound);
  }

  private cmdQflds(c: ParsedCommand): Reply {
    if (c.form === 'test') return ok();
    const where = c.form === 'set' ? c.params[0]?.value.toUpperCase() : 'UFS';
    if (where === 'RAM') return ok([`+QFLDS: ${this.ram.free},${this.ram.capacity}`]);
    if (where === 'UFS') return ok(['+QFLDS: 10485760,10485760']);
    return cme(FILE_ERR.invalidInput);
  }
}
