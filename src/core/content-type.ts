// Media types by file name, both ways: the guess for an attachment given without a type, and the
// extension a part's file gets so that the module (which types a part by it) says what the client said.

/** File extension (lower case) → media type. Unknown extensions are application/octet-stream. */
const BY_EXTENSION: Readonly<Record<string, string>> = {
  txt: 'text/plain',
  text: 'text/plain',
  htm: 'text/html',
  html: 'text/html',
  xml: 'text/xml',
  css: 'text/css',
  vcf: 'text/x-vcard',
  vcs: 'text/x-vcalendar',
  ics: 'text/calendar',
  smil: 'application/smil',
  smi: 'application/smil',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  jpe: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  bmp: 'image/bmp',
  wbmp: 'image/vnd.wap.wbmp',
  webp: 'image/webp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
  heic: 'image/heic',
  amr: 'audio/amr',
  awb: 'audio/amr-wb',
  mp3: 'audio/mpeg',
  m4a: 'audio/mp4',
  aac: 'audio/aac',
  wav: 'audio/wav',
  ogg: 'audio/ogg',
  mid: 'audio/midi',
  midi: 'audio/midi',
  imy: 'audio/imelody',
  '3gp': 'video/3gpp',
  '3g2': 'video/3gpp2',
  mp4: 'video/mp4',
  m4v: 'video/mp4',
  mpg: 'video/mpeg',
  mpeg: 'video/mpeg',
  pdf: 'application/pdf',
  zip: 'application/zip',
  json: 'application/json',
};

export function guessContentType(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  if (dot < 0) return 'application/octet-stream';
  const ext = base.slice(dot + 1).toLowerCase();
  return BY_EXTENSION[ext] ?? 'application/octet-stream';
}

/** The usual file extension of a media type (the first in the table), without the dot. */
export function extensionFor(mediaType: string): string | undefined {
  const type = mediaType.split(';')[0].trim().toLowerCase();
  for (const [ext, t] of Object.entries(BY_EXTENSION)) if (t === type) return ext;
  return undefined;
}
