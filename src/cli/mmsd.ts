#!/usr/bin/env node
// `mmsd [--config FILE]`: loads the configuration, starts the daemon and its front doors, speaks
// systemd's notify protocol, and stops cleanly on SIGTERM/SIGINT (DESIGN.md §2).
import { parseArgs } from 'node:util';
import { DbusService } from '../api/dbus/service.js';
import { ConfigError, EX_CONFIG, loadConfig, type Config } from '../config/load.js';
import { Daemon } from '../daemon/daemon.js';
import { crashHandler, createLogger } from '../daemon/logger.js';
import { ServiceSupervisor } from '../daemon/supervisor.js';
import { SdNotifier } from '../daemon/sd-notify.js';
import { VERSION } from '../daemon/version.js';

const USAGE = `usage: mmsd [--config FILE]

Sends MMS through a Quectel LTE modem; takes requests over D-Bus and MQTT.
Configuration: FILE (JSON), then MMSD_* environment variables, then defaults
(see docs/configuration.md). Logs JSON lines to stdout.`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } },
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
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`mmsd: config: ${p}\n`);
      return EX_CONFIG;
    }
    process.stderr.write(`mmsd: config: ${(err as Error).message}\n`);
    return EX_CONFIG;
  }

  const logger = createLogger(config.log.level);
  process.on('uncaughtException', crashHandler(logger));
  const notifier = new SdNotifier({ env: process.env, logger: logger.child({ part: 'systemd' }) });
  const daemon = new Daemon({ config, logger, version: VERSION });
  const doors: { name: string; stop(): Promise<void> }[] = [];
  const supervisor = new ServiceSupervisor({ daemon, notifier, logger: logger.child({ part: 'systemd' }) });

  let stopping: Promise<void> | undefined;
  const stop = (signal: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ signal }, 'stopping');
      await supervisor.stopping();
      // The daemon refuses new submissions at once and waits for the message in flight (its send
      // result, if the module accepted it); the doors stay up meanwhile so that clients can still
      // read statuses and hear that message's outcome. A refused MQTT request stays with the broker.
      await daemon.stop();
      supervisor.stopped();
      for (const d of doors.reverse()) {
        await d.stop().catch((err: Error) => logger.warn({ door: d.name, err: err.message }, 'stop failed'));
      }
      logger.info('stopped');
      logger.flush();
    })();
    return stopping;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    stop(signal).then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ err: err.message }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  logger.info({ version: VERSION, port: config.modem.port, outbox: config.outbox.dir }, 'starting');
  await daemon.start();
  if (config.dbus.enabled) {
    const dbus = new DbusService({ ctx: daemon, bus: config.dbus.bus, logger });
    dbus.on('busError', (err: Error) => {
      // Without its bus the daemon cannot be reached: exit and let systemd restart it.
      logger.fatal({ err: err.message }, 'lost the D-Bus connection');
      stop('busError').then(
        () => process.exit(1),
        () => process.exit(1),
      );
    });
    await dbus.start();
    doors.push({ name: 'dbus', stop: () => dbus.stop() });
  }
  if (config.mqtt.enabled) {
    // Loaded only when enabled: mqtt.js costs about 0.1–0.2 s of start-up and several MiB of RSS.
    const { MqttService } = await import('../api/mqtt/service.js');
    const mqtt = new MqttService({ ctx: daemon, config: config.mqtt, logger });
    await mqtt.start();
    doors.push({ name: 'mqtt', stop: () => mqtt.stop() });
  }
  supervisor.start();
  return -1; // keep running
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: Error) => {
    process.stderr.write(`mmsd: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
