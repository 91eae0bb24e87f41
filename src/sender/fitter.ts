// Photos that fit, in the send pipeline (DESIGN.md §11): before a message's first upload, its
// images are re-encoded when it exceeds its limit, and the fitted bytes replace the parts in the
// spool durably before anything is uploaded. The fitting itself is handed in (the daemon's
// child-process fitter): the sender knows parts and bytes, not images.
import type { Logger } from 'pino';
import { RequestError } from '../core/errors.js';
import type { SizeLimit } from '../core/limits.js';
import type { AttachmentInput, MessageError, MessageRecord } from '../core/message.js';
import { AtErrorResult, CmeError } from '../modem/errors.js';
import type { RamSpace } from '../modem/types.js';
import type { FitFunction, SenderModem, SenderOutbox } from './types.js';
import { LOG_EVENTS } from '../core/log-events.js';
import { MessageFails } from './outcome.js';

/** The message cannot be made to fit, or an image in it cannot be read: it fails at once. */
export class FitFailed extends MessageFails {
  override name = 'FitFailed';
}

export interface FitterOptions {
  outbox: SenderOutbox;
  modem: SenderModem;
  logger: Logger;
  locked<T>(fn: () => Promise<T>): Promise<T>;
  clock: () => number;
  /** The carrier's or configured limit (§10), asked at each message: the carrier may change. */
  limit: () => SizeLimit;
  /** `media.fit`; a message's option `fit: false` turns it off for that message. */
  enabled: boolean;
  /** Fits parts to a byte limit; undefined: fitting is not available. */
  fit?: FitFunction;
}

export class Fitter {
  constructor(private readonly opts: FitterOptions) {}

  /**
   * The message as it is to be sent: unchanged when it fits its limit or was fitted before (a
   * retry or a restart sends the same bytes), else with its images fitted and the record saying
   * so. Throws FitFailed when it cannot be made to fit.
   */
  async prepare(rec: MessageRecord): Promise<MessageRecord> {
    if (rec.adjustments !== undefined) return rec;
    const total = rec.attachments.reduce((n, a) => n + a.size, 0);
    const configured = this.opts.limit();
    if (total <= configured.bytes) return rec;
    // §11: the module's free RAM bounds the message too; read only for a message that is over
    // anyway, so that a message that fits costs no extra AT round trip.
    const space = await this.ramSpace(rec.id);
    const limit: SizeLimit =
      space && space.free < configured.bytes
        ? { bytes: space.free, source: `the module's free RAM (AT+QFLDS: ${space.free} of ${space.total} bytes)` }
        : configured;
    const over = `attachments total ${total} bytes, ${total - limit.bytes} over the limit of ${limit.bytes} (${limit.source})`;
    const off = !this.opts.enabled ? 'media.fit is false' : rec.options.fit === false ? 'the message\'s option fit is false' : undefined;
    if (off !== undefined || !this.opts.fit) {
      throw new FitFailed({ code: 0, name: `MessageTooLarge: ${over}; photos are not fitted: ${off ?? 'no image fitter'}` });
    }
    const parts: AttachmentInput[] = [];
    for (const [i, a] of rec.attachments.entries()) {
      parts.push({ name: a.name, contentType: a.contentType, data: await this.opts.outbox.readAttachment(rec.id, i) });
    }
    const started = this.opts.clock();
    let fitted: { parts: AttachmentInput[]; adjustments: string[] };
    try {
      fitted = await this.opts.fit(parts, limit.bytes);
    } catch (err) {
      const error = fitError(err, limit);
      this.opts.logger.warn({ id: rec.id, err, limit: limit.bytes, limitSource: limit.source }, 'fitting failed');
      throw new FitFailed(error);
    }
    // §11: written and synced before the upload; from here on these are the message's bytes.
    const next = await this.opts.outbox.replaceAttachments(rec.id, fitted.parts, fitted.adjustments);
    this.opts.logger.info(
      {
        id: rec.id,
        adjustments: fitted.adjustments,
        bytesBefore: total,
        bytesAfter: next.attachments.reduce((n, a) => n + a.size, 0),
        limit: limit.bytes,
        limitSource: limit.source,
        durationMs: this.opts.clock() - started,
      },
      LOG_EVENTS.messageFitted,
    );
    return next;
  }

  private async ramSpace(id: string): Promise<RamSpace | undefined> {
    try {
      return await this.opts.locked(() => this.opts.modem.ramSpace());
    } catch (err) {
      // A module that cannot tell: the configured limit stands, the upload's own answer decides.
      if (!(err instanceof CmeError || err instanceof AtErrorResult)) throw err;
      this.opts.logger.warn({ id, at: 'fit', err }, 'reading the RAM space failed; fitting to the configured limit');
      return undefined;
    }
  }
}

/**
 * What a message that could not be fitted shows (DESIGN.md §11): the error's name first
 * (MessageTooLarge, ImageError, ImagePixelLimitError), then the reason, then where the limit
 * came from.
 */
export function fitError(err: unknown, limit: SizeLimit): MessageError {
  if (err instanceof RequestError) {
    return { code: 0, name: `${err.errorName}: ${err.message}; the limit of ${limit.bytes} bytes is ${limit.source}` };
  }
  if (err instanceof Error) {
    const name = err.name === 'Error' ? 'FitFailed' : err.name;
    return { code: 0, name: `${name}: ${err.message}` };
  }
  return { code: 0, name: `FitFailed: ${String(err)}` };
}
