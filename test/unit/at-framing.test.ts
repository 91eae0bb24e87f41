// LineFramer: lines on CR, LF or both across chunks, bare tokens of a data-mode protocol, raw
// bytes after a CONNECT line, and overlong noise.
import { describe, expect, it } from 'vitest';
import { LineFramer, MAX_LINE_BYTES } from '../../src/at/framing.js';

function framer(tokens: readonly string[] = []): { f: LineFramer; out: string[] } {
  const out: string[] = [];
  const f = new LineFramer({
    tokens: () => tokens,
    line: (l) => out.push(`line:${l}`),
    raw: (b) => out.push(`raw:${b.toString('latin1')}`),
    overlong: (n) => out.push(`overlong:${n}`),
  });
  return { f, out };
}

describe('LineFramer', () => {
  it('splits lines on CR, LF or both, across chunks, and skips empty ones', () => {
    const { f, out } = framer();
    for (const c of ['\r\n+CEREG: 5\r', '\n+QIURC: "pdpde', 'act",1\n\n+CGREG: 1\r\n']) f.push(Buffer.from(c));
    expect(out).toEqual(['line:+CEREG: 5', 'line:+QIURC: "pdpdeact",1', 'line:+CGREG: 1']);
  });

  it('frames a token without CR/LF only when what follows cannot continue a line', () => {
    const { f, out } = framer(['A']);
    f.push(Buffer.from('A'));
    f.push(Buffer.from('AA\r\n+QFUPL: 10,1a2b\r\nAB\r\n'));
    expect(out).toEqual(['line:A', 'line:A', 'line:A', 'line:+QFUPL: 10,1a2b', 'line:AB']);
  });

  it('hands out exactly the raw bytes asked for after a line, its CR LF split across chunks', () => {
    const out: string[] = [];
    const f: LineFramer = new LineFramer({
      tokens: () => [],
      line: (l) => {
        out.push(`line:${l}`);
        if (l === 'CONNECT 6') f.captureRaw(6);
      },
      raw: (b) => out.push(`raw:${b.toString('latin1')}`),
      overlong: () => undefined,
    });
    f.push(Buffer.from('\r\nCONNECT 6\r'));
    f.push(Buffer.from('\n\r\nO'));
    f.push(Buffer.from('K\r\nA\r\n+XDL: 6\r\nOK\r\n'));
    // The LF ending "CONNECT 6\r" is no data; the 6 bytes "\r\nOK\r\n" are, lines resume after them.
    expect(out).toEqual(['line:CONNECT 6', 'raw:\r\nO', 'raw:K\r\n', 'line:A', 'line:+XDL: 6', 'line:OK']);
  });

  it('drops an unterminated line that grows past the limit, then frames again', () => {
    const { f, out } = framer();
    f.push(Buffer.alloc(MAX_LINE_BYTES + 1, 0x41));
    f.push(Buffer.from('\r\nOK\r\n'));
    expect(out).toEqual([`overlong:${MAX_LINE_BYTES + 1}`, 'line:OK']);
  });
});
