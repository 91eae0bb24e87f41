// A D-Bus method return marshalled by mmsd itself into one Buffer (issue 19): for the replies that
// carry every message (ListMessages, ListMessagesPage), dbus-next's own path builds ~20 Variant
// objects per message and marshals them through one small buffer per array and value, garbage that
// with the unit's small semi-spaces is promoted and grows the old space (+71..+147 MiB for 10,000
// messages). Here the body is written straight from the records in two passes over the same code:
// the first only counts bytes, the second writes them into a Buffer of exactly that size.
// The byte layout is the D-Bus specification's (little-endian); test/unit/dbus-wire.test.ts checks
// it against dbus-next's marshaller byte for byte.
import dbus from 'dbus-next';

const { Variant, MessageType, MessageFlag } = dbus;

/** A signature this marshaller does not write (a bug in mmsd's tables, not bad input). */
export class UnsupportedSignatureError extends Error {
  override name = 'UnsupportedSignatureError';
}

/** A value that does not fit its signature (a bug in mmsd's tables, not bad input). */
export class WireValueError extends Error {
  override name = 'WireValueError';
}

interface SigNode {
  type: string;
  child: SigNode[];
}

const BASIC = new Set(['y', 'b', 'n', 'q', 'i', 'u', 'x', 't', 'd', 's', 'o', 'g']);
const ALIGN: Readonly<Record<string, number>> = {
  y: 1, g: 1, v: 1, n: 2, q: 2, b: 4, i: 4, u: 4, s: 4, o: 4, a: 4, x: 8, t: 8, d: 8, '(': 8, '{': 8,
};

const parsed = new Map<string, SigNode[]>();

/** A signature as a tree of complete types; cached, as mmsd uses a handful of signatures. */
export function parseSignature(signature: string): SigNode[] {
  const known = parsed.get(signature);
  if (known) return known;
  let pos = 0;
  const one = (): SigNode => {
    const c = signature[pos++];
    if (c === undefined) throw new UnsupportedSignatureError(`signature "${signature}" ends early`);
    if (BASIC.has(c) || c === 'v') return { type: c, child: [] };
    if (c === 'a') return { type: c, child: [one()] };
    if (c === '(' || c === '{') {
      const close = c === '(' ? ')' : '}';
      const child: SigNode[] = [];
      while (signature[pos] !== close) child.push(one());
      pos++;
      if (c === '{' && child.length !== 2) throw new UnsupportedSignatureError(`dict entry in "${signature}" needs a key and a value`);
      return { type: c, child };
    }
    throw new UnsupportedSignatureError(`type code "${c}" in signature "${signature}" is not marshalled by mmsd`);
  };
  const tree: SigNode[] = [];
  while (pos < signature.length) tree.push(one());
  parsed.set(signature, tree);
  return tree;
}

/**
 * Writes D-Bus values at absolute offsets. Without a buffer it only counts (the sizing pass); with
 * one it writes. Offsets are from the start of the message, which alignment is relative to.
 */
export class WireWriter {
  constructor(
    private readonly buf: Buffer | undefined,
    public offset = 0,
  ) {}

  align(n: number): void {
    const to = (this.offset + n - 1) & ~(n - 1);
    const buf = this.buf;
    if (buf) for (let i = this.offset; i < to; i++) buf[i] = 0;
    this.offset = to;
  }

  byte(v: number): void {
    if (this.buf) this.buf.writeUInt8(v, this.offset);
    this.offset += 1;
  }

  uint32(v: number): void {
    this.align(4);
    if (this.buf) this.buf.writeUInt32LE(v, this.offset);
    this.offset += 4;
  }

  string(s: string): void {
    const len = Buffer.byteLength(s, 'utf8');
    this.uint32(len);
    if (this.buf) {
      this.buf.write(s, this.offset, len, 'utf8');
      this.buf[this.offset + len] = 0;
    }
    this.offset += len + 1;
  }

  signature(s: string): void {
    const buf = this.buf;
    if (buf) {
      buf[this.offset] = s.length;
      for (let i = 0; i < s.length; i++) buf[this.offset + 1 + i] = s.charCodeAt(i);
      buf[this.offset + 1 + s.length] = 0;
    }
    this.offset += s.length + 2;
  }

  /**
   * An array whose elements `each` writes; their byte length is patched in after them (the length
   * excludes the padding to the first element).
   */
  array(elementType: string, each: () => void): void {
    this.uint32(0);
    const lengthAt = this.offset - 4;
    this.align(ALIGN[elementType] ?? 1);
    const start = this.offset;
    each();
    if (this.buf) this.buf.writeUInt32LE(this.offset - start, lengthAt);
  }

  /** A variant: its signature, then the value. */
  variant(signature: string, value: unknown): void {
    this.signature(signature);
    const tree = parseSignature(signature);
    if (tree.length !== 1) throw new UnsupportedSignatureError(`a variant holds one complete type, not "${signature}"`);
    this.value(tree[0], value);
  }

  /** One value of one complete type, taking the JS shapes dbus-next's service side takes. */
  value(node: SigNode, v: unknown): void {
    const buf = this.buf;
    switch (node.type) {
      case 'y':
        this.byte(num(v, node));
        return;
      case 'b':
        this.uint32(v ? 1 : 0);
        return;
      case 'n':
      case 'q':
        this.align(2);
        if (buf) {
          if (node.type === 'n') buf.writeInt16LE(num(v, node), this.offset);
          else buf.writeUInt16LE(num(v, node), this.offset);
        }
        this.offset += 2;
        return;
      case 'i':
        this.align(4);
        if (buf) buf.writeInt32LE(num(v, node), this.offset);
        this.offset += 4;
        return;
      case 'u':
        this.uint32(num(v, node));
        return;
      case 'x':
      case 't':
        this.align(8);
        if (buf) {
          const big = typeof v === 'bigint' ? v : BigInt(num(v, node));
          if (node.type === 'x') buf.writeBigInt64LE(big, this.offset);
          else buf.writeBigUInt64LE(big, this.offset);
        }
        this.offset += 8;
        return;
      case 'd':
        this.align(8);
        if (buf) buf.writeDoubleLE(num(v, node), this.offset);
        this.offset += 8;
        return;
      case 's':
      case 'o':
        this.string(str(v, node));
        return;
      case 'g':
        this.signature(str(v, node));
        return;
      case 'v':
        if (!(v instanceof Variant)) throw new WireValueError(`expected a Variant, got ${typeof v}`);
        this.variant(v.signature, v.value);
        return;
      case '(':
        if (!Array.isArray(v) || v.length !== node.child.length) throw new WireValueError(`expected a struct of ${node.child.length} members`);
        this.align(8);
        node.child.forEach((c, i) => this.value(c, v[i]));
        return;
      case 'a': {
        const el = node.child[0];
        if (el.type === '{') {
          if (v === null || typeof v !== 'object') throw new WireValueError('expected an object for a dict');
          const entries = v instanceof Map ? [...(v as Map<unknown, unknown>)] : Object.entries(v);
          this.array('{', () => {
            for (const [key, value] of entries) {
              this.align(8);
              this.value(el.child[0], key);
              this.value(el.child[1], value);
            }
          });
          return;
        }
        if (el.type === 'y' && Buffer.isBuffer(v)) {
          this.array('y', () => {
            if (buf) v.copy(buf, this.offset);
            this.offset += v.length;
          });
          return;
        }
        if (!Array.isArray(v)) throw new WireValueError(`expected an array for "a${el.type}"`);
        this.array(el.type, () => {
          for (const item of v) this.value(el, item);
        });
        return;
      }
      default:
        throw new UnsupportedSignatureError(`type code "${node.type}" is not marshalled by mmsd`);
    }
  }
}

function num(v: unknown, node: SigNode): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new WireValueError(`expected a number for "${node.type}", got ${typeof v}`);
}

function str(v: unknown, node: SigNode): string {
  if (typeof v === 'string') return v;
  throw new WireValueError(`expected a string for "${node.type}", got ${typeof v}`);
}

/** The header fields of a method return, in dbus-next's order (reply serial, destination, signature). */
const REPLY_SERIAL = 5;
const DESTINATION = 6;
const SIGNATURE = 8;

/** What of the call the reply needs. */
export interface CallInfo {
  /** Always set on a call received from the bus. */
  serial: number | null;
  sender?: string;
}

/**
 * A complete METHOD_RETURN for `call` with body signature `signature`; `body` writes the body's
 * values with the writer it is given (called twice: to count, then to write).
 */
export function marshalMethodReturn(call: CallInfo, replySerial: number, signature: string, body: (w: WireWriter) => void): Buffer {
  const callSerial = call.serial;
  if (callSerial === null) throw new WireValueError('a reply needs the serial of its call');
  const header = (w: WireWriter, bodyLength: number): void => {
    w.byte(0x6c); // 'l': little-endian
    w.byte(MessageType.METHOD_RETURN);
    w.byte(0); // flags
    w.byte(1); // protocol version
    w.uint32(bodyLength);
    w.uint32(replySerial);
    w.array('(', () => {
      w.align(8);
      w.byte(REPLY_SERIAL);
      w.variant('u', callSerial);
      if (call.sender) {
        w.align(8);
        w.byte(DESTINATION);
        w.variant('s', call.sender);
      }
      if (signature !== '') {
        w.align(8);
        w.byte(SIGNATURE);
        w.variant('g', signature);
      }
    });
    w.align(8);
  };
  const sizing = new WireWriter(undefined);
  header(sizing, 0);
  const bodyStart = sizing.offset;
  body(sizing);
  const bodyLength = sizing.offset - bodyStart;
  const out = Buffer.allocUnsafe(sizing.offset);
  const w = new WireWriter(out);
  header(w, bodyLength);
  body(w);
  if (w.offset !== out.length) throw new Error(`marshalled ${w.offset} bytes where ${out.length} were counted`);
  return out;
}

/** Whether the caller asked for no reply (NO_REPLY_EXPECTED). */
export function noReplyExpected(flags: number | undefined): boolean {
  return ((flags ?? 0) & MessageFlag.NO_REPLY_EXPECTED) !== 0;
}
