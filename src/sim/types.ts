// Contract between the virtual modem (src/sim/modem*) and the MMS side of the sim
// (src/mms, src/sim/mmsc.ts, src/sim/mms-post.ts).

export type SimCharset = 'ASCII' | 'UTF8' | 'UCS2' | 'GBK';

/** What AT+QMMSEND hands to the MMS side: the edited message as the module holds it. */
export interface SimSendRequest {
  to: string[];
  cc: string[];
  bcc: string[];
  /** The subject with the charset in force when it was edited; `text` is decoded (hex undone). */
  subject?: { charset: SimCharset; text: string };
  /** RAM files in the order they were added; `charset` is the one in force when added. */
  attachments: { name: string; data: Buffer; charset: SimCharset }[];
  /** AT+QMMSCFG="sendparam" values. */
  sendParam: { validity: number; priority: number; sendrep: number; readrep: number; visible: number; class: number };
  supportField: number;
  /** AT+QMMSCFG="mmsc" (may lack a scheme: "mmsc.myuni.com" means http://mmsc.myuni.com/). */
  mmsc: string;
  /** AT+QMMSCFG="proxy"; absent/empty host means a direct connection. */
  proxy?: { host: string; port: number };
  connectTimeoutS: number;
  /** AT+QMMSEND=<timeout>. */
  timeoutS: number;
  /** Aborted when the module reboots mid-send. */
  signal?: AbortSignal;
}

/** Becomes "+QMMSEND: <err>,<httpStatus>[,<mmsrsp>]". */
export interface SimSendOutcome {
  err: number;
  httpStatus: number;
  mmsrsp?: string;
}

export type SimSender = (req: SimSendRequest) => Promise<SimSendOutcome>;

/** Faults the loopback MMSC can be told to produce (by option and at run time). */
export interface MmscFaults {
  /** Answer this HTTP status instead of 200 (no M-Send.conf body). */
  httpStatus?: number;
  /** X-Mms-Response-Status in M-Send.conf, e.g. 0xC1 (transient) or 0xE2 (permanent). */
  mmsStatus?: number;
  /** Response text for a non-Ok status. */
  mmsText?: string;
  /** Delay before answering, ms. */
  delayMs?: number;
  /** Destroy the connection without answering. */
  drop?: boolean;
  /** Answer 200 with a body that is not an M-Send.conf. */
  garbage?: boolean;
  /** How many requests the fault applies to (default: until cleared). */
  count?: number;
}

/** What the loopback MMSC stored of one received message (also message.json in --store). */
export interface ReceivedMessage {
  /** Folder name / MMSC message id. */
  id: string;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string | null;
  parts: { name: string; contentType: string; size: number; sha256: string }[];
}

/** What the loopback MMSC reports for a recipient of a message that asked for delivery reports. */
export type DeliveryPlan = 'retrieved' | 'rejected' | 'expired' | 'deferred-then-retrieved' | 'none';

/** Delivery-report settings of the loopback MMSC (by option and at run time); all keys optional. */
export interface DeliverySettings {
  /** For every recipient without its own plan. */
  plan?: DeliveryPlan;
  /** Delay from M-Send.conf to each report (deferred-then-retrieved: twice that to the second). */
  delayMs?: number;
  /**
   * Per recipient address (as in the To/Cc/Bcc, /TYPE=PLMN ignored): a plan, or a plan with its
   * own delay (else `delayMs` above).
   */
  recipients?: Record<string, DeliveryPlan | RecipientDelivery>;
}

/** One recipient's delivery reports: what the MMSC reports and after how long. */
export interface RecipientDelivery {
  plan: DeliveryPlan;
  /** Delay from M-Send.conf to each report for this recipient (default: the settings' delayMs). */
  delayMs?: number;
}
