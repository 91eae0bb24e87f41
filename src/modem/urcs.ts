// The unsolicited result codes a Quectel module sends (EC2x/EG9x AT manual, spec §2.3, the FILE and
// TCP/IP notes). The driver registers them all with the AT channel (DESIGN.md §1: the channel knows
// no vendor), so that none is ever taken for a command's answer; the parts that act on one (health,
// the send) register their own handler for it as well.
import type { AtCommander } from '../at/types.js';

/** A line with one of these prefixes is a URC unless the command in flight asked for that prefix. */
export const QUECTEL_URC_PREFIXES: readonly string[] = [
  'RDY',
  '+CGREG:',
  '+CEREG:',
  '+CREG:',
  '+CPIN:',
  '+QIURC:',
  '+QMMSEND:',
  '+QIND:',
  '+QUSIM:',
  '+CFUN:',
  'POWERED DOWN',
  'NORMAL POWER DOWN',
  '+CSQ:',
  '+CMTI:',
  '+CRING:',
  'RING',
];

/** The URC of a module that has (re)started: it is in command mode, its settings and RAM files gone. */
export const RESTART_URC = 'RDY';

/** Registers every Quectel URC (handled elsewhere, or not at all); returns the function that removes them. */
export function registerQuectelUrcs(at: AtCommander): () => void {
  const offs = QUECTEL_URC_PREFIXES.map((prefix) => at.onUrc(prefix, () => undefined));
  return () => {
    for (const off of offs.splice(0)) off();
  };
}
