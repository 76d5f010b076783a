// The upload flow against a local HTTP server that answers like the upload API and S3's
// POST (an in-memory fake in the test's own process; the real stack is exercised by the
// Python tests through `mediaguard serve`).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import { upload } from '../src/index.js';

const BLOCKED_PDQ = 'f'.repeat(64);
let server, base;
const state = { requests: [], stored: [], failNextStorage: 0, statuses: [] };

before(async () => {
  server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      state.requests.push({ method: req.method, url: req.url, bytes: body.length });
      const json = (status, value) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(value)); };
      if (req.url === '/v1/uploads' && req.method === 'POST') {
        const declared = JSON.parse(body);
        if (req.headers.authorization !== 'Bearer t0k') return json(401, { reason: 'unauthorized', message: 'a valid bearer token is required' });
        if (declared.pdq === BLOCKED_PDQ) return json(403, { reason: 'blocked_by_bank', message: 'this image cannot be uploaded', media_id: 'm-refused' });
        return json(201, { media_id: 'm1', key: 'uploads/m1', expires_in: 300, max_bytes: declared.content_length,
          upload: { url: `${base}/storage/`, fields: { key: 'uploads/m1', 'Content-Type': declared.content_type, policy: 'p' } } });
      }
      if (req.url === '/storage/') {
        if (state.failNextStorage > 0) { state.failNextStorage--; req.socket.destroy(); return undefined; }
        state.stored.push(body);
        res.writeHead(204); return res.end();
      }
      if (req.url === '/v1/uploads/m1' && req.method === 'GET') {
        return json(200, state.statuses.shift() ?? { media_id: 'm1', status: 'done', final: true, action: 'allow' });
      }
      return json(404, { reason: 'not_found' });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.close());

// A 64x64 picture with structure (PDQ quality well above 50) and a JPEG-like byte string.
function pixels() {
  const rgba = new Uint8ClampedArray(64 * 64 * 4);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) {
    const i = (y * 64 + x) * 4;
    rgba[i] = (x * 4) ^ (y * 2); rgba[i + 1] = y * 4; rgba[i + 2] = ((x >> 3) + (y >> 3)) % 2 ? 220 : 30; rgba[i + 3] = 255;
  }
  return { rgba, width: 64, height: 64 };
}
const file = new Uint8Array(300_000).fill(7);

test('progress events fire for strip, hash, request and every uploaded chunk, then the decision', async () => {
  // GIVEN a 300 kB file and its pixels
  state.stored = []; state.statuses = [{ media_id: 'm1', status: 'sanitized', final: false }];
  const events = [];
  // WHEN it is uploaded and followed
  const result = await upload(file, { api: base, token: 't0k', type: 'application/octet-stream', pixels: pixels(),
    follow: true, pollMs: 10, onProgress: (e) => events.push(e) });
  // THEN the phases come in order, upload progress rises to the full body, and the decision is back
  const phases = [...new Set(events.map((e) => e.phase))];
  assert.deepEqual(phases, ['strip', 'hash', 'request', 'upload', 'uploaded', 'status', 'done']);
  const sent = events.filter((e) => e.phase === 'upload');
  assert.ok(sent.length >= 2, 'more than one progress event for 300 kB');
  assert.ok(sent.every((e, i) => i === 0 || e.loaded > sent[i - 1].loaded));
  assert.equal(sent.at(-1).loaded, sent.at(-1).total);
  assert.deepEqual({ media_id: result.media_id, status: result.status, action: result.action, refused: result.refused },
    { media_id: 'm1', status: 'done', action: 'allow', refused: false });
  assert.equal(state.stored.length, 1);
  assert.ok(state.stored[0].includes(Buffer.from(file)));
});

test('a PDQ the API refuses is refused before any byte of the file is sent', async () => {
  // GIVEN pixels whose hash the API blocks (the fake blocks one hash; the client must send it)
  state.requests = []; state.stored = [];
  const { pdqHash } = await import('../src/index.js');
  const real = pdqHash(pixels().rgba, 64, 64).hash;
  assert.equal(real.length, 64);
  // WHEN the upload declares that hash
  const result = await upload(file, { api: base, token: 't0k', type: 'image/jpeg', pixels: pixels(),
    fetch: (url, init) => {
      const declared = JSON.parse(init.body);
      assert.equal(declared.pdq, real);
      return fetch(url, { ...init, body: JSON.stringify({ ...declared, pdq: BLOCKED_PDQ }) });
    } });
  // THEN the result is a refusal that names no bank, and storage saw nothing
  assert.equal(result.refused, true);
  assert.equal(result.reason, 'blocked_by_bank');
  assert.equal(result.media_id, 'm-refused');
  assert.ok(!/bank [a-z]|ncii|csam/i.test(result.message));
  assert.equal(state.requests.filter((r) => r.url === '/storage/').length, 0);
});

test('a network error during the upload is retried with backoff, then succeeds', async () => {
  // GIVEN storage that drops the first two connections
  state.stored = []; state.failNextStorage = 2;
  const retries = [];
  // WHEN uploading
  const result = await upload(file, { api: base, token: 't0k', type: 'application/octet-stream', backoffMs: 5,
    onProgress: (e) => e.phase === 'retry' && retries.push(e) });
  // THEN two retries were reported and the file landed once
  assert.equal(retries.length, 2);
  assert.equal(result.status, 'uploaded');
  assert.equal(state.stored.length, 1);
});

test('an unauthorised token is an error, not a refusal, and is not retried', async () => {
  state.requests = [];
  await assert.rejects(upload(file, { api: base, token: 'wrong', type: 'image/jpeg', backoffMs: 1 }),
    { name: 'UploadError', status: 401 });
  assert.equal(state.requests.length, 1);
});
