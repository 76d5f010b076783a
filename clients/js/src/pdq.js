// PDQ (Meta's 256-bit perceptual hash) and imagehash's pHash, from decoded pixels.
//
// A port of the published algorithm (pdqhash-2017-10-09.pdf; the reference is the C++ in
// facebook/ThreatExchange pdq/cpp, which the server runs through the `pdqhash` wheel):
// luminance, two Jarosz box-filter passes per axis, decimation to 64x64, a 16x16 DCT,
// one bit per coefficient above the median, quality from the gradient sum. Intermediate
// values are rounded to float32 where the reference stores them in float, so ties at the
// median fall the same way as on the server.

const LUMA_R = 0.299;
const LUMA_G = 0.587;
const LUMA_B = 0.114;
const MIN_HASHABLE_DIM = 5;
const JAROSZ_PASSES = 2;
const f32 = Math.fround;

// 16x64 DCT-II rows 1..16 (row 0, the mean, carries no structure), scaled as the reference.
const DCT_64 = (() => {
  const m = new Float32Array(16 * 64);
  const scale = Math.sqrt(2 / 64);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 64; j++) m[i * 64 + j] = scale * Math.cos((Math.PI / 2 / 64) * (i + 1) * (2 * j + 1));
  }
  return m;
})();

/**
 * Luminance of RGBA pixels as float32, transparent pixels composited onto white (what the
 * server does before hashing, so a PNG with alpha hashes the way it displays).
 */
export function luma(rgba, width, height) {
  const out = new Float32Array(width * height);
  for (let p = 0, q = 0; p < out.length; p++, q += 4) {
    let r = rgba[q], g = rgba[q + 1], b = rgba[q + 2];
    const a = rgba[q + 3];
    if (a !== 255) {
      // Pillow's alpha_composite onto opaque white, integer arithmetic as Pillow rounds it.
      r = Math.floor((r * a + 255 * (255 - a) + 127) / 255);
      g = Math.floor((g * a + 255 * (255 - a) + 127) / 255);
      b = Math.floor((b * a + 255 * (255 - a) + 127) / 255);
    }
    out[p] = r * LUMA_R + g * LUMA_G + b * LUMA_B;
  }
  return out;
}

function jaroszWindow(oldDim, newDim) {
  return Math.floor((oldDim + 2 * newDim - 1) / (2 * newDim));
}

// One 1-D box filter with a window that shrinks at both ends (the reference's four phases).
function box1d(input, output, start, length, stride, window) {
  const half = Math.floor((window + 2) / 2);
  const phase1 = half - 1;
  const phase2 = window - half + 1;
  const phase3 = length - window;
  const phase4 = half - 1;
  let li = start, ri = start, oi = start;
  let sum = 0, size = 0;
  for (let i = 0; i < phase1; i++) { sum = f32(sum + input[ri]); size++; ri += stride; }
  for (let i = 0; i < phase2; i++) {
    sum = f32(sum + input[ri]); size++;
    output[oi] = sum / size; ri += stride; oi += stride;
  }
  for (let i = 0; i < phase3; i++) {
    sum = f32(sum + input[ri]); sum = f32(sum - input[li]);
    output[oi] = sum / size; li += stride; ri += stride; oi += stride;
  }
  for (let i = 0; i < phase4; i++) {
    sum = f32(sum - input[li]); size--;
    output[oi] = sum / size; li += stride; oi += stride;
  }
}

// box1d down every column at once, row by row: the same additions in the same order per
// column (so the same float32 results), but memory is read in order instead of one value
// per row, which is what makes a 12 MP picture take a fraction of a second.
function boxColumns(input, output, rows, cols, window) {
  const half = Math.floor((window + 2) / 2);
  const phase1 = half - 1;
  const phase2 = window - half + 1;
  const phase3 = rows - window;
  const phase4 = half - 1;
  const sums = new Float32Array(cols); // float32 storage rounds each sum as the reference does
  let li = 0, ri = 0, oi = 0, size = 0;
  for (let i = 0; i < phase1; i++, ri += cols) {
    for (let j = 0; j < cols; j++) sums[j] += input[ri + j];
    size++;
  }
  for (let i = 0; i < phase2; i++, ri += cols, oi += cols) {
    size++;
    for (let j = 0; j < cols; j++) { sums[j] += input[ri + j]; output[oi + j] = sums[j] / size; }
  }
  for (let i = 0; i < phase3; i++, ri += cols, li += cols, oi += cols) {
    for (let j = 0; j < cols; j++) {
      sums[j] += input[ri + j]; sums[j] -= input[li + j]; output[oi + j] = sums[j] / size;
    }
  }
  for (let i = 0; i < phase4; i++, li += cols, oi += cols) {
    size--;
    for (let j = 0; j < cols; j++) { sums[j] -= input[li + j]; output[oi + j] = sums[j] / size; }
  }
}

function jarosz(buf1, buf2, rows, cols, windowAlongRows, windowAlongCols) {
  for (let pass = 0; pass < JAROSZ_PASSES; pass++) {
    for (let i = 0; i < rows; i++) box1d(buf1, buf2, i * cols, cols, 1, windowAlongRows);
    boxColumns(buf2, buf1, rows, cols, windowAlongCols);
  }
}

function downsample64(lumaBuf, rows, cols) {
  const out = new Float32Array(64 * 64);
  if (rows === 64 && cols === 64) { out.set(lumaBuf); return out; }
  const scratch = new Float32Array(rows * cols);
  jarosz(lumaBuf, scratch, rows, cols, jaroszWindow(cols, 64), jaroszWindow(rows, 64));
  for (let oi = 0; oi < 64; oi++) {
    const ii = Math.floor(((oi + 0.5) * rows) / 64);
    for (let oj = 0; oj < 64; oj++) {
      const ij = Math.floor(((oj + 0.5) * cols) / 64);
      out[oi * 64 + oj] = lumaBuf[ii * cols + ij];
    }
  }
  return out;
}

function quality64(a) {
  let sum = 0;
  for (let i = 0; i < 63; i++) {
    for (let j = 0; j < 64; j++) sum += Math.abs(Math.trunc(f32(f32(a[i * 64 + j] - a[(i + 1) * 64 + j]) * 100) / 255));
  }
  for (let i = 0; i < 64; i++) {
    for (let j = 0; j < 63; j++) sum += Math.abs(Math.trunc(f32(f32(a[i * 64 + j] - a[i * 64 + j + 1]) * 100) / 255));
  }
  return Math.min(100, Math.floor(sum / 90));
}

function dct64to16(a) {
  const t = new Float32Array(16 * 64);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 64; j++) {
      let s = 0;
      for (let k = 0; k < 64; k++) s = f32(s + f32(DCT_64[i * 64 + k] * a[k * 64 + j]));
      t[i * 64 + j] = s;
    }
  }
  const b = new Float32Array(256);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 16; j++) {
      let s = 0;
      for (let k = 0; k < 64; k++) s = f32(s + f32(t[i * 64 + k] * DCT_64[j * 64 + k]));
      b[i * 16 + j] = s;
    }
  }
  return b;
}

function bitsToHex(bits) {
  // Bit k (coefficient k) is bit k of a 256-bit big-endian number: hex starts at bit 255.
  let hex = '';
  for (let nibble = 63; nibble >= 0; nibble--) {
    const k = nibble * 4;
    hex += ((bits[k + 3] << 3) | (bits[k + 2] << 2) | (bits[k + 1] << 1) | bits[k]).toString(16);
  }
  return hex;
}

/**
 * PDQ of RGBA pixels: `{hash, quality}`, `hash` 64 lowercase hex characters (the form hash
 * exchanges use), `quality` 0-100 (below 50 the server neither matches nor indexes it).
 *
 *   const {hash, quality} = pdqHash(imageData.data, imageData.width, imageData.height);
 */
export function pdqHash(rgba, width, height) {
  if (rgba.length < width * height * 4) throw new RangeError('rgba holds fewer than width*height*4 values');
  if (height < MIN_HASHABLE_DIM || width < MIN_HASHABLE_DIM) return { hash: '0'.repeat(64), quality: 0 };
  const small = downsample64(luma(rgba, width, height), height, width);
  const quality = quality64(small);
  const coefficients = dct64to16(small);
  // The reference's median (Torben's) is the lower middle value: the 128th of 256.
  const median = Float32Array.from(coefficients).sort()[127];
  const bits = new Uint8Array(256);
  for (let k = 0; k < 256; k++) bits[k] = coefficients[k] > median ? 1 : 0;
  return { hash: bitsToHex(bits), quality };
}

/** Hamming distance of two equal-length hex hashes. */
export function hamming(a, b) {
  if (a.length !== b.length) throw new RangeError('hashes of different lengths');
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    let x = parseInt(a[i], 16) ^ parseInt(b[i], 16);
    while (x) { d += x & 1; x >>= 1; }
  }
  return d;
}

// --- pHash (imagehash.phash, as the server records it) ----------------------------------

const PRECISION_BITS = 32 - 8 - 2; // Pillow's fixed-point resampling precision for 8-bit images

function lanczos(x) {
  const sinc = (v) => (v === 0 ? 1 : Math.sin(Math.PI * v) / (Math.PI * v));
  return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for one axis.
function resampleCoefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 3 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = lanczos((x + xmin - center + 0.5) / filterScale);
      kk[xx * ksize + x] = w; ww += w;
    }
    for (let x = 0; x < xmax; x++) if (ww !== 0) kk[xx * ksize + x] /= ww;
    bounds[xx * 2] = xmin; bounds[xx * 2 + 1] = xmax;
  }
  const fixed = new Int32Array(kk.length);
  for (let i = 0; i < kk.length; i++) {
    fixed[i] = kk[i] < 0 ? Math.trunc(-0.5 + kk[i] * (1 << PRECISION_BITS)) : Math.trunc(0.5 + kk[i] * (1 << PRECISION_BITS));
  }
  return { ksize, bounds, fixed };
}

function clip8(v) {
  if (v >= 2 ** (PRECISION_BITS + 8)) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / 2 ** PRECISION_BITS);
}

function resampleAxis(src, width, height, outSize, horizontal) {
  const inSize = horizontal ? width : height;
  const { ksize, bounds, fixed } = resampleCoefficients(inSize, outSize);
  const ow = horizontal ? outSize : width, oh = horizontal ? height : outSize;
  const out = new Uint8Array(ow * oh);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const o = horizontal ? x : y;
      const xmin = bounds[o * 2], xmax = bounds[o * 2 + 1];
      let ss = 2 ** (PRECISION_BITS - 1);
      for (let k = 0; k < xmax; k++) {
        const px = horizontal ? src[y * width + xmin + k] : src[(xmin + k) * width + x];
        ss += px * fixed[o * ksize + k];
      }
      out[y * ow + x] = clip8(ss);
    }
  }
  return out;
}

/**
 * imagehash's pHash (64 bits, 16 hex characters) as the server records it: Pillow's "L"
 * conversion, a Lanczos resize to 32x32 in Pillow's fixed-point arithmetic, a 32x32 DCT,
 * the 8x8 low frequencies against their median.
 */
export function pHash(rgba, width, height) {
  let grey = new Uint8Array(width * height);
  for (let p = 0, q = 0; p < grey.length; p++, q += 4) {
    let r = rgba[q], g = rgba[q + 1], b = rgba[q + 2];
    const a = rgba[q + 3];
    if (a !== 255) {
      r = Math.floor((r * a + 255 * (255 - a) + 127) / 255);
      g = Math.floor((g * a + 255 * (255 - a) + 127) / 255);
      b = Math.floor((b * a + 255 * (255 - a) + 127) / 255);
    }
    grey[p] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
  }
  let w = width, h = height;
  if (w !== 32) { grey = resampleAxis(grey, w, h, 32, true); w = 32; }
  if (h !== 32) { grey = resampleAxis(grey, w, h, 32, false); h = 32; }
  const dct = new Float64Array(32 * 32);
  for (let k = 0; k < 32; k++) for (let i = 0; i < 32; i++) dct[k * 32 + i] = 2 * Math.cos((Math.PI * k * (2 * i + 1)) / 64);
  // low = (D @ P @ D.T)[:8, :8]
  const dp = new Float64Array(8 * 32);
  for (let k = 0; k < 8; k++) for (let j = 0; j < 32; j++) {
    let s = 0;
    for (let i = 0; i < 32; i++) s += dct[k * 32 + i] * grey[i * 32 + j];
    dp[k * 32 + j] = s;
  }
  const low = new Float64Array(64);
  for (let k = 0; k < 8; k++) for (let l = 0; l < 8; l++) {
    let s = 0;
    for (let j = 0; j < 32; j++) s += dp[k * 32 + j] * dct[l * 32 + j];
    low[k * 8 + l] = s;
  }
  const sorted = Float64Array.from(low).sort();
  const median = (sorted[31] + sorted[32]) / 2;
  let hex = '';
  for (let n = 0; n < 16; n++) {
    let v = 0;
    for (let b = 0; b < 4; b++) v = (v << 1) | (low[n * 4 + b] > median ? 1 : 0);
    hex += v.toString(16);
  }
  return hex;
}

// --- what the server hashes ---------------------------------------------------------------

// The server hashes at >= 512 px (ingress/ingest.py PDQ_MIN_SIDE): a JPEG is draft-decoded
// at 1/2, 1/4 or 1/8 scale, anything larger still is box-reduced by an integer factor.
const PDQ_MIN_SIDE = 512;

/** Box-reduce RGBA by an integer factor (partial edge blocks averaged over what they hold). */
export function reduce(rgba, width, height, factor) {
  const ow = Math.ceil(width / factor), oh = Math.ceil(height / factor);
  const out = new Uint8ClampedArray(ow * oh * 4);
  const sums = new Float64Array(ow * 4);
  for (let oy = 0; oy < oh; oy++) {
    sums.fill(0);
    const y0 = oy * factor, y1 = Math.min(height, y0 + factor);
    for (let y = y0; y < y1; y++) {
      let q = y * width * 4;
      for (let ox = 0, x = 0; ox < ow; ox++) {
        const o = ox * 4;
        let r = 0, g = 0, b = 0, a = 0;
        for (const end = Math.min(width, x + factor); x < end; x++, q += 4) {
          r += rgba[q]; g += rgba[q + 1]; b += rgba[q + 2]; a += rgba[q + 3];
        }
        sums[o] += r; sums[o + 1] += g; sums[o + 2] += b; sums[o + 3] += a;
      }
    }
    for (let ox = 0; ox < ow; ox++) {
      const n = (y1 - y0) * (Math.min(width, (ox + 1) * factor) - ox * factor);
      for (let c = 0; c < 4; c++) out[(oy * ow + ox) * 4 + c] = Math.round(sums[ox * 4 + c] / n);
    }
  }
  return { rgba: out, width: ow, height: oh };
}

/** The scale the server hashes a picture of this size and type at, as reduction factors. */
export function serverFactors(width, height, type) {
  const factors = [];
  if (type === 'image/jpeg') {
    const most = Math.min(Math.floor(width / PDQ_MIN_SIDE), Math.floor(height / PDQ_MIN_SIDE));
    const draft = [8, 4, 2].find((s) => most >= s);
    if (draft) {
      factors.push(draft);
      width = Math.ceil(width / draft); height = Math.ceil(height / draft);
    }
  }
  const box = Math.floor(Math.min(width, height) / PDQ_MIN_SIDE);
  if (box >= 2) factors.push(box);
  return factors;
}

/**
 * The fingerprints the upload API screens with, computed like the server computes them:
 * the pixels reduced as the server reduces a picture of this type and size, then PDQ and
 * pHash. `{pdq, pdq_quality, phash}`.
 */
export function fingerprint(rgba, width, height, type = 'image/jpeg') {
  let img = { rgba, width, height };
  for (const factor of serverFactors(width, height, type)) img = reduce(img.rgba, img.width, img.height, factor);
  const { hash, quality } = pdqHash(img.rgba, img.width, img.height);
  return { pdq: hash, pdq_quality: quality, phash: pHash(img.rgba, img.width, img.height) };
}
