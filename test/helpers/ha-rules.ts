// Home Assistant's published rules for MQTT device-based discovery, as data, for checking the
// discovery message mmsd publishes (DESIGN.md §13). Sources (home-assistant.io, read 2025):
// - source/_integrations/mqtt.markdown: "Device discovery payload" (root keys `dev` and `o` are
//   required, components under `cmps`, each with `p` and, for entities, `unique_id`), "Supported
//   abbreviations in MQTT discovery messages", "... for device registry configuration", "... for
//   origin info";
// - sensor.mqtt.markdown, binary_sensor.mqtt.markdown, event.mqtt.markdown, notify.mqtt.markdown:
//   each platform's options and which are required.
// Unknown keys are ignored by HA rather than refused, which is why this check is strict: a key HA
// does not know is a key that silently does nothing.

/** The abbreviations mmsd relies on, from HA's tables (a subset: only what a payload may use). */
export const ABBREVIATIONS: Readonly<Record<string, string>> = {
  avty: 'availability',
  cmd_t: 'command_topic',
  cmps: 'components',
  dev: 'device',
  dev_cla: 'device_class',
  ent_cat: 'entity_category',
  evt_typ: 'event_types',
  ic: 'icon',
  name: 'name',
  o: 'origin',
  ops: 'options',
  p: 'platform',
  stat_cla: 'state_class',
  stat_t: 'state_topic',
  t: 'topic',
  uniq_id: 'unique_id',
  unit_of_meas: 'unit_of_measurement',
  val_tpl: 'value_template',
};

/** Device registry abbreviations (HA's second table). */
export const DEVICE_ABBREVIATIONS: Readonly<Record<string, string>> = {
  cu: 'configuration_url',
  cns: 'connections',
  ids: 'identifiers',
  name: 'name',
  mf: 'manufacturer',
  mdl: 'model',
  mdl_id: 'model_id',
  hw: 'hw_version',
  sw: 'sw_version',
  sa: 'suggested_area',
  sn: 'serial_number',
};

/** Origin abbreviations (HA's third table). */
export const ORIGIN_ABBREVIATIONS: Readonly<Record<string, string>> = { name: 'name', sw: 'sw_version', url: 'support_url' };

/** Shared options a device message may carry at its root ("Supported shared options"). */
const ROOT_OPTIONS = new Set(['device', 'origin', 'components', 'availability', 'availability_mode', 'availability_topic', 'command_topic', 'state_topic', 'qos', 'encoding']);

/** Options every MQTT entity platform has (the platform pages' common part). */
const ENTITY_OPTIONS = [
  'platform',
  'availability',
  'availability_mode',
  'availability_template',
  'availability_topic',
  'device',
  'enabled_by_default',
  'encoding',
  'entity_category',
  'entity_picture',
  'icon',
  'json_attributes_template',
  'json_attributes_topic',
  'name',
  'object_id',
  'payload_available',
  'payload_not_available',
  'qos',
  'unique_id',
];

interface PlatformRules {
  options: Set<string>;
  required: string[];
}

export const PLATFORMS: Readonly<Record<string, PlatformRules>> = {
  sensor: {
    options: new Set([...ENTITY_OPTIONS, 'device_class', 'expire_after', 'force_update', 'last_reset_value_template', 'options', 'state_class', 'state_topic', 'suggested_display_precision', 'unit_of_measurement', 'value_template']),
    required: ['state_topic'],
  },
  binary_sensor: {
    options: new Set([...ENTITY_OPTIONS, 'device_class', 'expire_after', 'force_update', 'off_delay', 'payload_off', 'payload_on', 'state_topic', 'value_template']),
    required: ['state_topic'],
  },
  event: {
    options: new Set([...ENTITY_OPTIONS, 'device_class', 'event_types', 'state_topic', 'value_template']),
    required: ['state_topic', 'event_types'],
  },
  notify: {
    options: new Set([...ENTITY_OPTIONS, 'command_template', 'command_topic', 'retain']),
    // Not required by the YAML schema, but without it the entity has nowhere to send.
    required: ['command_topic'],
  },
};

/** sensor.markdown: state classes, and the units the signal_strength device class takes. */
export const STATE_CLASSES = new Set(['measurement', 'measurement_angle', 'total', 'total_increasing']);
export const SIGNAL_STRENGTH_UNITS = new Set(['dB', 'dBm']);
export const ENTITY_CATEGORIES = new Set(['config', 'diagnostic']);

/** Replaces abbreviated keys by their full names; throws on a key that is neither. */
export function expand(obj: Record<string, unknown>, table: Readonly<Record<string, string>>, fullNames: ReadonlySet<string>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const full = table[k] ?? (fullNames.has(k) ? k : undefined);
    if (full === undefined) throw new Error(`${where}: key ${JSON.stringify(k)} is neither an option nor one of HA's abbreviations`);
    if (full in out) throw new Error(`${where}: ${full} given twice`);
    out[full] = v;
  }
  return out;
}

/**
 * Checks a device discovery message against the rules above; returns the expanded components by
 * their key. Throws an Error naming the first broken rule.
 */
export function checkDeviceDiscovery(payload: Record<string, unknown>): Record<string, Record<string, unknown>> {
  const root = expand(payload, ABBREVIATIONS, ROOT_OPTIONS, 'root');
  for (const k of Object.keys(root)) if (!ROOT_OPTIONS.has(k)) throw new Error(`root: ${k} is not a shared option of a device message`);
  const device = root.device as Record<string, unknown> | undefined;
  if (typeof device !== 'object' || device === null) throw new Error('root: device (dev) is required');
  const dev = expand(device, DEVICE_ABBREVIATIONS, new Set(Object.values(DEVICE_ABBREVIATIONS)), 'device');
  const ids = dev.identifiers;
  if (!(typeof ids === 'string' || (Array.isArray(ids) && ids.length > 0 && ids.every((i) => typeof i === 'string'))) && dev.connections === undefined) {
    throw new Error('device: identifiers or connections are required');
  }
  const origin = root.origin as Record<string, unknown> | undefined;
  if (typeof origin !== 'object' || origin === null) throw new Error('root: origin (o) is required');
  const o = expand(origin, ORIGIN_ABBREVIATIONS, new Set(Object.values(ORIGIN_ABBREVIATIONS)), 'origin');
  if (typeof o.name !== 'string' || o.name === '') throw new Error('origin: name is required');
  if (root.availability !== undefined) {
    const list = root.availability as Record<string, unknown>[];
    if (!Array.isArray(list) || list.length === 0) throw new Error('availability must be a non-empty list');
    for (const a of list) {
      const e = expand(a, ABBREVIATIONS, new Set(['topic', 'payload_available', 'payload_not_available', 'value_template']), 'availability');
      if (typeof e.topic !== 'string' || e.topic === '') throw new Error('availability: topic is required');
    }
  }
  const cmps = root.components as Record<string, Record<string, unknown>> | undefined;
  if (typeof cmps !== 'object' || cmps === null || Object.keys(cmps).length === 0) throw new Error('root: components (cmps) are required');
  const out: Record<string, Record<string, unknown>> = {};
  const uniqueIds = new Set<string>();
  for (const [key, raw] of Object.entries(cmps)) {
    if (!/^[a-zA-Z0-9_-]+$/.test(key)) throw new Error(`component id ${key}: only [a-zA-Z0-9_-]`);
    const platform = (raw.p ?? raw.platform) as string;
    const rules = PLATFORMS[platform];
    if (!rules) throw new Error(`${key}: platform ${String(platform)} is not one this check knows`);
    const c = expand(raw, ABBREVIATIONS, rules.options, key);
    for (const k of Object.keys(c)) if (!rules.options.has(k)) throw new Error(`${key}: ${k} is not an option of ${platform}`);
    for (const r of rules.required) if (c[r] === undefined || c[r] === '') throw new Error(`${key}: ${r} is required for ${platform}`);
    if (typeof c.unique_id !== 'string' || c.unique_id === '') throw new Error(`${key}: unique_id is required in a device message`);
    if (uniqueIds.has(c.unique_id)) throw new Error(`${key}: unique_id ${c.unique_id} is not unique`);
    uniqueIds.add(c.unique_id);
    if (c.entity_category !== undefined && !ENTITY_CATEGORIES.has(c.entity_category as string)) throw new Error(`${key}: entity_category ${JSON.stringify(c.entity_category)}`);
    if (platform === 'sensor' && c.entity_category === 'config') throw new Error(`${key}: a sensor cannot be entity_category config`);
    if (c.state_class !== undefined && !STATE_CLASSES.has(c.state_class as string)) throw new Error(`${key}: state_class ${JSON.stringify(c.state_class)}`);
    if (c.device_class === 'enum') {
      if (!Array.isArray(c.options) || c.options.length === 0) throw new Error(`${key}: an enum sensor needs options`);
      if (c.state_class !== undefined || c.unit_of_measurement !== undefined) throw new Error(`${key}: an enum sensor has no state_class or unit`);
    }
    if (c.device_class === 'signal_strength' && !SIGNAL_STRENGTH_UNITS.has(c.unit_of_measurement as string)) throw new Error(`${key}: signal_strength is in dB or dBm`);
    if (platform === 'event' && !(Array.isArray(c.event_types) && c.event_types.length > 0 && c.event_types.every((t) => typeof t === 'string'))) {
      throw new Error(`${key}: event_types must be a non-empty list of strings`);
    }
    out[key] = c;
  }
  return out;
}
