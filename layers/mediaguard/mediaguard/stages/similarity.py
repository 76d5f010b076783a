"""Similarity: match every frame and embedding (open_nsfw's and CLIP's) against the banks
(newest index build + delta)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from aws_lambda_powertools import Logger

from mediaguard import observability
from mediaguard.analysis.matching import DELTA_SECONDS, MANIFEST_KEY, Matcher, Query, fetch
from mediaguard.models import SimilarityInput, SimilarityResult
from mediaguard.ports import Deps
from mediaguard.stages import embeddings as carried
from mediaguard.stages.common import require

logger = Logger(service="mediaguard", child=True)


def similarity(request: SimilarityInput, deps: Deps) -> SimilarityResult:
    """PDQ and, for stills, its eight rotations/mirrors; vPDQ for videos; open_nsfw's
    embeddings (classify) and CLIP's (detect); the first audio track's Chromaprint
    fingerprint (videos and audio-only uploads)."""
    t0 = time.perf_counter()
    settings, blobs = deps.settings, deps.need("blobs")
    matcher = get_matcher(deps)

    def load(batches) -> np.ndarray | None:
        arrays = []
        for batch in sorted(batches, key=lambda b: b.batch):
            if batch.embeddings or batch.embeddings_key:
                arrays.append(carried.load(batch, blobs, require(settings.media_bucket, "MEDIA_BUCKET")))
        return np.concatenate(arrays) if arrays else None

    frames = request.frames
    query = Query(
        frames=[(f.pdq, f.pdq_quality) for f in frames.frames],
        dihedral=request.fingerprints.pdq_dihedral if request.fingerprints and frames.media_type == "image" else [],
        embeddings=load(request.classify),
        is_video=frames.media_type != "image",
        audio=frames.audio.fingerprint if frames.audio else None,
        clip=load(request.detect),
    )
    matches = matcher.match(query)
    result = SimilarityResult(matches=matches, banks_checked=matcher.banks_checked)
    # The item gets the matches from the score stage, with the score: one write, not two.
    for m in matches:
        observability.count("BankMatches", bank_kind=m.kind, signal=m.signal)
    if matcher.build.built_at:  # no build published yet: there is no age to report
        # The age of the build this container matches with: a container that failed to
        # load a newer one shows here, as does a schedule that stopped building.
        observability.gauge("IndexAge", round(deps.clock() - matcher.build.built_at), "Seconds")
    logger.info("matched", extra={"media_id": request.media_id, "matches": len(matches),
                                  "signals": sorted({m.signal for m in matches}), "delta": matcher.delta_size,
                                  "ms": round((time.perf_counter() - t0) * 1000, 1)})
    return result


def get_matcher(deps: Deps) -> Matcher:
    """One matcher per process (kept in ``deps.matching``), switched to a newer index build
    when the manifest changes; the delta refreshes itself inside ``match``.

    Also what the upload API's pre-upload screening matches with."""
    slot = deps.matching

    def clock() -> float:
        return deps.clock()

    if slot.matcher is None:
        slot.matcher = Matcher(deps.need("bank_reader"), clock=clock, default_cosine=deps.settings.embedding_min_cosine)
    matcher = slot.matcher
    now = clock()
    if now - slot.checked >= DELTA_SECONDS:
        slot.checked = now
        blobs = deps.need("blobs")
        bucket = require(deps.settings.media_bucket, "MEDIA_BUCKET")
        manifest = blobs.get_json(bucket, MANIFEST_KEY)
        if manifest and float(manifest["built_at"]) != matcher.build.built_at:
            root = Path(tempfile.gettempdir()) / "mediaguard-index"
            matcher.use_build(fetch(manifest, lambda key, path: blobs.download(bucket, key, path), root))
            logger.info("index loaded", extra={"built_at": manifest["built_at"], "pdq": manifest["pdq_entries"],
                                               "embeddings": manifest["embedding_entries"],
                                               "clip": manifest.get("clip_entries", 0)})
    return matcher
