// The composition root: builds the parts from the configuration, wires their events together and
// serves as the front doors' context (DESIGN.md §1). Only this file knows every part.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { FrontDoorContext } from '../api/types.js';
import { AtChannel } from '../at/channel.js';
import { createTransport } from '../at/transport.js';
import type { Config } from '../config/load.js';
import { StoppingError } from '../core/errors.js';
import type { MessageRecord, RawSendRequest } from '../core/message.js';
import { pickSendParams } from '../core/options.js';
import { resendId, validateRequest } from '../core/validate.js';
import type { ModemConfig } from '../modem/config.js';
import { QuectelModem } from '../modem/quectel.js';
import type { ModemStatus } from '../modem/types.js';
import { Outbox } from '../outbox/outbox.js';
import type { SubmitResult } from '../outbox/types.js';
import { Sender } from '../sender/sender.js';

export interface DaemonOptions {
  config: Config;
  logger: Logger;
  version: string;
}

export function modemConfigOf(config: Config): ModemConfig {
  const m = config.mms;
  return {
    pdp: { ...config.pdp },
    mms: {
      mmsc: m.mmsc,
      proxyHost: m.proxy.host,
      proxyPort: m.proxy.port,
      charset: m.charset,
      validity: m.validity,
      priority: m.priority,
      deliveryReport: m.deliveryReport === 1,
      readReport: m.readReport === 1,
      visibility: m.visibility,
      class: m.class,
      supportField: m.supportField,
      connectTimeoutS: m.connectTimeoutS,
    },
    healthIntervalS: config.modem.healthIntervalS,
    commandTimeoutMs: config.modem.commandTimeoutMs,
    rebootMinIntervalS: config.modem.rebootMinIntervalS,
  };
}

/** Events: 'added', 'changed', 'removed' (outbox), 'modemStatus' (ModemStatus). */
export class Daemon extends EventEmitter implements FrontDoorContext {
  readonly logger: Logger;
  readonly version: string;
  readonly maxAttempts: number;
  readonly outbox: Outbox;
  readonly channel: AtChannel;
  readonly modem: QuectelModem;
  readonly sender: Sender;
  private readonly config: Config;
  private accepting = false;

  constructor(opts: DaemonOptions) {
    super();
    const { config, logger } = opts;
    this.config = config;
    this.logger = logger;
    this.version = opts.version;
    this.maxAttempts = config.outbox.maxAttempts;
    this.outbox = new Outbox({
      dir: config.outbox.dir,
      logger: logger.child({ part: 'outbox' }),
      retentionDays: config.outbox.retentionDays,
    });
    // The channel and the driver name their own part (`part: 'at'`, `'modem'`): a second child
    // here would put the key in every line twice.
    this.channel = new AtChannel({
      openTransport: () => createTransport(config.modem.port, config.modem.baudRate),
      logger,
      defaultTimeoutMs: config.modem.commandTimeoutMs,
    });
    const modemConfig = modemConfigOf(config);
    this.modem = new QuectelModem({ at: this.channel, logger, config: modemConfig });
    this.sender = new Sender({
      outbox: this.outbox,
      modem: this.modem,
      logger: logger.child({ part: 'sender' }),
      config: {
        maxAttempts: config.outbox.maxAttempts,
        resendAmbiguous: config.outbox.resendAmbiguous,
        sendTimeoutS: config.mms.sendTimeoutS,
        charset: config.mms.charset,
        // The sendparam part of the `mms.*` settings: what a message without options is sent with.
        defaults: pickSendParams(modemConfig.mms),
        maxMessageBytes: config.mms.maxMessageBytes,
      },
    });
  }

  async start(): Promise<void> {
    this.outbox.on('added', (r: MessageRecord) => this.emit('added', r));
    this.outbox.on('changed', (r: MessageRecord) => this.emit('changed', r));
    this.outbox.on('removed', (id: string) => this.emit('removed', id));
    this.modem.on('status', (s: ModemStatus) => {
      this.logger.info({ modem: s }, 'modem status');
      this.emit('modemStatus', s);
    });
    const report = await this.outbox.start();
    this.logger.info(
      {
        loaded: report.loaded,
        requeued: report.requeued.length,
        unknown: report.unknown.length,
        leftoverRamFiles: report.leftoverRamFiles.length,
      },
      'outbox recovered',
    );
    for (const id of report.unknown) this.logger.warn({ id }, 'message was being sent when the daemon stopped: unknown');
    this.accepting = true;
    await this.channel.start();
    // §6 "Start": a message was being staged when the daemon stopped, so the module may still sit
    // in upload data mode, deaf to AT: leave it with "+++" before the bring-up (the channel runs
    // jobs in order); the partial file is among the leftovers the sender deletes.
    if (report.requeued.some((id) => (this.outbox.get(id)?.ramFiles.length ?? 0) > 0)) this.escapeOnConnect();
    await this.modem.start();
    this.sender.start(report.leftoverRamFiles);
  }

  /** Queues an escape from data mode now, or as the first job once the port opens. */
  private escapeOnConnect(): void {
    const escape = (): void => {
      this.logger.info('a send was interrupted mid-upload: leaving upload data mode first');
      this.channel.escapeDataMode().catch((err: unknown) => this.logger.warn({ err }, 'leaving upload data mode failed'));
    };
    // Registered before the modem's own 'connected' listener, so it is queued before the bring-up.
    if (this.channel.isConnected) escape();
    else this.channel.once('connected', escape);
  }

  /** Stop taking work, let the in-flight step reach a safe point, close the port. */
  async stop(): Promise<void> {
    this.accepting = false;
    await this.sender.stop();
    await this.modem.stop();
    await this.channel.stop();
    await this.outbox.stop();
    this.removeAllListeners();
  }

  async submit(raw: RawSendRequest): Promise<SubmitResult> {
    const req = await validateRequest(raw, {
      maxMessageBytes: this.config.mms.maxMessageBytes,
      allowedDirs: this.config.attachments.allowedDirs,
    });
    if (!this.accepting) throw new StoppingError();
    // The outbox logs "message queued" once the message is durable.
    return this.outbox.submit(req);
  }

  async resend(id: string, newId?: string): Promise<SubmitResult> {
    const { record, attachments } = await this.outbox.resendSource(id);
    // A new message from the old one's parts, through the same validation as any request: the
    // limits (mms.maxMessageBytes) may have changed since it was first queued.
    const raw: RawSendRequest = {
      id: newId ?? resendId(id, (candidate) => this.outbox.get(candidate) !== undefined),
      to: record.to,
      cc: record.cc,
      bcc: record.bcc,
      subject: record.subject,
      attachments: attachments.map((a) => ({ name: a.name, contentType: a.contentType, data: a.data })),
      options: record.options,
    };
    const result = await this.submit(raw);
    this.logger.info({ id: result.record.id, resendOf: id, created: result.created }, 'message resent as a new message');
    return result;
  }

  get(id: string): MessageRecord | undefined {
    return this.outbox.get(id);
  }

  list(): MessageRecord[] {
    return this.outbox.list();
  }

  cancel(id: string): Promise<MessageRecord> {
    return this.outbox.cancel(id);
  }

  modemStatus(): ModemStatus {
    return this.modem.status;
  }

  /** The id of the message the sender has in hand, if any (the logger tags the modem side's lines). */
  currentMessage(): string | undefined {
    return this.sender.current;
  }

  /** The message whose accepted send awaits its result, and until when at most (unix ms). */
  awaitingResult(): { id: string; until: number } | undefined {
    return this.sender.awaitingResult;
  }

  queueLength(): number {
    return this.outbox.queueLength();
  }

  /**
   * For the systemd watchdog: waiting for an absent port is a live state (the reopen loop runs);
   * an open port must have answered within `maxAgeMs` or answer a probe within `probeTimeoutMs`.
   */
  async atAlive(maxAgeMs: number, probeTimeoutMs: number): Promise<boolean> {
    if (!this.channel.isConnected) return true;
    if (Date.now() - this.modem.lastAtOkAt < maxAgeMs) return true;
    return this.modem.ping(probeTimeoutMs);
  }
}
