// The front doors as the daemon's extensions (DESIGN.md §1): each is built, started and stopped by
// the composition root, after the parts it serves and, on stop, after the message in hand is done.
// Model: zigbee2mqtt's lib/extension/extension.ts (a name, start(), stop()).
import type { Logger } from 'pino';
import type { FrontDoorContext } from '../api/types.js';
import { DbusService, DbusStartError } from '../api/dbus/service.js';
import type { MqttStartError } from '../api/mqtt/service.js';
import type { Config } from '../config/load.js';
import { LOG_EVENTS } from '../core/log-events.js';

/** A part the daemon starts after its core and stops last: a front door. */
export interface Extension {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Whether a start() failure names a problem outside mmsd (exit 78), not a bug (70). */
  isStartError(err: unknown): boolean;
}

export interface DoorOptions {
  config: Config;
  ctx: FrontDoorContext;
  logger: Logger;
  /** A door lost what it cannot run without (the D-Bus connection): the process should stop and exit 1. */
  onFatal: (reason: string) => void;
}

/** The doors the configuration enables, in start order: D-Bus, then MQTT. */
export function frontDoors(opts: DoorOptions): Extension[] {
  const doors: Extension[] = [];
  if (opts.config.dbus.enabled) doors.push(dbusDoor(opts));
  if (opts.config.mqtt.enabled) doors.push(mqttDoor(opts));
  return doors;
}

function dbusDoor({ config, ctx, logger, onFatal }: DoorOptions): Extension {
  let service: DbusService | undefined;
  return {
    name: 'dbus',
    async start() {
      service = new DbusService({ ctx, bus: config.dbus.bus, logger });
      service.on('busError', (err: Error) => {
        // Without its bus the daemon cannot be reached: exit and let systemd restart it.
        logger.fatal({ err: err.message }, LOG_EVENTS.dbusLost);
        onFatal('busError');
      });
      await service.start();
    },
    stop: () => service?.stop() ?? Promise.resolve(),
    isStartError: (err) => err instanceof DbusStartError,
  };
}

function mqttDoor({ config, ctx, logger }: DoorOptions): Extension {
  let service: { stop(): Promise<void> } | undefined;
  let startError: typeof MqttStartError | undefined;
  return {
    name: 'mqtt',
    async start() {
      // Loaded only when enabled: mqtt.js costs about 0.1–0.2 s of start-up and several MiB of RSS.
      const { MqttService, MqttStartError } = await import('../api/mqtt/service.js');
      startError = MqttStartError;
      const mqtt = new MqttService({ ctx, config: config.mqtt, logger, homeAssistant: config.homeAssistant });
      await mqtt.start();
      service = mqtt;
    },
    stop: () => service?.stop() ?? Promise.resolve(),
    isStartError: (err) => startError !== undefined && err instanceof startError,
  };
}

/**
 * Extensions started in order and stopped in reverse; only those whose start() resolved are
 * stopped. A stop that fails is logged (`stop failed`, with the door's name) and the rest go on.
 */
export class Extensions {
  private readonly started: Extension[] = [];

  constructor(
    private readonly all: readonly Extension[],
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    for (const e of this.all) {
      await e.start();
      this.started.push(e);
    }
  }

  async stop(): Promise<void> {
    for (const e of this.started.splice(0).reverse()) {
      await e.stop().catch((err: Error) => this.logger.warn({ door: e.name, err: err.message }, 'stop failed'));
    }
  }

  isStartError(err: unknown): boolean {
    return this.all.some((e) => e.isStartError(err));
  }
}
