// The URC router of the AT channel: whoever needs an unsolicited result code registers its prefix,
// with the number of lines that follow it (warthog618/modem at/at.go AddIndication with
// WithTrailingLines). The router knows no vendor: the driver registers what its module sends.

/** Receives a URC line (trimmed) and the lines that followed it (as many as registered). */
export type UrcHandler = (line: string, trailing: readonly string[]) => void;

export interface UrcOptions {
  /**
   * Lines that belong to the URC after its prefixed line (e.g. 1 for `+CMT: ,<len>` followed by
   * the PDU). They are taken as they come, whatever they look like: a module sends them as one block.
   */
  trailingLines?: number;
}

interface Subscription {
  prefix: string;
  handler: UrcHandler;
  trailingLines: number;
}

interface Collecting {
  line: string;
  subs: Subscription[];
  want: number;
  trailing: string[];
}

export class UrcRouter {
  private readonly subs = new Set<Subscription>();
  private collecting: Collecting | undefined;

  /** `onError` is told when a handler throws; the other handlers still run. */
  constructor(private readonly onError: (err: unknown, line: string) => void) {}

  /** Registers `handler` for lines starting with `prefix`; returns the function that removes it. */
  add(prefix: string, handler: UrcHandler, opts: UrcOptions = {}): () => void {
    const trailingLines = opts.trailingLines ?? 0;
    if (prefix.trim() === '' || prefix !== prefix.trim() || /[\r\n]/.test(prefix)) {
      throw new TypeError(`invalid URC prefix ${JSON.stringify(prefix)}: not empty, no surrounding space, one line`);
    }
    if (!Number.isInteger(trailingLines) || trailingLines < 0) {
      throw new TypeError(`invalid trailingLines ${trailingLines} for URC ${prefix}: a whole number ≥ 0`);
    }
    const sub: Subscription = { prefix, handler, trailingLines };
    this.subs.add(sub);
    return () => {
      this.subs.delete(sub);
    };
  }

  /** Number of registrations (tests: every one removed again). */
  get size(): number {
    return this.subs.size;
  }

  /** The registered prefixes, each once. */
  prefixes(): string[] {
    return [...new Set([...this.subs].map((s) => s.prefix))];
  }

  /** Some registration wants this line. */
  matches(line: string): boolean {
    for (const s of this.subs) if (line.startsWith(s.prefix)) return true;
    return false;
  }

  /** A URC is waiting for its trailing lines: the next line belongs to it. */
  get waitingForLines(): boolean {
    return this.collecting !== undefined;
  }

  /**
   * Hands a URC line to every registration whose prefix it starts with, at once or, when one of
   * them wants trailing lines, once those have come (take()). False when no registration wants it.
   */
  route(line: string): boolean {
    const subs = [...this.subs].filter((s) => line.startsWith(s.prefix));
    if (subs.length === 0) return false;
    const want = Math.max(...subs.map((s) => s.trailingLines));
    if (want === 0) this.deliver(line, subs, []);
    else this.collecting = { line, subs, want, trailing: [] };
    return true;
  }

  /** The next trailing line of the URC being collected. */
  take(line: string): void {
    const c = this.collecting;
    if (!c) return;
    c.trailing.push(line);
    if (c.trailing.length < c.want) return;
    this.collecting = undefined;
    this.deliver(c.line, c.subs, c.trailing);
  }

  /** The link went away: a URC still waiting for its lines is dropped; its line is returned. */
  reset(): string | undefined {
    const c = this.collecting;
    this.collecting = undefined;
    return c?.line;
  }

  private deliver(line: string, subs: Subscription[], trailing: string[]): void {
    for (const s of subs) {
      // A handler removed by an earlier one (a waiter that got what it wanted) is not called.
      if (!this.subs.has(s)) continue;
      try {
        s.handler(line, trailing.slice(0, s.trailingLines));
      } catch (err) {
        this.onError(err, line);
      }
    }
  }
}
