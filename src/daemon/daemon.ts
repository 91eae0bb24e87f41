// The composition root: builds the parts from the configuration, wires their events together,
// starts and stops every part in order, front doors included, and serves as the doors' context
// (DESIGN.md §1). Only this file knows every part; cli/mmsd.ts keeps arguments, signals and exits.
import type { Logger } from 'pino';
import type { FrontDoorContext, FrontDoorEvents } from '../api/types.js';
import { AtChannel } from '../at/channel.js';
import { createTransport } from '../at/transport.js';
import {
  CarrierDatabase,
  CarrierDatabaseError,
  InvalidImsiError,
  carrierSettingsOf,
  lookupNeeded,
  noMmscReason,
  resolveCarrier,
  type CarrierLookup,
  type CarrierReport,
  type ResolvedCarrier,
} from '../carrier/index.js';
import { join } from 'node:path';
import { explicitKeys, type Config } from '../config/load.js';
import { RequestError, StoppingError } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import type { DeliveryReportEvent, ReceivedRecord } from '../core/inbound.js';
import type { SizeLimit } from '../core/limits.js';
import { LOG_EVENTS } from '../core/log-events.js';
import type { MessageRecord, RawSendRequest } from '../core/message.js';
import { pickSendParams } from '../core/options.js';
import { resendId, validateRequest } from '../core/validate.js';
import type { ModemConfig, SettingsVerdict } from '../modem/config.js';
import { InboundPath } from '../inbound/inbound-path.js';
import { Inbox } from '../inbound/inbox.js';
import type { InboxPush } from '../inbound/ports.js';
import { checkNonImageParts, fitMessageIsolated, locateImageLibrary } from '../media/index.js';
import { BACKOFF_MS, Receiver, type ReceiverPort } from '../inbound/receiver.js';
import { QuectelHttp, type HttpProxy } from '../modem/http.js';
import { QuectelModem } from '../modem/quectel.js';
import { SmsDriver } from '../modem/sms.js';
import type { ModemIdentity, ModemStatus, SimIdentity } from '../modem/types.js';
import { Outbox } from '../outbox/outbox.js';
import { SpoolLockError } from '../outbox/spool-lock.js';
import type { SubmitResult } from '../outbox/types.js';
import { Sender } from '../sender/sender.js';
import { Extensions, frontDoors } from './doors.js';

export interface DaemonOptions {
  config: Config;
  logger: Logger;
  version: string;
  /** A part lost what it cannot run without (the D-Bus connection): stop and exit 1. */
  onFatal?: (reason: string) => void;
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
    uploadWindow: config.modem.uploadWindow,
  };
}

/** A lookup that found nothing to use, for a reason other than the database's content. */
function lookupFailed(reason: string): CarrierLookup {
  return { source: 'not-found', mccMnc: '', provider: '', apn: '', username: '', password: '', auth: 0, mmsc: '', proxy: undefined, maxMessageBytes: undefined, candidates: [], reason };
}

/** Events: FrontDoorEvents (api/types.ts), relayed from the outbox, the driver, the receiver and the inbound path. */
export class Daemon extends TypedEmitter<FrontDoorEvents> implements FrontDoorContext {
  readonly logger: Logger;
  readonly version: string;
  readonly maxAttempts: number;
  readonly outbox: Outbox;
  readonly channel: AtChannel;
  readonly modem: QuectelModem;
  readonly sender: Sender;
  /** DESIGN.md §12: the driver's SMS side and the inbound path; absent with inbound.enabled false. */
  readonly sms: SmsDriver | undefined;
  readonly inbound: InboundPath | undefined;
  /** DESIGN.md §12 "Received messages": the inbox and its receiver; absent with inbound.enabled false. */
  readonly receiver: Receiver | undefined;
  /** The front doors the configuration enables, started after every other part. */
  private readonly doors: Extensions;
  /** Aborted by stop(): the receiver's wait for a ready modem ends. */
  private readonly stopAbort = new AbortController();
  private readonly config: Config;
  private accepting = false;
  /** DESIGN.md §10: read (and its parser loaded) on the first lookup that needs it. */
  private readonly carrierDatabase: CarrierDatabase;
  /** The carrier settings in force and their report; the config's (`pending`) until the SIM is known. */
  private resolved: ResolvedCarrier;

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
      deliveryReports: config.mms.deliveryReport === 1,
    });
    // The channel and the driver name their own part (`part: 'at'`, `'modem'`): a second child
    // here would put the key in every line twice.
    this.channel = new AtChannel({
      openTransport: () => createTransport(config.modem.port, config.modem.baudRate),
      logger,
      defaultTimeoutMs: config.modem.commandTimeoutMs,
    });
    this.carrierDatabase = new CarrierDatabase(config.carrier.database);
    this.resolved = resolveCarrier({ auto: config.carrier.auto, config: carrierSettingsOf(config), explicit: explicitKeys(config) });
    const modemConfig = modemConfigOf(config);
    const limit = (): number => this.maxMessageBytes;
    this.modem = new QuectelModem({ at: this.channel, logger, config: modemConfig, settings: (sim) => this.carrierSettingsFor(sim) });
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
        // Read when the modem is first ready, by then with the carrier's limit (§10).
        get maxMessageBytes(): number {
          return limit();
        },
      },
      // §11: photos fitted in a child process (sharp never loads into the daemon).
      fitting: {
        limit: () => this.sizeLimit(),
        enabled: config.media.fit,
        fit: (parts, limitBytes) => fitMessageIsolated(parts, limitBytes, { maxWidth: config.media.maxWidth, maxHeight: config.media.maxHeight }),
      },
    });
    if (config.inbound.enabled) {
      const http = new QuectelHttp({
        at: this.channel,
        logger: logger.child({ part: 'http' }),
        session: this.modem.session,
        contextId: config.pdp.contextId,
        commandTimeoutMs: config.modem.commandTimeoutMs,
        onOk: () => (this.modem.lastAtOkAt = Date.now()),
      });
      this.receiver = new Receiver({
        inbox: new Inbox({ dir: config.inbound.dir, logger, retentionDays: config.inbound.retentionDays }),
        port: this.receiverPort(http),
        logger,
        autoRetrieve: config.inbound.autoRetrieve,
        maxMessageBytes: config.inbound.maxMessageBytes,
        retryDelaysMs: BACKOFF_MS.map((ms) => (ms * config.inbound.firstRetryS) / 60),
        // §12: fetches take the lock the sender holds for each send, one job per hold; the lock is
        // FIFO, so sends and fetches alternate. A fetch waits for a ready modem outside the lock.
        exclusive: async (fn) => {
          await this.modem.whenReady(this.stopAbort.signal);
          return this.modem.withLock(fn);
        },
      });
      const sms = new SmsDriver({ at: this.channel, modem: this.modem, logger, storage: config.inbound.smsStorage, commandTimeoutMs: config.modem.commandTimeoutMs });
      this.sms = sms;
      this.inbound = new InboundPath({
        dir: join(config.outbox.dir, 'inbound'),
        logger,
        source: sms,
        reports: this.outbox,
        inbox: (push) => this.takeInboxPush(push),
        deleteOtherSms: config.inbound.deleteOtherSms,
        onDeliveryReport: (event: DeliveryReportEvent) => this.emit('deliveryReport', event),
      });
    }
    const onFatal = opts.onFatal ?? ((): void => undefined);
    this.doors = new Extensions(frontDoors({ config, ctx: this, logger, onFatal }), logger);
  }

  /**
   * Where the inbound path hands M-Notification.ind and M-Read-Orig.ind: true once the push is
   * taken for good, after which its SMS is deleted. A notification is taken once the receiver
   * stored it durably (`notified`, DESIGN.md §12); a read report (M-Read-Orig.ind) is logged at
   * info with its Message-ID, sender and status, and its SMS deleted: nothing else keeps it.
   */
  private async takeInboxPush(push: InboxPush): Promise<boolean> {
    if (push.kind === 'notification') {
      if (!this.receiver) return false;
      const p = push.pdu;
      const record = await this.receiver.notify(p);
      this.logger.info({ part: 'inbound', id: record.id, from: p.from, transactionId: p.transactionId, size: p.messageSize }, 'MMS notification stored');
      return true;
    }
    const p = push.pdu;
    this.logger.info({ part: 'inbound', reportMessageId: p.messageId, from: p.from, readStatus: p.readStatus, date: p.date * 1000 }, 'read report received');
    return true;
  }

  /**
   * The receiver's modem side: the driver's fetch and post through the current carrier's proxy to
   * its MMSC (§12), read at each call so that settings resolved from the SIM apply.
   */
  private receiverPort(http: QuectelHttp): ReceiverPort {
    const proxy = (): HttpProxy | undefined => {
      const { proxyHost, proxyPort } = this.resolved.settings;
      return proxyHost !== '' ? { host: proxyHost, port: proxyPort } : undefined;
    };
    return {
      fetch: (location, o) => http.fetch(location, proxy(), o),
      post: async (pdu) => {
        await http.post(this.resolved.settings.mmsc, proxy(), pdu);
      },
    };
  }

  /**
   * The carrier's or configured limit with where it came from (§10, §11), for MessageTooLarge:
   * a key set in the config wins, else the database's entry when it gave one, else the default.
   */
  sizeLimit(): SizeLimit {
    const bytes = this.maxMessageBytes;
    const r = this.resolved.report;
    if (explicitKeys(this.config).has('mms.maxMessageBytes')) return { bytes, source: 'mms.maxMessageBytes' };
    if (r.source === 'database' && bytes !== this.config.mms.maxMessageBytes) {
      return { bytes, source: `the carrier database's entry for ${r.provider} (<mmsattachmentsize>); mms.maxMessageBytes overrides it` };
    }
    return { bytes, source: "mms.maxMessageBytes's default; the carrier database gives none" };
  }

  /** The size limit the doors validate against: the carrier's unless mms.maxMessageBytes is set (§10). */
  get maxMessageBytes(): number {
    return this.resolved.settings.maxMessageBytes;
  }

  /** The `Carrier` status of DESIGN.md §10 (D-Bus, MQTT, `mmsctl carrier`). */
  carrier(): CarrierReport {
    return structuredClone(this.resolved.report);
  }

  /**
   * The modem's SettingsProvider (DESIGN.md §10), asked after every SIM READY: looks the SIM up
   * when the config leaves anything to the database, applies the config's precedence, publishes
   * the report, and answers the settings — or why there are none (`unconfigured`).
   */
  private async carrierSettingsFor(sim: SimIdentity): Promise<SettingsVerdict> {
    const { config } = this;
    const explicit = explicitKeys(config);
    const auto = config.carrier.auto;
    const lookup = lookupNeeded(auto, explicit) ? await this.lookUp(sim, explicit) : undefined;
    const resolved = resolveCarrier({ auto, config: carrierSettingsOf(config), explicit, ...(lookup ? { lookup } : {}) });
    this.setCarrier(resolved);
    const missing = noMmscReason(resolved);
    if (missing !== undefined) return { unconfigured: missing };
    const { apn, username, password, auth, mmsc, proxyHost, proxyPort } = resolved.settings;
    return { use: { apn, username, password, auth, mmsc, proxyHost, proxyPort } };
  }

  /** The database's answer for this SIM; a database that cannot be read or an IMSI that could not be is one too. */
  private async lookUp(sim: SimIdentity, explicit: ReadonlySet<string>): Promise<CarrierLookup> {
    const { carrier, pdp } = this.config;
    try {
      return await this.carrierDatabase.lookup(
        { imsi: sim.imsi, spn: sim.spn },
        { provider: carrier.provider, ...(explicit.has('pdp.apn') ? { apn: pdp.apn } : {}) },
      );
    } catch (err) {
      if (err instanceof CarrierDatabaseError) return lookupFailed(err.message);
      if (err instanceof InvalidImsiError) {
        return lookupFailed(sim.imsi === '' ? "the SIM's IMSI could not be read (AT+CIMI)" : `the SIM's IMSI ${err.message.replace(/^IMSI /, '')}`);
      }
      throw err;
    }
  }

  private setCarrier(next: ResolvedCarrier): void {
    const before = JSON.stringify(this.resolved);
    this.resolved = next;
    if (JSON.stringify(next) === before) return;
    const r = next.report;
    const fields = { source: r.source, provider: r.provider, mccMnc: r.mccMnc, apn: r.apn, mmsc: r.mmsc, proxy: r.proxy, maxMessageBytes: r.maxMessageBytes, configKeys: r.configKeys, candidates: r.candidates.length, reason: r.reason };
    if (r.source === 'database' || r.source === 'config') this.logger.info({ carrier: fields }, 'carrier settings');
    else this.logger.warn({ carrier: fields }, 'carrier settings: none to use');
    this.emit('carrier', this.carrier());
  }

  /**
   * Starts every part in order: the outbox (recovery), the receiver and the inbound path, the
   * channel, the driver, the SMS side, the sender; then the front doors (D-Bus, then MQTT). A
   * failure leaves what did start to stop(); isEnvironmentError() tells whether it names a problem
   * outside mmsd.
   */
  async start(): Promise<void> {
    this.outbox.on('added', (r: MessageRecord) => this.emit('added', r));
    this.outbox.on('changed', (r: MessageRecord) => this.emit('changed', r));
    this.outbox.on('removed', (id: string) => this.emit('removed', id));
    this.modem.on('status', (s: ModemStatus) => {
      this.logger.info({ modem: s }, LOG_EVENTS.modemStatus);
      this.emit('modemStatus', s);
    });
    this.modem.on('identity', (id: ModemIdentity) => this.emit('modemIdentity', id));
    const report = await this.outbox.start();
    this.logger.info(
      {
        loaded: report.loaded,
        requeued: report.requeued.length,
        unknown: report.unknown.length,
        leftoverRamFiles: report.leftoverRamFiles.length,
      },
      LOG_EVENTS.outboxRecovered,
    );
    for (const id of report.unknown) this.logger.warn({ id }, 'message was being sent when the daemon stopped: unknown');
    this.accepting = true;
    if (this.receiver) {
      this.receiver.on('received', (r: ReceivedRecord) => this.emit('received', r));
      this.receiver.on('receivedRemoved', (id: string) => this.emit('receivedRemoved', id));
      await this.receiver.start();
    }
    // Before the port opens: an SMS read at the first set-up finds the path listening.
    await this.inbound?.start();
    await this.channel.start();
    // §6 "Start": a message was being staged when the daemon stopped, so the module may still sit
    // in upload data mode, deaf to AT: leave it with "+++" before the bring-up (the channel runs
    // jobs in order); the partial file is among the leftovers the sender deletes.
    if (report.requeued.some((id) => (this.outbox.get(id)?.ramFiles.length ?? 0) > 0)) this.escapeOnConnect();
    await this.modem.start();
    this.sms?.start();
    this.sender.start(report.leftoverRamFiles);
    if (this.config.media.fit) this.probeFitting();
    await this.doors.start();
  }

  /** A start() failure that names a problem outside mmsd (exit 78: the spool lock, a door's bus or broker). */
  isEnvironmentError(err: unknown): boolean {
    return err instanceof SpoolLockError || this.doors.isStartError(err);
  }

  /**
   * §11: one line at start on whether photos can be fitted here: sharp found, not loaded (it loads
   * only in the fitter's child process; one that is found but does not load on this platform says
   * so on the first message that needs it, which then fails as MessageTooLarge with the reason).
   */
  private probeFitting(): void {
    const lib = locateImageLibrary();
    if (lib.found) this.logger.info({ library: lib.path }, 'photos that do not fit are made smaller');
    else this.logger.warn({ reason: lib.reason }, 'image fitting is off: the image library (sharp) is not installed; messages over the size limit fail as MessageTooLarge');
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

  /**
   * Stop taking work, let the in-flight step reach a safe point, close the port; then the doors, in
   * reverse order. The doors stay up while the message in hand finishes, so that clients can still
   * read statuses and hear its outcome; a refused MQTT request stays with the broker.
   */
  async stop(): Promise<void> {
    this.accepting = false;
    this.stopAbort.abort(new StoppingError());
    await this.sender.stop();
    this.sms?.stop();
    await this.inbound?.stop();
    await this.receiver?.stop();
    await this.modem.stop();
    await this.channel.stop();
    await this.outbox.stop();
    await this.doors.stop();
    this.removeAllListeners();
  }

  async submit(raw: RawSendRequest): Promise<SubmitResult> {
    const limit = this.sizeLimit();
    const req = await validateRequest(raw, {
      maxMessageBytes: limit.bytes,
      limitSource: limit.source,
      allowedDirs: this.config.attachments.allowedDirs,
      ...(this.config.media.fit ? { fit: { check: checkNonImageParts } } : {}),
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

  listReceived(): ReceivedRecord[] {
    return this.receiver?.list() ?? [];
  }

  getReceived(id: string): ReceivedRecord | undefined {
    return this.receiver?.get(id);
  }

  async retrieveReceived(id: string): Promise<ReceivedRecord> {
    return this.needReceiver().retrieve(id);
  }

  async deleteReceived(id: string): Promise<void> {
    return this.needReceiver().delete(id);
  }

  private needReceiver(): Receiver {
    if (!this.receiver) throw new RequestError('InboundDisabled', 'receiving is off (inbound.enabled is false)');
    return this.receiver;
  }

  modemStatus(): ModemStatus {
    return this.modem.status;
  }

  modemIdentity(): ModemIdentity | undefined {
    return this.modem.moduleIdentity;
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
