"""Typed settings, read once per process from the environment the template sets."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field, SecretStr


class Settings(BaseModel):
    """Names of the resources a stage touches plus the media limits.

    Resource names are optional here so that pure library code (``mediaguard hash``)
    runs without them; an adapter that needs one raises a clear error instead.
    """

    upload_bucket: str | None = None
    media_bucket: str | None = None
    media_table: str | None = None
    banks_table: str | None = None
    bank_entries_table: str | None = None
    audit_table: str | None = None
    audit_head_table: str | None = None
    # Write-once (Object Lock) archive of audit digests, and each digest's own compliance lock.
    digest_bucket: str | None = None
    digest_retention_days: int | None = Field(default=None, gt=0)
    geofence_table: str | None = None
    history_table: str | None = None
    # Days the uploader's lifetime totals outlive their last write (UploaderHistoryRetentionDays).
    history_retention_days: int | None = Field(default=None, gt=0)
    legal_table: str | None = None  # legal and government orders (decisions.legal)
    # Shipped policy file names (or versions) for the active and the shadow policy;
    # None: mediaguard.decisions.scoring.DEFAULT_POLICY, and no shadow.
    policy: str | None = None
    shadow_policy: str | None = None
    # HMAC key (>= 16 bytes) for uploader ids in the history table and geofence scopes. On
    # AWS only the secret's ARN is in the environment and the value is read at run time
    # (mediaguard.adapters.secrets); uploader_key itself is for the CLI and tests.
    uploader_key_secret_arn: str | None = None
    uploader_key: SecretStr | None = None
    state_machine_arn: str | None = None
    region: str = "us-east-1"
    # 64 MP: every "50 MP" phone mode is inside (a Pixel's 8160 x 6144 is 50.1 MP, and a 50 MP
    # cap refused it); a 64k x 64k pixel bomb is not. Peaks measured at 64 MP: an RGB PNG (the
    # costliest decode) in sanitize 448 MB, detect's full decode 366 MB, the blur derivative
    # 466 MB; a 16-bit grey PNG in sanitize 476 MB (functions have 1024-1769 MB).
    max_pixels: int = Field(default=64_000_000, gt=0)
    # Bytes accepted for a still image; larger uploads are refused before decoding.
    max_image_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    # Frames of an animation or pages of a TIFF. 500 covers a 20 s reaction GIF at
    # 25 fps; a 10,000-frame GIF of 1x1 frames (a few hundred KB) is refused unread.
    max_frames: int = Field(default=500, gt=0)
    # Pixels across all frames, each a full canvas: what re-encoding an animation
    # decodes and holds (Pillow's GIF writer keeps every frame). 100 MP is 500 frames
    # of 480x416, about 400 MB as RGBA in a 1769 MB function.
    max_total_pixels: int = Field(default=100_000_000, gt=0)
    # Longest side. 1 x 40,000,000 is inside max_pixels but breaks resizers and
    # thumbnailers; 32,768 keeps phone panoramas (~16k-25k wide) and matches libheif's cap.
    max_side: int = Field(default=32_768, gt=0)
    # PEM bundle of C2PA trust anchors. Without one a valid manifest is "valid", never
    # "trusted": C2PA's default accepts any signer.
    c2pa_trust_anchors: str | None = None
    # onnxruntime intra-op threads: a 1769 MB Lambda has one full vCPU (2 cores locally).
    onnx_threads: int = Field(default=1, gt=0)
    # Lifetime of a presigned upload POST. The issue caps it at 5 minutes: long enough
    # for a phone on a slow link to start the upload, short enough that a leaked form
    # is useless soon after.
    upload_ttl_seconds: int = Field(default=300, gt=0, le=300)
    # Local mode only: the bearer token the uploads API accepts when no JWT authorizer
    # ran (on AWS, API Gateway rejects anything without a valid JWT before the handler).
    dev_token: SecretStr | None = None
    # Enforcement (mediaguard.decisions.enforcement). Removed media moves here: an Object Lock
    # bucket that only enforcement writes and only a named investigator role reads.
    evidence_bucket: str | None = None
    # EventBridge bus that receives one "mediaguard.decision" event per decision.
    event_bus_name: str | None = None
    # Optional signed webhook (events.py documents the scheme). The secret comes from
    # Secrets Manager on AWS; webhook_secret is for local mode only.
    webhook_url: str | None = None
    webhook_secret_arn: str | None = None
    webhook_secret: SecretStr | None = None
    # One attempt may take this long; all attempts together (backoff included) at most
    # webhook_max_seconds, so a dead receiver cannot hold a Lambda for its whole timeout.
    webhook_timeout_seconds: float = Field(default=3.0, gt=0)
    webhook_max_seconds: float = Field(default=10.0, gt=0)
    # Bytes accepted for a video. 512 MiB holds ~10 minutes of 1080p phone video at
    # ~6 Mb/s; the file is streamed to /tmp (Lambda's default 512 MB is raised for it).
    max_video_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    # Longest video analysed. Frame extraction time grows with duration (and the
    # decode of long keyframe gaps with it); 10 minutes covers clips shared on social
    # platforms, and a longer upload is refused rather than sampled partially.
    max_video_seconds: float = Field(default=600.0, gt=0)
    # Frames kept per video (keyframes + scene changes, evenly thinned above this).
    # Each costs one PDQ (~30-40 ms at 720p) and one vPDQ comparison row; 64 over 10
    # minutes is still a frame every ~9 s.
    max_video_frames: int = Field(default=64, gt=0)
    # Wall-clock budget for all ffmpeg work on one video, kept below the Lambda
    # timeout so a decode bomb becomes a typed rejection instead of a killed function.
    video_timeout_seconds: float = Field(default=60.0, gt=0)
    # Bytes accepted for an audio-only upload: 10 minutes of 48 kHz 24-bit stereo WAV
    # (the largest accepted form) is ~173 MB; compressed audio is 10-50x smaller.
    max_audio_bytes: int = Field(default=192 * 1024 * 1024, gt=0)
    # Longest audio-only upload analysed: the same 10 minutes as a video, for the same reason
    # (one fingerprint pass grows with duration; a longer file is refused, not sampled).
    max_audio_seconds: float = Field(default=600.0, gt=0)
    # JSON file declaring extra ONNX classifiers (mediaguard.analysis.classify.ModelsConfig); model
    # paths in it are relative to the file. None: open_nsfw only.
    models_config: str | None = None
    # Cosine at or above which two open_nsfw embeddings count as the same picture. None:
    # signals.EmbeddingSignal.match_threshold, the measured default; banks may set their own.
    embedding_min_cosine: float | None = Field(default=None, gt=0.0, le=1.0)
    # Live streams (mediaguard.stages.segment): the streams table, the functions each
    # segment's frames go to, and how long a new streamer is gated, then shown reduced.
    streams_table: str | None = None
    classify_function: str | None = None
    detect_function: str | None = None
    # The issue asks for a 10-30 s pre-broadcast scan; 10 s keeps a clean streamer's wait short.
    live_gate_seconds: float = Field(default=10.0, ge=0.0, le=60.0)
    live_reveal_seconds: float = Field(default=10.0, ge=0.0, le=300.0)
    # genguard: the Secrets Manager secret holding the C2PA signing key and chain
    # ({"certificate_chain", "private_key"}, PEM). None: the local development signer.
    genguard_signing_secret_arn: str | None = None


_ENV = {
    "upload_bucket": "UPLOAD_BUCKET",
    "media_bucket": "MEDIA_BUCKET",
    "media_table": "MEDIA_TABLE",
    "banks_table": "BANKS_TABLE",
    "bank_entries_table": "BANK_ENTRIES_TABLE",
    "audit_table": "AUDIT_TABLE",
    "audit_head_table": "AUDIT_HEAD_TABLE",
    "digest_bucket": "DIGEST_BUCKET",
    "digest_retention_days": "MEDIAGUARD_DIGEST_RETENTION_DAYS",
    "geofence_table": "GEOFENCE_TABLE",
    "history_table": "HISTORY_TABLE",
    "history_retention_days": "MEDIAGUARD_HISTORY_RETENTION_DAYS",
    "legal_table": "LEGAL_TABLE",
    "policy": "MEDIAGUARD_POLICY",
    "shadow_policy": "MEDIAGUARD_SHADOW_POLICY",
    "uploader_key": "MEDIAGUARD_UPLOADER_KEY",
    "uploader_key_secret_arn": "MEDIAGUARD_UPLOADER_KEY_SECRET_ARN",
    "state_machine_arn": "STATE_MACHINE_ARN",
    "region": "AWS_REGION",
    "max_pixels": "MEDIAGUARD_MAX_PIXELS",
    "max_image_bytes": "MEDIAGUARD_MAX_IMAGE_BYTES",
    "max_frames": "MEDIAGUARD_MAX_FRAMES",
    "max_total_pixels": "MEDIAGUARD_MAX_TOTAL_PIXELS",
    "max_side": "MEDIAGUARD_MAX_SIDE",
    "onnx_threads": "MEDIAGUARD_ONNX_THREADS",
    "c2pa_trust_anchors": "MEDIAGUARD_C2PA_TRUST_ANCHORS",
    "upload_ttl_seconds": "MEDIAGUARD_UPLOAD_TTL_SECONDS",
    "dev_token": "MEDIAGUARD_DEV_TOKEN",
    "evidence_bucket": "EVIDENCE_BUCKET",
    "event_bus_name": "MEDIAGUARD_EVENT_BUS",
    "webhook_url": "MEDIAGUARD_WEBHOOK_URL",
    "webhook_secret_arn": "MEDIAGUARD_WEBHOOK_SECRET_ARN",
    "webhook_secret": "MEDIAGUARD_WEBHOOK_SECRET",
    "webhook_timeout_seconds": "MEDIAGUARD_WEBHOOK_TIMEOUT_SECONDS",
    "webhook_max_seconds": "MEDIAGUARD_WEBHOOK_MAX_SECONDS",
    "max_video_bytes": "MEDIAGUARD_MAX_VIDEO_BYTES",
    "max_video_seconds": "MEDIAGUARD_MAX_VIDEO_SECONDS",
    "max_video_frames": "MEDIAGUARD_MAX_VIDEO_FRAMES",
    "video_timeout_seconds": "MEDIAGUARD_VIDEO_TIMEOUT_SECONDS",
    "max_audio_bytes": "MEDIAGUARD_MAX_AUDIO_BYTES",
    "max_audio_seconds": "MEDIAGUARD_MAX_AUDIO_SECONDS",
    "models_config": "MEDIAGUARD_MODELS_CONFIG",
    "embedding_min_cosine": "MEDIAGUARD_EMBEDDING_MIN_COSINE",
    "streams_table": "STREAMS_TABLE",
    "classify_function": "MEDIAGUARD_CLASSIFY_FUNCTION",
    "detect_function": "MEDIAGUARD_DETECT_FUNCTION",
    "live_gate_seconds": "MEDIAGUARD_LIVE_GATE_SECONDS",
    "live_reveal_seconds": "MEDIAGUARD_LIVE_REVEAL_SECONDS",
    "genguard_signing_secret_arn": "MEDIAGUARD_GENGUARD_SIGNING_SECRET_ARN",
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment; cached so every warm invocation reuses them."""
    values = {field: os.environ[var] for field, var in _ENV.items() if os.environ.get(var)}
    return Settings.model_validate(values)
