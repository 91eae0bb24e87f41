// Line framing of the AT channel: bytes from the module → lines (split on CR, LF or both), bare
// tokens a data-mode protocol names (a byte sequence without CR/LF, such as an upload's ACK), and
// raw bytes a data-mode protocol asked for. Knows no command and no vendor.

const CR = 0x0d;
const LF = 0x0a;
const PLUS = 0x2b;

/** A line longer than this without CR/LF is noise, not a response. */
export const MAX_LINE_BYTES = 16 * 1024;

export interface FramerSink {
  /** Tokens the module may send now without CR/LF (none outside data mode). */
  tokens(): readonly string[];
  line(line: string): void;
  /** Raw bytes of a capture started with `captureRaw`, in order, never empty. */
  raw(bytes: Buffer): void;
  /** An unterminated line grew past MAX_LINE_BYTES and was dropped. */
  overlong(bytes: number): void;
}

export class LineFramer {
  private rx: Buffer = Buffer.alloc(0);
  /** Bytes still to hand out raw, without looking for lines. */
  private rawLeft = 0;
  /** The last line ended with CR: an LF right after it is part of that line's end, not data. */
  private afterCr = false;

  constructor(private readonly sink: FramerSink) {}

  /** The next `n` bytes (after the end of the current line) are data, not lines. */
  captureRaw(n: number): void {
    this.rawLeft = n;
  }

  /** Forgets what was buffered (the transport went away). */
  reset(): void {
    this.rx = Buffer.alloc(0);
    this.rawLeft = 0;
    this.afterCr = false;
  }

  push(chunk: Buffer): void {
    let rx = this.rx.length ? Buffer.concat([this.rx, chunk]) : chunk;
    for (;;) {
      if (this.rawLeft > 0) {
        if (this.afterCr && rx.length > 0 && rx[0] === LF) rx = rx.subarray(1);
        if (rx.length === 0) break;
        this.afterCr = false;
        const n = Math.min(this.rawLeft, rx.length);
        this.rawLeft -= n;
        const part = Buffer.from(rx.subarray(0, n));
        rx = rx.subarray(n);
        this.sink.raw(part);
        continue;
      }
      let start = 0;
      while (start < rx.length && (rx[start] === CR || rx[start] === LF)) start++;
      rx = rx.subarray(start);
      if (rx.length === 0) break;
      this.afterCr = false;
      const token = tokenAt(rx, this.sink.tokens());
      if (token !== undefined) {
        rx = rx.subarray(token.length);
        this.sink.line(token);
        continue;
      }
      let end = rx.indexOf(CR);
      const lf = rx.indexOf(LF);
      if (end < 0 || (lf >= 0 && lf < end)) end = lf;
      if (end < 0) {
        if (rx.length > MAX_LINE_BYTES) {
          this.sink.overlong(rx.length);
          rx = Buffer.alloc(0);
        }
        break;
      }
      const line = rx.subarray(0, end).toString('utf8');
      this.afterCr = rx[end] === CR;
      rx = rx.subarray(end + 1);
      this.sink.line(line);
    }
    this.rx = Buffer.from(rx);
  }
}

/**
 * A bare token at the start of `rx`: its bytes, followed by nothing yet, CR, LF, "+" (an
 * information line glued to it) or the start of another token. Anything else makes it the start
 * of an ordinary line.
 */
function tokenAt(rx: Buffer, tokens: readonly string[]): string | undefined {
  for (const t of tokens) {
    const bytes = Buffer.from(t, 'latin1');
    if (rx.length < bytes.length || !rx.subarray(0, bytes.length).equals(bytes)) continue;
    if (rx.length === bytes.length) return t;
    const next = rx[bytes.length];
    if (next === CR || next === LF || next === PLUS || tokens.some((o) => o.length > 0 && o.charCodeAt(0) === next)) return t;
  }
  return undefined;
}
