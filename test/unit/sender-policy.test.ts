// The send policy (DESIGN.md §6, §14, docs/reliability.md) as a table: one row per spec code, per
// FILE code and per HTTP status class, then the retry ladder, the busy bound, the uncounted
// requeues and outbox.resendAmbiguous.
import { describe, expect, it } from 'vitest';
import { FILE_CODES, SPEC_CODES, fileCode } from '../../src/core/errors.js';
import {
  DEFAULT_BACKOFF_MS,
  MAX_BUSY_IN_ROW,
  MAX_REQUEUES_IN_ROW,
  decide,
  fileVerdict,
  type Action,
  type PolicyState,
  type RequeueVerdict,
  type ResultVerdict,
} from '../../src/sender/policy.js';

const base: PolicyState = {
  attempt: 1,
  maxAttempts: 6,
  busyInRow: 0,
  requeuesInRow: 0,
  filesLostRetried: false,
  resendAmbiguous: false,
  backoffMs: DEFAULT_BACKOFF_MS,
};

function state(patch: Partial<PolicyState> = {}): PolicyState {
  return { ...base, ...patch };
}

/** A `+QMMSEND: <err>,<http>` result of an accepted send. */
function sent(err: number, httpStatus = 0): ResultVerdict {
  return { kind: 'result', err, httpStatus, afterSend: true };
}

/** AT+QMMSEND refused with a code, or an edit command answered one (nothing went out). */
function refused(err: number): ResultVerdict {
  return { kind: 'result', err, httpStatus: 0, fallbackName: 'Send not accepted', afterSend: false };
}

type Kind = Action['kind'];

describe('decide: one row per spec code (751–777), first try', () => {
  // [code, name, after an accepted send, when refused or answered to an edit command]
  const rows: [number, string, Kind, Kind][] = [
    [751, 'Unknown error', 'unknown', 'retry-now'],
    [752, 'URL length error', 'fail', 'fail'],
    [753, 'URL error', 'fail', 'fail'],
    [754, 'Invalid proxy type', 'fail', 'fail'],
    [755, 'Proxy address error', 'fail', 'fail'],
    [756, 'Invalid parameter', 'fail', 'fail'],
    [757, 'Recipient address full', 'fail', 'fail'],
    [758, 'CC recipient address full', 'fail', 'fail'],
    [759, 'BCC recipient address full', 'fail', 'fail'],
    [760, 'Attachments full', 'fail', 'fail'],
    [761, 'File error', 'reupload-once', 'reupload-once'],
    [762, 'No recipient', 'fail', 'fail'],
    [763, 'File not found', 'reupload-once', 'reupload-once'],
    [764, 'MMS busy', 'busy-wait', 'busy-wait'],
    [765, 'Server response failed', 'retry-now', 'retry-now'],
    [766, 'Error response of HTTP(S) post', 'retry-now', 'retry-now'],
    [767, 'Invalid report of HTTP(S) post', 'unknown', 'retry-now'],
    [768, 'PDP activation failed', 'retry-now', 'retry-now'],
    [769, 'PDP deactivated', 'unknown', 'retry-now'],
    [770, 'Socket creation failed', 'retry-now', 'retry-now'],
    [771, 'Socket connection failed', 'retry-now', 'retry-now'],
    [772, 'Socket read failed', 'unknown', 'retry-now'],
    [773, 'Socket write failed', 'retry-now', 'retry-now'],
    [774, 'Socket closed', 'unknown', 'retry-now'],
    [775, 'Timeout', 'unknown', 'retry-now'],
    [776, 'Encode data error', 'fail', 'fail'],
    [777, 'HTTP(S) decode data error', 'unknown', 'retry-now'],
  ];

  it('covers every code of the spec table', () => {
    expect(rows.map(([code]) => code)).toEqual(SPEC_CODES.map((c) => c.code));
  });

  it.each(rows)('%i %s: %s after the send, %s when refused', (code, name, afterSend, whenRefused) => {
    const a = decide(sent(code), state());
    expect(a.kind).toBe(afterSend);
    if (a.kind !== 'sent') expect(a.error).toEqual({ code, name });
    const r = decide(refused(code), state());
    expect(r.kind).toBe(whenRefused);
    if (r.kind !== 'sent') expect(r.error).toEqual({ code, name });
  });
});

describe('decide: one row per FILE code (DESIGN.md §14), first try', () => {
  const ram = { needed: 5000, space: { free: 1000, total: 3000 } };
  const tooLarge = 'MessageTooLarge: the attachments need 5000 bytes of the module\'s RAM, which has 1000 free of 3000';
  // [code, action, error name]
  const rows: [number, Kind, string][] = [
    [400, 'fail', 'Invalid input value'],
    [401, 'fail', 'Larger than the size of the file'],
    [402, 'retry-now', 'Read zero byte'],
    [403, 'fail', `Drive full (${tooLarge})`],
    [405, 'retry-now', 'File not found'],
    [406, 'fail', 'Invalid file name'],
    [407, 'retry-now', 'File already existed'],
    [409, 'retry-now', 'Fail to write the file'],
    [410, 'retry-now', 'Fail to open the file'],
    [411, 'retry-now', 'Fail to read the file'],
    [420, 'fail', `No space (${tooLarge})`],
    [421, 'retry-now', 'Time out'],
    [423, 'fail', `File too large (${tooLarge})`],
    [425, 'fail', 'Invalid parameter'],
    [426, 'retry-now', 'File already opened'],
  ];

  it('covers every code of the FILE table', () => {
    expect(rows.map(([code]) => code)).toEqual(FILE_CODES.map((c) => c.code));
  });

  it.each(rows)('%i: %s (%s)', (code, kind, name) => {
    const file = fileCode(code);
    if (!file) throw new Error(`no FILE code ${code}`);
    const a = decide(fileVerdict(file, ram), state());
    expect(a.kind).toBe(kind);
    if (a.kind !== 'sent') expect(a.error).toEqual({ code, name });
  });

  it('names MessageTooLarge without sizes when AT+QFLDS did not answer', () => {
    const a = decide(fileVerdict(fileCode(423)!, { needed: 5000 }), state());
    expect(a).toMatchObject({ kind: 'fail', error: { code: 423, name: "File too large (MessageTooLarge: the attachments need 5000 bytes of the module's RAM)" } });
  });
});

describe('decide: one row per HTTP status class (+QMMSEND: 0,<status>), first try', () => {
  // [status, action, error name]
  const rows: [number, Kind, string | undefined][] = [
    [200, 'sent', undefined],
    [400, 'fail', 'HTTP 400 Bad request'],
    [403, 'fail', 'HTTP 403 Forbidden'],
    [404, 'fail', 'HTTP 404 Not found'],
    [411, 'fail', 'HTTP 411 Length required'],
    [408, 'retry-now', 'HTTP 408 Request timeout'],
    [409, 'retry-now', 'HTTP 409 Conflict'],
    [500, 'retry-now', 'HTTP 500 Internal server error'],
    [503, 'retry-now', 'HTTP 503 Service unavailable'],
    [504, 'unknown', 'HTTP 504 Gateway timeout'],
  ];

  it.each(rows)('0,%i: %s', (status, kind, name) => {
    const a = decide(sent(0, status), state());
    expect(a.kind).toBe(kind);
    if (a.kind !== 'sent') expect(a.error).toEqual({ code: 0, name, httpStatus: status });
  });

  it('a 4xx other than 408/409 fails whatever the code says; 408/409 follow the code', () => {
    expect(decide(sent(765, 404), state()).kind).toBe('fail');
    expect(decide(sent(764, 403), state()).kind).toBe('fail');
    expect(decide(sent(765, 408), state()).kind).toBe('retry-now');
    expect(decide(sent(752, 409), state()).kind).toBe('fail');
  });

  it('504 sent again under resendAmbiguous', () => {
    expect(decide(sent(0, 504), state({ resendAmbiguous: true })).kind).toBe('retry-now');
  });

  it('keeps the MMSC response text', () => {
    const a = decide({ ...sent(0, 500), mmscResponse: 'try later' }, state());
    expect(a).toMatchObject({ kind: 'retry-now', error: { code: 0, httpStatus: 500, mmscResponse: 'try later' } });
  });

  it('a code outside the table after the send is unknown; refused, it is retried under its fallback name', () => {
    expect(decide(sent(799), state())).toMatchObject({ kind: 'unknown', error: { code: 799, name: 'Error 799' } });
    expect(decide(refused(799), state())).toMatchObject({ kind: 'retry-now', error: { code: 799, name: 'Send not accepted (799)' } });
  });
});

describe('decide: the ladder (§4.3)', () => {
  it.each([
    [1, { kind: 'retry-now' }],
    [2, { kind: 'reactivate-then-retry' }],
    [3, { kind: 'back-off', ms: 30_000 }],
    [4, { kind: 'back-off', ms: 120_000 }],
    [5, { kind: 'back-off', ms: 600_000 }],
    [6, { kind: 'fail' }],
  ])('failure at attempt %i of 6: %o', (attempt, expected) => {
    expect(decide(sent(765), state({ attempt }))).toMatchObject(expected);
  });

  it('stays on the last rung when maxAttempts is longer than the ladder', () => {
    expect(decide(sent(765), state({ attempt: 9, maxAttempts: 10 }))).toMatchObject({ kind: 'back-off', ms: 600_000 });
    expect(decide(sent(765), state({ attempt: 10, maxAttempts: 10 })).kind).toBe('fail');
  });

  it('uses a configured ladder', () => {
    expect(decide(sent(765), state({ attempt: 3, backoffMs: [7] }))).toMatchObject({ kind: 'back-off', ms: 7 });
    expect(decide(sent(765), state({ attempt: 5, backoffMs: [7] }))).toMatchObject({ kind: 'back-off', ms: 7 });
  });

  it('maxAttempts 1 fails at the first failure; a permanent code fails at any attempt', () => {
    expect(decide(sent(765), state({ maxAttempts: 1 })).kind).toBe('fail');
    expect(decide(sent(757), state({ attempt: 3 })).kind).toBe('fail');
  });

  it('files lost re-upload once, then follow the ladder; at maxAttempts they fail', () => {
    expect(decide(sent(763), state())).toMatchObject({ kind: 'reupload-once', next: { filesLostRetried: true } });
    expect(decide(sent(761), state({ attempt: 2, filesLostRetried: true })).kind).toBe('reactivate-then-retry');
    expect(decide(sent(761), state({ attempt: 6 })).kind).toBe('fail');
  });
});

describe('decide: 764 busy', () => {
  it('waits uncounted up to MAX_BUSY_IN_ROW in a row, then counts as a failure', () => {
    expect(decide(sent(764), state({ busyInRow: MAX_BUSY_IN_ROW - 1 }))).toMatchObject({ kind: 'busy-wait', next: { busyInRow: MAX_BUSY_IN_ROW } });
    expect(decide(sent(764), state({ busyInRow: MAX_BUSY_IN_ROW }))).toMatchObject({
      kind: 'retry-now',
      next: { busyInRow: MAX_BUSY_IN_ROW + 1 },
    });
    expect(decide(sent(764), state({ attempt: 3, busyInRow: MAX_BUSY_IN_ROW }))).toMatchObject({ kind: 'back-off', ms: 30_000 });
  });

  it('another outcome ends the run of busy answers', () => {
    expect(decide(sent(765), state({ busyInRow: 7 })).next.busyInRow).toBe(0);
  });
});

describe('decide: uncounted requeues (§6, §14)', () => {
  const failed: RequeueVerdict = { kind: 'requeue', reason: 'AT+QMMSEDIT=1,"x" ERROR', publicReason: 'AT+QMMSEDIT ERROR', counts: true };

  it('goes back to the queue with the reason, counting the returns in a row', () => {
    for (let before = 0; before < MAX_REQUEUES_IN_ROW - 1; before++) {
      expect(decide(failed, state({ requeuesInRow: before }))).toEqual({
        kind: 'requeue-uncounted',
        reason: failed.reason,
        error: { code: 0, name: 'Not sent, back in the queue: AT+QMMSEDIT ERROR' },
        next: { busyInRow: 0, requeuesInRow: before + 1, filesLostRetried: false },
      });
    }
  });

  it(`the ${MAX_REQUEUES_IN_ROW}th in a row counts as a failed attempt`, () => {
    const s = state({ requeuesInRow: MAX_REQUEUES_IN_ROW - 1, busyInRow: 3 });
    expect(decide({ ...failed, code: 3 }, s)).toEqual({
      kind: 'retry-now',
      error: { code: 3, name: `Not sent ${MAX_REQUEUES_IN_ROW} times in a row: AT+QMMSEDIT ERROR` },
      next: { busyInRow: 0, requeuesInRow: 0, filesLostRetried: false },
    });
    expect(decide(failed, { ...s, attempt: 6 }).kind).toBe('fail');
  });

  it('a stop goes back to the queue without an error and without counting', () => {
    const stop: RequeueVerdict = { kind: 'requeue', reason: 'sender stopping', publicReason: 'sender stopping', counts: false };
    expect(decide(stop, state({ requeuesInRow: 4 }))).toEqual({
      kind: 'requeue-uncounted',
      reason: 'sender stopping',
      next: { busyInRow: 0, requeuesInRow: 4, filesLostRetried: false },
    });
  });

  it('an answer of the module forgets the returns in a row', () => {
    expect(decide(sent(765), state({ requeuesInRow: 5 })).next.requeuesInRow).toBe(0);
    expect(decide({ kind: 'unknown', reason: 'x' }, state({ requeuesInRow: 5 })).next.requeuesInRow).toBe(0);
  });
});

describe('decide: lost results and outbox.resendAmbiguous', () => {
  it('an accepted send without a result is unknown, even under resendAmbiguous', () => {
    const v = { kind: 'unknown', reason: 'no +QMMSEND within 300 s' } as const;
    for (const resendAmbiguous of [false, true]) {
      expect(decide(v, state({ resendAmbiguous }))).toMatchObject({
        kind: 'unknown',
        error: { code: 0, name: 'Result unknown: no +QMMSEND within 300 s' },
      });
    }
  });

  it.each([751, 767, 769, 772, 774, 775, 777])('ambiguous %i after the send follows the ladder under resendAmbiguous', (code) => {
    expect(decide(sent(code), state({ resendAmbiguous: true })).kind).toBe('retry-now');
    expect(decide(sent(code), state({ resendAmbiguous: true, attempt: 3 }))).toMatchObject({ kind: 'back-off', ms: 30_000 });
    expect(decide(sent(code), state({ resendAmbiguous: true, attempt: 6 })).kind).toBe('fail');
  });

  it('only 0,200 is sent', () => {
    expect(decide(sent(0, 200), state()).kind).toBe('sent');
    expect(decide(sent(0, 201), state()).kind).toBe('retry-now');
  });
});
