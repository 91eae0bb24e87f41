#!/usr/bin/env node
// mmsctl: the command-line client of mmsd over D-Bus (DESIGN.md §2, §4). This file dispatches a
// command line to the commands in ./mmsctl/; the calls live in src/api/dbus/client.ts.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MmsClient } from '../api/dbus/client.js';
import { defaultOutput, EXIT, HELP, OPTIONS, SEND_ONLY, usage, UsageError, type Output, type Values } from './mmsctl/args.js';
import { carrier, status } from './mmsctl/carrier.js';
import { reportError } from './mmsctl/errors.js';
import { inboxAct, inboxList, inboxSave, inboxShow } from './mmsctl/inbox.js';
import { cancel, list, show } from './mmsctl/messages.js';
import { deliver, prepareSend } from './mmsctl/send.js';
import { watch } from './mmsctl/watch.js';

export { EXIT, parseAttach } from './mmsctl/args.js';
export { describeCarrier } from './mmsctl/carrier.js';
export { describeDelivery, describeStatus, formatWait } from './mmsctl/messages.js';
export { deliveryDone } from './mmsctl/send.js';
export { watchLine } from './mmsctl/watch.js';

export async function main(argv: string[], io: Output = defaultOutput()): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (err) {
    io.err(`mmsctl: ${(err as Error).message}\n${HELP}`);
    return EXIT.usage;
  }
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  const [command, ...args] = positionals;
  const bus = values.bus ?? 'system';
  if (bus !== 'system' && bus !== 'session') return usage(io, `--bus must be system or session, not ${bus}`);

  let prepared: () => Promise<number>;
  let client: MmsClient | undefined;
  const withClient = (fn: (c: MmsClient) => Promise<number>) => async (): Promise<number> => {
    client = await MmsClient.connect(bus);
    return fn(client);
  };
  try {
    switch (command) {
      case 'send': {
        if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}`);
        const send = await prepareSend(values);
        prepared = withClient((c) => send(c, io));
        break;
      }
      case 'status':
      case 'list':
        if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}`);
        prepared = withClient((c) => (command === 'status' ? status(c, io, values) : list(c, io, values)));
        break;
      case 'carrier':
        if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}`);
        prepared = withClient((c) => carrier(c, io, values));
        break;
      case 'show':
      case 'cancel': {
        if (args.length !== 1) throw new UsageError(`${command} takes one message id`);
        const id = args[0];
        prepared = withClient((c) => (command === 'show' ? show(c, io, values, id) : cancel(c, io, values, id)));
        break;
      }
      case 'resend': {
        if (args.length !== 1) throw new UsageError('resend takes one message id');
        const given = SEND_ONLY.filter((k) => values[k] !== undefined);
        if (given.length > 0) throw new UsageError(`resend sends the message as it was: --${given[0]} is not taken (use send for a changed message)`);
        const id = args[0];
        prepared = withClient(async (c) => deliver(c, io, values, await c.resend(id, values.id), id));
        break;
      }
      case 'inbox': {
        const [sub, ...rest] = args;
        const want = (n: number, what: string): void => {
          if (rest.length !== n) throw new UsageError(`inbox ${sub} takes ${what}`);
        };
        if (sub === undefined) prepared = withClient((c) => inboxList(c, io, values));
        else if (sub === 'show') {
          want(1, 'one received message id');
          prepared = withClient((c) => inboxShow(c, io, values, rest[0]));
        } else if (sub === 'save') {
          want(2, 'a received message id and a directory');
          prepared = withClient((c) => inboxSave(c, io, values, rest[0], rest[1]));
        } else if (sub === 'delete' || sub === 'retrieve') {
          want(1, 'one received message id');
          prepared = withClient((c) => inboxAct(c, io, values, sub, rest[0]));
        } else throw new UsageError(`unknown inbox command ${sub} (show, save, retrieve, delete)`);
        break;
      }
      case 'watch':
        if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}`);
        prepared = withClient((c) => watch(c, io, values));
        break;
      case undefined:
        throw new UsageError('no command');
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (err) {
    if (err instanceof UsageError) return usage(io, err.message);
    throw err;
  }

  try {
    return await prepared();
  } catch (err) {
    return reportError(io, err);
  } finally {
    client?.close();
  }
}

function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

// Run as a program (also through npm's bin symlink), not when imported by a test.
if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`mmsctl: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = EXIT.failed;
    },
  );
}
