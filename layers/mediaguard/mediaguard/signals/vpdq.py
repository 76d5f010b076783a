"""vPDQ: a video as the PDQs of its frames, matched by the share of frames in common."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mediaguard.signals.base import Comparison, SignalType
from mediaguard.signals.pdq import PdqSignal

# numpy (and Pillow) load on the first hash, not on import: models imports this registry,
# and the stages that only move records (start, score, failure) must not pay for them.
if TYPE_CHECKING:
    import numpy as np

Frames = Sequence[tuple[str, int]]  # (PDQ hex, quality) per frame


class VpdqSignal(SignalType):
    """Meta's vPDQ. A frame matches when some frame of the other video is within PDQ's
    distance (:attr:`PdqSignal.match_threshold`); frames of quality below
    :attr:`PdqSignal.min_quality` are ignored and identical hashes counted once, as in
    ThreatExchange's vpdq. Two videos match when at least :attr:`match_threshold` of the
    query's frames match the reference and at least as much of the reference's frames
    match the query (Meta suggests ~80 % both ways).

    String form: ThreatExchange's, a JSON list of ``{"frame_number", "hash", "quality",
    "timestamp"}``; canonical with sorted keys and no spaces. Banks hold a video as one
    PDQ row per frame sharing a group, so the matcher searches it with the PDQ index.
    """

    name = "vpdq"
    content_types = ("video",)
    match_threshold = 0.8
    index = PdqSignal.index
    examples = (
        '[{"frame_number":0,"hash":"f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",'
        '"quality":100,"timestamp":0.0},{"frame_number":1,"hash":'
        '"2d6b1af3a956c529e79ca3d2526fa834d4196c81cedd04de0a26b855fc99b724","quality":90,"timestamp":1.5}]',
        '[{"frame_number":0,"hash":"8b4ae5f1a94106a0956a26afbccdafe562f90a945f5693c642276ad5ab2da739",'
        '"quality":80,"timestamp":0.0}]',
    )

    @classmethod
    def parse(cls, value: str) -> list[dict]:
        """The frames of a string form, validated; raises ``ValueError``."""
        try:
            frames = json.loads(value)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError("a vpdq value is a JSON list of frames") from exc
        if not isinstance(frames, list) or not frames:
            raise ValueError("a vpdq value is a non-empty JSON list of frames")
        out = []
        for i, frame in enumerate(frames):
            if not isinstance(frame, dict) or not isinstance(frame.get("hash"), str):
                raise ValueError("each vpdq frame has a PDQ hash")
            quality, number, t = frame.get("quality"), frame.get("frame_number", i), frame.get("timestamp", 0.0)
            if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 100:
                raise ValueError("each vpdq frame has a quality from 0 to 100")
            if isinstance(number, bool) or not isinstance(number, int) or number < 0 \
                    or isinstance(t, bool) or not isinstance(t, int | float):
                raise ValueError("vpdq frame numbers are integers and timestamps numbers")
            out.append({"frame_number": number, "hash": PdqSignal.validate(frame["hash"]), "quality": quality,
                        "timestamp": float(t)})
        return out

    @classmethod
    def format(cls, frames: Frames, timestamps: Sequence[float] | None = None) -> str:
        """The string form of (PDQ, quality) frames."""
        return json.dumps([{"frame_number": i, "hash": PdqSignal.validate(h), "quality": int(q),
                            "timestamp": float(timestamps[i]) if timestamps else 0.0}
                           for i, (h, q) in enumerate(frames)], sort_keys=True, separators=(",", ":"))

    @classmethod
    def validate(cls, value: str) -> str:
        return json.dumps(cls.parse(value), sort_keys=True, separators=(",", ":"))

    @classmethod
    def shares(cls, query: Frames, reference: Frames, distance: int = PdqSignal.match_threshold,
               min_quality: int = PdqSignal.min_quality) -> tuple[float, float]:
        """(share of query frames with a match in the reference, share of reference frames
        with a match in the query). No usable frame on either side gives (0.0, 0.0).

        >>> VpdqSignal.shares([("f" * 64, 100)], [("f" * 63 + "e", 90)])
        (1.0, 1.0)
        """
        import numpy as np
        q = sorted({h.lower() for h, quality in query if quality >= min_quality})
        r = sorted({h.lower() for h, quality in reference if quality >= min_quality})
        if not q or not r:
            return 0.0, 0.0
        qa, ra = _hash_matrix(q), _hash_matrix(r)
        bits = np.bitwise_count(qa[:, None, :] ^ ra[None, :, :]).sum(axis=2)
        close = bits <= distance
        return float(close.any(axis=1).mean()), float(close.any(axis=0).mean())

    @classmethod
    def shares_match(cls, query_share: float, reference_share: float, threshold: float | None = None) -> bool:
        threshold = cls.match_threshold if threshold is None else threshold
        return query_share >= threshold and reference_share >= threshold

    @classmethod
    def compare(cls, a: str, b: str, threshold: int | float | None = None) -> Comparison:
        fa, fb = ([(f["hash"], f["quality"]) for f in cls.parse(v)] for v in (a, b))
        query_share, reference_share = cls.shares(fa, fb)
        return Comparison(cls.shares_match(query_share, reference_share, threshold),
                          round(1.0 - min(query_share, reference_share), 6))


def _hash_matrix(hashes: Sequence[str]) -> np.ndarray:
    import numpy as np
    return np.frombuffer(b"".join(bytes.fromhex(h) for h in hashes), dtype=np.uint64).reshape(len(hashes), -1)
