// @mediaguard/client: hash and strip before upload, presigned uploads with progress,
// decisions back. No build step, no dependencies: an ES module for browsers and Node >= 18.
export { fingerprint, hamming, pdqHash, pHash, reduce, serverFactors } from './pdq.js';
export { CorruptMediaError, exifOrientation, sniff, stripMetadata, stripMetadataReport } from './strip.js';
export { decodeInBrowser, follow, upload, UploadError } from './upload.js';
