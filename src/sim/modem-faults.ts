// Faults injected into the virtual modem (DESIGN.md §7 "fault injection, by option and at run
// time") that the module itself does not produce: shaped responses (delayed, dropped, garbled, a
// URC inside), failed activations, injected or held send results. They belong to the test, not to
// the module, so they survive a module restart. Network conditions (SIM, registration, signal, a
// dropped context) are the network capability's own state; the control API reaches both.
import type { Logger } from 'pino';
import type { SimSendOutcome } from './types.js';

const CR = 0x0d;
const LF = 0x0a;

export interface ModemFaultsOptions {
  /** Results for the next AT+QMMSENDs, before the sender is used. */
  sendResults?: SimSendOutcome[];
  /** Delay before each command's response. Default 0. */
  responseDelayMs?: number;
}

export class ModemFaults {
  private readonly sendQueue: SimSendOutcome[];
  private hold = false;
  private holdWaiters: (() => void)[] = [];
  private delayMs: number;
  private dropResponses = 0;
  private garbleResponses = 0;
  private midUrcs: string[] = [];
  private activationFailures = 0;

  constructor(
    private readonly log: Logger,
    opts: ModemFaultsOptions,
  ) {
    this.sendQueue = [...(opts.sendResults ?? [])];
    this.delayMs = opts.responseDelayMs ?? 0;
  }

  // ── responses ──

  /** Delay before each command's response, ms. */
  get responseDelayMs(): number {
    return this.delayMs;
  }

  setDelay(ms: number): void {
    this.delayMs = Math.max(0, ms);
  }

  /** The next n command responses are not sent at all (the echo still is); 0 ends a drop. */
  dropNextResponses(n: number): void {
    this.dropResponses = n;
  }

  /** The next n command responses arrive with every byte's high bit flipped; 0 ends it. */
  garbleNextResponses(n: number): void {
    this.garbleResponses = n;
  }

  /** The next response carries this URC between its first line and its final result code. */
  injectUrcMidResponse(line: string): void {
    this.midUrcs.push(line);
  }

  /** The URCs for the response being framed now (each goes into one response only). */
  takeMidResponseUrcs(): string[] {
    return this.midUrcs.splice(0);
  }

  /** A framed response as it reaches the line: undefined when dropped, else as is or garbled. */
  shapeResponse(text: string): Buffer | undefined {
    if (this.dropResponses > 0) {
      this.dropResponses--;
      this.log.debug('fault: response dropped');
      return undefined;
    }
    let bytes = Buffer.from(text, 'latin1');
    if (this.garbleResponses > 0) {
      this.garbleResponses--;
      bytes = Buffer.from(bytes.map((b) => (b === CR || b === LF ? b : b ^ 0x80)));
      this.log.debug('fault: response garbled');
    }
    return bytes;
  }

  // ── PDP activation ──

  /** The next n AT+QIACT fail with ERROR (spec §4.2). */
  failNextActivations(n: number): void {
    this.activationFailures += n;
  }

  /** True, and counted, when this AT+QIACT is to fail. */
  takeActivationFailure(): boolean {
    if (this.activationFailures <= 0) return false;
    this.activationFailures--;
    return true;
  }

  // ── AT+QMMSEND results ──

  /** Results for the next AT+QMMSENDs (each needs an active PDP context, else 769). */
  queueSendResults(results: SimSendOutcome[]): void {
    this.sendQueue.push(...results);
  }

  takeSendResult(): SimSendOutcome | undefined {
    return this.sendQueue.shift();
  }

  get queuedSendResults(): number {
    return this.sendQueue.length;
  }

  /** While on, an accepted AT+QMMSEND never reports (until released or the module restarts). */
  holdSend(on: boolean): void {
    this.hold = on;
    if (!on) this.releaseHold();
  }

  get holding(): boolean {
    return this.hold;
  }

  /** Resolves when the hold is released or the send is aborted. */
  untilReleased(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      this.holdWaiters.push(resolve);
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  releaseHold(): void {
    for (const w of this.holdWaiters.splice(0)) w();
  }
}
