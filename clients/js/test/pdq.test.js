// Properties of the JS PDQ that need no server; agreement with the server's PDQ on real
// photos and the pinned values is tested from Python (tests/functional/test_clients.py).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fingerprint, hamming, pdqHash, pHash, serverFactors } from '../src/index.js';

function picture(width, height, shift = 0) {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const i = (y * width + x) * 4;
    const v = 128 + 100 * Math.sin((x + shift) / 9) * Math.cos(y / 13);
    rgba[i] = v; rgba[i + 1] = 255 - v; rgba[i + 2] = (x * y) % 256; rgba[i + 3] = 255;
  }
  return rgba;
}

test('a flat picture has quality 0, a structured one a usable quality and a 64-hex hash', () => {
  const flat = new Uint8ClampedArray(100 * 80 * 4).fill(200);
  assert.equal(pdqHash(flat, 100, 80).quality, 0);
  const { hash, quality } = pdqHash(picture(300, 200), 300, 200);
  assert.match(hash, /^[0-9a-f]{64}$/);
  assert.ok(quality >= 50, `quality ${quality}`);
});

test('a small shift moves few bits; a different picture moves many', () => {
  const a = pdqHash(picture(400, 300), 400, 300).hash;
  const b = pdqHash(picture(400, 300, 2), 400, 300).hash;
  const c = pdqHash(picture(300, 400).reverse(), 300, 400).hash;
  assert.ok(hamming(a, b) <= 31, `shift moved ${hamming(a, b)} bits`);
  assert.ok(hamming(a, c) > 31, `different picture only ${hamming(a, c)} bits away`);
});

test('pHash is 16 hex characters; fingerprint reduces as the server does', () => {
  assert.match(pHash(picture(120, 90), 120, 90), /^[0-9a-f]{16}$/);
  assert.deepEqual(serverFactors(4000, 3000, 'image/jpeg'), [4]);
  assert.deepEqual(serverFactors(4000, 3000, 'image/png'), [5]);
  assert.deepEqual(serverFactors(800, 600, 'image/jpeg'), []);
  const fp = fingerprint(picture(1100, 1100), 1100, 1100, 'image/png');
  assert.match(fp.pdq, /^[0-9a-f]{64}$/);
});

test('fewer pixels than declared is an error', () => {
  assert.throws(() => pdqHash(new Uint8ClampedArray(10), 10, 10), RangeError);
});
