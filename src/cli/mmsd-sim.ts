#!/usr/bin/env node
// mmsd-sim: the virtual Quectel module on a pty pair or a TCP socket, optionally with the loopback
// MMSC, steerable at run time over the control API (DESIGN.md §7, docs/sim.md).
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { ControlServer, type ControlMmsc } from '../sim/control.js';
import { VirtualModem } from '../sim/modem.js';
import { ProgramMissingError } from '../sim/programs.js';
import { PtyServer, TcpServer, type PortServer } from '../sim/serve.js';
import { BadDeliveryPlan, DELIVERY_PLAN_NAMES, isDeliveryPlan, parseRecipientDelivery } from '../sim/delivery-plans.js';
import type { DeliveryPlan, DeliverySettings, RecipientDelivery, SimSendOutcome, SimSender } from '../sim/types.js';
import type { SimIdentityState } from '../sim/modem.js';
import { errorText } from '../core/errors.js';

const USAGE = `usage: mmsd-sim (--pty PATH | --tcp HOST:PORT) [options]
  --pty PATH               serve the module on a pty pair; PATH links to the daemon's end
  --tcp HOST:PORT          serve the module on a TCP socket (port 0 = any free port)
  --mmsc HOST:PORT         also run the loopback MMSC there (it is proxy and MMSC at once)
  --network                with --mmsc: play the operator's network, which carries every MMS
                           request to the loopback MMSC whatever MMSC URL and proxy the module
                           was given (for settings from the carrier database)
  --store DIR              where the MMSC keeps what it received
  --baud N                 throttle the line to N/10 bytes per second each way
  --fail-send ERR[:HTTP[:MMSRSP]]  result of the next AT+QMMSEND (repeatable, in order)
  --lte-only               registration through +CEREG only
  --no-sim                 no SIM card inserted
  --imsi DIGITS            the SIM's IMSI, AT+CIMI (default 001010123456789: test network 001-01)
  --iccid DIGITS           the SIM's ICCID, AT+QCCID (default 89860000000000000001)
  --spn NAME               the SIM's service provider name in AT+QSPN (default none)
  --control HOST:PORT      run-time control API (default 127.0.0.1:0)
  --boot-ms N              restart time before RDY (default 300)
  --escape-guard-ms N      silence around "+++" in upload mode (default 1000)
  --ram-bytes N            RAM file store capacity (default 2097152)
  --upload-buffer N        AT+QFUPL receive buffer: bytes not yet stored the module holds; more
                           are lost and the upload fails with +CME ERROR: 409 (default 4096, 0 = no limit)
  --upload-block-ms N      time to store each 1024-byte block before its "A" (default 0: at once)
  --send-delay-ms N        the radio's time per AT+QMMSEND before the MMSC is reached (default 50)
  --sms-capacity N         SMS store capacity of "ME" in messages (default 25; "SM" holds 50)
  --delivery PLAN          delivery reports the MMSC pushes when asked: retrieved (default),
                           rejected, expired, deferred-then-retrieved, none
  --delivery-delay-ms N    from M-Send.conf to each delivery report (default 200)
  --delivery-for ADDR=PLAN[:MS]  one recipient's plan and, optionally, its own delay (repeatable;
                           e.g. --delivery-for +4917012345=rejected:500); others get --delivery
  --receive-sample         with --mmsc: once ready, a phone's message for the gateway arrives (a
                           photo, a text and SMIL, Chinese subject): notification pushed as SMS
  --log-level LEVEL        pino level for stderr (default info)`;

class UsageError extends Error {}

function parseHostPort(text: string, option: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`${option} wants HOST:PORT, got "${text}"`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

function parseFailSend(text: string): SimSendOutcome {
  const m = /^(\d{1,5})(?::(\d{1,3})(?::(.*))?)?$/.exec(text);
  if (!m) throw new UsageError(`--fail-send wants ERR[:HTTP[:MMSRSP]], got "${text}"`);
  const outcome: SimSendOutcome = { err: Number(m[1]), httpStatus: m[2] ? Number(m[2]) : 0 };
  if (m[3] !== undefined && m[3] !== '') outcome.mmsrsp = m[3];
  return outcome;
}

function identityOf(values: { imsi?: string; iccid?: string; spn?: string }): Partial<SimIdentityState> {
  const out: Partial<SimIdentityState> = {};
  if (values.imsi !== undefined) {
    if (!/^[0-9]{6,15}$/.test(values.imsi)) throw new UsageError(`--imsi wants 6-15 digits, got "${values.imsi}"`);
    out.imsi = values.imsi;
  }
  if (values.iccid !== undefined) {
    if (!/^[0-9]{10,21}[0-9Ff]?$/.test(values.iccid)) throw new UsageError(`--iccid wants 10-22 digits, got "${values.iccid}"`);
    out.iccid = values.iccid;
  }
  if (values.spn !== undefined) {
    if (!/^[\x20-\x7e]{0,16}$/.test(values.spn) || values.spn.includes('"')) throw new UsageError(`--spn wants up to 16 printable ASCII characters without ", got "${values.spn}"`);
    out.spn = values.spn;
  }
  return out;
}

function nonNegativeInt(text: string | undefined, option: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new UsageError(`${option} wants a whole number, got "${text}"`);
  return Number(text);
}

interface MmscHandle extends ControlMmsc {
  stop(): Promise<void>;
  setPushTarget(push: ((pdu: Buffer, segments?: number) => void) | undefined): void;
}

function parseDelivery(text: string | undefined): DeliveryPlan {
  if (text === undefined) return 'retrieved';
  if (!isDeliveryPlan(text)) throw new UsageError(`--delivery wants one of ${DELIVERY_PLAN_NAMES.join(', ')}, got "${text}"`);
  return text;
}

function parseDeliveryFor(texts: readonly string[]): Record<string, RecipientDelivery> {
  const out: Record<string, RecipientDelivery> = {};
  for (const text of texts) {
    try {
      const [address, r] = parseRecipientDelivery(text);
      out[address] = r;
    } catch (err) {
      if (err instanceof BadDeliveryPlan) throw new UsageError(`--delivery-for ${err.message}`);
      throw err;
    }
  }
  return out;
}

async function startMmsc(
  addr: { host: string; port: number },
  store: string | undefined,
  delivery: DeliverySettings,
  logger: Logger,
  network: boolean,
): Promise<{ mmsc: MmscHandle; url: string; sender: SimSender }> {
  // Loaded only with --mmsc, so that the module alone needs nothing of the MMS side.
  const [{ LoopbackMmsc }, { postMms }] = await Promise.all([import('../sim/mmsc.js'), import('../sim/mms-post.js')]);
  const mmsc = new LoopbackMmsc({ host: addr.host, port: addr.port, logger, delivery, ...(store !== undefined ? { store } : {}) });
  const { url } = await mmsc.start();
  if (!network) return { mmsc, url, sender: postMms };
  // --network: the loopback MMSC is the proxy of every request, which then goes in proxy form
  // with the module's own MMSC URL (http://mmsc.pt.lu/…) as its target; it answers on any path.
  const loopback = new URL(url);
  const proxy = { host: loopback.hostname.replace(/^\[|\]$/g, ''), port: Number(loopback.port) };
  return { mmsc, url, sender: (req) => postMms({ ...req, proxy }) };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      pty: { type: 'string' },
      tcp: { type: 'string' },
      mmsc: { type: 'string' },
      store: { type: 'string' },
      baud: { type: 'string' },
      'fail-send': { type: 'string', multiple: true },
      'lte-only': { type: 'boolean' },
      'no-sim': { type: 'boolean' },
      network: { type: 'boolean' },
      imsi: { type: 'string' },
      iccid: { type: 'string' },
      spn: { type: 'string' },
      control: { type: 'string' },
      'boot-ms': { type: 'string' },
      'escape-guard-ms': { type: 'string' },
      'ram-bytes': { type: 'string' },
      'upload-buffer': { type: 'string' },
      'upload-block-ms': { type: 'string' },
      'send-delay-ms': { type: 'string' },
      'sms-capacity': { type: 'string' },
      delivery: { type: 'string' },
      'delivery-delay-ms': { type: 'string' },
      'delivery-for': { type: 'string', multiple: true },
      'receive-sample': { type: 'boolean' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if ((values.pty === undefined) === (values.tcp === undefined)) throw new UsageError('give exactly one of --pty PATH and --tcp HOST:PORT');
  const logger = pino({ name: 'mmsd-sim', level: values['log-level'] ?? 'info' }, pino.destination({ fd: 2, sync: true }));
  const baud = nonNegativeInt(values.baud, '--baud', 0);
  const sendResults = (values['fail-send'] ?? []).map(parseFailSend);
  const control = parseHostPort(values.control ?? '127.0.0.1:0', '--control');
  const tcp = values.tcp !== undefined ? parseHostPort(values.tcp, '--tcp') : undefined;
  const mmscAddr = values.mmsc !== undefined ? parseHostPort(values.mmsc, '--mmsc') : undefined;
  if (values.network && !mmscAddr) throw new UsageError('--network needs --mmsc HOST:PORT (the loopback MMSC it carries requests to)');
  if (values['receive-sample'] && !mmscAddr) throw new UsageError('--receive-sample needs --mmsc HOST:PORT (the MMSC that holds the message)');
  const identity = identityOf(values);
  const delivery: DeliverySettings = {
    plan: parseDelivery(values.delivery),
    delayMs: nonNegativeInt(values['delivery-delay-ms'], '--delivery-delay-ms', 200),
    recipients: parseDeliveryFor(values['delivery-for'] ?? []),
  };
  if (Object.keys(delivery.recipients ?? {}).length > 0 && !mmscAddr) throw new UsageError('--delivery-for needs --mmsc HOST:PORT (the MMSC that pushes the reports)');
  const smsCapacity = nonNegativeInt(values['sms-capacity'], '--sms-capacity', 25);

  // Handlers first: a supervisor may send SIGTERM during start-up or the moment it reads the
  // ready line; either way socat must not be left behind.
  const stopRequested = new Promise<void>((resolve) => {
    const done = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
  });

  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        logger.warn({ err }, 'cleanup step failed');
      }
    }
  };
  try {
    let mmsc: MmscHandle | undefined;
    let mmscUrl: string | undefined;
    let sender: SimSender | undefined;
    if (mmscAddr) {
      const started = await startMmsc(mmscAddr, values.store, delivery, logger, values.network ?? false);
      ({ mmsc, url: mmscUrl, sender } = started);
      const m = mmsc;
      cleanups.push(() => m.stop());
    }
    const modem = new VirtualModem({
      logger,
      sim: values['no-sim'] ? 'absent' : 'ready',
      lteOnly: values['lte-only'] ?? false,
      bootMs: nonNegativeInt(values['boot-ms'], '--boot-ms', 300),
      escapeGuardMs: nonNegativeInt(values['escape-guard-ms'], '--escape-guard-ms', 1000),
      ramBytes: nonNegativeInt(values['ram-bytes'], '--ram-bytes', 2 * 1024 * 1024),
      uploadBufferBytes: nonNegativeInt(values['upload-buffer'], '--upload-buffer', 4096),
      uploadBlockMs: nonNegativeInt(values['upload-block-ms'], '--upload-block-ms', 0),
      bytesPerSecond: baud / 10,
      sendDelayMs: nonNegativeInt(values['send-delay-ms'], '--send-delay-ms', 50),
      sendResults,
      identity,
      smsCapacity: { ME: smsCapacity },
      ...(sender ? { sender } : {}),
    });
    modem.start();
    // The MMSC's delivery reports and notifications reach the module as WAP-push SMS.
    mmsc?.setPushTarget((pdu, segments) => {
      modem.deliverPush(pdu, segments !== undefined ? { segments } : {});
    });
    cleanups.push(() => Promise.resolve(modem.stop()));

    let server: PortServer;
    if (tcp) {
      const s = new TcpServer({ host: tcp.host, port: tcp.port, modem, logger });
      await s.start();
      server = s;
    } else {
      const s = new PtyServer({ path: values.pty!, modem, logger });
      await s.start();
      server = s;
    }
    cleanups.push(() => server.stop());

    const controlServer = new ControlServer({ host: control.host, port: control.port, logger, modem, server, ...(mmsc ? { mmsc } : {}) });
    const { url: controlUrl } = await controlServer.start();
    cleanups.push(() => controlServer.stop());

    const ready: Record<string, string> = { port: server.description };
    if (mmscUrl) ready.mmsc = mmscUrl;
    ready.control = controlUrl;
    process.stdout.write(`${JSON.stringify(ready)}\n`);
    logger.info(ready, 'mmsd-sim ready');
    if (values['receive-sample'] && mmsc) {
      const { sampleInboundRequest } = await import('../sim/mmsc-inbox.js');
      const receipt = mmsc.receive(sampleInboundRequest());
      logger.info({ id: receipt.id, contentLocation: receipt.contentLocation }, 'sample message for the gateway');
    }

    await stopRequested;
    await cleanup();
    return 0;
  } catch (err) {
    // A missing socat is said in one line (below), not with a stack.
    if (!(err instanceof ProgramMissingError)) logger.error({ err }, 'mmsd-sim failed');
    await cleanup();
    throw err;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ProgramMissingError && err.program === 'socat') {
      process.stderr.write(`mmsd-sim: socat is needed for --pty (apt install socat), or use --tcp\n`);
      process.exit(2);
    }
    process.stderr.write(`mmsd-sim: ${errorText(err)}\n`);
    const usage = err instanceof UsageError || String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    if (usage) process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  },
);
