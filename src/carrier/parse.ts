// Reading serviceproviders.xml (mobile-broadband-provider-info, DTD serviceproviders.2.dtd) into
// the small index the lookup needs: the providers that have an <apn> with an <mmsc>, by MCC-MNC.
//
// Parser: saxes, a streaming SAX parser. Measured against sax and fast-xml-parser on this 362 KB
// file (package 20230416), building this same index, one cold load per fresh process, 3 runs each
// on the 2-core bench machine (other jobs running, load ~3.5):
//   parser                  import     parse+index cold  again warm  heap before GC  RSS
//   saxes 6.0.0             26–47 ms   182–190 ms         5 ms       +2.3–2.5 MB     +7–11 MB
//   sax 1.6.1               35–65 ms   220–319 ms        14 ms       +1.4–1.7 MB     +6–11 MB
//   fast-xml-parser 5.12.1  69–136 ms  233–426 ms        86 ms       +9.7–9.8 MB     +14–16 MB
// fast-xml-parser builds the whole document tree before most of it can be dropped, and brings six
// dependencies (1.5 MB installed plus theirs). sax uses a little less memory, but is 1.5–3× slower,
// has no types of its own, and even in strict mode lets a second root element or a disallowed
// character through. saxes is the fastest, small (one dependency, xmlchars; 290 KB installed),
// ships its own types, checks XML 1.0 well-formedness and reports file:line:column;
// jsdom depends on it, which keeps it maintained and in wide use. database.ts imports this module
// on the first lookup only, so a daemon that never looks anything up never loads the parser.
import { SaxesParser, type SaxesTagPlain } from 'saxes';
import { CarrierDatabaseError } from './errors.js';

/** One `<apn>` that has an `<mmsc>`, with only what a lookup uses. */
export interface MmsApn {
  /** The `value` attribute: the access point name. */
  apn: string;
  /** `<usage type>`: `mms`, `internet`, `mms-internet-hipri`, …; absent in some entries. */
  usage?: string;
  username?: string;
  password?: string;
  /** `<authentication method>`. */
  auth?: 'pap' | 'chap';
  mmsc: string;
  /** `<mmsproxy>` "HOST:PORT"; some entries give no port. */
  proxy?: { host: string; port?: number };
  /** `<mmsattachmentsize>` in bytes, when present (none in the 20230416 file). */
  maxMessageBytes?: number;
}

/** A provider with at least one MMS APN; one object shared by all the codes it lists. */
export interface ProviderEntry {
  /** Every `<name>` of the provider, the first being its main one. */
  names: string[];
  /** The `<country code>` it is listed under, e.g. `fr`. */
  country: string;
  /** Its MMS APNs, in file order. */
  apns: MmsApn[];
}

export interface CarrierIndex {
  /** The file it was read from. */
  path: string;
  /** "MCC-MNC" (e.g. `208-01`, `310-260`) → the providers with an MMSC that list it, in file order. */
  byCode: ReadonlyMap<string, readonly ProviderEntry[]>;
  /** Every MCC-MNC in the file, with an MMSC or not: tells a three-digit MNC from a two-digit one. */
  knownCodes: ReadonlySet<string>;
  /** Providers with an MMSC. */
  providers: number;
  /** Entries skipped or values ignored, one line each, for the log. */
  warnings: string[];
}

type ApnField = 'username' | 'password' | 'mmsc' | 'mmsproxy' | 'mmsattachmentsize';
const APN_FIELDS: ReadonlySet<string> = new Set<ApnField>(['username', 'password', 'mmsc', 'mmsproxy', 'mmsattachmentsize']);

interface OpenProvider {
  names: string[];
  codes: string[];
  apns: MmsApn[];
}

/**
 * `s`, no longer pointing into the document. V8 keeps a substring as a slice of the string it was
 * cut from, so one provider name kept in the index kept the whole file's text alive (700 KB as
 * UTF-16: 1,010 KiB per index, against 350 KiB now; bench/carrier.ts measures it). Slicing a
 * concatenation makes V8 copy the characters into a new flat string first; it costs a fraction
 * of a microsecond, where a Buffer round trip cost 3–40 µs a string.
 */
function detached(s: string): string {
  return ` ${s}`.slice(1);
}

function proxyOf(text: string): { host: string; port?: number } {
  const m = /^(.+):([0-9]{1,5})$/.exec(text);
  if (m && Number(m[2]) >= 1 && Number(m[2]) <= 65535) return { host: m[1], port: Number(m[2]) };
  return { host: text };
}

/** Builds the index from the file's text. Throws CarrierDatabaseError on malformed input. */
export function indexServiceProviders(xml: string, path: string): CarrierIndex {
  const byCode = new Map<string, ProviderEntry[]>();
  const knownCodes = new Set<string>();
  const warnings: string[] = [];
  let providers = 0;

  const stack: string[] = [];
  let country = '';
  let provider: OpenProvider | undefined;
  let apn: (Partial<Record<ApnField, string>> & { value: string; usage?: string; auth?: string }) | undefined;
  /** The element whose text is being collected, and the text so far. */
  let capture: { field: string; text: string } | undefined;

  const parser = new SaxesParser({ fileName: path, xmlns: false });
  parser.on('error', (err) => {
    throw new CarrierDatabaseError(path, `not well-formed XML: ${err.message.replace(`${path}:`, 'line ')}`);
  });
  parser.on('opentag', (tag: SaxesTagPlain) => {
    const parent = stack[stack.length - 1];
    stack.push(tag.name);
    const a = tag.attributes;
    if (parent === undefined) {
      if (tag.name !== 'serviceproviders') throw new CarrierDatabaseError(path, `the root element is <${tag.name}>, not <serviceproviders>`);
    } else if (tag.name === 'country' && parent === 'serviceproviders') {
      country = detached(a.code ?? '');
    } else if (tag.name === 'provider' && parent === 'country') {
      provider = { names: [], codes: [], apns: [] };
    } else if (tag.name === 'name' && parent === 'provider') {
      capture = { field: 'name', text: '' };
    } else if (tag.name === 'network-id' && parent === 'gsm' && provider) {
      const mcc = a.mcc ?? '';
      const mnc = a.mnc ?? '';
      if (/^[0-9]{3}$/.test(mcc) && /^[0-9]{2,3}$/.test(mnc)) provider.codes.push(`${mcc}-${mnc}`);
      else warnings.push(`${country}: network-id mcc="${mcc}" mnc="${mnc}" is not 3 + 2–3 digits; skipped`);
    } else if (tag.name === 'apn' && parent === 'gsm' && provider) {
      apn = { value: detached((a.value ?? '').trim()) };
    } else if (parent === 'apn' && apn) {
      if (tag.name === 'usage') apn.usage = detached(a.type ?? '');
      else if (tag.name === 'authentication') apn.auth = a.method;
      else if (APN_FIELDS.has(tag.name)) capture = { field: tag.name, text: '' };
    }
  });
  const onText = (text: string): void => {
    if (capture) capture.text += text;
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  parser.on('closetag', (tag: SaxesTagPlain) => {
    stack.pop();
    if (capture && capture.field === tag.name) {
      const text = detached(capture.text.trim());
      capture = undefined;
      if (tag.name === 'name') provider?.names.push(text);
      else if (apn && text !== '') apn[tag.name as ApnField] = text;
    } else if (tag.name === 'apn' && apn && provider) {
      if (apn.mmsc !== undefined) provider.apns.push(mmsApnOf(apn, provider, warnings));
      apn = undefined;
    } else if (tag.name === 'provider' && provider) {
      const codes = [...new Set(provider.codes)];
      for (const code of codes) knownCodes.add(code);
      if (provider.apns.length > 0) {
        providers++;
        const entry: ProviderEntry = { names: provider.names, country, apns: provider.apns };
        for (const code of codes) {
          const list = byCode.get(code);
          if (list) list.push(entry);
          else byCode.set(code, [entry]);
        }
      }
      provider = undefined;
    }
  });
  parser.write(xml).close();
  return { path, byCode, knownCodes, providers, warnings };
}

function mmsApnOf(
  raw: Partial<Record<ApnField, string>> & { value: string; usage?: string; auth?: string },
  provider: OpenProvider,
  warnings: string[],
): MmsApn {
  const out: MmsApn = { apn: raw.value, mmsc: raw.mmsc ?? '' };
  if (raw.usage) out.usage = raw.usage;
  if (raw.username !== undefined) out.username = raw.username;
  if (raw.password !== undefined) out.password = raw.password;
  if (raw.auth === 'pap' || raw.auth === 'chap') out.auth = raw.auth === 'pap' ? 'pap' : 'chap';
  if (raw.mmsproxy !== undefined) out.proxy = proxyOf(raw.mmsproxy);
  if (raw.mmsattachmentsize !== undefined) {
    if (/^[0-9]{1,9}$/.test(raw.mmsattachmentsize) && Number(raw.mmsattachmentsize) > 0) out.maxMessageBytes = Number(raw.mmsattachmentsize);
    else warnings.push(`${provider.names[0] ?? '?'} apn ${raw.value}: mmsattachmentsize "${raw.mmsattachmentsize}" is not a positive number of bytes; ignored`);
  }
  return out;
}
