"""Review tables, lanes, SLAs and leases, read once per process from the environment."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from functools import lru_cache

from pydantic import BaseModel, Field, SecretStr

from mediaguard.decisions.review.models import Lane


class DevIdentity(BaseModel):
    sub: str = Field(min_length=1)
    roles: list[str] = []


class ReviewSettings(BaseModel):
    """Review tables, lanes, SLAs and leases; read once per process."""

    review_table: str | None = None
    appeals_table: str | None = None
    # Risk at or above which a task goes to the fast lane.
    fast_lane_risk: float = Field(default=0.9, ge=0.0, le=1.0)
    fast_sla_minutes: int = Field(default=60, gt=0)
    normal_sla_minutes: int = Field(default=24 * 60, gt=0)
    # Quality sampling: this share of automated decisions other than "review" (allows
    # included, or there is no recall estimate) is re-decided blind in the "qa" lane.
    # 0 = none. The template's QaSampleRate sets it (0.02 by default).
    qa_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # QA tasks never escalate (nothing waits on them); this only orders and dates them.
    qa_sla_minutes: int = Field(default=7 * 24 * 60, gt=0)
    # Long enough to look at an item and write a note; short enough that a reviewer who
    # walked away does not sit on a fast-lane item for long.
    lease_minutes: int = Field(default=15, gt=0)
    # Open tasks are spread over this many queue partitions per lane (the listing merges
    # them). Only ever raise it: tasks in a shard above the count drop out of the listing.
    queue_shards: int = Field(default=4, ge=1, le=64)
    # The issue caps the reviewer's presigned GET of the sanitized copy at 5 minutes.
    media_url_ttl_seconds: int = Field(default=300, gt=0, le=300)
    # Local mode only: JSON {token: {"sub": ..., "roles": [...]}} for requests that no JWT
    # authorizer saw. Empty on AWS, where API Gateway rejects such requests first.
    dev_tokens: SecretStr | None = None

    def dev_identities(self) -> dict[str, DevIdentity]:
        if not self.dev_tokens:
            return {}
        raw = json.loads(self.dev_tokens.get_secret_value() or "{}")
        return {token: DevIdentity.model_validate(identity) for token, identity in raw.items()}

    def sla(self, lane: Lane) -> timedelta:
        minutes = {"fast": self.fast_sla_minutes, "qa": self.qa_sla_minutes}.get(lane, self.normal_sla_minutes)
        return timedelta(minutes=minutes)


_ENV = {
    "review_table": "REVIEW_TABLE",
    "appeals_table": "APPEALS_TABLE",
    "fast_lane_risk": "MEDIAGUARD_REVIEW_FAST_RISK",
    "fast_sla_minutes": "MEDIAGUARD_REVIEW_FAST_SLA_MINUTES",
    "normal_sla_minutes": "MEDIAGUARD_REVIEW_NORMAL_SLA_MINUTES",
    "lease_minutes": "MEDIAGUARD_REVIEW_LEASE_MINUTES",
    "qa_sample_rate": "MEDIAGUARD_QA_SAMPLE_RATE",
    "queue_shards": "MEDIAGUARD_REVIEW_QUEUE_SHARDS",
    "dev_tokens": "MEDIAGUARD_DEV_TOKENS",
}


@lru_cache(maxsize=1)
def get_review_settings() -> ReviewSettings:
    """Review settings from the environment; cached per warm container."""
    return ReviewSettings.model_validate({f: os.environ[v] for f, v in _ENV.items() if os.environ.get(v)})
