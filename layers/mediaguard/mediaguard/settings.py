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
    geofence_table: str | None = None
    state_machine_arn: str | None = None
    region: str = "us-east-1"
    # 50 MP: a 12 MP phone photo is well inside; a 64k x 64k pixel bomb is not.
    max_pixels: int = Field(default=50_000_000, gt=0)
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


_ENV = {
    "upload_bucket": "UPLOAD_BUCKET",
    "media_bucket": "MEDIA_BUCKET",
    "media_table": "MEDIA_TABLE",
    "banks_table": "BANKS_TABLE",
    "bank_entries_table": "BANK_ENTRIES_TABLE",
    "audit_table": "AUDIT_TABLE",
    "geofence_table": "GEOFENCE_TABLE",
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
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment; cached so every warm invocation reuses them."""
    values = {field: os.environ[var] for field, var in _ENV.items() if os.environ.get(var)}
    return Settings.model_validate(values)
