// The log messages other programs key on: the crash test's kill points, the benchmarks, the test
// harness, an operator's log filter. The code logs with these constants and the tests read them, so
// renaming one is a change here, seen by both (DESIGN.md §9: pino JSON, one event per line).

export const LOG_EVENTS = {
  /** at: a command line written (`at`: the command). */
  tx: 'tx',
  /** at: a block of a data-mode payload written (`at`: its command, `bytes`). */
  txData: 'tx data',
  /** at: a line received (`at`: the command in flight, `line`). */
  rx: 'rx',
  /** cli: the daemon begins (`version`, `port`, `outbox`). */
  starting: 'starting',
  /** outbox: a new message is durable in the spool (`id`, `recipients`, `attachments`). */
  messageQueued: 'message queued',
  /** daemon: the outbox was read back at start (`loaded`, `requeued`, `unknown`, `leftoverRamFiles`). */
  outboxRecovered: 'outbox recovered',
  /** sender: a message's photos were made smaller to fit (`id`, `bytesBefore`, `bytesAfter` …). */
  messageFitted: 'message fitted',
  /** modem: the +QMMSEND result of an accepted send (`err`, `httpStatus`). */
  sendResultUrc: 'AT+QMMSEND result',
  /** sender: a try of a message begins (`id`, `attempt`). */
  sending: 'sending',
  /** sender: what became of a try (`id`, `attempt`, `outcome`, `status`, `code` …). */
  sendResult: 'send result',
  /** daemon: the modem's status changed (`modem`: the ModemStatus). */
  modemStatus: 'modem status',
  /** daemon: the D-Bus door lost its connection (fatal; the daemon stops and exits 1; `err`). */
  dbusLost: 'lost the D-Bus connection',
  /** dbus: stop() could not release the bus name in time on a connection that looked alive (`err`). */
  dbusReleaseFailed: 'could not release the D-Bus name',
  /** daemon: the parts are up (systemd READY=1; `status`). */
  ready: 'ready',
  /** cli: a stop begins (`signal`: the signal's name, or `busError`). */
  stopping: 'stopping',
  /** cli: every part stopped; the process exits next. */
  stopped: 'stopped',
} as const;

export type LogEvent = (typeof LOG_EVENTS)[keyof typeof LOG_EVENTS];
