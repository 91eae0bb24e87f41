// Typed failures of an AT command. Each carries the command that failed (without user data).

export class AtError extends Error {
  override name = 'AtError';
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
  }
}

/** The module answered "ERROR". */
export class AtErrorResult extends AtError {
  override name = 'AtErrorResult';
  constructor(command: string) {
    super(`${command}: ERROR`, command);
  }
}

/** The module answered "+CME ERROR: <code>". */
export class CmeError extends AtError {
  override name = 'CmeError';
  constructor(
    command: string,
    readonly code: number,
    readonly text?: string,
  ) {
    super(`${command}: +CME ERROR: ${text ?? code}`, command);
  }
}

/** The module answered "+CMS ERROR: <code>". */
export class CmsError extends AtError {
  override name = 'CmsError';
  constructor(
    command: string,
    readonly code: number,
  ) {
    super(`${command}: +CMS ERROR: ${code}`, command);
  }
}

/** No final result code within the command's timeout. */
export class TimeoutError extends AtError {
  override name = 'TimeoutError';
  constructor(
    command: string,
    readonly timeoutMs: number,
  ) {
    super(`${command}: no answer within ${timeoutMs} ms`, command);
  }
}

/** The transport closed (or was never open) while the command was queued or in flight. */
export class ClosedError extends AtError {
  override name = 'ClosedError';
  /**
   * The command's bytes had been handed to the port when it closed and no answer came: the
   * module may have received and acted on it (false: it was never written, or the write failed).
   */
  readonly mayHaveArrived: boolean;
  constructor(command: string, reason?: string, opts: { mayHaveArrived?: boolean } = {}) {
    super(`${command}: channel closed${reason ? ` (${reason})` : ''}`, command);
    this.mayHaveArrived = opts.mayHaveArrived ?? false;
  }
}

/** An upload's checksum or size reported by the module differs from the bytes sent. */
export class ChecksumError extends AtError {
  override name = 'ChecksumError';
  constructor(
    command: string,
    readonly expected: { size: number; checksum: number },
    readonly reported: { size: number; checksum: number },
  ) {
    super(
      `${command}: module reported ${reported.size} bytes / ${reported.checksum.toString(16)}, ` +
        `sent ${expected.size} bytes / ${expected.checksum.toString(16)}`,
      command,
    );
  }
}

/** The typed error of a final result code ("NO CARRIER" and the like end a command as ERROR does). */
export function finalError(
  cmd: string,
  c: { kind: 'error'; text: string } | { kind: 'cme'; code: number; text?: string } | { kind: 'cms'; code: number; text?: string },
): AtError {
  switch (c.kind) {
    case 'cme':
      return new CmeError(cmd, c.code, c.text);
    case 'cms':
      return new CmsError(cmd, c.code);
    case 'error': {
      // Keep the text of "NO CARRIER" and the like in the message.
      const e = new AtErrorResult(cmd);
      if (c.text !== 'ERROR') e.message = `${cmd}: ${c.text}`;
      return e;
    }
  }
}
