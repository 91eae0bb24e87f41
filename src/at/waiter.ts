// What the AT channel waits for after a write: one waiter at a time, settled by the line that ends
// it (or a timeout, or the port closing). Its timer starts after the write (zigbee-herdsman
// waitress).
import type { Phase } from './lines.js';
import type { DataModeUntil, PduEntry } from './types.js';

export type WaitResult =
  | { kind: 'ok'; lines: string[]; pdus: PduEntry[] }
  | { kind: 'connect'; line: string }
  | { kind: 'token'; token: string }
  | { kind: 'bytes'; data: Buffer };

export interface Waiter {
  cmd: string;
  phase: Phase;
  prefix?: string;
  /** In the data phase: what ends this wait. */
  until?: DataModeUntil;
  /**
   * Armed by the channel itself between two waits of a transfer, so that what the module sends
   * meanwhile (a download's trailer right behind its bytes) is kept for the protocol's next wait.
   */
  parked?: boolean;
  /** The PDU command type: each header line takes the next line as its PDU. */
  pdu: boolean;
  /** A header whose PDU line is still to come. */
  header?: string;
  lines: string[];
  pdus: PduEntry[];
  sawInfo: boolean;
  settled: boolean;
  /** The bytes were handed to the transport (the module may have them even if the port closes). */
  writeStarted: boolean;
  timer?: NodeJS.Timeout;
  promise: Promise<WaitResult>;
  resolve: (r: WaitResult) => void;
  reject: (e: Error) => void;
}

export interface WaitFor {
  /** In the data phase: what ends the wait. */
  until?: DataModeUntil;
  /** The PDU command type. */
  pdu?: boolean;
}

export function newWaiter(cmd: string, phase: Phase, prefix: string | undefined, o: WaitFor = {}): Waiter {
  let resolve!: (r: WaitResult) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<WaitResult>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // The answer may come while exchange() still awaits the write (a pty drains after the module
  // replied): an error then would reject a promise nobody awaits yet, which ends the process.
  // exchange() awaits it right after the write and gets the same rejection.
  promise.catch(() => undefined);
  return {
    cmd,
    phase,
    prefix,
    until: o.until,
    pdu: o.pdu ?? false,
    lines: [],
    pdus: [],
    sawInfo: false,
    settled: false,
    writeStarted: false,
    promise,
    resolve,
    reject,
  };
}

/** Ends the wait once; false when it had ended already. */
export function settleWaiter(w: Waiter, outcome: WaitResult | Error): boolean {
  if (w.settled) return false;
  w.settled = true;
  if (w.timer) clearTimeout(w.timer);
  if (outcome instanceof Error) w.reject(outcome);
  else w.resolve(outcome);
  return true;
}
