// GIVEN/WHEN/THEN tests of the container rewrite on hand-built files: every segment and
// chunk is spelled out, so what must go and what must stay is visible in the test.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { exifOrientation, stripMetadata, stripMetadataReport } from '../src/index.js';

const text = (s) => Array.from(s, (c) => c.charCodeAt(0));
const seg = (marker, payload) => [0xff, marker, (payload.length + 2) >> 8, (payload.length + 2) & 0xff, ...payload];
const contains = (bytes, s) => Buffer.from(bytes).includes(Buffer.from(s, 'latin1'));

function tiff(entries) {
  // Big-endian TIFF with one IFD of SHORT/ASCII-offset entries.
  const out = [0x4d, 0x4d, 0, 42, 0, 0, 0, 8, 0, entries.length];
  for (const [tag, type, value] of entries) out.push(tag >> 8, tag & 0xff, 0, type, 0, 0, 0, 1, value >> 8, value & 0xff, 0, 0);
  return [...out, 0, 0, 0, 0];
}

function jpeg({ orientation = null } = {}) {
  const exif = tiff([[0x010f, 3, 7], [0x8825, 4, 0], ...(orientation ? [[0x0112, 3, orientation]] : [])]);
  return new Uint8Array([
    0xff, 0xd8,
    ...seg(0xe0, text('JFIF\0\x01\x01\0\0\x01\0\x01\0\0')),
    ...seg(0xe1, [...text('Exif\0\0'), ...exif, ...text('GPS 52.52N 13.41E')]),
    ...seg(0xe1, text('http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>home</x:xmpmeta>')),
    ...seg(0xe2, text('ICC_PROFILE\0\x01\x01profile-bytes')),
    ...seg(0xed, text('Photoshop 3.0\0IPTC')),
    ...seg(0xfe, text('taken at home')),
    ...seg(0xdb, new Array(65).fill(1)),
    ...seg(0xda, [1, 1, 0, 0, 63, 0]), 0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56,
    0xff, 0xd9,
    ...text('PK trailing'),
  ]);
}

test('JPEG: EXIF, XMP, IPTC, comments and trailing data go; JFIF, ICC and the scan stay byte for byte', () => {
  // GIVEN a JPEG with GPS in its EXIF, XMP, IPTC, a comment and bytes after EOI
  const input = jpeg();
  // WHEN it is stripped
  const { bytes, removed, stripped } = stripMetadataReport(input, 'image/jpeg');
  // THEN the metadata is gone and reported, and what a decoder needs is kept as it was
  assert.equal(stripped, true);
  assert.deepEqual(removed, ['exif', 'xmp', 'iptc', 'comment', 'trailing-data:11B']);
  assert.ok(!contains(bytes, 'GPS') && !contains(bytes, 'home') && !contains(bytes, 'Exif'));
  assert.ok(contains(bytes, 'JFIF') && contains(bytes, 'ICC_PROFILE'));
  const scan = Buffer.from([0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0xff, 0xd9]);
  assert.ok(Buffer.from(bytes).subarray(-scan.length).equals(scan));
});

test('JPEG: an orientation other than 1 survives in an EXIF that holds nothing else', () => {
  // GIVEN a JPEG turned by its EXIF (orientation 6) that also carries a camera and GPS
  const { bytes, removed } = stripMetadataReport(jpeg({ orientation: 6 }), 'image/jpeg');
  // THEN the new EXIF says orientation 6 and nothing more, right after the JFIF header
  assert.ok(removed.includes('orientation=6 (kept)'));
  const at = Buffer.from(bytes).indexOf(Buffer.from('Exif\0\0', 'latin1'));
  assert.ok(at > 0 && !contains(bytes, 'GPS'));
  const exif = bytes.subarray(at + 6, at + 6 + 26);
  assert.equal(exifOrientation(exif), 6);
  assert.equal(new DataView(exif.buffer, exif.byteOffset).getUint16(8), 1); // one tag
});

function png(chunks) {
  const body = chunks.flatMap(([type, data]) => {
    const len = data.length;
    return [len >>> 24, (len >> 16) & 255, (len >> 8) & 255, len & 255, ...text(type), ...data, 0, 0, 0, 0];
  });
  return new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...body]);
}

test('PNG: text, time and EXIF chunks go; picture chunks stay', () => {
  // GIVEN a PNG with tEXt, iTXt, zTXt, tIME and eXIf besides its picture chunks
  const input = png([['IHDR', new Array(13).fill(0)], ['iCCP', text('icc')], ['tEXt', text('Author\0me')],
    ['iTXt', text('GPS\0\0\0\0\0here')], ['zTXt', text('c\0\0x')], ['tIME', [7, 234, 1, 1, 0, 0, 0]],
    ['eXIf', tiff([[0x010f, 3, 1]])], ['IDAT', [1, 2, 3]], ['IEND', []]]);
  // WHEN stripped
  const { bytes, removed } = stripMetadataReport(input, 'image/png');
  // THEN only picture chunks remain
  assert.deepEqual(removed, ['tEXt', 'iTXt', 'zTXt', 'tIME', 'eXIf']);
  assert.ok(contains(bytes, 'iCCP') && contains(bytes, 'IDAT') && !contains(bytes, 'Author') && !contains(bytes, 'here'));
});

test('WebP: EXIF and XMP chunks go, the VP8X flags and RIFF size follow', () => {
  // GIVEN an extended WebP with ICC, EXIF and XMP
  const chunk = (fourcc, data) => {
    const pad = data.length & 1 ? [0] : [];
    return [...text(fourcc), data.length & 255, (data.length >> 8) & 255, 0, 0, ...data, ...pad];
  };
  const body = [...text('WEBP'), ...chunk('VP8X', [0x20 | 0x08 | 0x04, 0, 0, 0, 9, 0, 0, 9, 0, 0]),
    ...chunk('ICCP', text('icc')), ...chunk('VP8L', [0x2f, 1, 2, 3, 4]), ...chunk('EXIF', tiff([[0x010f, 3, 1]])),
    ...chunk('XMP ', text('<x:xmpmeta>GPS</x:xmpmeta>'))];
  const size = body.length;
  const input = new Uint8Array([...text('RIFF'), size & 255, (size >> 8) & 255, 0, 0, ...body]);
  // WHEN stripped
  const { bytes, removed } = stripMetadataReport(input, 'image/webp');
  // THEN EXIF and XMP are gone, the flags no longer claim them, and the RIFF size is right
  assert.deepEqual(removed, ['exif', 'xmp']);
  assert.equal(bytes[20] & 0x0c, 0);
  assert.equal(bytes[20] & 0x20, 0x20); // ICC flag kept
  assert.equal(new DataView(bytes.buffer).getUint32(4, true), bytes.length - 8);
  assert.ok(!contains(bytes, 'GPS') && contains(bytes, 'ICCP'));
});

test('other types pass through unchanged, and the report says nothing was stripped', () => {
  // GIVEN a GIF (re-encoded by the server, not rewritable here) and a JPEG declared as PNG
  const gif = new Uint8Array([...text('GIF89a'), 1, 0, 1, 0, 0, 0, 0, 0x3b]);
  for (const [input, type] of [[gif, 'image/gif'], [jpeg(), 'image/png']]) {
    // WHEN stripped
    const report = stripMetadataReport(input, type);
    // THEN the same bytes come back, flagged as not stripped
    assert.equal(report.stripped, false);
    assert.deepEqual(report.removed, []);
    assert.deepEqual(stripMetadata(input, type), input);
  }
});

test('a truncated JPEG is refused, not half-copied', () => {
  const input = jpeg().subarray(0, 40);
  assert.throws(() => stripMetadata(input, 'image/jpeg'), { name: 'CorruptMediaError' });
});
