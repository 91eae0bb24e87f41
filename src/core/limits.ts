// The limits of a message (spec §2.1–2.2, DESIGN.md §6): the front doors refuse what exceeds them,
// the driver checks them again before the AT line, attachment names are cut to them.

export const LIMITS = {
  /** Addresses in each of to, cc and bcc. */
  recipientsPerField: 6,
  addressBytes: 50,
  /** Decoded subject, in bytes. */
  subjectBytes: 200,
  attachments: 12,
  /** `RAM:` + file name ≤ 80 bytes (spec §2.2). */
  ramNameBytes: 80,
  /** A client id (it names files in the spool). */
  idChars: 64,
  contentTypeChars: 100,
} as const;

/** The prefix of a file in the module's RAM store (spec §2.2). */
export const RAM_PREFIX = 'RAM:';

/** Longest attachment name: the part is named after its RAM file, and `RAM:` + name ≤ 80 bytes. */
export const ATTACHMENT_NAME_MAX_BYTES = LIMITS.ramNameBytes - RAM_PREFIX.length;

/**
 * A message's size limit (its attachments' bytes) and where it came from, in words an error can
 * quote (DESIGN.md §10, §11): "the carrier database's entry for …", "mms.maxMessageBytes", "the
 * module's free RAM".
 */
export interface SizeLimit {
  bytes: number;
  source: string;
}

/**
 * DESIGN.md §11: the most a message may carry in when its images may be fitted (they are then
 * re-encoded to the limit): a 48 MP camera JPEG is about 20 MB.
 */
export const FIT_INPUT_MAX_BYTES = 40 * 1024 * 1024;
