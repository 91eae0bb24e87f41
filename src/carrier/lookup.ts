// The lookup of DESIGN.md §10, a pure function of the index and the SIM's identity: MCC-MNC from
// the IMSI, the candidates with an MMSC, narrowed by carrier.provider, the SPN and pdp.apn; one
// left is used, several are `ambiguous` (nothing is guessed), none is `not-found`.
import { InvalidImsiError } from './errors.js';
import type { CarrierIndex, MmsApn, ProviderEntry } from './parse.js';
import type { CarrierCandidate, CarrierLookup, SimIdentity } from './types.js';

export interface LookupChoice {
  /** `carrier.provider`: a candidate's key, or a provider name that picks among the candidates. */
  provider?: string;
  /** `pdp.apn` when set: keeps the candidates that have this APN. */
  apn?: string;
}

/**
 * A provider's MMS APNs of its best usage (`mms`, then `mms-internet-hipri*`, then any other, as
 * T-Mobile US lists its MMSC under `internet`), grouped by everything but the APN's name: APNs that
 * differ only in name (AT&T's NXTGENPHONE, ENHANCEDPHONE, RESELLER) are one setting, the first
 * listed being used; APNs with another MMSC, proxy or credentials (Prixtel's Orange and SFR ones)
 * are separate candidates, since picking one would be a guess.
 */
function settingsOf(p: ProviderEntry): MmsApn[][] {
  const rank = (a: MmsApn): number => (a.usage === 'mms' ? 0 : a.usage?.startsWith('mms-') ? 1 : 2);
  const best = Math.min(...p.apns.map(rank));
  const groups = new Map<string, MmsApn[]>();
  for (const a of p.apns) {
    if (rank(a) !== best) continue;
    const id = JSON.stringify([a.mmsc, a.proxy?.host, a.proxy?.port, a.username, a.password, a.auth, a.maxMessageBytes]);
    const g = groups.get(id);
    if (g) g.push(a);
    else groups.set(id, [a]);
  }
  return [...groups.values()];
}

interface Candidate {
  key: string;
  provider: ProviderEntry;
  /** APNs of one setting; the first is used. */
  apns: MmsApn[];
}

/**
 * Every candidate of one code, keyed "<name> (<MCC>-<MNC>)": the code makes the key mean the same
 * provider on any SIM; ", <apn>" is added when a provider has several settings, and " #n" to
 * every key two candidates would share (two providers of one name, or settings of one APN name).
 */
function candidatesOf(code: string, providers: readonly ProviderEntry[]): Candidate[] {
  const out: Candidate[] = [];
  for (const provider of providers) {
    const groups = settingsOf(provider);
    const name = provider.names[0] || `(unnamed, ${provider.country})`;
    for (const apns of groups) out.push({ key: groups.length > 1 ? `${name} (${code}, ${apns[0].apn})` : `${name} (${code})`, provider, apns });
  }
  const count = new Map<string, number>();
  for (const c of out) count.set(c.key, (count.get(c.key) ?? 0) + 1);
  const seen = new Map<string, number>();
  for (const c of out) {
    if (count.get(c.key) === 1) continue;
    const n = (seen.get(c.key) ?? 0) + 1;
    seen.set(c.key, n);
    c.key = `${c.key} #${n}`;
  }
  return out;
}

/** Lower case, compatibility forms folded, punctuation and spaces dropped: "T-Mobile" = "tmobile". */
function compact(s: string): string {
  return s.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');
}
function words(s: string): string[] {
  return s
    .normalize('NFKC')
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w !== '');
}
function containsWords(hay: string[], needle: string[]): boolean {
  if (needle.length === 0 || needle.length > hay.length) return false;
  for (let i = 0; i + needle.length <= hay.length; i++) {
    if (needle.every((w, j) => hay[i + j] === w)) return true;
  }
  return false;
}

/**
 * The candidates whose provider the SPN names: an exact match first (ignoring case, spaces and
 * punctuation); failing that, whole words of one inside the other ("Orange F" and "Orange";
 * "T-Mobile" and "T-Mobile(Telekom)"), never a bare substring ("TEN" is not in "Tenet").
 */
function bySpn(candidates: Candidate[], spn: string): Candidate[] {
  const exact = candidates.filter((c) => c.provider.names.some((n) => compact(n) === compact(spn)));
  if (exact.length > 0) return exact;
  const w = words(spn);
  return candidates.filter((c) => c.provider.names.some((n) => containsWords(words(n), w) || containsWords(w, words(n))));
}

/** `carrier.provider` as a key (ignoring case and runs of spaces), else as one of the names. */
function byProviderChoice(candidates: Candidate[], choice: string): Candidate[] {
  const norm = (s: string): string => s.trim().replace(/\s+/g, ' ').toLowerCase();
  const byKey = candidates.filter((c) => norm(c.key) === norm(choice));
  if (byKey.length > 0) return byKey;
  return candidates.filter((c) => c.provider.names.some((n) => compact(n) === compact(choice)));
}

function publicCandidate(c: Candidate): CarrierCandidate {
  return { provider: c.key, apn: c.apns[0].apn, mmsc: c.apns[0].mmsc, configLine: `"carrier": {"provider": ${JSON.stringify(c.key)}}` };
}

function names(cs: Candidate[]): string {
  return cs.map((c) => c.key).join(', ');
}

const EMPTY = { provider: '', apn: '', username: '', password: '', auth: 0, mmsc: '', proxy: undefined, maxMessageBytes: undefined } as const;

/** Looks a SIM up in the index. Throws InvalidImsiError on an IMSI that is not 6–15 digits. */
export function lookupCarrier(index: CarrierIndex, identity: SimIdentity, choice: LookupChoice = {}): CarrierLookup {
  if (!/^[0-9]{6,15}$/.test(identity.imsi)) throw new InvalidImsiError(identity.imsi);
  const mcc = identity.imsi.slice(0, 3);
  const code3 = `${mcc}-${identity.imsi.slice(3, 6)}`;
  const code2 = `${mcc}-${identity.imsi.slice(3, 5)}`;
  // §10: the MNC has two or three digits; a network the file knows with three wins over two.
  const code = index.knownCodes.has(code3) ? code3 : index.knownCodes.has(code2) ? code2 : undefined;
  if (code === undefined) {
    return { ...EMPTY, source: 'not-found', mccMnc: code2, candidates: [], reason: `${index.path} knows no network ${code2} (nor ${code3})` };
  }
  const all = candidatesOf(code, index.byCode.get(code) ?? []);
  if (all.length === 0) {
    return { ...EMPTY, source: 'not-found', mccMnc: code, candidates: [], reason: `no provider of ${code} has an MMSC in ${index.path}` };
  }

  let left = all;
  const steps: string[] = [];
  const notes: string[] = [];
  const narrow = (by: string, kept: Candidate[]): void => {
    if (kept.length === 0 || kept.length === left.length) return;
    left = kept;
    steps.push(by);
  };
  const provider = choice.provider?.trim() ?? '';
  if (provider !== '') {
    const kept = byProviderChoice(left, provider);
    if (kept.length === 0) {
      notes.push(`carrier.provider ${JSON.stringify(provider)} is none of the candidates of ${code} and is ignored`);
    } else {
      left = kept;
      steps.push(`carrier.provider ${JSON.stringify(provider)}`);
    }
  }
  const spn = identity.spn?.trim() ?? '';
  if (left.length > 1 && spn !== '') narrow(`the SPN ${JSON.stringify(spn)}`, bySpn(left, spn));
  const apn = choice.apn?.trim().toLowerCase() ?? '';
  if (left.length > 1 && apn !== '') narrow(`pdp.apn ${JSON.stringify(choice.apn)}`, left.filter((c) => c.apns.some((a) => a.apn.toLowerCase() === apn)));

  const note = notes.map((n) => `${n}; `).join('');
  const how = steps.length > 0 ? ` after ${steps.join(', then ')}` : '';
  if (left.length > 1) {
    return {
      ...EMPTY,
      source: 'ambiguous',
      mccMnc: code,
      candidates: left.map(publicCandidate),
      reason: `${note}${left.length} candidates of ${code} remain${how}: ${names(left)}; set carrier.provider to one of them`,
    };
  }
  const chosen = left[0];
  const a = chosen.apns[0];
  const credentials = a.username !== undefined || a.password !== undefined;
  return {
    source: 'database',
    mccMnc: code,
    provider: chosen.key,
    apn: a.apn,
    username: a.username ?? '',
    password: a.password ?? '',
    // No <authentication> but credentials: let the network pick PAP or CHAP (3), as a phone does.
    auth: a.auth === 'pap' ? 1 : a.auth === 'chap' ? 2 : credentials ? 3 : 0,
    mmsc: a.mmsc,
    proxy: a.proxy && { ...a.proxy },
    maxMessageBytes: a.maxMessageBytes,
    candidates: all.map(publicCandidate),
    reason:
      all.length === 1
        ? `${note}${chosen.key} is the only provider of ${code} with an MMSC`
        : `${note}${chosen.key}, chosen from the ${all.length} candidates of ${code} by ${steps.join(', then ')}`,
  };
}
