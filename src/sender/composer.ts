// One try of one message in the module (DESIGN.md §6): the edit buffer cleared, the attachments
// staged, the message composed with AT+QMMSEDIT under the charset rules, then AT+QMMSEND.
import { isTextPart, subjectCharset, textCharset } from '../core/charset.js';
import type { MessageRecord } from '../core/message.js';
import { mergeSendParams } from '../core/options.js';
import { SendNotAcceptedError, type Charset, type ModemApi, type SendResult } from '../modem/types.js';
import type { OutboxApi } from '../outbox/types.js';
import type { TryContext } from './outcome.js';
import type { Stager } from './stager.js';
import type { SenderConfig } from './types.js';

export interface ComposerOptions {
  modem: ModemApi;
  outbox: OutboxApi;
  stager: Stager;
  config: Pick<SenderConfig, 'defaults' | 'charset' | 'sendTimeoutS'>;
  clock: () => number;
  /** Between two module commands: throws StopRequested or ModemRebooted. */
  checkpoint(ctx: TryContext): void;
}

export class Composer {
  private awaited: { readonly id: string; readonly until: number } | undefined;

  constructor(private readonly o: ComposerOptions) {}

  /**
   * The message whose `AT+QMMSEND` the module accepted and whose result is awaited, and until
   * when (clock ms) at most; undefined when no result is awaited.
   */
  get awaitingResult(): { readonly id: string; readonly until: number } | undefined {
    return this.awaited;
  }

  /**
   * DESIGN.md §6, one message: clear, upload, edit (charset rules), AT+QMMSEND. `run.forceUpload`
   * stages every attachment anew (the stager clears it). Runs under the modem's lock.
   */
  async sendOnce(rec: MessageRecord, ctx: TryContext, run: { forceUpload: boolean }): Promise<SendResult> {
    const m = this.o.modem;
    const { config } = this.o;
    const checkpoint = (): void => this.o.checkpoint(ctx);
    ctx.step = 'stage';
    checkpoint();
    await m.mmsClear();
    const names = await this.o.stager.stage(rec, ctx, run);

    ctx.step = 'edit';
    const params = mergeSendParams(config.defaults, rec.options);
    // The module's session knows the sendparam in force (the configured one after a restart).
    if (m.session.needsSendParams(params)) {
      checkpoint();
      await m.setSendParams(params);
    }
    // The module's session knows the charset in force (the driver keeps it as its commands succeed).
    const useCharset = async (cs: Charset): Promise<void> => {
      if (m.session.charset === cs) return;
      checkpoint();
      await m.setCharset(cs);
    };
    // §6: addresses always under "ASCII" (firmware may read them as hex otherwise).
    await useCharset('ASCII');
    const kinds = [
      ['to', rec.to],
      ['cc', rec.cc],
      ['bcc', rec.bcc],
    ] as const;
    for (const [kind, list] of kinds) {
      for (const address of list) {
        checkpoint();
        await m.addRecipient(kind, address);
      }
    }
    if (rec.subject !== '') {
      // §3.3: the module stores the charset in force with the title.
      const cs = subjectCharset(rec.subject, config.charset);
      await useCharset(cs);
      checkpoint();
      await m.setSubject(rec.subject, cs);
    }
    for (const [i, att] of rec.attachments.entries()) {
      // §2.2: a text part is stored with the charset in force: set it to the text's own.
      if (isTextPart(att.contentType)) await useCharset(textCharset(att.contentType));
      checkpoint();
      await m.addAttachment(names[i]);
    }

    ctx.step = 'send';
    checkpoint();
    const timeoutS = rec.options.timeout ?? config.sendTimeoutS;
    // The context dropped (or the network went) while the message was being prepared: the module
    // would take AT+QMMSEND and then report 769, which cannot be told from a drop during the post
    // and would make the message `unknown`. Known now, it is plainly not sent: back to the queue
    // (checked before the journal write below, which it would only have to undo).
    const { state, detail } = m.status;
    if (state !== 'ready') throw new SendNotAcceptedError(`not sent: the modem is ${state}${detail ? ` (${detail})` : ''}`);
    // §6: crash recovery turns an accepted `sending` message into `unknown`. Journalled before
    // the command is written, not after its OK: a crash between the module's OK and our write
    // would otherwise requeue a message the module is sending, and send it twice. A refusal
    // clears the flag again (requeue and retry paths write `sendAccepted: false`).
    await this.o.outbox.update(rec.id, { sendAccepted: true });
    checkpoint();
    try {
      return await m.send(timeoutS, (resultWaitMs) => {
        ctx.accepted = true;
        this.awaited = { id: rec.id, until: this.o.clock() + resultWaitMs };
        return Promise.resolve();
      });
    } finally {
      this.awaited = undefined;
    }
  }
}
