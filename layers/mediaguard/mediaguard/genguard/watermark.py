"""The platform's own invisible watermark: a dwtDct embedder that the forensics decoder reads.

The pipeline already decodes invisible-watermark 0.2.0's ``dwtDct`` mark
(:func:`mediaguard.ingress.forensics.watermark_block_bits`): in the haar DWT
approximation of the U channel, every 4x4 block carries one bit in its largest
non-DC coefficient, ``|c| mod 36 > 18``, and bit k of an n-bit payload is the
majority vote of blocks k, k+n, ... :func:`embed` writes that mark in numpy,
vectorised, and checks it with the very decoder the pipeline runs.

The payload (:data:`PAYLOAD_BITS` = 64) is ours, not Stable Diffusion's:

====== ====== ===============================================================
bits   what   why
====== ====== ===============================================================
0-7    tag    :data:`PLATFORM_TAG`: a mediaguard mark (the same in every deployment)
8-47   digest 40 bits of a BLAKE2b digest of the generation id, keyed with the
              stack's secret (:func:`generation_digest`); the bank's
              own-generations entry is found by it, see ``mark.bank_ref``
48-63  check  CRC-16/CCITT over the first 6 bytes: a random 64-bit read
              passes tag and check about once in 2^24
====== ====== ===============================================================

What it survives is measured, not assumed (``bench/watermark.py``, README): JPEG
re-saves mostly (payload back from 12/14 photos at q90, 11/14 at q75 and q50); a
resize or a crop moves the 4x4 block grid and the mark is gone (0/14), which is why
``verify`` rests on the own-generations bank (PDQ).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from mediaguard.ingress.forensics import (
    _DWT_DCT_SCALE,
    _HAAR,
    WATERMARK_MIN_PIXELS,
    _u_channel,
    decode_watermark,
    watermark_block_bits,
)

PAYLOAD_BITS = 64
PLATFORM_TAG = 0x6D  # "m"
DIGEST_BYTES = 5
# Fixed-point BGR->YUV of OpenCV (what the decoder reproduces): U = (B - Y) * 8061 / 2^14.
_U_PER_B = 8061 / 16384
_Y_B, _Y_G = 1868 / 16384, 9617 / 16384
# Embedding passes: rounding to uint8 and clipping at 0/255 leave a few blocks off their
# value; a second pass from the marked image puts them back.
_PASSES = 2


class WatermarkError(ValueError):
    """The image cannot carry the mark (too small for the decoder to read)."""

    reason = "watermark_unsupported"


def generation_digest(generation_id: str, key: bytes) -> bytes:
    """The 40-bit digest of a generation id that the mark carries (5 bytes), keyed.

    ``key`` is the stack's own (``SigningMaterial.watermark_key``): tag and CRC are the same
    in every deployment, so an unkeyed digest would let anyone write a valid mark for any
    generation id, and another deployment's outputs would carry digests ours can compute.
    Keyed, a mark only points at one of our generations if our key made it, and ``verify``
    counts it only when the digest is an own-generations entry this stack banked.
    """
    if len(key) < 16:
        raise ValueError("the watermark key is too short")
    return hashlib.blake2b(generation_id.encode(), digest_size=DIGEST_BYTES, key=key[:64],
                           person=b"mg.genguard").digest()


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): ``crc16(b"123456789") == 0x29B1``."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def payload_for(generation_id: str, key: bytes) -> np.ndarray:
    """The 64 payload bits (bool) that mark an output of ``generation_id`` (digest keyed with ``key``)."""
    head = bytes([PLATFORM_TAG]) + generation_digest(generation_id, key)
    body = head + crc16(head).to_bytes(2, "big")
    return np.unpackbits(np.frombuffer(body, dtype=np.uint8)).astype(bool)


@dataclass(frozen=True)
class Reading:
    """What :func:`read` found: the decoded digest (hex) when tag and check both hold."""

    digest: str | None
    bits: np.ndarray

    @property
    def found(self) -> bool:
        return self.digest is not None

    def bit_accuracy(self, expected: np.ndarray) -> float:
        return float(np.mean(self.bits == expected))


def read(rgb: np.ndarray) -> Reading:
    """Decode the 64-bit payload at native size with the pipeline's decoder; check tag and CRC."""
    if rgb.shape[0] * rgb.shape[1] < WATERMARK_MIN_PIXELS:
        return Reading(None, np.zeros(PAYLOAD_BITS, dtype=bool))
    bits = decode_watermark(watermark_block_bits(rgb), PAYLOAD_BITS)
    body = np.packbits(bits).tobytes()
    ok = body[0] == PLATFORM_TAG and crc16(body[:6]) == int.from_bytes(body[6:8], "big")
    return Reading(body[1:6].hex() if ok else None, bits)


def embed(rgb: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """``rgb`` (H x W x 3 uint8) with ``bits`` written in dwtDct blocks; Y and V are kept.

    Every 4x4 block of U's haar approximation is shifted so that its largest value
    reads as its bit (see :func:`_u_delta`); a change ``d`` of an approximation
    value is ``d/2`` on each of its 2x2 pixels of U, and U is carried by blue (Y and V
    held: red stays, green pays back blue's share of luma). Raises
    :class:`WatermarkError` under 256x256 pixels, the decoder's floor.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise WatermarkError("an RGB uint8 image is needed")
    h, w = rgb.shape[:2]
    if h * w < WATERMARK_MIN_PIXELS:
        raise WatermarkError("the image is under 256x256 pixels: too small to carry the mark")
    out = rgb.copy()
    for _ in range(_PASSES):
        du = _u_delta(out, bits)
        f = out.astype(np.float64)
        # Hold R and Y (so V holds too): dU = k dB, and green pays back blue's share of luma.
        db = du / _U_PER_B
        f[..., 2] += db
        f[..., 1] -= db * _Y_B / _Y_G
        out = np.clip(np.rint(f), 0, 255).astype(np.uint8)
    return out


def _u_delta(rgb: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Per-pixel change of U that shifts every 4x4 approximation block so its largest value reads as its bit.

    The decoder reads the *largest* of 15 approximation values of U, which in a photo
    lie within a few units of each other and trade places under any re-encoding.
    invisible-watermark's own rule (move only that one value, a spike) therefore lost
    the mark at JPEG q90 with 4:2:0 chroma (measured: 44-80 % of bits on 5 photos):
    chroma subsampling smooths the spike away and another value becomes the largest.
    Shifting the whole block by one amount puts its largest value on the bit's grid,
    ``(n + 0.25 + 0.5 bit) * 36``, and keeps every other value where it was relative
    to it: whichever candidate a re-encoding promotes was close to the largest, so it
    reads the same bit. Measured on the 14 photos of bench/watermark.py against
    flattening the block to one value: same or better survival (JPEG q75 11/14 vs
    9/14 payloads) at PSNR 30.5 vs 29.5 dB. The shift is at most half a grid step
    (18 approximation units = 9 levels of U) and shows as faint blockwise colour shifts.
    """
    h, w = rgb.shape[:2]
    hh, ww = h // 4 * 4, w // 4 * 4
    u = _u_channel(rgb[:hh, :ww]).astype(np.float64)
    rows = u[0::2] * _HAAR + u[1::2] * _HAAR
    approx = rows[:, 0::2] * _HAAR + rows[:, 1::2] * _HAAR
    br, bc = approx.shape[0] // 4, approx.shape[1] // 4
    blocks = _blocks(approx, br, bc)
    want = bits[np.arange(br * bc) % len(bits)].astype(np.float64)
    scale = _DWT_DCT_SCALE
    offset = (0.25 + 0.5 * want) * scale
    peak = blocks[:, 1:].max(axis=1)  # approximation values of U are positive: max = largest |c|
    steps = (peak - offset) / scale
    below, above = np.floor(steps) * scale + offset, np.ceil(steps) * scale + offset
    # Blue cannot go under 0 or over 255: where the nearer grid value needs that (black or
    # saturated areas), the other one is taken. Judged on the block's darkest and brightest blue.
    blue = rgb[: br * 8, : bc * 8, 2]
    lo = blue.reshape(br, 8, bc, 8).min(axis=(1, 3)).reshape(-1).astype(np.float64)
    hi = blue.reshape(br, 8, bc, 8).max(axis=(1, 3)).reshape(-1).astype(np.float64)

    def feasible(target: np.ndarray) -> np.ndarray:
        db = (target - peak) / 2.0 / _U_PER_B
        return (lo + db >= 0) & (hi + db <= 255)

    nearer_below = steps - np.floor(steps) < 0.5
    target = np.where(nearer_below, np.where(feasible(below) | ~feasible(above), below, above),
                      np.where(feasible(above) | ~feasible(below), above, below))
    # approx = (a + b + c + d) / 2 over a 2x2 pixel cell: a shift d of the block is d / 2
    # on each of its 8x8 pixels.
    shift = ((target - peak) / 2.0).reshape(br, bc)
    du = np.zeros((h, w))
    du[: br * 8, : bc * 8] = np.repeat(np.repeat(shift, 8, axis=0), 8, axis=1)
    return du


def _blocks(plane: np.ndarray, br: int, bc: int) -> np.ndarray:
    """The 4x4 blocks of ``plane`` as rows of 16, in the decoder's order."""
    return plane[: br * 4, : bc * 4].reshape(br, 4, bc, 4).transpose(0, 2, 1, 3).reshape(br * bc, 16)
