// What became of a try that ended with an exception (DESIGN.md §6, §14): the exceptions the
// runner and the stager raise themselves, and the verdict the policy (policy.ts) decides on.
import { errorText, fileCode } from '../core/errors.js';
import type { MessageError } from '../core/message.js';
import { AtError, CmeError } from '../modem/errors.js';
import { SendNotAcceptedError, SendOutcomeUnknownError, type RamSpace } from '../modem/types.js';
import { fileVerdict, isSpecCode, type Verdict } from './policy.js';

/** Stop was asked for before AT+QMMSEND: a safe point, the message goes back to the queue. */
export class StopRequested extends Error {
  override name = 'StopRequested';
  constructor() {
    super('sender stopping');
  }
}

/** The module restarted (or the port came back) mid-message: its edit buffer and RAM are gone. */
export class ModemRebooted extends Error {
  override name = 'ModemRebooted';
  constructor() {
    super('module restarted mid-message');
  }
}

/** The message itself cannot be sent (not the module's trouble): it fails at once with `error`. */
export class MessageFails extends Error {
  override name = 'MessageFails';
  constructor(readonly error: MessageError) {
    super(error.name);
  }
}

/**
 * The module's RAM cannot hold the message's attachments, even after leftovers were deleted
 * (DESIGN.md §14): the message fails as MessageTooLarge.
 */
export class RamTooSmall extends MessageFails {
  override name = 'RamTooSmall';
}

export interface TryContext {
  /** The sender's epoch when the try began; a change means the module restarted under it. */
  epoch: number;
  accepted: boolean;
  step: 'stage' | 'edit' | 'send';
  /** Bytes this try uploads, and the RAM drive as AT+QFLDS last showed it (if it answered). */
  ram?: { needed: number; space?: RamSpace };
}

/** A reason a client is shown: an AT command by its name only (its arguments carry message data). */
function publicReasonOf(err: unknown): string {
  if (err instanceof AtError && err.message.startsWith(err.command)) {
    return err.command.replace(/=.*$/s, '') + err.message.slice(err.command.length);
  }
  return errorText(err);
}

/** What an exception from a try means (DESIGN.md §6, §14). */
export function judge(err: unknown, ctx: TryContext): Verdict {
  if (err instanceof SendOutcomeUnknownError) return { kind: 'unknown', reason: err.message };
  if (ctx.accepted) return { kind: 'unknown', reason: errorText(err) };
  if (err instanceof MessageFails) {
    return { kind: 'result', err: err.error.code, httpStatus: 0, afterSend: false, cls: 'permanent', error: err.error };
  }
  if (err instanceof SendNotAcceptedError) {
    // Refused with a code: classified like a result (764 busy, 75x permanent …). Refused without
    // one (ERROR, port closed): the module's trouble, not the message's (§4.1) — back to the queue.
    if (err.code === undefined) return { kind: 'requeue', reason: err.message, publicReason: err.message, counts: true };
    return { kind: 'result', err: err.code, httpStatus: 0, fallbackName: 'Send not accepted', afterSend: false };
  }
  if (err instanceof CmeError) {
    // A code of the spec's table answered to an edit command is classified like a send result,
    // so that e.g. 757 fails at once and 763 re-uploads rather than looping through the queue.
    if (isSpecCode(err.code)) return { kind: 'result', err: err.code, httpStatus: 0, afterSend: false };
    // §14: a FILE command's error is the message's (its size, its files), not the module's trouble.
    const file = fileCode(err.code);
    if (file) return fileVerdict(file, ctx.ram);
  }
  return {
    kind: 'requeue',
    reason: errorText(err),
    publicReason: publicReasonOf(err),
    ...(err instanceof CmeError ? { code: err.code } : {}),
    counts: !(err instanceof StopRequested),
  };
}
