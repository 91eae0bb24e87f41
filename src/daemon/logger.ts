// The daemon's pino logger: JSON lines to stdout, secrets redacted wherever they appear.
import { pino, type Logger, type DestinationStream } from 'pino';

export const REDACT_PATHS = [
  'password',
  '*.password',
  'pdp.password',
  'config.pdp.password',
  'mqtt.password',
  '*.passwordFile',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      name: 'mmsd',
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** The exit status after an error no handler caught (sysexits EX_SOFTWARE): systemd restarts. */
export const EX_SOFTWARE = 70;

/**
 * The process's last word on an error that escaped every handler (an exception, or a rejection
 * nobody awaited): one fatal JSON line with the error and its stack, then exit. The process's
 * state is unknown by then, so it does not go on; systemd restarts it and the outbox recovers.
 */
export function crashHandler(logger: Logger, exit: (code: number) => void = (c) => process.exit(c)): (err: unknown, origin: string) => void {
  return (err, origin) => {
    try {
      logger.fatal({ err, origin }, 'unhandled error; exiting so that systemd restarts mmsd');
    } finally {
      exit(EX_SOFTWARE);
    }
  };
}
