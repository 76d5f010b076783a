"""Typed stage inputs and results: what travels through the state machine.

Each stage returns ``result.model_dump()``; the next stage validates its slice of
the execution state with one of these models, so a field renamed on one side
fails loudly on the other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .forensics import Provenance

Action = Literal["allow", "label", "blur", "limit", "remove", "review"]
BankKind = Literal["block", "flag", "allow"]


class Upload(BaseModel):
    """Execution input, written by the start function from the S3 event."""

    media_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    bucket: str
    key: str


class Fingerprints(BaseModel):
    sha256: str
    pdq: str
    pdq_quality: int
    phash: str
    dhash: str


class SanitizeResult(BaseModel):
    media_id: str
    kind: str
    content_type: str
    sanitized_key: str
    sanitized_sha256: str
    method: str
    metadata_removed: list[str]
    width: int
    height: int
    fingerprints: Fingerprints
    provenance: Provenance


class ClassifyInput(BaseModel):
    media_id: str
    sanitized_key: str


class ClassifyResult(BaseModel):
    nsfw: float = Field(ge=0.0, le=1.0)
    model_id: str
    model_sha256: str


class SimilarityInput(BaseModel):
    media_id: str
    fingerprints: Fingerprints


class Match(BaseModel):
    bank: str
    kind: BankKind
    ref: str
    signal: str
    distance: int
    action: Action | None = None


class SimilarityResult(BaseModel):
    matches: list[Match]
    banks_checked: int


class Signal(BaseModel):
    name: str
    value: float
    contribution: float


class ScoreInput(BaseModel):
    media_id: str
    classify: ClassifyResult
    similarity: SimilarityResult
    provenance: Provenance | None = None


class ScoreResult(BaseModel):
    risk: float = Field(ge=0.0, le=1.0)
    action: Action
    signals: list[Signal]
    policy_version: str
    override: str | None = None


class EnforceInput(BaseModel):
    media_id: str
    sanitized_key: str
    score: ScoreResult


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


class FailureResult(BaseModel):
    status: Literal["rejected", "failed"]
    error_type: str
    reason: str
