// What `<base>/status` tells beyond the modem's own status (DESIGN.md §5, §13): how many messages
// were sent and failed since the daemon started, and the last error seen, counted from the
// outbox's events as the MQTT door receives them.
import type { MessageRecord } from '../../core/message.js';
import type { ModemStatus } from '../../core/status.js';

/** Home Assistant keeps a sensor's state to 255 characters. */
export const LAST_ERROR_MAX_CHARS = 255;

/** Statuses that count as sent: `sent`, and `delivered` where the inbound path reports it (§12). */
const SENT = new Set(['sent', 'delivered']);

/**
 * Counters since the daemon started, so they only grow until a restart (Home Assistant's
 * `total_increasing` takes a drop to a lower value as a reset). Counting what the outbox holds
 * instead would shrink whenever retention forgets a message, which a statistic would read as a
 * reset and then count twice.
 */
export class SendTally {
  sentTotal = 0;
  failedTotal = 0;
  lastError: string | undefined;
  /** Ids whose outcome was counted (so a re-announced record counts once); forgotten with the message. */
  private readonly counted = new Set<string>();
  /** Per id, the error last taken into lastError (a retrying message announces the same one often). */
  private readonly errors = new Map<string, string>();
  private modemDetail: string | undefined;

  /** A message was added or changed. True when a counter or lastError changed. */
  observe(record: MessageRecord): boolean {
    let changed = false;
    const status: string = record.status;
    if (!this.counted.has(record.id) && (SENT.has(status) || status === 'failed')) {
      this.counted.add(record.id);
      if (status === 'failed') this.failedTotal += 1;
      else this.sentTotal += 1;
      changed = true;
    }
    if (record.error) {
      const { code, name, httpStatus } = record.error;
      const text = `${record.id}: ${code !== 0 ? `${code} ` : ''}${name}${httpStatus ? ` (HTTP ${httpStatus})` : ''}`;
      if (this.errors.get(record.id) !== text) {
        this.errors.set(record.id, text);
        changed = this.setLastError(text) || changed;
      }
    }
    return changed;
  }

  /** The outbox forgot a message (retention). */
  forget(id: string): void {
    this.counted.delete(id);
    this.errors.delete(id);
  }

  /** The modem's status changed: a new failure that put it into `error` is the last error too. */
  modem(status: ModemStatus): boolean {
    const detail = status.state === 'error' ? status.detail : undefined;
    if (detail === this.modemDetail) return false;
    this.modemDetail = detail;
    return detail !== undefined && this.setLastError(`modem: ${detail}`);
  }

  private setLastError(text: string): boolean {
    const clipped = text.length > LAST_ERROR_MAX_CHARS ? `${text.slice(0, LAST_ERROR_MAX_CHARS - 1)}…` : text;
    if (clipped === this.lastError) return false;
    this.lastError = clipped;
    return true;
  }
}
