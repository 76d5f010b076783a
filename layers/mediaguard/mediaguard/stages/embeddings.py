"""A batch's embeddings between the stages that make them (classify, detect) and the one
that matches them (similarity): in the state payload for a still, in the media bucket otherwise.

A still is one batch of one frame: open_nsfw's 1024 and CLIP's 512 float32 are ~4.2 and
~2.2 KB as .npy (~8.5 KB as base64 together), far inside Step Functions' 256 KB, and
carrying them saves two S3 PUTs and two GETs per still ($0.0108 per 1,000 at list
prices, ``bench/cost.py``). A video's batches go to the bucket: their number grows
with the video, their sum would not stay small. The bytes are the same .npy either way
(float32, no rounding), so matching sees exactly the same vectors.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # numpy is imported by the stages that use this; none pays for it here
    import numpy as np

    from mediaguard.ports import BlobStore


class _Carried(Protocol):
    embeddings_key: str | None
    embeddings: str | None


def store(array: np.ndarray, inline: bool, blobs: BlobStore, bucket: str, key: str) -> tuple[str | None, str | None]:
    """``(embeddings_key, embeddings)``: where the batch's .npy went, one of them None."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array.astype(np.float32), allow_pickle=False)
    if inline:
        return None, base64.b64encode(buf.getvalue()).decode("ascii")
    blobs.put(bucket, key, buf.getvalue(), "application/octet-stream")
    return key, None


def load(batch: _Carried, blobs: BlobStore, bucket: str) -> np.ndarray | None:
    """The batch's embeddings, from the payload or the bucket; None if it has none."""
    import numpy as np

    if batch.embeddings:
        data = base64.b64decode(batch.embeddings)
    elif batch.embeddings_key:
        data = blobs.get(bucket, batch.embeddings_key)[0]
    else:
        return None
    return np.load(io.BytesIO(data), allow_pickle=False)
