// The multipart body of an outgoing message: which multipart type, and the generated SMIL
// presentation (OMA-MMS-CONF §8: multipart.related with type application/smil and start).
import { MULTIPART_MIXED, MULTIPART_RELATED, type MmsPart, type SendReq } from './types.js';

export const SMIL_TYPE = 'application/smil';

export type MessageBody = Pick<SendReq, 'contentType' | 'type' | 'start' | 'parts'>;

function isMedia(part: MmsPart): boolean {
  return /^(image|audio|video)\//i.test(part.contentType);
}

function xmlAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function smilElement(part: MmsPart): string {
  const src = xmlAttr(part.contentLocation ?? part.name ?? '');
  const t = part.contentType.toLowerCase();
  if (t.startsWith('image/')) return `<img src="${src}" region="Image"/>`;
  if (t.startsWith('text/')) return `<text src="${src}" region="Text"/>`;
  if (t.startsWith('audio/')) return `<audio src="${src}"/>`;
  if (t.startsWith('video/')) return `<video src="${src}" region="Image"/>`;
  return `<ref src="${src}"/>`;
}

/** A SMIL presentation showing each part on its own slide, in order. */
export function buildSmil(parts: readonly MmsPart[]): string {
  const slides = parts.map((p) => `<par dur="5000ms">${smilElement(p)}</par>`).join('');
  return (
    '<smil><head><layout><root-layout width="320" height="480"/>' +
    '<region id="Image" left="0" top="0" width="320" height="320" fit="meet"/>' +
    '<region id="Text" left="0" top="320" width="320" height="160" fit="scroll"/>' +
    `</layout></head><body>${slides}</body></smil>`
  );
}

function unique(base: string, taken: ReadonlySet<string>, suffix = ''): string {
  if (!taken.has(base + suffix)) return base + suffix;
  for (let i = 1; ; i++) if (!taken.has(`${base}-${i}${suffix}`)) return `${base}-${i}${suffix}`;
}

/**
 * Decides the body's multipart type. multipart.related with a generated SMIL part first when
 * there is more than one part or any image, audio or video part (a handset needs a presentation
 * to lay those out); otherwise (no part, or one text or other file) multipart.mixed without SMIL.
 * Each part should already carry its name, Content-Location and Content-ID.
 */
export function composeBody(parts: readonly MmsPart[]): MessageBody {
  if (parts.length <= 1 && !parts.some(isMedia)) return { contentType: MULTIPART_MIXED, parts: [...parts] };
  const names = new Set(parts.flatMap((p) => [p.name, p.contentLocation].filter((n): n is string => n !== undefined)));
  const ids = new Set(parts.flatMap((p) => (p.contentId === undefined ? [] : [p.contentId.replace(/^<|>$/g, '')])));
  const smilName = unique('smil', names, '.smil');
  const smilId = `<${unique('smil', ids)}>`;
  const smil: MmsPart = {
    contentType: SMIL_TYPE,
    name: smilName,
    contentLocation: smilName,
    contentId: smilId,
    data: Buffer.from(buildSmil(parts), 'utf8'),
  };
  return { contentType: MULTIPART_RELATED, type: SMIL_TYPE, start: smilId, parts: [smil, ...parts] };
}
