// V.250 basics of the virtual module: command echo (ATE), the result code format (AT+CMEE) and the
// framing of every answer, the identity (ATI, AT+GMI/GMM/GMR/GSN and their +CG… twins), ATZ, AT&F,
// ATV/ATQ, and the radio's functionality level with the restart (AT+CFUN).
import { intParam, type ParsedCommand } from './at-parser.js';
import { CME_TEXT } from './cme-codes.js';
import type { Framing } from './modem-core.js';
import { error, ok, type Capability, type CommandTable, type Final, type ModuleCore, type Reply } from './modem-capability.js';

const IDENTITY = { manufacturer: 'Quectel', model: 'EC25', revision: 'EC25EFAR06A11M4G' } as const;
const IMEI = '866758040000001';

export class V250Basics implements Capability, Framing {
  readonly name = 'v250';
  readonly commands: CommandTable;
  private echoOn = true;
  private cmeeMode = 1;
  private funLevel = 1;

  /** `radioChanged` runs when AT+CFUN changed the functionality level (registration follows it). */
  constructor(
    private readonly core: ModuleCore,
    private readonly radioChanged: () => void,
  ) {
    this.commands = {
      '': () => ok(),
      E: (c) => this.basicFlag(c, (on) => (this.echoOn = on)),
      V: (c) => (c.basicArg === '' || c.basicArg === '1' ? ok() : error()),
      Q: (c) => (c.basicArg === '' || c.basicArg === '0' ? ok() : error()),
      Z: () => ok(),
      '&F': (c) => (c.basicArg === '' || c.basicArg === '0' ? ok() : error()),
      I: () => ok([IDENTITY.manufacturer, IDENTITY.model, `Revision: ${IDENTITY.revision}`]),
      '+GMI': () => ok([IDENTITY.manufacturer]),
      '+CGMI': () => ok([IDENTITY.manufacturer]),
      '+GMM': () => ok([IDENTITY.model]),
      '+CGMM': () => ok([IDENTITY.model]),
      '+GMR': () => ok([IDENTITY.revision]),
      '+CGMR': () => ok([IDENTITY.revision]),
      '+GSN': () => ok([IMEI]),
      '+CGSN': () => ok([IMEI]),
      '+CMEE': (c) => this.cmdCmee(c),
      '+CFUN': (c) => this.cmdCfun(c),
    };
  }

  /** Echo of the command line (ATE). */
  get echo(): boolean {
    return this.echoOn;
  }

  /** AT+CMEE: 0 plain ERROR, 1 numeric, 2 verbose +CME ERROR. */
  get cmee(): number {
    return this.cmeeMode;
  }

  /** AT+CFUN functionality level: 1 full, 0 minimum, 4 radio off. */
  get fun(): number {
    return this.funLevel;
  }

  reset(): void {
    this.echoOn = true;
    this.cmeeMode = 1;
    this.funLevel = 1;
  }

  /** Frames a response as the module does: "\r\n<line>\r\n…" then "\r\n<final>\r\n". */
  frame(reply: Reply, midUrcs: readonly string[]): string {
    const lines = reply.lines;
    let text = '';
    if (lines.length > 0) {
      text += `\r\n${lines[0]}\r\n`;
      for (const urc of midUrcs) text += `\r\n${urc}\r\n`;
      if (lines.length > 1) text += `${lines.slice(1).join('\r\n')}\r\n`;
    } else {
      for (const urc of midUrcs) text += `\r\n${urc}\r\n`;
    }
    return `${text}\r\n${this.finalText(reply.final)}\r\n`;
  }

  private finalText(final: Final): string {
    if (final === 'OK' || final === 'ERROR' || final === 'CONNECT') return final;
    if (this.cmeeMode === 0) return 'ERROR';
    return `+CME ERROR: ${this.cmeeMode === 2 ? (CME_TEXT[final.cme] ?? String(final.cme)) : final.cme}`;
  }

  private basicFlag(c: ParsedCommand, set: (on: boolean) => void): Reply {
    if (c.basicArg === '' || c.basicArg === '0') set(false);
    else if (c.basicArg === '1') set(true);
    else return error();
    return ok();
  }

  private cmdCmee(c: ParsedCommand): Reply {
    if (c.form === 'query') return ok([`+CMEE: ${this.cmeeMode}`]);
    if (c.form === 'test') return ok(['+CMEE: (0-2)']);
    const n = intParam(c.params[0]);
    if (c.form !== 'set' || c.params.length !== 1 || n === undefined || n > 2) return error();
    this.cmeeMode = n;
    return ok();
  }

  private cmdCfun(c: ParsedCommand): Reply {
    if (c.form === 'query') return ok([`+CFUN: ${this.funLevel}`]);
    if (c.form === 'test') return ok(['+CFUN: (0,1,4),(0,1)']);
    const fun = intParam(c.params[0]);
    const rst = c.params.length > 1 ? intParam(c.params[1]) : 0;
    if (c.form !== 'set' || c.params.length > 2 || fun === undefined || rst === undefined) return error();
    if (![0, 1, 4].includes(fun) || rst > 1) return error();
    if (rst === 1) {
      // §6: "OK" first, then the module restarts once the answer has left the UART; the rest of a
      // chained line is lost with it.
      const restart = (): void => {
        const core = this.core;
        const gen = core.generation;
        const wait = Math.max(0, core.txDrainedAt - core.clock.now());
        core.after(wait + 1, () => {
          if (gen === core.generation) core.reboot();
        });
      };
      return { ...ok([], restart), endsLine: true };
    }
    return ok([], () => {
      this.funLevel = fun;
      this.radioChanged();
    });
  }
}
