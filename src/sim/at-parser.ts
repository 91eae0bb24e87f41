// The virtual modem's command-line parser: splits one received line ("AT+QMMSCFG=\"mmsc\",\"x\"")
// into the command name, its form (spec §1.2 Table 1: test, query, set, execute) and parameters.

/** The four forms of an extended command (spec §1.2 Table 1). */
export type CommandForm = 'test' | 'query' | 'set' | 'exec';

export interface AtParam {
  /** The text, without surrounding quotes and without the blanks around it. */
  value: string;
  quoted: boolean;
}

export interface ParsedCommand {
  /** Upper-case name including the prefix: "+QMMSCFG", "+CPIN", or a basic command: "E", "I", "Z". */
  name: string;
  form: CommandForm;
  params: AtParam[];
  /** The basic command's numeric argument ("ATE0" → "0"); "" when none. */
  basicArg: string;
}

/**
 * Parses the text after the "AT" prefix. Returns undefined when the line cannot be a command
 * (unterminated quote, bad characters in the name). Concatenated commands (";") are not
 * supported: the daemon never sends them and a line holding ";" outside quotes is refused.
 */
export function parseCommand(body: string): ParsedCommand | undefined {
  if (body === '') return { name: '', form: 'exec', params: [], basicArg: '' };
  const first = body[0];
  if (first === '+' || first === '&' || first === '$') {
    const m = /^([+&$][A-Za-z][A-Za-z0-9]*)(.*)$/s.exec(body);
    if (!m) return undefined;
    const name = m[1].toUpperCase();
    const rest = m[2];
    if (rest === '') return { name, form: 'exec', params: [], basicArg: '' };
    if (rest === '?') return { name, form: 'query', params: [], basicArg: '' };
    if (rest === '=?') return { name, form: 'test', params: [], basicArg: '' };
    if (rest.startsWith('=')) {
      const params = splitParams(rest.slice(1));
      if (!params) return undefined;
      return { name, form: 'set', params, basicArg: '' };
    }
    return undefined;
  }
  // Basic commands: one letter and an optional number (ATE0, ATI, ATZ, ATV1, ATQ0).
  const m = /^([A-Za-z])(\d*)$/.exec(body);
  if (!m) return undefined;
  return { name: m[1].toUpperCase(), form: 'exec', params: [], basicArg: m[2] };
}

/** Splits "a, \"b,c\" ,3" into parameters; undefined on an unterminated quote or a ";". */
export function splitParams(text: string): AtParam[] | undefined {
  const params: AtParam[] = [];
  let i = 0;
  const n = text.length;
  for (;;) {
    while (i < n && text[i] === ' ') i++;
    if (i < n && text[i] === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) return undefined;
      params.push({ value: text.slice(i + 1, end), quoted: true });
      i = end + 1;
      while (i < n && text[i] === ' ') i++;
    } else {
      let j = i;
      while (j < n && text[j] !== ',') j++;
      const raw = text.slice(i, j).trim();
      if (raw.includes('"') || raw.includes(';')) return undefined;
      params.push({ value: raw, quoted: false });
      i = j;
    }
    if (i >= n) return params;
    if (text[i] !== ',') return undefined;
    i++;
  }
}

/** A decimal integer parameter (unquoted), or undefined. */
export function intParam(p: AtParam | undefined): number | undefined {
  if (!p || p.quoted || !/^\d{1,10}$/.test(p.value)) return undefined;
  return Number(p.value);
}

/** True when the parameter is present and unquoted-empty (",," form). */
export function isOmitted(p: AtParam | undefined): boolean {
  return p === undefined || (!p.quoted && p.value === '');
}
