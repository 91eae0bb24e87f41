#!/usr/bin/env node
// `mmsd [--config FILE] [--check-config]`: loads the configuration, starts the daemon (which builds,
// starts and stops every part, the front doors included), speaks systemd's notify protocol, and stops
// cleanly on SIGTERM/SIGINT (DESIGN.md §2, §14).
// Exit status: 0 after a clean stop; 78 (EX_CONFIG) for a configuration or environment problem,
// with one line naming what to fix and no stack trace (the unit does not restart on it); 70 for a
// bug; 64 for a bad command line.
import { parseArgs } from 'node:util';
import { ConfigError, EX_CONFIG, loadConfig, type Config } from '../config/load.js';
import { Daemon } from '../daemon/daemon.js';
import { crashHandler, createLogger, EX_SOFTWARE, isJournalStream } from '../daemon/logger.js';
import { preflight } from '../daemon/preflight.js';
import { ServiceSupervisor } from '../daemon/supervisor.js';
import { SdNotifier } from '../daemon/sd-notify.js';
import { VERSION } from '../daemon/version.js';
import { errorText } from '../core/errors.js';
import { LOG_EVENTS } from '../core/log-events.js';

const USAGE = `usage: mmsd [--config FILE] [--check-config]

Sends MMS through a Quectel LTE modem; takes requests over D-Bus and MQTT.
Configuration: FILE (JSON), then MMSD_* environment variables, then defaults
(see docs/configuration.md). Logs JSON lines to stdout.

  -c, --config FILE   the configuration file
      --check-config  check the configuration and the files it names, print one
                      line per problem, and exit: 0 when fine, 78 when not.
                      Touches nothing (no spool, no bus, no modem port).`;

/** Until the logger exists: nothing to flush, and a bug is reported on stderr. */
let flushLog: (done: () => void) => void = (done) => done();
let onCrash: ((err: unknown, origin: string) => void) | undefined;

/** Lines before the logger exists go to stderr; under journald with their priority (err, warning). */
function say(priority: 3 | 4, line: string): void {
  const prefix = isJournalStream(process.env, 2) ? `<${priority}>` : '';
  process.stderr.write(`${prefix}mmsd: ${line}\n`);
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: 'string', short: 'c' },
        'check-config': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
      strict: true,
    });
  } catch (err) {
    process.stderr.write(`mmsd: ${(err as Error).message}\n${USAGE}\n`);
    return 64;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }

  let config: Config;
  try {
    config = loadConfig({ file: args.values.config, env: process.env });
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    for (const p of problems) say(3, `config: ${p}`);
    return EX_CONFIG;
  }
  const checked = await preflight(config, { env: process.env });
  if (args.values['check-config']) {
    for (const p of checked.problems) say(3, p);
    for (const w of checked.warnings) say(4, `warning: ${w}`);
    if (checked.problems.length > 0) return EX_CONFIG;
    process.stdout.write(`mmsd: configuration ok${args.values.config !== undefined ? ` (${args.values.config})` : ''}\n`);
    return 0;
  }
  if (checked.problems.length > 0) {
    for (const p of checked.problems) say(3, p);
    return EX_CONFIG;
  }

  const logger = createLogger(config.log.level, undefined, {
    journal: isJournalStream(process.env, 1),
    // Asked at every line; the first line is written after `daemon` exists.
    currentMessage: () => daemon.currentMessage(),
  });
  const daemon = new Daemon({
    config,
    logger,
    version: VERSION,
    // The D-Bus connection is lost: stop and exit 1, for systemd to restart the daemon.
    onFatal: (reason) => {
      stop(reason).then(
        () => exitAfterFlush(1),
        () => exitAfterFlush(1),
      );
    },
  });
  onCrash = crashHandler(logger);
  process.on('uncaughtException', onCrash);
  flushLog = (done) => logger.flush(() => done());
  const notifier = new SdNotifier({ env: process.env, logger: logger.child({ part: 'systemd' }) });
  const supervisor = new ServiceSupervisor({ daemon, notifier, logger: logger.child({ part: 'systemd' }) });
  let stopping: Promise<void> | undefined;
  const stop = (signal: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ signal }, LOG_EVENTS.stopping);
      await supervisor.stopping();
      // The daemon refuses new submissions at once, waits for the message in flight (its send
      // result, if the module accepted it), then stops its doors (Daemon.stop).
      await daemon.stop();
      supervisor.stopped();
      logger.info(LOG_EVENTS.stopped);
    })();
    return stopping;
  };
  const exitAfterFlush = (code: number): void => flushLog(() => process.exit(code));
  const onSignal = (signal: NodeJS.Signals): void => {
    stop(signal).then(
      () => exitAfterFlush(0),
      (err: Error) => {
        logger.error({ err: err.message }, 'stop failed');
        exitAfterFlush(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  logger.info({ version: VERSION, port: config.modem.port, outbox: config.outbox.dir }, LOG_EVENTS.starting);
  for (const w of checked.warnings) logger.warn(w);
  try {
    await daemon.start();
  } catch (err) {
    if (!daemon.isEnvironmentError(err)) throw err;
    // One line naming what to fix; no stack: nothing in mmsd is broken.
    logger.fatal({ exitCode: EX_CONFIG }, (err as Error).message);
    await daemon.stop().catch((e: unknown) => logger.warn({ err: errorText(e) }, 'stop failed'));
    return EX_CONFIG;
  }
  supervisor.start();
  return -1; // keep running
}

main().then(
  (code) => {
    if (code >= 0) flushLog(() => process.exit(code));
  },
  (err: unknown) => {
    // A bug during start-up: one fatal line with the stack in its own field (or, before the
    // logger exists, one line on stderr), then 70.
    if (onCrash) onCrash(err, 'startup');
    else {
      process.stderr.write(`mmsd: ${errorText(err)}\n`);
      process.exit(EX_SOFTWARE);
    }
  },
);
