// The D-Bus names of DESIGN.md §4 in one place, and the mapping of message ids to object paths.

export const BUS_NAME = 'org.example.Mms1';
export const MANAGER_PATH = '/org/example/Mms1';
export const MANAGER_INTERFACE = 'org.example.Mms1';
export const MESSAGE_INTERFACE = 'org.example.Mms1.Message';
export const MESSAGE_PATH_PREFIX = `${MANAGER_PATH}/message/`;
/** DESIGN.md §12: one object per received message. */
export const RECEIVED_INTERFACE = 'org.example.Mms1.Received';
export const RECEIVED_PATH_PREFIX = `${MANAGER_PATH}/received/`;
export const ERROR_PREFIX = 'org.example.Mms1.Error.';
export const PROPERTIES_INTERFACE = 'org.freedesktop.DBus.Properties';

/**
 * One object path element for a message id. Object path elements may hold only `[A-Za-z0-9_]`,
 * so every other UTF-8 byte, and `_` itself, becomes `_` followed by two lower-case hex digits
 * (the escaping of systemd's `sd_bus_path_encode`): `msg-1` → `msg_2d1`. An empty id is `_`.
 */
export function escapePathElement(id: string): string {
  if (id === '') return '_';
  let out = '';
  for (const byte of Buffer.from(id, 'utf8')) {
    const isAlnum =
      (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
    out += isAlnum ? String.fromCharCode(byte) : `_${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The inverse of escapePathElement; undefined for text that escapePathElement cannot produce. */
export function unescapePathElement(element: string): string | undefined {
  if (element === '_') return '';
  if (!/^(?:[A-Za-z0-9]|_[0-9a-f]{2})+$/.test(element)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < element.length; ) {
    if (element[i] === '_') {
      bytes.push(parseInt(element.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(element.charCodeAt(i));
      i += 1;
    }
  }
  const id = Buffer.from(bytes).toString('utf8');
  // Reject non-canonical forms (an escaped alnum, broken UTF-8) so that the mapping is one-to-one.
  return escapePathElement(id) === element ? id : undefined;
}

export function messagePath(id: string): string {
  return MESSAGE_PATH_PREFIX + escapePathElement(id);
}

/** The message id behind an object path, or undefined when the path is not a message's. */
export function messageIdFromPath(path: string): string | undefined {
  if (!path.startsWith(MESSAGE_PATH_PREFIX)) return undefined;
  return unescapePathElement(path.slice(MESSAGE_PATH_PREFIX.length));
}

export function receivedPath(id: string): string {
  return RECEIVED_PATH_PREFIX + escapePathElement(id);
}

/** The received message's id behind an object path, or undefined when the path is not one. */
export function receivedIdFromPath(path: string): string | undefined {
  if (!path.startsWith(RECEIVED_PATH_PREFIX)) return undefined;
  return unescapePathElement(path.slice(RECEIVED_PATH_PREFIX.length));
}
