// Outside programs the sim and the test tooling start (socat for the pty pair, mosquitto for the
// MQTT tests): one clear error naming the Debian package when one is not installed.

/** `program` is not on the PATH; `apt install <pkg>` provides it. */
export class ProgramMissingError extends Error {
  constructor(
    readonly program: string,
    readonly pkg: string,
  ) {
    super(`${program} not found: apt install ${pkg}`);
    this.name = 'ProgramMissingError';
  }
}

/**
 * The error a spawned child's 'error' event stands for: a ProgramMissingError when the program
 * itself is missing (ENOENT from spawn), else the error as it came.
 */
export function spawnFailure(err: Error, program: string, pkg: string): Error {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT' && e.syscall?.startsWith('spawn') === true ? new ProgramMissingError(program, pkg) : err;
}
