// Records the D-Bus door's unit tests share.
import type { MessageRecord } from '../../src/core/message.js';

/** A message that failed after five attempts, with every error field set. */
export const FAILED_RECORD: MessageRecord = {
  id: 'm1',
  status: 'failed',
  to: ['+15551234'],
  cc: [],
  bcc: ['b@example.com'],
  subject: 's',
  attachments: [],
  options: {},
  attempts: 5,
  progress: 1,
  error: { code: 765, name: 'Server response failed', httpStatus: 502, mmscResponse: 'denied' },
  created: 1_700_000_000_123,
  updated: 1_700_000_000_456,
  ramFiles: [],
  sendAccepted: false,
};
