// The upload flow: strip, hash, ask the upload API for a presigned POST (declaring the
// client's PDQ), post the file with progress, then follow the decision.
//
// Everything the client declares is a hint: the server sniffs, strips, hashes and matches
// the bytes that land. A client PDQ only lets the API refuse an upload that would be
// removed anyway before a single byte of it is sent.

import { fingerprint } from './pdq.js';
import { stripMetadataReport, sniff } from './strip.js';

// Refusals the upload API answers before any byte is uploaded (api/uploads.py).
const REFUSALS = new Set(['blocked_by_bank', 'unsupported_media_type', 'too_large']);
const FINAL = new Set(['done', 'rejected', 'failed']);

export class UploadError extends Error {
  constructor(message, { status = null, reason = null, mediaId = null } = {}) {
    super(message);
    this.name = 'UploadError';
    this.status = status;
    this.reason = reason;
    this.mediaId = mediaId;
  }
}

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
});

/** Exponential backoff with full jitter: attempt 0 waits up to `base`, 1 up to 2*base, ... */
function backoff(attempt, base) {
  return Math.random() * base * 2 ** attempt;
}

// Retried: the network failing (fetch rejects, a socket resets) and answers that say
// "try again" (429, 5xx). Never a 4xx refusal: asking again changes nothing.
const retryable = (status) => status === 429 || status >= 500;

async function withRetry(options, attemptFn) {
  const retries = options.retries ?? 3;
  const base = options.backoffMs ?? 500;
  for (let attempt = 0; ; attempt++) {
    try {
      return await attemptFn();
    } catch (error) {
      const again = attempt < retries && (error.retry === true || (error.status == null && error.name !== 'UploadError'));
      if (!again || options.signal?.aborted) throw error;
      options.onProgress?.({ phase: 'retry', attempt: attempt + 1, error: error.message });
      await sleep(backoff(attempt, base), options.signal);
    }
  }
}

async function bearer(token) {
  return typeof token === 'function' ? await token() : token;
}

async function apiCall(options, method, path, body) {
  const fetchFn = options.fetch ?? globalThis.fetch;
  return withRetry(options, async () => {
    const response = await fetchFn(`${options.api.replace(/\/+$/, '')}${path}`, {
      method,
      cache: 'no-store',
      headers: { Authorization: `Bearer ${await bearer(options.token)}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: options.signal,
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new UploadError(data.message || `HTTP ${response.status}`, { status: response.status, reason: data.reason || null, mediaId: data.media_id || null });
      error.retry = retryable(response.status);
      throw error;
    }
    return data;
  });
}

async function sha256Hex(bytes) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return null; // insecure browser context: the declaration simply goes without it
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Decoded RGBA pixels of image bytes in a browser, upright as EXIF says, colours untouched. */
export async function decodeInBrowser(bytes, type) {
  // colorSpaceConversion 'none': the server hashes the decoded values without applying the
  // ICC profile; premultiplyAlpha 'none': alpha is composited onto white by the hash itself.
  const bitmap = await createImageBitmap(new Blob([bytes], { type }),
    { imageOrientation: 'from-image', colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    const canvas = typeof OffscreenCanvas !== 'undefined'
      ? new OffscreenCanvas(bitmap.width, bitmap.height)
      : Object.assign(document.createElement('canvas'), { width: bitmap.width, height: bitmap.height });
    const context = canvas.getContext('2d', { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    const image = context.getImageData(0, 0, bitmap.width, bitmap.height);
    return { rgba: image.data, width: image.width, height: image.height };
  } finally {
    bitmap.close();
  }
}

function multipart(fields, bytes, type) {
  const boundary = `----mediaguard${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`;
  const encoder = new TextEncoder();
  let head = '';
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  }
  // The file last: S3 ignores fields after it.
  head += `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="upload"\r\nContent-Type: ${type}\r\n\r\n`;
  const before = encoder.encode(head);
  const after = encoder.encode(`\r\n--${boundary}--\r\n`);
  const body = new Uint8Array(before.length + bytes.length + after.length);
  body.set(before); body.set(bytes, before.length); body.set(after, before.length + bytes.length);
  return { body, contentType: `multipart/form-data; boundary=${boundary}`, fileStart: before.length };
}

function storageError(status, text) {
  const code = (text.match(/<Code>([^<]+)<\/Code>/) || [])[1] || `HTTP ${status}`;
  const error = new UploadError(`storage refused the upload: ${code}`, { status, reason: code });
  error.retry = retryable(status);
  return error;
}

// Browser: XMLHttpRequest is the one API that reports upload progress.
function postWithXhr(url, form, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(storageError(xhr.status, xhr.responseText || '')));
    xhr.onerror = () => reject(new TypeError('network error during the upload'));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(form);
  });
}

// Node: the body written in chunks; progress counts what the socket has taken.
async function postWithNode(url, { body, contentType }, onProgress, signal) {
  const target = new URL(url);
  const transport = await import(target.protocol === 'https:' ? 'node:https' : 'node:http');
  return new Promise((resolve, reject) => {
    const request = transport.request(target, {
      method: 'POST', signal, headers: { 'Content-Type': contentType, 'Content-Length': body.length },
    }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => { text += chunk; });
      response.on('end', () => (response.statusCode >= 200 && response.statusCode < 300
        ? resolve() : reject(storageError(response.statusCode, text))));
    });
    request.on('error', (error) => reject(error));
    const CHUNK = 256 * 1024;
    let sent = 0;
    const pump = () => {
      while (sent < body.length) {
        const end = Math.min(body.length, sent + CHUNK);
        const ok = request.write(body.subarray(sent, end));
        sent = end;
        onProgress(sent, body.length);
        if (!ok) { request.once('drain', pump); return; }
      }
      request.end();
    };
    pump();
  });
}

async function postFile(grant, bytes, type, options) {
  const report = (loaded, total) => options.onProgress?.({ phase: 'upload', loaded, total });
  return withRetry(options, () => {
    if (typeof XMLHttpRequest !== 'undefined' && !options.forceNodeTransport) {
      const form = new FormData();
      for (const [name, value] of Object.entries(grant.upload.fields)) form.append(name, value);
      form.append('file', new Blob([bytes], { type }), 'upload');
      return postWithXhr(grant.upload.url, form, report, options.signal);
    }
    return postWithNode(grant.upload.url, multipart(grant.upload.fields, bytes, type), report, options.signal);
  });
}

/**
 * Poll the upload's status until it is final (or `timeoutMs` passes): `{media_id, status,
 * final, action, reason}`. `action` is the policy's (`allow`, `review`, `remove`, ...).
 */
export async function follow(mediaId, options) {
  const interval = options.pollMs ?? 1000;
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    const status = await apiCall(options, 'GET', `/v1/uploads/${encodeURIComponent(mediaId)}`);
    options.onProgress?.({ phase: 'status', status: status.status });
    if (status.final || Date.now() + interval > deadline) return status;
    await sleep(interval, options.signal);
  }
}

/**
 * Upload one file: strip its metadata, hash it, ask for a presigned POST with the hash,
 * post it with progress, and (with `follow: true`) wait for the decision.
 *
 * `file`: a Blob/File, or a Uint8Array/ArrayBuffer with `options.type`.
 * `options`: `api` (the upload API's base URL, without /v1/uploads), `token` (a string or an
 * async function returning one), `onProgress({phase, ...})`, `pixels` ({rgba, width, height},
 * for Node, which has no image decoder; browsers decode themselves), `reach`, `follow`,
 * `pollMs`, `timeoutMs`, `retries` (3), `backoffMs` (500), `strip` (true), `signal`, `fetch`.
 *
 * Resolves to `{media_id, status, action, refused, reason, hash, stripped, bytes}`; a refusal
 * before the upload (`refused: true`, `reason` e.g. `blocked_by_bank`) sends no byte of the file.
 *
 *   const result = await upload(input.files[0], { api, token, follow: true, onProgress: console.log });
 */
export async function upload(file, options) {
  if (!options?.api) throw new TypeError('options.api (the upload API base URL) is required');
  const progress = (event) => options.onProgress?.(event);
  const original = file instanceof Uint8Array ? file
    : file instanceof ArrayBuffer ? new Uint8Array(file)
      : new Uint8Array(await file.arrayBuffer());
  const declaredType = options.type || file.type || sniff(original) || 'application/octet-stream';
  // strip: false sends the file as it is (e.g. to keep a C2PA manifest for the server's
  // provenance reader); the server strips the copy it serves either way.
  const { bytes, removed, stripped } = options.strip === false
    ? { bytes: original, removed: [], stripped: false } : stripMetadataReport(original, declaredType);
  progress({ phase: 'strip', removed, stripped, before: original.length, after: bytes.length });

  let hash = null;
  const pixels = options.pixels ?? (typeof createImageBitmap === 'function' && declaredType.startsWith('image/')
    ? await decodeInBrowser(bytes, declaredType).catch(() => null) : null);
  if (pixels) {
    hash = fingerprint(pixels.rgba, pixels.width, pixels.height, declaredType);
    progress({ phase: 'hash', ...hash });
  }

  const declaration = { content_type: declaredType, content_length: bytes.length };
  const sha256 = await sha256Hex(bytes);
  if (sha256) declaration.sha256 = sha256;
  if (hash) Object.assign(declaration, { pdq: hash.pdq, pdq_quality: hash.pdq_quality });
  if (options.reach != null) declaration.reach = options.reach;
  const base = { hash, stripped: removed, bytes: bytes.length };

  let grant;
  progress({ phase: 'request' });
  try {
    grant = await apiCall(options, 'POST', '/v1/uploads', declaration);
  } catch (error) {
    if (error instanceof UploadError && REFUSALS.has(error.reason)) {
      // The API's own message: it names neither bank nor entry. The media id is the audited
      // refusal's, for support; no item exists under it.
      progress({ phase: 'refused', reason: error.reason });
      return { media_id: error.mediaId, status: 'refused', action: null, refused: true, reason: error.reason, message: error.message, ...base };
    }
    throw error;
  }
  await postFile(grant, bytes, declaredType, options);
  progress({ phase: 'uploaded', media_id: grant.media_id });
  let status = { status: 'uploaded', action: null, reason: null };
  if (options.follow) status = await follow(grant.media_id, options);
  progress({ phase: 'done', media_id: grant.media_id, status: status.status });
  return { media_id: grant.media_id, status: status.status, action: status.action ?? null, refused: false,
    reason: status.reason ?? null, ...base };
}
