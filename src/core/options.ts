// The one table of per-message send options (DESIGN.md §4 `options`, §5): validation, both front
// doors, mmsctl and the sender read it. Adding an option is adding a row (and, for a new kind of
// effect, teaching its one consumer what to do with it).

/**
 * One option. `sendParam`: the option is a slot of `AT+QMMSCFG="sendparam"` (spec §2.1) and
 * overrides the configured `mms.*` value of the same name for its message; other options are read
 * by name where they take effect (`timeout` by the sender, for AT+QMMSEND).
 */
export interface SendOptionSpec {
  /** The key in a request's `options` and in the spool. */
  readonly key: string;
  readonly type: 'integer' | 'boolean';
  /** Accepted range of an integer option. */
  readonly range?: readonly [number, number];
  readonly sendParam: boolean;
  /** Key in the a{sv} options of SendMessage / SendMessageData. */
  readonly dbus: string;
  /** Key in the `options` object of an MQTT send request. */
  readonly mqtt: string;
  /**
   * mmsctl flag (without `--`), and the placeholder its help shows for an integer's value.
   * `negates`: a boolean option that is on by default; the flag turns it off.
   */
  readonly cli: { readonly flag: string; readonly arg?: string; readonly negates?: true };
  readonly doc: string;
}

export const SEND_OPTIONS = [
  {
    key: 'validity',
    type: 'integer',
    range: [0, 6],
    sendParam: true,
    dbus: 'Validity',
    mqtt: 'validity',
    cli: { flag: 'validity' },
    doc: 'how long the MMSC keeps it: 0 1 hour, 1 12 hours, 2 24 hours, 3 2 days, 4 1 week, 5 maximum, 6 network default',
  },
  {
    key: 'priority',
    type: 'integer',
    range: [0, 3],
    sendParam: true,
    dbus: 'Priority',
    mqtt: 'priority',
    cli: { flag: 'priority' },
    doc: '0 low, 1 normal, 2 high, 3 network default',
  },
  {
    key: 'deliveryReport',
    type: 'boolean',
    sendParam: true,
    dbus: 'DeliveryReport',
    mqtt: 'deliveryReport',
    cli: { flag: 'delivery-report' },
    doc: 'ask for a delivery report',
  },
  {
    key: 'readReport',
    type: 'boolean',
    sendParam: true,
    dbus: 'ReadReport',
    mqtt: 'readReport',
    cli: { flag: 'read-report' },
    doc: 'ask for a read report',
  },
  {
    key: 'visibility',
    type: 'integer',
    range: [0, 2],
    sendParam: true,
    dbus: 'Visibility',
    mqtt: 'visibility',
    cli: { flag: 'visibility' },
    doc: '0 hide all addresses, 1 show all (BCC included), 2 network default',
  },
  {
    key: 'class',
    type: 'integer',
    range: [0, 4],
    sendParam: true,
    dbus: 'Class',
    mqtt: 'class',
    cli: { flag: 'class' },
    doc: '0 personal, 1 advertisement, 2 informational, 3 auto, 4 network default',
  },
  {
    key: 'timeout',
    type: 'integer',
    range: [1, 65535],
    sendParam: false,
    dbus: 'Timeout',
    mqtt: 'timeout',
    cli: { flag: 'timeout', arg: 'S' },
    doc: 'seconds AT+QMMSEND may take (instead of mms.sendTimeoutS)',
  },
  {
    key: 'fit',
    type: 'boolean',
    sendParam: false,
    dbus: 'Fit',
    mqtt: 'fit',
    cli: { flag: 'no-fit', negates: true },
    doc: 'make photos fit the size limit (DESIGN.md §11; default true, with media.fit); false: a message over the limit is refused (MessageTooLarge)',
  },
] as const satisfies readonly SendOptionSpec[];

type OptionRow = (typeof SEND_OPTIONS)[number];
type ValueOf<R extends OptionRow> = R['type'] extends 'boolean' ? boolean : number;

export type SendOptionKey = OptionRow['key'];

/** Per-message send options (DESIGN.md §4 `options`), overriding `mms.*` config. */
export type SendOptions = { [R in OptionRow as R['key']]?: ValueOf<R> };

/** The `AT+QMMSCFG="sendparam"` slots (spec §2.1), named like the options that override them. */
export type SendParams = { [R in Extract<OptionRow, { sendParam: true }> as R['key']]: ValueOf<R> };

/** The options that are sendparam slots, in the table's order. */
export const SEND_PARAM_KEYS = SEND_OPTIONS.filter((o) => o.sendParam).map((o) => o.key) as readonly (keyof SendParams)[];

/** The sendparam slots of anything that carries them (the `mms.*` settings, say). */
export function pickSendParams(from: SendParams): SendParams {
  const out: Record<string, unknown> = {};
  for (const key of SEND_PARAM_KEYS) out[key] = from[key];
  return out as SendParams;
}

/** A message's options over the configured sendparam (DESIGN.md §4 `options`). */
export function mergeSendParams(defaults: SendParams, options: SendOptions): SendParams {
  const out: Record<string, unknown> = {};
  for (const key of SEND_PARAM_KEYS) out[key] = options[key] ?? defaults[key];
  return out as SendParams;
}

/** Whether two sendparam sets are the same (`b` undefined: the module's is not known). */
export function sameSendParams(a: SendParams, b: SendParams | undefined): boolean {
  return b !== undefined && SEND_PARAM_KEYS.every((key) => a[key] === b[key]);
}
