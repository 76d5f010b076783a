// Hash raw RGBA files listed in a manifest and print one JSON line per file with timings.
// Used by tests/functional/test_clients.py (agreement with the server's PDQ) and by hand
// for timing:  node clients/js/bench/hash-raw.mjs manifest.json
// Manifest: [{"path": "a.rgba", "width": 512, "height": 512, "type": "image/jpeg"}, ...]
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

import { fingerprint, pdqHash } from '../src/index.js';

const manifest = JSON.parse(readFileSync(process.argv[2], 'utf8'));
for (const entry of manifest) {
  const rgba = new Uint8ClampedArray(readFileSync(entry.path));
  let t = performance.now();
  const reference = pdqHash(rgba, entry.width, entry.height);
  const pdqMs = performance.now() - t;
  t = performance.now();
  const fp = fingerprint(rgba, entry.width, entry.height, entry.type);
  const fingerprintMs = performance.now() - t;
  console.log(JSON.stringify({ path: entry.path, pdq_full: reference.hash, quality_full: reference.quality, ...fp,
    pdq_full_ms: +pdqMs.toFixed(1), fingerprint_ms: +fingerprintMs.toFixed(1) }));
}
