"""Index build (scheduled): rebuild the bank index from every active entry and publish it."""

from __future__ import annotations

import time

from aws_lambda_powertools import Logger

from mediaguard import observability
from mediaguard.analysis.matching import BuiltIndex, publish
from mediaguard.ports import Deps
from mediaguard.stages.common import require

logger = Logger(service="mediaguard", child=True)


def build_index(deps: Deps) -> dict:
    """The build is stamped with the time *before* the entries are read, so anything that
    changes while they are read is still picked up by the similarity stage's delta."""
    t0 = time.perf_counter()
    built_at = time.time()
    build = BuiltIndex.build(deps.need("bank_reader").active_entries(), built_at)
    blobs = deps.need("blobs")
    bucket = require(deps.settings.media_bucket, "MEDIA_BUCKET")
    manifest = publish(build, lambda key, data: blobs.put(bucket, key, data, "application/octet-stream"))
    logger.info("index published", extra={"built_at": built_at, "pdq": manifest["pdq_entries"],
                                          "embeddings": manifest["embedding_entries"], "clip": manifest["clip_entries"],
                                          "ms": round((time.perf_counter() - t0) * 1000, 1)})
    observability.count("IndexBuilds")
    return {k: manifest[k] for k in ("built_at", "pdq_entries", "embedding_entries", "clip_entries")}
