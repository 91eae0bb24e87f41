// The one-recipient delivery plan form of `mmsd-sim --delivery-for` (src/sim/delivery-plans.ts).
import { describe, expect, it } from 'vitest';
import { BadDeliveryPlan, parseRecipientDelivery } from '../../src/sim/delivery-plans.js';

describe('parseRecipientDelivery', () => {
  it.each([
    ['+4917012345=rejected:500', ['+4917012345', { plan: 'rejected', delayMs: 500 }]],
    ['+4917012345=deferred-then-retrieved', ['+4917012345', { plan: 'deferred-then-retrieved' }]],
    ['copy.test@quectel.com=none:0', ['copy.test@quectel.com', { plan: 'none', delayMs: 0 }]],
  ])('reads %s', (text, want) => {
    expect(parseRecipientDelivery(text)).toEqual(want);
  });

  it.each([
    ['+4917', 'wants ADDRESS=PLAN[:DELAY_MS], got "+4917"'],
    ['+4917=lost', 'plan of "+4917" must be one of retrieved, rejected, expired, deferred-then-retrieved, none, got "lost"'],
    ['+4917=rejected:-5', 'wants ADDRESS=PLAN[:DELAY_MS]'],
    ['+4917=rejected:3600001', 'delay of "+4917" must be at most 3600000 ms, got 3600001'],
    ['=rejected', 'wants ADDRESS=PLAN[:DELAY_MS]'],
  ])('refuses %s with a named error', (text, why) => {
    expect(() => parseRecipientDelivery(text)).toThrow(BadDeliveryPlan);
    expect(() => parseRecipientDelivery(text)).toThrow(why);
  });
});
