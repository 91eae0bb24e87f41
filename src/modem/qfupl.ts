// The upload of a file in ACK mode (FILE note: AT+QFUPL=<name>,<size>,<timeout>,1; DESIGN.md §6):
// after CONNECT, blocks of 1024 bytes, each acknowledged by a bare "A"; after the last one
// "+QFUPL: <size>,<checksum>" and OK (a stray "A" may come first). A data-mode protocol the AT
// channel runs (DESIGN.md §1: the channel knows no vendor).
//
// A window of blocks may be in flight (issue 19): up to `window` blocks are written before their
// "A"s are awaited, as fwupd's Quectel DFOTA updater (plugins/modem-manager/fu-dfota-updater.c)
// writes 2,048 bytes and then reads two "A"s. Each "A" lets one more block go. The size and
// checksum the module reports stay the only proof that every byte arrived: a lost "A" takes one
// place of the window (with none left, the upload times out), and a module whose receive buffer
// overflowed answers an error or a short file.
import { checksum16 } from '../at/checksum.js';
import { AtError, ChecksumError } from '../at/errors.js';
import type { AtCommander, AtResponse, CommandOptions, DataModeProtocol, DataModeSession } from '../at/types.js';
import { RESTART_URC } from './urcs.js';

export interface UploadOptions extends CommandOptions {
  /** Bytes per ACK block (module sends "A" after each). Default 1024. */
  blockSize?: number;
  /** Blocks written before their "A"s are awaited, 1 (stop-and-wait) to MAX_UPLOAD_WINDOW. Default 1. */
  window?: number;
  /** Called after each acknowledged block with the bytes acknowledged so far and total. */
  onProgress?: (sent: number, total: number) => void;
}

/** The most blocks in flight an upload allows (modem.uploadWindow's bound). */
export const MAX_UPLOAD_WINDOW = 8;

export interface UploadResult extends AtResponse {
  /** Size the module reported in "+QFUPL: <size>,<checksum>". */
  size: number;
  /** Checksum the module reported (16-bit XOR, as number). */
  checksum: number;
}

/** The module's acknowledgement of a block: "A", without CR/LF. */
const ACK = 'A';
const RESULT = /^\+QFUPL:\s*(\d+)\s*,\s*([0-9A-Fa-f]+)\s*$/i;

export class QfuplUpload implements DataModeProtocol<UploadResult> {
  readonly name = 'upload';
  readonly tokens = [ACK];
  /** A restarted module is in command mode: the next ACK never comes. */
  readonly restartUrcs = [RESTART_URC];
  readonly logFields: Readonly<Record<string, unknown>>;

  constructor(
    private readonly data: Buffer,
    private readonly blockSize: number,
    private readonly onProgress?: (sent: number, total: number) => void,
    private readonly window = 1,
  ) {
    this.logFields = { size: data.length, blockSize, window };
  }

  async run(s: DataModeSession): Promise<UploadResult> {
    const total = this.data.length;
    let sent = 0;
    let inFlight = 0;
    let acked = 0;
    let finalLines: string[] | undefined;
    while (finalLines === undefined) {
      // Fill the window: the blocks that may go now leave in one write.
      const blocks = this.window - inFlight;
      const chunk = this.data.subarray(sent, sent + blocks * this.blockSize);
      const last = sent + chunk.length >= total;
      const r = await s.send(chunk, last ? 'final' : 'token');
      sent += chunk.length;
      inFlight += Math.ceil(chunk.length / this.blockSize);
      // OK before the last block: the module took fewer bytes than we have; the size check says so.
      if (r.kind === 'final') finalLines = r.lines;
      else {
        inFlight--;
        acked += 1;
        this.progress(s, Math.min(acked * this.blockSize, total), total);
      }
    }
    this.progress(s, total, total);
    const info = finalLines.map((l) => RESULT.exec(l)).find((m) => m !== null);
    if (!info) throw new AtError(`${s.command}: no "<size>,<checksum>" line in the answer`, s.command);
    const reported = { size: Number(info[1]), checksum: parseInt(info[2], 16) };
    const expected = { size: total, checksum: checksum16(this.data) };
    if (reported.size !== expected.size || reported.checksum !== expected.checksum) {
      throw new ChecksumError(s.command, expected, reported);
    }
    return { lines: finalLines, size: reported.size, checksum: reported.checksum };
  }

  private progress(s: DataModeSession, sent: number, total: number): void {
    try {
      this.onProgress?.(sent, total);
    } catch (err) {
      s.log.warn({ err, at: s.command }, 'upload progress listener threw');
    }
  }
}

/**
 * Sends an upload command (AT+QFUPL=…,1) through `at`, streams `data` in ACK mode and verifies the
 * size and checksum the module reports (ChecksumError).
 */
export function upload(at: AtCommander, cmd: string, data: Buffer, opts: UploadOptions = {}): Promise<UploadResult> {
  const { blockSize = 1024, window = 1, onProgress, ...commandOptions } = opts;
  // The module cannot take a 0-byte file in data mode: refuse before it waits for bytes.
  if (data.length === 0) return Promise.reject(new AtError(`${cmd}: refusing to upload 0 bytes`, cmd));
  if (!Number.isInteger(blockSize) || blockSize < 1) {
    return Promise.reject(new AtError(`${cmd}: invalid block size ${blockSize}`, cmd));
  }
  if (!Number.isInteger(window) || window < 1 || window > MAX_UPLOAD_WINDOW) {
    return Promise.reject(new AtError(`${cmd}: invalid upload window ${window} (1 to ${MAX_UPLOAD_WINDOW} blocks)`, cmd));
  }
  return at.dataMode(cmd, new QfuplUpload(data, blockSize, onProgress, window), commandOptions);
}
