// The carrier module's named errors (DESIGN.md §10): kept apart from parse.ts so that importing
// them does not load the XML parser.

/** The database file is missing, unreadable, not well-formed XML, or not a serviceproviders document. */
export class CarrierDatabaseError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`carrier database ${path}: ${detail}`);
    this.name = 'CarrierDatabaseError';
  }
}

/** The driver handed over an IMSI that is not 6–15 digits. */
export class InvalidImsiError extends Error {
  constructor(readonly imsi: string) {
    super(`IMSI ${JSON.stringify(imsi)} is not 6–15 digits`);
    this.name = 'InvalidImsiError';
  }
}
