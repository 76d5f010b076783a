"""Appeals: what the uploader sends, what the store keeps, what senior reviewers see."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mediaguard.decisions.review.reasons import APPEAL_REASONS, AppealReason

AppealOutcome = Literal["uphold", "overturn"]
AppealState = Literal["open", "decided"]


class AppealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    statement: str = Field(min_length=1, max_length=1000)


class AppealReceipt(BaseModel):
    """What the uploader gets back: never the reviewer's identity."""

    appeal_id: str
    media_id: str
    state: AppealState
    created_at: datetime


class Appeal(BaseModel):
    appeal_id: str
    media_id: str
    uploader: str
    statement: str
    state: AppealState
    created_at: datetime
    appealed_action: str
    # Who made the appealed decision: a reviewer's sub, or "system" for the pipeline.
    original_decider: str
    outcome: AppealOutcome | None = None
    reason_code: str | None = None
    note: str | None = None
    handled_by: str | None = None
    handled_at: datetime | None = None


class AppealView(BaseModel):
    """An appeal as senior reviewers see it: the statement, not the uploader's id."""

    model_config = ConfigDict(extra="ignore")

    appeal_id: str
    media_id: str
    statement: str
    state: AppealState
    created_at: datetime
    appealed_action: str
    original_decider: str
    outcome: AppealOutcome | None = None
    reason_code: str | None = None
    note: str | None = None
    handled_by: str | None = None
    handled_at: datetime | None = None


class AppealPage(BaseModel):
    items: list[AppealView]


class AppealDecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    outcome: AppealOutcome
    reason_code: AppealReason
    note: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _reason_fits_outcome(self) -> AppealDecisionRequest:
        allowed = APPEAL_REASONS[self.reason_code.value][1]
        if self.outcome not in allowed:
            raise ValueError(f"reason_code {self.reason_code.value} does not justify {self.outcome}")
        return self


def appeal_id_for(media_id: str) -> str:
    """One appeal per item: the id is derived from the item, so the store's conditional
    create is what refuses a second appeal."""
    return f"ap-{media_id}"
