"""Classify: score one batch of frames with every configured model in one forward pass each."""

from __future__ import annotations

import time

import numpy as np
from aws_lambda_powertools import Logger

from mediaguard.analysis.classify import get_classifiers
from mediaguard.ingress.media import load_rgb, open_image
from mediaguard.models import ClassifyInput, ClassifyResult, FrameScores, ModelRef
from mediaguard.ports import Deps
from mediaguard.stages import embeddings as carried
from mediaguard.stages.common import embeddings_key, require

logger = Logger(service="mediaguard", child=True)


def classify(request: ClassifyInput, deps: Deps) -> ClassifyResult:
    """The embeddings (open_nsfw's pooled layer, free with the same pass) go to the media
    bucket as one .npy per batch for the similarity stage (a still's in the payload)."""
    t0 = time.perf_counter()
    settings, blobs = deps.settings, deps.need("blobs")
    bucket = require(settings.media_bucket, "MEDIA_BUCKET")
    # Draft-decode to >= 256 px: every model resizes to 224-256 px anyway.
    images = [load_rgb(open_image(blobs.get(bucket, key)[0], settings.max_pixels), min_side=256)
              for key in request.batch.keys]
    scores: list[dict[str, float]] = [{} for _ in images]
    embeddings = None
    models = []
    for classifier in get_classifiers(settings):
        outputs = classifier.classify_batch(images)
        for frame_scores, output in zip(scores, outputs, strict=True):
            frame_scores.update({name: round(float(v), 6) for name, v in output.scores.items()})
        if embeddings is None and outputs and outputs[0].embedding is not None:
            embeddings = np.stack([o.embedding for o in outputs]).astype(np.float32)
        models.append(ModelRef(id=classifier.model_id, sha256=classifier.sha256))
    stored_key = inline = None
    if embeddings is not None:
        stored_key, inline = carried.store(embeddings, request.batch.inline, blobs, bucket,
                                           embeddings_key(request.media_id, request.batch.batch))
    result = ClassifyResult(
        batch=request.batch.batch,
        frames=[FrameScores(key=k, scores=sc) for k, sc in zip(request.batch.keys, scores, strict=True)],
        models=models,
        embeddings_key=stored_key,
        embeddings=inline,
    )
    logger.info("classified", extra={"media_id": request.media_id, "batch": request.batch.batch,
                                     "frames": len(images), "max": result.max_scores(),
                                     "ms": round((time.perf_counter() - t0) * 1000, 1)})
    return result
