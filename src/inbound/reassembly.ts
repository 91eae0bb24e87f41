// Reassembly of concatenated SMS (3GPP TS 23.040 §9.2.3.24.1, IEs 0x00 and 0x08): pure decisions
// over segments the caller keeps (on disk, later): which belong together, whether a set is
// complete, and the user data joined in order. Duplicates of a segment are set aside.
import type { SmsDeliver } from './sms.js';

export interface Segment {
  /** The originator address as decoded ("+4912…", digits or alphanumeric text). */
  originator: string;
  /** Destination port of the port-addressing IE; undefined without one. */
  port?: number;
  ref: number;
  refBits: 8 | 16;
  total: number;
  seq: number;
  /** User data after the header: octets, or septets (one per octet) for GSM 7-bit. */
  data: Buffer;
}

export type Reassembly<S extends Segment> =
  | {
      key: string;
      complete: true;
      /** The joined user data, segment 1 first. */
      data: Buffer;
      /** One segment per sequence number, in order. */
      segments: S[];
      /** Later copies of a sequence number already held (or one outside 1..total): their SMS can go once the set is stored. */
      duplicates: S[];
    }
  | {
      key: string;
      complete: false;
      /** Sequence numbers still to come, ascending. */
      missing: number[];
      segments: S[];
      duplicates: S[];
    };

/**
 * The identity of a concatenated message: same sender, port, reference (and its width) and
 * segment count. A sender that reuses a reference with another count starts another message.
 */
export function segmentKey(s: Pick<Segment, 'originator' | 'port' | 'ref' | 'refBits' | 'total'>): string {
  return JSON.stringify([s.originator, s.port ?? null, s.refBits, s.ref, s.total]);
}

/** The segment an SMS-DELIVER is, or undefined when it is not part of a concatenated message. */
export function segmentOf(sms: SmsDeliver): Segment | undefined {
  if (sms.concat === undefined) return undefined;
  const s: Segment = {
    originator: sms.originator.number,
    ref: sms.concat.ref,
    refBits: sms.concat.refBits,
    total: sms.concat.total,
    seq: sms.concat.seq,
    data: sms.data,
  };
  if (sms.ports !== undefined) s.port = sms.ports.destination;
  return s;
}

/**
 * Groups segments into messages (in the order each message was first seen) and decides each one:
 * complete with its data, or the sequence numbers it still waits for. The first copy of a
 * sequence number counts; later copies, and numbers outside 1..total, are listed in `duplicates`.
 */
export function reassemble<S extends Segment>(segments: readonly S[]): Reassembly<S>[] {
  const groups = new Map<string, { bySeq: Map<number, S>; duplicates: S[]; total: number }>();
  for (const s of segments) {
    const key = segmentKey(s);
    let g = groups.get(key);
    if (g === undefined) {
      g = { bySeq: new Map(), duplicates: [], total: s.total };
      groups.set(key, g);
    }
    if (s.seq < 1 || s.seq > s.total || g.bySeq.has(s.seq)) g.duplicates.push(s);
    else g.bySeq.set(s.seq, s);
  }
  return [...groups].map(([key, g]) => {
    const ordered: S[] = [];
    const missing: number[] = [];
    for (let seq = 1; seq <= g.total; seq++) {
      const s = g.bySeq.get(seq);
      if (s === undefined) missing.push(seq);
      else ordered.push(s);
    }
    if (missing.length > 0) return { key, complete: false, missing, segments: ordered, duplicates: g.duplicates };
    return { key, complete: true, data: Buffer.concat(ordered.map((s) => s.data)), segments: ordered, duplicates: g.duplicates };
  });
}
