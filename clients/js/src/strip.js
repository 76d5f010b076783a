// Metadata removal before the bytes leave the device, at the container level like the
// server's (layers/mediaguard/mediaguard/formats/{jpeg,png}.py): segments and chunks are
// dropped, the compressed pixels are copied as they are, nothing is re-encoded.
//
// Kept, as the server keeps them: the JFIF header, the ICC profile, Adobe APP14 (JPEG);
// the chunks that change how pixels look or animate (PNG); ICCP and the image data (WebP).
// EXIF goes, but an orientation other than 1 is carried over in a minimal EXIF that holds
// nothing else: without it the picture would display turned, and the server applies it
// (and drops that EXIF too) exactly as it does for any upload.

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
// PNG chunks the server keeps (formats/png.py PICTURE_CHUNKS); every other chunk goes.
const PNG_PICTURE_CHUNKS = new Set(['IHDR', 'PLTE', 'IDAT', 'IEND', 'tRNS', 'cHRM', 'gAMA', 'iCCP',
  'sBIT', 'sRGB', 'cICP', 'mDCV', 'cLLI', 'acTL', 'fcTL', 'fdAT']);
const STANDALONE = new Set([0x01, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8]);

export class CorruptMediaError extends Error {
  constructor(message) { super(message); this.name = 'CorruptMediaError'; }
}

const ascii = (bytes, start, length) => String.fromCharCode(...bytes.subarray(start, start + length));
const startsWith = (bytes, start, text) => ascii(bytes, start, text.length) === text;

function concat(parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let pos = 0;
  for (const part of parts) { out.set(part, pos); pos += part.length; }
  return out;
}

// --- EXIF orientation ------------------------------------------------------------------

/** The orientation (1-8) an EXIF TIFF block declares, or null. */
export function exifOrientation(tiff) {
  if (tiff.length < 8) return null;
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return null;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > tiff.length) return null;
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return null;
    if (view.getUint16(entry, little) === 0x0112 && view.getUint16(entry + 2, little) === 3) {
      const value = view.getUint16(entry + 8, little);
      return value >= 1 && value <= 8 ? value : null;
    }
  }
  return null;
}

/** A big-endian TIFF block whose only tag is Orientation. */
function orientationOnlyTiff(orientation) {
  const tiff = new Uint8Array(26);
  const view = new DataView(tiff.buffer);
  tiff.set([0x4d, 0x4d, 0x00, 0x2a]);
  view.setUint32(4, 8);
  view.setUint16(8, 1);
  view.setUint16(10, 0x0112); view.setUint16(12, 3); view.setUint32(14, 1); view.setUint16(18, orientation);
  view.setUint32(22, 0);
  return tiff;
}

// --- JPEG --------------------------------------------------------------------------------

// The name recorded for a dropped segment, or null for one a decoder needs (jpeg.metadata_name).
function jpegMetadataName(marker, bytes, payload) {
  if (marker === 0xe0) return startsWith(bytes, payload, 'JFIF\0') ? null : 'jfif-extension-thumbnail';
  if (marker === 0xe1) {
    if (startsWith(bytes, payload, 'Exif\0')) return 'exif';
    if (startsWith(bytes, payload, 'http://ns.adobe.com/xap/1.0/') || startsWith(bytes, payload, 'http://ns.adobe.com/xmp')) return 'xmp';
    return 'app1';
  }
  if (marker === 0xe2) {
    if (startsWith(bytes, payload, 'ICC_PROFILE\0')) return null;
    return startsWith(bytes, payload, 'MPF\0') ? 'mpf' : 'app2';
  }
  if (marker === 0xeb) return 'c2pa-jumbf';
  if (marker === 0xed) return 'iptc';
  if (marker === 0xee) return startsWith(bytes, payload, 'Adobe') ? null : 'app14';
  if (marker >= 0xe3 && marker <= 0xef) return `app${marker - 0xe0}`;
  if (marker === 0xfe) return 'comment';
  return null;
}

function scanEnd(bytes, pos) {
  for (;;) {
    pos = bytes.indexOf(0xff, pos);
    if (pos < 0 || pos + 1 >= bytes.length) throw new CorruptMediaError('the JPEG scan data is truncated');
    const next = bytes[pos + 1];
    if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) { pos += 2; continue; }
    if (next === 0xff) { pos += 1; continue; }
    return pos;
  }
}

function stripJpeg(bytes) {
  const parts = [bytes.subarray(0, 2)];
  const removed = [];
  let orientation = null;
  let pos = 2;
  for (;;) {
    if (pos >= bytes.length || bytes[pos] !== 0xff) throw new CorruptMediaError('the JPEG is truncated or has a corrupt segment');
    const start = pos;
    while (pos < bytes.length && bytes[pos] === 0xff) pos++;
    if (pos >= bytes.length) throw new CorruptMediaError('the JPEG is truncated');
    const marker = bytes[pos++];
    if (marker === 0xd9) { parts.push(bytes.subarray(start, pos)); break; }
    if (STANDALONE.has(marker)) { parts.push(bytes.subarray(start, pos)); continue; }
    if (pos + 2 > bytes.length) throw new CorruptMediaError('the JPEG is truncated');
    const length = (bytes[pos] << 8) | bytes[pos + 1];
    let end = pos + length;
    if (length < 2 || end > bytes.length) throw new CorruptMediaError('a JPEG segment runs past the end of the file');
    const payload = pos + 2;
    if (marker === 0xda) end = scanEnd(bytes, end);
    const name = (marker >= 0xe0 && marker <= 0xef) || marker === 0xfe ? jpegMetadataName(marker, bytes, payload) : null;
    if (name === null) parts.push(bytes.subarray(start, end));
    else {
      removed.push(name);
      if (name === 'exif' && orientation === null) orientation = exifOrientation(bytes.subarray(payload + 6, end));
    }
    pos = end;
  }
  if (pos < bytes.length) removed.push(`trailing-data:${bytes.length - pos}B`);
  if (orientation !== null && orientation !== 1) {
    const tiff = orientationOnlyTiff(orientation);
    const app1 = new Uint8Array(4 + 6 + tiff.length);
    app1.set([0xff, 0xe1, (app1.length - 2) >> 8, (app1.length - 2) & 0xff]);
    app1.set([0x45, 0x78, 0x69, 0x66, 0, 0], 4);
    app1.set(tiff, 10);
    // After SOI and a JFIF APP0 if there is one (JFIF must come first).
    const at = parts.length > 1 && parts[1][1] === 0xe0 ? 2 : 1;
    parts.splice(at, 0, app1);
    removed.push(`orientation=${orientation} (kept)`);
  }
  return { bytes: concat(parts), removed };
}

// --- PNG ---------------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, body) {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

function stripPng(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parts = [bytes.subarray(0, 8)];
  const removed = [];
  let orientation = null;
  let pos = 8;
  for (;;) {
    if (pos + 8 > bytes.length) throw new CorruptMediaError('the PNG is truncated (no IEND chunk)');
    const length = view.getUint32(pos);
    const type = ascii(bytes, pos + 4, 4);
    const end = pos + 12 + length;
    if (end > bytes.length) throw new CorruptMediaError('a PNG chunk runs past the end of the file');
    if (PNG_PICTURE_CHUNKS.has(type)) {
      if (type === 'IDAT' && orientation !== null && orientation !== 1) {
        // eXIf must come before the first IDAT.
        parts.push(pngChunk('eXIf', orientationOnlyTiff(orientation)));
        removed.push(`orientation=${orientation} (kept)`);
        orientation = null;
      }
      parts.push(bytes.subarray(pos, end));
    } else {
      removed.push(type);
      if (type === 'eXIf') orientation = exifOrientation(bytes.subarray(pos + 8, pos + 8 + length));
    }
    pos = end;
    if (type === 'IEND') break;
  }
  if (pos < bytes.length) removed.push(`trailing-data:${bytes.length - pos}B`);
  return { bytes: concat(parts), removed };
}

// --- WebP ----------------------------------------------------------------------------------

function stripWebp(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const riffEnd = Math.min(bytes.length, 8 + view.getUint32(4, true));
  const parts = [];
  const removed = [];
  let vp8x = null;
  let orientation = null;
  let pos = 12;
  while (pos + 8 <= riffEnd) {
    const fourcc = ascii(bytes, pos, 4);
    const size = view.getUint32(pos + 4, true);
    const end = pos + 8 + size + (size & 1);
    if (pos + 8 + size > riffEnd) throw new CorruptMediaError('a WebP chunk runs past the end of the file');
    if (fourcc === 'EXIF' || fourcc === 'XMP ') {
      removed.push(fourcc === 'EXIF' ? 'exif' : 'xmp');
      if (fourcc === 'EXIF') {
        let tiff = bytes.subarray(pos + 8, pos + 8 + size);
        if (startsWith(tiff, 0, 'Exif\0\0')) tiff = tiff.subarray(6);
        orientation = exifOrientation(tiff);
      }
    } else {
      const chunk = bytes.slice(pos, Math.min(end, riffEnd));
      if (fourcc === 'VP8X') vp8x = chunk;
      parts.push(chunk);
    }
    pos = end;
  }
  if (riffEnd < bytes.length) removed.push(`trailing-data:${bytes.length - riffEnd}B`);
  const keepOrientation = orientation !== null && orientation !== 1 && vp8x !== null;
  if (vp8x !== null) {
    // VP8X flags: clear "has EXIF" (0x08) and "has XMP" (0x04) for what is gone.
    vp8x[8] &= ~(keepOrientation ? 0x04 : 0x0c);
  }
  if (keepOrientation) {
    const tiff = orientationOnlyTiff(orientation);
    const chunk = new Uint8Array(8 + tiff.length);
    chunk.set([0x45, 0x58, 0x49, 0x46]);
    new DataView(chunk.buffer).setUint32(4, tiff.length, true);
    chunk.set(tiff, 8);
    parts.push(chunk); // EXIF comes after the image data in the extended format
    removed.push(`orientation=${orientation} (kept)`);
  }
  const body = concat(parts);
  const header = new Uint8Array(12);
  header.set(bytes.subarray(0, 12));
  new DataView(header.buffer).setUint32(4, 4 + body.length, true);
  return { bytes: concat([header, body]), removed };
}

// --- the API -------------------------------------------------------------------------------

/** The media type the bytes are, for the three this module rewrites; null otherwise. */
export function sniff(bytes) {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'image/png';
  if (startsWith(bytes, 0, 'RIFF') && startsWith(bytes, 8, 'WEBP')) return 'image/webp';
  return null;
}

/**
 * Strip metadata and report it: `{bytes, removed, stripped}`. `removed` names what went
 * (`exif`, `xmp`, `comment`, PNG chunk types, `trailing-data:NB`, ...); `stripped` is false
 * when the type is not one this module rewrites and the bytes come back unchanged.
 */
export function stripMetadataReport(bytes, type) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const kind = sniff(data);
  // The bytes decide, as on the server: a declared type that disagrees is left to the
  // server to refuse, not rewritten as something it is not.
  if (kind === null || (type && type !== kind && !(type === 'image/jpg' && kind === 'image/jpeg'))) {
    return { bytes: data, removed: [], stripped: false };
  }
  const result = kind === 'image/jpeg' ? stripJpeg(data) : kind === 'image/png' ? stripPng(data) : stripWebp(data);
  return { ...result, stripped: true };
}

/**
 * The bytes without their metadata (JPEG, PNG, WebP); other types unchanged (use
 * `stripMetadataReport` to learn whether anything was stripped).
 *
 *   const clean = stripMetadata(new Uint8Array(await file.arrayBuffer()), file.type);
 */
export function stripMetadata(bytes, type) {
  return stripMetadataReport(bytes, type).bytes;
}
