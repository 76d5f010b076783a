"""Typed stage inputs and results: what travels through the state machine.

Each stage returns ``result.model_dump()``; the next stage validates its slice of
the execution state with one of these models, so a field renamed on one side
fails loudly on the other.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model, model_validator

from mediaguard.signals import STILL_KINDS, item_fields, record_fields

Action = Literal["allow", "label", "blur", "limit", "remove", "review"]
BankKind = Literal["block", "flag", "allow"]
# The flag bank (action label) where genguard remembers the platform's own generated
# outputs; enforcement labels its matches "Made with AI" (reason ai_generated_own).
OWN_GENERATIONS_BANK = "own-generations"
# What the frames stage sees: a still goes straight to the classifier; an animation or a
# video is cut into frames first; audio has no frame (the frames stage fingerprints it).
MediaType = Literal["image", "animation", "video", "audio"]


# --- provenance, read by ingress.forensics from the original upload --------------

C2paState = Literal["absent", "valid", "trusted", "invalid", "error"]
MarkerSource = Literal["c2pa", "xmp", "iptc", "png-text", "exif-software", "exif-usercomment"]


class C2paAction(BaseModel):
    action: str
    digital_source_type: str | None = None
    software_agent: str | None = None


class C2paInfo(BaseModel):
    present: bool = False
    state: C2paState = "absent"
    generator: str | None = None
    digital_source_type: str | None = None
    actions: list[C2paAction] = Field(default_factory=list)
    # Validation failure codes of the active manifest, e.g. "assertion.dataHash.mismatch".
    failures: list[str] = Field(default_factory=list)


class AiMarker(BaseModel):
    source: MarkerSource
    value: str


class WatermarkInfo(BaseModel):
    detected: bool = False
    kind: Literal["sdxl", "sd1"] | None = None
    bit_match: float | None = None


class ReaderError(BaseModel):
    reader: str
    error: str  # exception type only: messages can echo file content


class Provenance(BaseModel):
    c2pa: C2paInfo = Field(default_factory=C2paInfo)
    ai_markers: list[AiMarker] = Field(default_factory=list)
    watermark: WatermarkInfo = Field(default_factory=WatermarkInfo)
    readers: list[str] = Field(default_factory=list)
    errors: list[ReaderError] = Field(default_factory=list)
    ai_generated: bool = False


class Upload(BaseModel):
    """Execution input, written by the start function from the S3 event.

    Always dumped whole (``model_dump()``, never ``exclude_none``): the state machine's
    Catch targets read ``$.version_id``, ``$.reach`` and ``$.run`` by path, and a path
    missing from the input fails the state with ``States.Runtime`` instead of recording
    the failure (tests/contract checks every path the ASL reads is a field here).
    """

    media_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    bucket: str
    key: str
    # From the upload grant (``ingress.grant``), read once by the start stage and carried
    # to scoring and enforcement in the execution input. None for uploads outside the API.
    uploader: str | None = None
    reach: int | None = Field(default=None, ge=0)
    # The S3 version the start stage pinned from the ObjectCreated event. A presigned POST
    # form stays valid until it expires, so the key can get new versions after the scan;
    # every read of the original (sanitize, frames) and every evidence copy names this
    # version, never "the latest". None only where the bucket has no versions (the CLI).
    version_id: str | None = None
    # The execution name of this attempt (``mediaguard.decisions.redrive.run_name``). The
    # first stage claims the item for it, so a duplicate or superseded execution stops
    # there. None for executions started before runs existed: they claim nothing.
    run: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,80}$")
    # Set by the state machine for the first stage only ($$.Execution.Id): which execution
    # holds the claim, so a Lambda retry of the same execution claims again.
    execution: str | None = None


def run_name(media_id: str, first: bool = False) -> str:
    """The execution name of an attempt: the media id for the first (what people and
    ``LocalCloud.wait`` look for), a new suffix for every later one (S3's retry after a
    failed start, the sweep, a re-drive), so no two attempts share a name and the first
    stage's claim can tell them apart. At most 80 characters (Step Functions' limit)."""
    return media_id if first else f"{media_id[:69]}-r{secrets.token_hex(4)}"


class _FingerprintsBase(BaseModel):
    sha256: str

    @model_validator(mode="after")
    def _fields_fit_together(self) -> _FingerprintsBase:
        # e.g. pdq_dihedral holds 8 hashes and starts with pdq
        record = {name: getattr(self, name) for name in record_fields()}
        for kind in STILL_KINDS:
            kind.check_record(record)
        return self

    def item_fields(self) -> dict[str, Any]:
        """The fingerprint fields the media item records (``signals.item_fields``)."""
        return {name: getattr(self, name) for name in item_fields()}


def _fingerprint_fields() -> dict[str, Any]:
    # Required fields first, then those with a default (payloads written before such a
    # field existed lack it): the order ``model_dump`` has always had.
    fields = record_fields()
    return dict(sorted(fields.items(), key=lambda kv: kv[1][1] is not ...))


# A still's fingerprints: sha256 of the original bytes plus every field the signal
# registry's still kinds record (pdq, pdq_quality, pdq_dihedral, phash, dhash today), so a
# kind added to ``mediaguard.signals`` is carried without editing this file.
Fingerprints = create_model("Fingerprints", __base__=_FingerprintsBase, __module__=__name__,
                            **_fingerprint_fields())


class FrameRef(BaseModel):
    """One frame the classifier and the matcher look at (a still is its own single frame)."""

    index: int
    t: float = 0.0
    key: str
    pdq: str
    pdq_quality: int


class FrameBatch(BaseModel):
    """One Map iteration of the classifier: a few frames scored in one forward pass."""

    batch: int
    keys: list[str]
    # Set only where the whole media is this one batch (a still): its embeddings may then
    # travel in the state payload instead of the media bucket (stages/embeddings.py).
    inline: bool = False


class AudioTrack(BaseModel):
    """The first audio track of a video or an audio-only upload, as the frames stage read it.

    ``fingerprint`` travels in the payload to the similarity stage like a video's per-frame
    PDQs (~2.6 KB a minute; 10 minutes stay far inside Step Functions' 256 KB)."""

    codec: str
    duration_s: float
    fingerprint_kind: str  # ingress.audio.FINGERPRINT_KIND
    fingerprint: str | None  # AudioSignal's string form; None when too short to fingerprint (< ~2 s)
    # "copy": served as uploaded; "reencode": a codec the container cannot carry, re-encoded.
    sanitize: Literal["copy", "reencode"] = "copy"


class FramesResult(BaseModel):
    media_type: MediaType
    method: str  # "still", "keyframes+scene", "animation-scene"
    count: int
    truncated: bool = False
    duration_s: float | None = None
    sanitized_key: str  # what is served: the sanitized image or the remuxed video or audio
    poster_key: str | None  # a still for derivatives (blur) and thumbnails; None for audio
    frames: list[FrameRef]
    batches: list[FrameBatch]
    audio: AudioTrack | None = None  # None: the media has no (decodable) audio track


class SanitizeResult(BaseModel):
    media_id: str
    kind: str
    media_type: MediaType = "image"
    content_type: str
    # None for a video: the frames stage (which carries ffmpeg) writes the remuxed copy.
    sanitized_key: str | None
    sanitized_sha256: str | None
    method: str
    metadata_removed: list[str]
    width: int
    height: int
    fingerprints: Fingerprints | None
    provenance: Provenance | None
    # Built here for stills so the state machine can skip the frames stage.
    frames: FramesResult | None = None
    # Upload.version_id: the version these bytes were read from, so the frames stage
    # remuxes the very bytes whose sha256 was recorded here.
    original_version_id: str | None = None


class FramesInput(BaseModel):
    media_id: str
    bucket: str
    key: str
    sanitize: SanitizeResult


class ClassifyInput(BaseModel):
    media_id: str
    batch: FrameBatch


class ModelRef(BaseModel):
    id: str
    sha256: str


class FrameScores(BaseModel):
    key: str
    scores: dict[str, float]


class ClassifyResult(BaseModel):
    """Scores of one batch of frames from every configured model."""

    batch: int
    frames: list[FrameScores]
    models: list[ModelRef]
    # L2-normalised embeddings of the batch's frames (.npy in the media bucket, one row per
    # frame): 1024 floats per frame would overflow Step Functions' 256 KB payload as JSON.
    embeddings_key: str | None = None
    # The same .npy as base64, for an ``inline`` batch (a still) instead of the key.
    embeddings: str | None = None

    def max_scores(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for frame in self.frames:
            for name, value in frame.scores.items():
                out[name] = max(value, out.get(name, 0.0))
        return out


class DetectInput(ClassifyInput):
    """One Map iteration of the detect stage: the same batches the classifier scores."""


class FrameDetection(BaseModel):
    key: str
    # "aigen.ai" (whole frame) and, when a face was scored, "aigen_face.ai" (max over crops).
    scores: dict[str, float]
    # [x, y, w, h, score] in pixels of the frame as stored (the sanitized image for a still).
    faces: list[list[float]] = []


class DetectResult(BaseModel):
    """Faces and AI-image scores of one batch of frames."""

    batch: int
    frames: list[FrameDetection]
    models: list[ModelRef]
    face_model: str  # the model id of the boxes (also in ``models``, with its sha256)
    # CLIP embeddings of the batch's frames (.npy, one 512-d row per frame), beside open_nsfw's.
    embeddings_key: str | None = None
    embeddings: str | None = None  # the same .npy as base64, for an ``inline`` batch (a still)


class SimilarityInput(BaseModel):
    media_id: str
    fingerprints: Fingerprints | None = None
    frames: FramesResult
    classify: list[ClassifyResult] = []
    # The detect stage's batches, for their CLIP embeddings (``signal: "clip"`` matches).
    detect: list[DetectResult] = []


class Match(BaseModel):
    bank: str
    kind: BankKind
    ref: str
    # A matched kind's name in ``signals.REGISTRY``: pdq (Hamming bits), embedding or clip
    # (cosine distance 1 - cos: open_nsfw's and CLIP's embeddings) or vpdq (bits: the median
    # over matching frames); or pdq_dihedral (PDQ bits, matched through a rotated/mirrored
    # variant of the query).
    signal: str
    distance: int | float
    action: Action | None = None
    # vpdq: share of the query's frames that match the banked video and vice versa.
    frames_matched: float | None = None
    reference_matched: float | None = None
    # A video's frame (position among the analysed frames) that matched best: the one the
    # console marks in the frames strip. None for a still and for embedding/audio matches.
    frame: int | None = None


class SimilarityResult(BaseModel):
    matches: list[Match]
    banks_checked: int


class Signal(BaseModel):
    name: str
    value: float
    contribution: float
    # Why a signal counted as it did when its value alone does not say: no weight in the
    # policy, or a bank kind already counted through another of its signals.
    note: str | None = None


class ScoreInput(BaseModel):
    media_id: str
    classify: list[ClassifyResult]  # one per Map iteration (batch of frames)
    similarity: SimilarityResult
    provenance: Provenance | None = None
    uploader: str | None = None  # Upload.uploader
    detect: list[DetectResult] | None = None  # one per Map iteration; None before the detect stage existed

    def classifier_scores(self) -> dict[str, float]:
        """Every score key's maximum over all frames of all batches, the detect stage's included."""
        out: dict[str, float] = {}
        for batch in self.classify:
            for name, value in batch.max_scores().items():
                out[name] = max(value, out.get(name, 0.0))
        for frame in (f for batch in self.detect or [] for f in batch.frames):
            for name, value in frame.scores.items():
                out[name] = max(value, out.get(name, 0.0))
        return out

    def signal_frames(self) -> dict[str, int]:
        """For each score key, the frame (position among the analysed frames, in batch order)
        that gave its maximum: the frame that drove the signal. A few ints per item, kept on
        the item instead of every frame's scores (the item's size and the cost work)."""
        keys = [f.key for batch in sorted(self.classify, key=lambda b: b.batch) for f in batch.frames]
        position = {key: n for n, key in enumerate(dict.fromkeys(keys))}
        best: dict[str, tuple[float, int]] = {}
        frames = [f for batch in self.classify for f in batch.frames] + \
                 [f for batch in self.detect or [] for f in batch.frames]
        for frame in frames:
            n = position.get(frame.key)
            if n is None:
                continue
            for name, value in frame.scores.items():
                # Ties go to the earliest frame, so the same scores always mark the same frame.
                if name not in best or (value, -n) > (best[name][0], -best[name][1]):
                    best[name] = (value, n)
        return {name: n for name, (_, n) in sorted(best.items())}

    def faces_frame(self) -> FrameDetection | None:
        """The analysed frame with the most faces (the first on a tie); None without a detect stage."""
        frames = [f for batch in self.detect or [] for f in batch.frames]
        return max(frames, key=lambda f: len(f.faces)) if frames else None


class ShadowDecision(BaseModel):
    """What the shadow policy would have decided on the same inputs: recorded, never enforced."""

    policy_version: str
    risk: float = Field(ge=0.0, le=1.0)
    action: Action
    escalate: bool = False
    override: str | None = None
    differs: bool  # action or escalation differ from the active decision


class ScoreResult(BaseModel):
    risk: float = Field(ge=0.0, le=1.0)
    action: Action
    signals: list[Signal]
    policy_version: str
    override: str | None = None
    # A person must look now, whatever the action (e.g. a block-bank match: remove and escalate).
    escalate: bool = False
    shadow: ShadowDecision | None = None


class EnforceInput(BaseModel):
    media_id: str
    sanitized_key: str
    poster_key: str | None = None  # a video's blur derivative is a blurred poster frame
    score: ScoreResult
    uploader: str | None = None  # Upload.uploader
    reach: int | None = Field(default=None, ge=0)  # Upload.reach
    matches: list[Match] = []  # SimilarityResult.matches: the uploader's history counts them by bank kind


class EnforceResult(BaseModel):
    action: Action
    served_key: str | None
    derivative_key: str | None = None


class FailureInput(BaseModel):
    """What a Catch hands over: the original input plus ``error`` = {Error, Cause}."""

    media_id: str
    bucket: str
    key: str
    error: dict
    # Upload.version_id: the version the run scanned is the one tagged, never a later
    # replacement of the same key (issue 14, defect 1).
    version_id: str | None = None
    reach: int | None = None  # the upload's declared reach: the review task's priority
    # Upload.run: the failure is recorded only while this run is the item's current one, so
    # a run a re-drive replaced cannot mark the new run's item failed.
    run: str | None = None


class FailureResult(BaseModel):
    status: Literal["rejected", "failed", "superseded"]
    error_type: str
    reason: str
