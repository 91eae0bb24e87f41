// Loading the configuration (DESIGN.md §2, §3): JSON file, then MMSD_* environment variables, then
// defaults; every bad key becomes one clear line of a ConfigError (the daemon exits 78, EX_CONFIG).
import { readFileSync, realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import convict from 'convict';
import { SCHEMA, checkLeaf, defaultUploadWindow, coerceString, isLeaf, leaves, type Config, type Group, type Leaf } from './schema.js';

export type { Config } from './schema.js';

/** sysexits.h EX_CONFIG: the exit code of `mmsd` on an invalid configuration. */
export const EX_CONFIG = 78;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** JSON config file; absent: environment and defaults only. */
  file?: string;
  env: NodeJS.ProcessEnv;
}

// convict's own coercion of strings is lossy ("12abc" → 12, "0" → true); ours leaves a string it
// cannot read as is, so that validation names the bad value.
let formatsRegistered = false;
function registerFormats(): void {
  if (formatsRegistered) return;
  formatsRegistered = true;
  const validate = function (this: void, value: unknown, schema: Leaf): void {
    const problem = checkLeaf(schema, value);
    if (problem) throw new Error(problem);
  };
  const coerceAs = (format: Leaf['format']) => (v: string) => coerceString({ format } as Leaf, v);
  convict.addFormats({
    'mmsd-int': { validate, coerce: coerceAs('mmsd-int') },
    'mmsd-bool': { validate, coerce: coerceAs('mmsd-bool') },
    'mmsd-enum': { validate, coerce: coerceAs('mmsd-enum') },
    'mmsd-string': { validate, coerce: coerceAs('mmsd-string') },
    'mmsd-paths': { validate, coerce: coerceAs('mmsd-paths') },
    'mmsd-addresses': { validate, coerce: coerceAs('mmsd-addresses') },
  });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function showValue(leaf: Leaf, value: unknown): string {
  if (leaf.sensitive) return '(hidden)';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  const s = JSON.stringify(value);
  return s === undefined ? String(value) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Copies the known part of the file into `out`, reporting unknown keys and wrong nesting
 * (convict would crash on an object where a scalar belongs).
 */
function screenFile(raw: Record<string, unknown>, group: Group, prefix: string, out: Record<string, unknown>, problems: string[]): void {
  for (const [name, value] of Object.entries(raw)) {
    const key = prefix ? `${prefix}.${name}` : name;
    const node = Object.prototype.hasOwnProperty.call(group, name) ? group[name] : undefined;
    if (node === undefined) {
      problems.push(`${key}: unknown key (see docs/configuration.md for the valid ones)`);
    } else if (!isLeaf(node)) {
      if (!isPlainObject(value)) {
        problems.push(`${key}: must be an object holding ${Object.keys(node).join(', ')}`);
        continue;
      }
      const sub: Record<string, unknown> = {};
      screenFile(value, node, key, sub, problems);
      out[name] = sub;
    } else if (isPlainObject(value) || value === null) {
      problems.push(`${key}: ${checkLeaf(node, value) ?? 'has the wrong type'}, got ${node.sensitive ? '(hidden)' : JSON.stringify(value)}`);
    } else {
      out[name] = value;
    }
  }
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError([`${file}: not valid JSON (${(err as Error).message})`]);
  }
  if (!isPlainObject(parsed)) throw new ConfigError([`${file}: must hold a JSON object`]);
  return parsed;
}

function getPath(obj: unknown, key: string): unknown {
  let cur = obj;
  for (const part of key.split('.')) {
    if (!isPlainObject(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

// The keys each loaded config had set in its file or environment, as opposed to defaulted: the
// carrier settings (DESIGN.md §10) let an explicit key win over the database, and a default lose
// to it. Kept beside the object rather than in it, so that Config stays the schema's plain shape.
const EXPLICIT = new WeakMap<Config, ReadonlySet<string>>();

/**
 * The dotted keys (`pdp.apn`, `mms.proxy.port`, …) that `config` took from its file or from an
 * `MMSD_*` variable (set, even to an empty string, as convict reads it), rather than a default.
 * `config` must be the object loadConfig returned (not a copy); anything else is a programming
 * error and throws.
 */
export function explicitKeys(config: Config): ReadonlySet<string> {
  const keys = EXPLICIT.get(config);
  if (keys === undefined) throw new TypeError('explicitKeys: this Config object was not returned by loadConfig');
  return keys;
}

/** Loads, validates and returns the configuration; throws ConfigError with one line per bad key. */
export function loadConfig(opts: LoadOptions): Config {
  registerFormats();
  const problems: string[] = [];
  const fileValues: Record<string, unknown> = {};
  if (opts.file !== undefined) screenFile(readConfigFile(opts.file), SCHEMA, '', fileValues, problems);

  // env given explicitly (never process.env behind the caller's back); no command-line arguments.
  const conf = convict<Config>(SCHEMA as unknown as convict.Schema<Config>, { env: { ...opts.env }, args: [] });
  conf.load(fileValues);
  const values = conf.getProperties();

  for (const { key, leaf } of leaves()) {
    if (problems.some((p) => p.startsWith(`${key}: `))) continue;
    const value = getPath(values, key);
    const problem = checkLeaf(leaf, value);
    if (problem) {
      const fromEnv = opts.env[leaf.env] !== undefined ? ` (from ${leaf.env})` : '';
      problems.push(`${key}: ${problem}, got ${showValue(leaf, value)}${fromEnv}`);
    }
  }

  // Cross-key rules.
  if ((values.mqtt.cert === '') !== (values.mqtt.key === '')) {
    problems.push('mqtt.cert: mqtt.cert and mqtt.key go together; set both or neither');
  }
  if (values.homeAssistant.enabled && !values.mqtt.enabled) {
    problems.push('homeAssistant.enabled: needs mqtt.enabled (Home Assistant reaches mmsd over MQTT); set mqtt.enabled and mqtt.url too');
  }

  if (problems.length === 0) {
    try {
      conf.validate({ allowed: 'strict' });
    } catch (err) {
      // Our checks mirror convict's; should it still object, its own lines are the best we have.
      problems.push(...(err as Error).message.split('\n').filter((l) => l.trim() !== ''));
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  // Derived defaults (DESIGN.md §3).
  if (values.mqtt.sendTopic === '') values.mqtt.sendTopic = `${values.mqtt.baseTopic}/send`;
  if (values.mqtt.clientId === '') values.mqtt.clientId = `mmsd-${hostname().replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const explicit = leaves()
    .filter(({ key, leaf }) => getPath(fileValues, key) !== undefined || opts.env[leaf.env] !== undefined)
    .map(({ key }) => key);
  if (!explicit.includes('modem.uploadWindow')) values.modem.uploadWindow = defaultUploadWindow(values.modem.port, realpathSync);
  EXPLICIT.set(values, new Set(explicit));
  return values;
}
