// The failures the driver's commands throw besides its own (ModemApi in types.ts): the AT
// channel's, passed through as they are. Users of the driver import them from here, not from src/at.
export { AtError, AtErrorResult, ChecksumError, ClosedError, CmeError, CmsError, TimeoutError } from '../at/errors.js';
