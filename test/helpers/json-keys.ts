// A raw scan of JSON text for keys that occur twice in one object: JSON.parse keeps the last one
// silently, and other tools (jq, journald's JSON readers) pick differently.

/** The dotted paths of keys found twice in one object of `text`; throws if `text` is not JSON. */
export function duplicateKeys(text: string): string[] {
  const dups: string[] = [];
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at ${i} in ${text.slice(0, 200)}`);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const string = (): string => {
    const start = i++;
    while (text[i] !== '"') {
      if (i >= text.length) fail('unterminated string');
      i += text[i] === '\\' ? 2 : 1;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const literal = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
  const value = (path: string): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const key = string();
        if (seen.has(key)) dups.push(`${path}${key}`);
        seen.add(key);
        ws();
        if (text[i++] !== ':') fail('expected ":"');
        value(`${path}${key}.`);
        ws();
        const next = text[i++];
        if (next === '}') return;
        if (next !== ',') fail('expected "," or "}"');
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (let n = 0; ; n++) {
        value(`${path}${n}.`);
        ws();
        const next = text[i++];
        if (next === ']') return;
        if (next !== ',') fail('expected "," or "]"');
      }
    } else if (c === '"') {
      string();
    } else {
      literal.lastIndex = i;
      const m = literal.exec(text);
      if (!m) fail('unexpected character');
      i += m![0].length;
    }
  };
  value('');
  ws();
  if (i !== text.length) fail('trailing text');
  return dups;
}
