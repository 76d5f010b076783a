"""Face-manipulation cues: does the face in a box carry the same fine detail as the photo around it?

A face swap pastes a face that was made somewhere else: rendered by a generator at 128-256 px
or taken from another photo, resized to the target face, colour-matched and blended in. The
resize is a low-pass filter, and the paste does not bring the target camera's sensor noise and
demosaicing with it, so the swapped face is missing the finest scale of detail that the rest
of the picture has. Two cues measure that, comparing the inner face (inside an ellipse at 0.7
of the box's half-axes, where a swap mask always reaches) with a ring around the box
(1.2-1.7 half-axes, outside any swap mask, close enough to share the lighting and focus):

- ``noise_mismatch``: ``log(R_ring / R_face)``, where ``R`` is the mean absolute Immerkaer
  noise residual at full resolution over the same at half resolution: the share of the
  picture's high-pass energy that sits in the finest octave. Noise and sensor grain live
  there; a resampled face has little. Positive: the face is smoother at the finest scale than
  its surroundings. Ratios of two octaves, not noise levels, because a face is flatter than
  hair or a background: in a first trial, levels (percentiles of block noise) gave AUC 0.60-0.76
  where this ratio gave 0.90; a noise dip along the blend seam gave 0.41 (worse than chance).
- ``colour_mismatch``: the mean correlation between the R, G and B fine residuals in the
  ring minus that in the face. A camera's demosaiced grain is shared by the three channels;
  where it is missing, the decorrelated chroma quantisation of the final JPEG is what is
  left. Positive: the face's channels agree less than the surroundings'. 0 for grey pictures.
- ``score``: each measured cue mapped to [0, 1] by a logistic curve centred between the
  median real face and the median swap of ``bench/facecues.py`` (see ``_LOGISTIC``), then
  averaged; a grey picture has only ``noise_mismatch``. The centres were set on the same
  data the AUCs below come from (two numbers per cue; there is no held-out set).

Measured (``python -m bench.facecues``; scikit-image photos, swaps made by
``bench/swaps.py``): 1,584 swaps against their 54 unswapped sources, AUC ``noise_mismatch``
0.86, ``colour_mismatch`` 0.88, ``score`` 0.96 (a swap scores above its own source 99 % of
the time); against 432 face-sized boxes across eight unswapped photos 0.83, 0.83, 0.91. One
step after the swap changes that: JPEG q40 0.88, Gaussian noise sigma 3 0.96, a 1 px blur
0.70 (``noise_mismatch`` alone 0.33: the blur takes the finest octave from the ring too).
It is a one-sided, moderate cue: a swap that keeps full resolution (a donor at least as
sharp as the target), a target that is itself soft, global noise or heavy re-compression on
top, and a real face smoothed by a beauty filter all defeat it or fire it falsely. It feeds
review, never removal.

Works on the picture as decoded at full resolution: a downscale before it (``draft`` decode,
model input size) erases the finest octave it measures. numpy and Pillow only; ~2 ms per
110 px face and ~15 ms per 270 x 310 px face at one thread.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

# Inner face and surrounding ring, in units of the box's half-axes (see the module docstring).
_FACE = 0.7
_RING = (1.2, 1.7)
# Fewer pixels than this in the face or the ring (a tiny face, a box off the picture's edge):
# no evidence, the cues are 0.
_MIN_PIXELS = 64
# Added to the mean residuals (grey levels) so flat, noiseless areas give a ratio of 1, not 0/0.
_EPS = 0.5
# (centre, width) of the logistic per cue: the centre lies between the median control and the
# median swap of bench/facecues.py, the width is a quarter of their distance.
_LOGISTIC = {"noise_mismatch": (0.19, 0.08), "colour_mismatch": (0.07, 0.035)}


def _residual(y: np.ndarray, step: int = 1) -> np.ndarray:
    """Immerkaer's noise operator (a 3x3 second difference) on every ``step``-th row: zero on
    flat areas and linear ramps, so most of what it leaves is noise and the finest detail.
    Row ``i`` of the result is centred on row ``1 + i * step`` of ``y``. The kernel is the outer
    product of [1, -2, 1] with itself, so it runs as two 1-D passes."""
    n = y.shape[0] - 2
    d = y[0:n:step] - 2 * y[1:n + 1:step] + y[2:n + 2:step]
    return np.abs(d[:, :-2] - 2 * d[:, 1:-1] + d[:, 2:])


def _rho(shape: tuple[int, int], cx: float, cy: float, ax: float, ay: float, step: int = 1) -> np.ndarray:
    """Elliptical radius of every pixel centre, 1 on the ellipse inscribed in the box; rows
    ``step`` apart, as ``_residual`` gives them."""
    yy = ((np.arange(shape[0], dtype=np.float32) * step + 0.5 - cy) / ay) ** 2
    xx = ((np.arange(shape[1], dtype=np.float32) + 0.5 - cx) / ax) ** 2
    return np.sqrt(yy[:, None] + xx[None, :])


def _halve(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    return a[:h, :w].reshape(h // 2, 2, w // 2, 2, *a.shape[2:]).mean(axis=(1, 3))


def _fine_share(lum: np.ndarray, cx: float, cy: float, ax: float, ay: float) -> tuple[float, float] | None:
    """R (finest-octave share of residual energy) in the face and in the ring."""
    # Every other row at full resolution: the means converge long before, at half the cost.
    fine = _residual(lum, 2)
    rho = _rho(fine.shape, cx - 1, cy - 1, ax, ay, 2)  # the residual is one pixel in from each edge
    half = _halve(lum)
    coarse = _residual(half)
    rho2 = _rho(coarse.shape, (cx - 2) / 2, (cy - 2) / 2, ax / 2, ay / 2)
    out = []
    for r, f in ((rho, fine), (rho2, coarse)):
        face, ring = f[r < _FACE], f[(r > _RING[0]) & (r < _RING[1])]
        if face.size * 2 < _MIN_PIXELS or ring.size * 2 < _MIN_PIXELS:
            return None
        out.append((face.mean() + _EPS, ring.mean() + _EPS))
    (f_face, f_ring), (c_face, c_ring) = out
    return f_face / c_face, f_ring / c_ring


def _channel_agreement(res: list[np.ndarray], mask: np.ndarray) -> float | None:
    a = np.stack([r[mask] for r in res]).astype(np.float64)
    if a.shape[1] * 3 < _MIN_PIXELS:
        return None
    a -= a.mean(axis=1, keepdims=True)
    sd = np.sqrt((a * a).mean(axis=1))
    if sd.min() < 1e-3:
        return None
    c = (a @ a.T) / a.shape[1] / np.outer(sd, sd)
    return float((c[0, 1] + c[0, 2] + c[1, 2]) / 3)


def _logistic(name: str, value: float) -> float:
    centre, width = _LOGISTIC[name]
    return 1.0 / (1.0 + math.exp(-(value - centre) / width))


def face_cues(rgb: Image.Image, box: tuple[float, float, float, float]) -> dict[str, float]:
    """Manipulation cues for one face box ``(x, y, w, h)`` in pixels of ``rgb``.

    Returns ``{"noise_mismatch", "colour_mismatch", "score"}``: the first two are log-ratio
    and correlation differences (0 when the face matches its surroundings or when there is
    too little picture to tell: a tiny face, a box at the edge); ``score`` is in [0, 1], 0.5
    meaning "half-way between a typical real face and a typical swap". Always finite.

    >>> face_cues(Image.new("RGB", (64, 64), "grey"), (16, 16, 32, 32))["noise_mismatch"]
    0.0
    """
    img_w, img_h = rgb.size
    x, y, w, h = (float(v) for v in box)
    w, h = max(w, 1.0), max(h, 1.0)
    ax, ay = w / 2, h / 2
    reach_x, reach_y = ax * _RING[1] + 2, ay * _RING[1] + 2
    cx, cy = x + ax, y + ay
    # Crop from an even pixel so the half-resolution grid matches the picture's own.
    x0 = max(0, int(cx - reach_x)) // 2 * 2
    y0 = max(0, int(cy - reach_y)) // 2 * 2
    x1, y1 = min(img_w, math.ceil(cx + reach_x)), min(img_h, math.ceil(cy + reach_y))
    cues = {"noise_mismatch": 0.0, "colour_mismatch": 0.0}
    measured: list[str] = []
    if x1 - x0 < 8 or y1 - y0 < 8:
        return {**cues, "score": _score(cues, measured)}
    arr = np.asarray(rgb.crop((x0, y0, x1, y1)).convert("RGB"), dtype=np.float32)
    cx, cy = cx - x0, cy - y0
    lum = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114

    shares = _fine_share(lum, cx, cy, ax, ay)
    if shares is not None:
        cues["noise_mismatch"] = math.log(shares[1] / shares[0])
        measured.append("noise_mismatch")

    sub = arr[::3]
    if np.abs(sub[..., 0] - sub[..., 1]).max() > 2 or np.abs(sub[..., 2] - sub[..., 1]).max() > 2:
        # Every third row: a correlation over tens of thousands of pixels needs no more.
        res = [_residual(arr[..., c], 3) for c in range(3)]
        rho = _rho(res[0].shape, cx - 1, cy - 1, ax, ay, 3)
        face = _channel_agreement(res, rho < _FACE)
        ring = _channel_agreement(res, (rho > _RING[0]) & (rho < _RING[1]))
        if face is not None and ring is not None:
            cues["colour_mismatch"] = ring - face
            measured.append("colour_mismatch")
    return {**cues, "score": _score(cues, measured)}


def _score(cues: dict[str, float], measured: list[str]) -> float:
    """The mean of the measured cues' logistics; with none measured, the score of a cue at 0."""
    names = measured or ["noise_mismatch"]
    return sum(_logistic(k, cues[k]) for k in names) / len(names)
