// One data-mode transfer the channel runs for a driver's protocol (types.ts DataModeProtocol): what
// the channel keeps about it between CONNECT and the final result. Knows no vendor.
import { AtError } from './errors.js';
import type { DataModeProtocol } from './types.js';

export class Transfer<R = unknown> {
  /** One of the protocol's restart URCs came: the module is in command mode, no "+++" is needed. */
  restarted = false;
  /** The final OK came: the module left data mode (what the protocol does next is its own business). */
  finished = false;
  /** Raw bytes announced after CONNECT (rawBytesAfter), and how far they came. */
  private rawWanted = 0;
  private rawParts: Buffer[] = [];
  private rawGot = 0;
  /** All raw bytes, come before the protocol asked for them. */
  private rawHeld: Buffer | undefined;
  private rawHandedOut = false;
  /** Tokens that came between two waits (several blocks in flight), oldest first, for the next waits. */
  private heldTokens: string[] = [];

  constructor(
    readonly protocol: DataModeProtocol<R>,
    /** Prefix of the information lines of the final answer. */
    readonly prefix: string | undefined,
  ) {}

  get tokens(): readonly string[] {
    return this.protocol.tokens ?? [];
  }

  isRestart(line: string): boolean {
    return this.protocol.restartUrcs?.includes(line) ?? false;
  }

  /**
   * Asks the protocol how many raw bytes follow this CONNECT line (0: none). Throws AtError for a
   * count that is no whole number, so that a protocol's mistake fails the transfer, not the framing.
   */
  rawAfter(cmd: string, connectLine: string): number {
    const n = this.protocol.rawBytesAfter?.(connectLine) ?? 0;
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new AtError(`${cmd}: the ${this.protocol.name} expects ${n} raw bytes after "${connectLine}"`, cmd);
    }
    this.rawWanted = n;
    return n;
  }

  /** Why the protocol cannot wait for raw bytes now (none announced, or handed out already). */
  rawUnavailable(cmd: string): AtError | undefined {
    if (this.rawWanted === 0) return new AtError(`${cmd}: no raw bytes were announced after CONNECT`, cmd);
    if (this.rawHandedOut) return new AtError(`${cmd}: the raw bytes were received already`, cmd);
    return undefined;
  }

  /** Takes raw bytes as they come; returns all of them once the last one is there. */
  addRaw(bytes: Buffer): Buffer | undefined {
    if (this.rawGot >= this.rawWanted) return undefined;
    this.rawParts.push(bytes);
    this.rawGot += bytes.length;
    if (this.rawGot < this.rawWanted) return undefined;
    const all = Buffer.concat(this.rawParts);
    this.rawParts = [];
    return all;
  }

  /** Keeps the complete raw bytes until the protocol asks for them. */
  hold(data: Buffer): void {
    this.rawHeld = data;
  }

  /** The raw bytes held, handed out once. */
  takeHeld(): Buffer | undefined {
    const d = this.rawHeld;
    this.rawHeld = undefined;
    if (d) this.rawHandedOut = true;
    return d;
  }

  /** Keeps a token that came while no wait was armed for one. */
  holdToken(token: string): void {
    this.heldTokens.push(token);
  }

  /** The oldest token held, handed out once. */
  takeToken(): string | undefined {
    return this.heldTokens.shift();
  }

  /** The raw bytes went straight to a protocol waiting for them. */
  handedOut(): void {
    this.rawHandedOut = true;
  }
}

/** A protocol the channel cannot run: no name, or a token that is empty or holds CR/LF. */
export function checkProtocol(cmd: string, p: DataModeProtocol<unknown>): AtError | undefined {
  if (p.name.trim() === '') return new AtError(`${cmd}: a data-mode protocol needs a name`, cmd);
  const bad = (p.tokens ?? []).find((t) => t === '' || /[\r\n]/.test(t));
  if (bad !== undefined) return new AtError(`${cmd}: invalid data-mode token ${JSON.stringify(bad)}`, cmd);
  return undefined;
}
