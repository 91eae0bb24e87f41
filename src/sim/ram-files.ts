// The virtual module's RAM file store ("RAM:<name>" files of AT+QFUPL/QFLST/QFDEL/QFLDS):
// bounded capacity, insertion order, lost on every module restart.

/** FILE command error codes (Quectel FILE application note, Appendix "error codes"). */
export const FILE_ERR = {
  invalidInput: 400,
  fileNotFound: 405,
  invalidFileName: 406,
  fileExists: 407,
  writeFailed: 409,
  noSpace: 420,
  timeout: 421,
  fileTooLarge: 423,
  invalidParameter: 425,
} as const;

/** Spec §2.2 / FILE note: the whole file name, "RAM:" included, is at most 80 bytes. */
export const MAX_FILE_NAME_BYTES = 80;
export const RAM_PREFIX = 'RAM:';

export interface RamFile {
  /** Full name as the host gave it, e.g. "RAM:test_mms.txt". */
  name: string;
  data: Buffer;
}

export class RamFileStore {
  private readonly files = new Map<string, Buffer>();

  constructor(readonly capacity: number) {}

  get used(): number {
    let sum = 0;
    for (const data of this.files.values()) sum += data.length;
    return sum;
  }

  get free(): number {
    return Math.max(0, this.capacity - this.used);
  }

  has(name: string): boolean {
    return this.files.has(name);
  }

  get(name: string): Buffer | undefined {
    return this.files.get(name);
  }

  put(name: string, data: Buffer): void {
    this.files.set(name, data);
  }

  delete(name: string): boolean {
    return this.files.delete(name);
  }

  clear(): void {
    this.files.clear();
  }

  /** Files whose full name matches a pattern where "*" stands for any run of characters. */
  list(pattern = `${RAM_PREFIX}*`): RamFile[] {
    const re = globToRegExp(pattern);
    return [...this.files].filter(([name]) => re.test(name)).map(([name, data]) => ({ name, data }));
  }
}

export function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`, 'i');
}

/** A RAM file name the module accepts: "RAM:" + 1.. bytes, ≤ 80 bytes in all, no wildcard. */
export function isValidRamName(name: string): boolean {
  if (!name.toUpperCase().startsWith(RAM_PREFIX)) return false;
  const rest = name.slice(RAM_PREFIX.length);
  if (rest === '' || /[*?\\/\x00-\x1f]/.test(rest)) return false;
  return Buffer.byteLength(name, 'latin1') <= MAX_FILE_NAME_BYTES;
}

/** "RAM:" prefix in one spelling, so that "ram:x" and "RAM:x" name the same file. */
export function normalizeRamName(name: string): string {
  return name.toUpperCase().startsWith(RAM_PREFIX) ? RAM_PREFIX + name.slice(RAM_PREFIX.length) : name;
}
