"""Detect: faces (CenterFace) and AI-image probabilities (CLIP + probe) on one batch of frames."""

from __future__ import annotations

import time

import numpy as np
from aws_lambda_powertools import Logger

from mediaguard.analysis.facecues import face_cues
from mediaguard.analysis.faces import MAX_SIDE, face_detector
from mediaguard.analysis.synthetic import (
    AI_LABEL,
    AIGEN_FACE_ID,
    AIGEN_ID,
    CLIP_MODEL_ID,
    PROBE_MODEL_ID,
    synthetic_detector,
)
from mediaguard.ingress.media import load_rgb, open_image
from mediaguard.models import DetectInput, DetectResult, FrameDetection, ModelRef
from mediaguard.ports import Deps
from mediaguard.stages import embeddings as carried
from mediaguard.stages.common import clip_embeddings_key, require

logger = Logger(service="mediaguard", child=True)


# The face-manipulation cue (analysis/facecues.py) scored like a model: the max over the
# frame's faces, a signal ``classifier.facecues.swap`` that the policy weights.
FACECUES_KEY = "facecues.swap"
# Faces scored per frame, largest first (as the AI probe caps its face crops).
MAX_CUE_FACES = 4


def _swap_cue(data: bytes, max_pixels: int, boxes: list[list[float]]) -> float:
    """The cue needs the frame at full resolution (a draft decode erases the finest octave
    it measures), so it decodes again, only for frames with faces."""
    full = load_rgb(open_image(data, max_pixels))
    largest = sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)[:MAX_CUE_FACES]
    return max(face_cues(full, (x, y, w, h))["score"] for x, y, w, h, _ in largest)


def detect(request: DetectInput, deps: Deps) -> DetectResult:
    """Every frame of the batch, one at a time (the INT8 CLIP tower is batch-sensitive).
    Boxes are in pixels of the frame as stored; the CLIP embeddings go to the media bucket
    as one .npy per batch, beside open_nsfw's."""
    t0 = time.perf_counter()
    settings, blobs = deps.settings, deps.need("blobs")
    bucket = require(settings.media_bucket, "MEDIA_BUCKET")
    faces_model = face_detector(settings.onnx_threads)
    synthetic = synthetic_detector(settings.onnx_threads)
    frames, embeddings = [], []
    for key in request.batch.keys:
        data = blobs.get(bucket, key)[0]
        img = open_image(data, settings.max_pixels)
        width, height = img.size  # before the draft decode shrinks it
        # Draft-decode to >= MAX_SIDE: the face detector's input; CLIP needs only 224.
        rgb = load_rgb(img, min_side=MAX_SIDE)
        faces = faces_model.detect(rgb)
        scored = synthetic.score(rgb, faces)
        sx, sy = width / rgb.width, height / rgb.height
        boxes = [[round(f.x * sx, 1), round(f.y * sy, 1), round(f.w * sx, 1), round(f.h * sy, 1), round(f.score, 4)]
                 for f in faces]
        scores = {f"{AIGEN_ID}.{AI_LABEL}": round(scored.ai, 6)}
        if scored.ai_face is not None:
            scores[f"{AIGEN_FACE_ID}.{AI_LABEL}"] = round(scored.ai_face, 6)
        if faces:
            scores[FACECUES_KEY] = round(_swap_cue(data, settings.max_pixels, boxes), 6)
        frames.append(FrameDetection(key=key, scores=scores, faces=boxes))
        embeddings.append(scored.embedding)
    stored_key = inline = None
    if embeddings:
        stored_key, inline = carried.store(np.stack(embeddings), request.batch.inline, blobs, bucket,
                                           clip_embeddings_key(request.media_id, request.batch.batch))
    result = DetectResult(
        batch=request.batch.batch, frames=frames, embeddings_key=stored_key, embeddings=inline,
        face_model=faces_model.model_id,
        models=[ModelRef(id=faces_model.model_id, sha256=faces_model.sha256),
                ModelRef(id=CLIP_MODEL_ID, sha256=synthetic.sha256),
                ModelRef(id=PROBE_MODEL_ID, sha256=synthetic.probe_sha256)],
    )
    logger.info("detected", extra={"media_id": request.media_id, "batch": request.batch.batch, "frames": len(frames),
                                   "faces": [len(f.faces) for f in frames],
                                   "ai": max((f.scores[f"{AIGEN_ID}.{AI_LABEL}"] for f in frames), default=None),
                                   "ms": round((time.perf_counter() - t0) * 1000, 1)})
    return result
