// The carrier database (DESIGN.md §10): `carrier.database`, read and indexed once, when the first
// lookup needs it; until then neither the file nor the XML parser is loaded.
import { readFile } from 'node:fs/promises';
import { DEFAULT_CARRIER_DATABASE } from '../config/schema.js';
import { lookupCarrier, type LookupChoice } from './lookup.js';
import { CarrierDatabaseError } from './errors.js';
import type { CarrierIndex } from './parse.js';
import type { CarrierLookup, SimIdentity } from './types.js';

/** `carrier.database`'s default: where Debian's mobile-broadband-provider-info installs it. */
export const DEFAULT_DATABASE = DEFAULT_CARRIER_DATABASE;

/** Reads and indexes the file; throws CarrierDatabaseError naming the file and what is wrong. */
export async function loadCarrierIndex(path: string): Promise<CarrierIndex> {
  let xml: string;
  try {
    xml = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const hint = code === 'ENOENT' ? ' (install mobile-broadband-provider-info, or set carrier.database)' : '';
    throw new CarrierDatabaseError(path, `cannot read it: ${code}${hint}`);
  }
  const { indexServiceProviders } = await import('./parse.js');
  return indexServiceProviders(xml, path);
}

export class CarrierDatabase {
  private loading: Promise<CarrierIndex> | undefined;

  constructor(readonly path: string = DEFAULT_DATABASE) {}

  /**
   * The index, loaded on the first call and kept. A failed load is not kept: the next call tries
   * the file again (the package may have been installed meanwhile).
   */
  index(): Promise<CarrierIndex> {
    this.loading ??= loadCarrierIndex(this.path).catch((err: unknown) => {
      this.loading = undefined;
      throw err;
    });
    return this.loading;
  }

  /** Looks the SIM up; rejects with CarrierDatabaseError or InvalidImsiError. */
  async lookup(identity: SimIdentity, choice: LookupChoice = {}): Promise<CarrierLookup> {
    return lookupCarrier(await this.index(), identity, choice);
  }
}
