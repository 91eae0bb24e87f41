// The loopback MMSC's delivery-report plans as data: their names, and the one-recipient form
// `ADDRESS=PLAN[:DELAY_MS]` that `mmsd-sim --delivery-for` takes (docs/sim.md). Kept apart from
// mmsc.ts so that the CLI and the control API check plans without loading the MMS side.
import type { DeliveryPlan, RecipientDelivery } from './types.js';

export const DELIVERY_PLAN_NAMES: readonly DeliveryPlan[] = ['retrieved', 'rejected', 'expired', 'deferred-then-retrieved', 'none'];

/** The longest per-recipient or general delay, ms (an hour). */
export const MAX_DELIVERY_DELAY_MS = 3_600_000;

export class BadDeliveryPlan extends Error {}

export function isDeliveryPlan(v: unknown): v is DeliveryPlan {
  return DELIVERY_PLAN_NAMES.includes(v as DeliveryPlan);
}

/**
 * `+4917012345=rejected:500` → ["+4917012345", {plan: "rejected", delayMs: 500}]; the delay is
 * optional. The address is any text without "=" (an e-mail address works too).
 */
export function parseRecipientDelivery(text: string): [string, RecipientDelivery] {
  const m = /^([^=\s]+)=([a-z-]+)(?::(\d{1,7}))?$/.exec(text);
  if (!m) throw new BadDeliveryPlan(`wants ADDRESS=PLAN[:DELAY_MS], got "${text}"`);
  const [, address, plan, delay] = m;
  if (!isDeliveryPlan(plan)) throw new BadDeliveryPlan(`plan of "${address}" must be one of ${DELIVERY_PLAN_NAMES.join(', ')}, got "${plan}"`);
  if (delay === undefined) return [address, { plan }];
  const delayMs = Number(delay);
  if (delayMs > MAX_DELIVERY_DELAY_MS) throw new BadDeliveryPlan(`delay of "${address}" must be at most ${MAX_DELIVERY_DELAY_MS} ms, got ${delay}`);
  return [address, { plan, delayMs }];
}
