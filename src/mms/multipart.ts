// The multipart body of MMS PDUs (WAP-230 §8.5): entries with their content type, part headers
// (Content-Location, Content-ID, Content-Disposition) and data; shared by M-Send.req and
// M-Retrieve.conf.
import type { MmsPart } from './types.js';
import { readWspHeaders, WspWriter, type ContentTypeParams, type WspReader } from './wsp.js';

/** WAP-230 Table 39: part header field names (code | 0x80 on the wire). */
const PartHeader = {
  ContentLocation: 0x0e,
  ContentDisposition: 0x2e,
  ContentId: 0x40,
  ContentDisposition14: 0x45,
} as const;

/** WAP-230 §8.4.2.53: Content-disposition "attachment". */
const DISPOSITION_ATTACHMENT = 0x81;

export function isMultipart(mediaType: string): boolean {
  return mediaType.toLowerCase().startsWith('application/vnd.wap.multipart.');
}

export function writeParts(w: WspWriter, parts: readonly MmsPart[]): void {
  // WAP-230 §8.5.2: nEntries, then per entry HeadersLen, DataLen, ContentType+Headers, Data.
  w.uintvar(parts.length);
  for (const part of parts) {
    const params: ContentTypeParams = {};
    if (part.charset !== undefined) params.charset = part.charset;
    if (part.name !== undefined) params.name = part.name;
    const headers = new WspWriter().contentType({ mediaType: part.contentType, params });
    if (part.contentLocation !== undefined) headers.shortInteger(PartHeader.ContentLocation).textString(part.contentLocation);
    if (part.contentId !== undefined) headers.shortInteger(PartHeader.ContentId).quotedString(part.contentId);
    if (part.filename !== undefined) {
      const disp = new WspWriter().octet(DISPOSITION_ATTACHMENT).shortInteger(0x06).textString(part.filename);
      headers.shortInteger(PartHeader.ContentDisposition).valueLength(disp.size).bytes(disp.toBuffer());
    }
    w.uintvar(headers.size).uintvar(part.data.length).bytes(headers.toBuffer()).bytes(part.data);
  }
}

/** Reads the part headers after the content type, to the end of `h`, into `part`. */
function readPartHeaders(h: WspReader, part: MmsPart): void {
  readWspHeaders(h, (code) => {
    switch (code) {
      case PartHeader.ContentLocation:
        part.contentLocation = h.textString();
        return true;
      case PartHeader.ContentId:
        part.contentId = h.quotedString();
        return true;
      case PartHeader.ContentDisposition:
      case PartHeader.ContentDisposition14: {
        if (h.peek() >= 0x80) {
          h.octet(); // a bare disposition token without parameters
          return true;
        }
        const d = h.sub(h.valueLength());
        if (d.peek() >= 0x80) d.octet();
        else d.textString();
        const p = d.params();
        if (p.filename !== undefined) part.filename = p.filename;
        if (p.name !== undefined && part.name === undefined) part.name = p.name;
        return true;
      }
      default:
        return false;
    }
  });
}

export function readParts(r: WspReader): MmsPart[] {
  const count = r.uintvar();
  const parts: MmsPart[] = [];
  for (let i = 0; i < count; i++) {
    const headersLen = r.uintvar();
    const dataLen = r.uintvar();
    const h = r.sub(headersLen);
    const ct = h.contentType();
    const part: MmsPart = { contentType: ct.mediaType, data: Buffer.alloc(0) };
    if (ct.params.charset !== undefined) part.charset = ct.params.charset;
    if (ct.params.name !== undefined) part.name = ct.params.name;
    if (ct.params.filename !== undefined) part.filename = ct.params.filename;
    readPartHeaders(h, part);
    part.data = Buffer.from(r.take(dataLen));
    parts.push(part);
  }
  return parts;
}
