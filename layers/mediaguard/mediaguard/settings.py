"""Typed settings, read once per process from the environment the template sets."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field


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
    state_machine_arn: str | None = None
    region: str = "us-east-1"
    # 50 MP: a 12 MP phone photo is well inside; a 64k x 64k pixel bomb is not.
    max_pixels: int = Field(default=50_000_000, gt=0)
    # Bytes accepted for a still image; larger uploads are refused before decoding.
    max_image_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    # onnxruntime intra-op threads: a 1769 MB Lambda has one full vCPU (2 cores locally).
    onnx_threads: int = Field(default=1, gt=0)


_ENV = {
    "upload_bucket": "UPLOAD_BUCKET",
    "media_bucket": "MEDIA_BUCKET",
    "media_table": "MEDIA_TABLE",
    "banks_table": "BANKS_TABLE",
    "bank_entries_table": "BANK_ENTRIES_TABLE",
    "audit_table": "AUDIT_TABLE",
    "state_machine_arn": "STATE_MACHINE_ARN",
    "region": "AWS_REGION",
    "max_pixels": "MEDIAGUARD_MAX_PIXELS",
    "max_image_bytes": "MEDIAGUARD_MAX_IMAGE_BYTES",
    "onnx_threads": "MEDIAGUARD_ONNX_THREADS",
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment; cached so every warm invocation reuses them."""
    values = {field: os.environ[var] for field, var in _ENV.items() if os.environ.get(var)}
    return Settings.model_validate(values)
