// The connectionless WSP Push PDU (WAP-230 §8.2.4.1, §8.2.1: TID, PDU type 0x06, headers length,
// content type, headers, body) that SMS user data to port 2948 carries: its decoder, over the WSP
// primitives of src/mms/wsp.ts (the sim's encoder is src/sim/sms-encode.ts). Every malformation
// is an MmsDecodeError.
import { MmsDecodeError } from '../mms/types.js';
import { readWspHeaders, WspReader, type ContentTypeValue } from '../mms/wsp.js';

/** WAP-230 Table 34: PDU type of a Push. */
export const PDU_TYPE_PUSH = 0x06;
/** WAP-230 Table 39: X-Wap-Application-Id (0x2F, 0xAF on the wire). */
export const X_WAP_APPLICATION_ID = 0x2f;
export const MMS_CONTENT_TYPE = 'application/vnd.wap.mms-message';
export const MMS_APPLICATION_ID = 'x-wap-application:mms.ua';

/** OMNA Push Application ID registry: the assigned codes (index = code). */
export const APPLICATION_IDS: readonly string[] = [
  'x-wap-application:*',
  'x-wap-application:push.sia',
  'x-wap-application:wml.ua',
  'x-wap-application:wta.ua',
  MMS_APPLICATION_ID,
  'x-wap-application:push.syncml',
  'x-wap-application:loc.ua',
  'x-wap-application:syncml.dm',
  'x-wap-application:drm.ua',
  'x-wap-application:emn.ua',
  'x-wap-application:wv.ua',
];

export interface WspPush {
  /** Transaction id (connectionless WSP, §8.2.1). */
  tid: number;
  contentType: ContentTypeValue;
  /** X-Wap-Application-Id: a URI, or an assigned code not in the registry as its number. */
  applicationId?: string | number;
  body: Buffer;
}

/** Decode a connectionless WSP Push PDU; any other PDU type is an MmsDecodeError. */
export function decodeWspPush(buf: Buffer): WspPush {
  const r = new WspReader(buf);
  const tid = r.octet();
  const type = r.octet();
  if (type !== PDU_TYPE_PUSH) throw new MmsDecodeError(`WSP PDU type 0x${type.toString(16)} is not a Push`, 1);
  const h = r.sub(r.uintvar());
  const contentType = h.contentType();
  const push: WspPush = { tid, contentType, body: Buffer.alloc(0) };
  readWspHeaders(
    h,
    (code) => {
      if (code !== X_WAP_APPLICATION_ID) return false;
      // Application-id-value = Uri-value | App-assigned-code (§8.4.2.54).
      const v = h.peek();
      if (v >= 0x20 && v < 0x80) push.applicationId = h.textString();
      else {
        const n = h.integerValue();
        push.applicationId = APPLICATION_IDS[n] ?? n;
      }
      return true;
    },
    (name, value) => {
      if (name.toLowerCase() === 'x-wap-application-id') push.applicationId = value;
    },
  );
  push.body = Buffer.from(r.rest());
  return push;
}

/** Whether a push carries an MMS PDU (DESIGN §12: by its content type). */
export function isMmsPush(push: WspPush): boolean {
  return push.contentType.mediaType.toLowerCase() === MMS_CONTENT_TYPE;
}
