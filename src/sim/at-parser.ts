// The virtual modem's command-line parser: splits one received line ("AT+QMMSCFG=\"mmsc\",\"x\"",
// "AT+CMEE=1;+CGREG=2") into its commands (V.250 §5.4), each with its name, form (spec §1.2
// Table 1: test, query, set, execute) and parameters.

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
 * Parses the text after the "AT" prefix when it holds exactly one command; undefined otherwise
 * (a chained line, an unterminated quote, bad characters in the name).
 */
export function parseCommand(body: string): ParsedCommand | undefined {
  const commands = parseCommandLine(body);
  return commands?.length === 1 ? commands[0] : undefined;
}

/**
 * Parses the text after the "AT" prefix into its commands, in order (V.250 §5.4). Basic commands
 * follow each other without a separator ("E0V1", "&F"); an extended command may follow a basic one
 * directly ("E0+CMEE=1") and ends at a ";" outside quotes or at the end of the line
 * ("+CMEE=1;+CGREG=2", a ";" after the last one allowed). A ";" after a basic command is not a
 * separator V.250 knows: the line is refused, as is any malformed command in it (undefined).
 */
export function parseCommandLine(body: string): ParsedCommand[] | undefined {
  if (body === '') return [{ name: '', form: 'exec', params: [], basicArg: '' }];
  const commands: ParsedCommand[] = [];
  let i = 0;
  while (i < body.length) {
    if (body[i] === '+' || body[i] === '$') {
      const end = extendedEnd(body, i);
      const command = parseExtended(body.slice(i, end));
      if (!command) return undefined;
      commands.push(command);
      i = end < body.length ? end + 1 : end;
    } else {
      // Basic commands: a letter, or "&" and a letter, with an optional number (E0, I, &F, V1).
      const m = /^(&?[A-Za-z])(\d*)/.exec(body.slice(i));
      if (!m) return undefined;
      commands.push({ name: m[1].toUpperCase(), form: 'exec', params: [], basicArg: m[2] });
      i += m[0].length;
    }
  }
  return commands;
}

/** Where the extended command starting at `from` ends: its ";" outside quotes, or the line's end. */
function extendedEnd(body: string, from: number): number {
  let quoted = false;
  for (let i = from; i < body.length; i++) {
    if (body[i] === '"') quoted = !quoted;
    else if (body[i] === ';' && !quoted) return i;
  }
  return body.length;
}

/** One extended command ("+QMMSCFG=\"mmsc\",\"x\"") in its four forms (spec §1.2 Table 1). */
function parseExtended(text: string): ParsedCommand | undefined {
  const m = /^([+$][A-Za-z][A-Za-z0-9]*)(.*)$/s.exec(text);
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
