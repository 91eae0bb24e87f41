// Content types: the WSP well-known media table (WAP-230 Appendix A Table 40, OMNA assigned numbers);
// the guess by file extension lives in core and is re-exported for the codec's users (sim, tests).
export { extensionFor, guessContentType } from '../core/content-type.js';

/** Index = assigned number (0x00..0x4B). Lower case, so a lookup is case-insensitive. */
const WELL_KNOWN_MEDIA: readonly string[] = [
  '*/*', // 0x00
  'text/*',
  'text/html',
  'text/plain',
  'text/x-hdml',
  'text/x-ttml',
  'text/x-vcalendar',
  'text/x-vcard',
  'text/vnd.wap.wml', // 0x08
  'text/vnd.wap.wmlscript',
  'text/vnd.wap.wta-event',
  'multipart/*',
  'multipart/mixed',
  'multipart/form-data',
  'multipart/byterantes', // sic: the table's own spelling
  'multipart/alternative',
  'application/*', // 0x10
  'application/java-vm',
  'application/x-www-form-urlencoded',
  'application/x-hdmlc',
  'application/vnd.wap.wmlc',
  'application/vnd.wap.wmlscriptc',
  'application/vnd.wap.wta-eventc',
  'application/vnd.wap.uaprof',
  'application/vnd.wap.wtls-ca-certificate', // 0x18
  'application/vnd.wap.wtls-user-certificate',
  'application/x-x509-ca-cert',
  'application/x-x509-user-cert',
  'image/*',
  'image/gif',
  'image/jpeg',
  'image/tiff',
  'image/png', // 0x20
  'image/vnd.wap.wbmp',
  'application/vnd.wap.multipart.*',
  'application/vnd.wap.multipart.mixed',
  'application/vnd.wap.multipart.form-data',
  'application/vnd.wap.multipart.byteranges',
  'application/vnd.wap.multipart.alternative',
  'application/xml',
  'text/xml', // 0x28
  'application/vnd.wap.wbxml',
  'application/x-x968-cross-cert',
  'application/x-x968-ca-cert',
  'application/x-x968-user-cert',
  'text/vnd.wap.si',
  'application/vnd.wap.sic',
  'text/vnd.wap.sl',
  'application/vnd.wap.slc', // 0x30
  'text/vnd.wap.co',
  'application/vnd.wap.coc',
  'application/vnd.wap.multipart.related',
  'application/vnd.wap.sia',
  'text/vnd.wap.connectivity-xml',
  'application/vnd.wap.connectivity-wbxml',
  'application/pkcs7-mime',
  'application/vnd.wap.hashed-certificate', // 0x38
  'application/vnd.wap.signed-certificate',
  'application/vnd.wap.cert-response',
  'application/xhtml+xml',
  'application/wml+xml',
  'text/css',
  'application/vnd.wap.mms-message',
  'application/vnd.wap.rollover-certificate',
  'application/vnd.wap.locc+wbxml', // 0x40
  'application/vnd.wap.loc+xml',
  'application/vnd.syncml.dm+wbxml',
  'application/vnd.syncml.dm+xml',
  'application/vnd.syncml.notification',
  'application/vnd.wap.xhtml+xml',
  'application/vnd.wv.csp.cir',
  'application/vnd.oma.dd+xml',
  'application/vnd.oma.drm.message', // 0x48
  'application/vnd.oma.drm.content',
  'application/vnd.oma.drm.rights+xml',
  'application/vnd.oma.drm.rights+wbxml',
];

const MEDIA_NUMBER = new Map(WELL_KNOWN_MEDIA.map((t, i) => [t, i]));

/** Assigned number of a well-known media type, or undefined (then it travels as text). */
export function wellKnownMediaNumber(mediaType: string): number | undefined {
  return MEDIA_NUMBER.get(mediaType.toLowerCase());
}

export function wellKnownMedia(n: number): string | undefined {
  return WELL_KNOWN_MEDIA[n];
}

/** Text media carry a charset parameter (RFC 2046 §4.1.2). */
export function isTextType(mediaType: string): boolean {
  return mediaType.toLowerCase().startsWith('text/');
}
