"""Human review without AWS: priority and sort keys, reason codes, who is calling. The queue,
claims, decisions, SLA and appeals on DynamoDB (moto) are tests/functional/test_review_dynamodb.py."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from mediaguard.api.auth import authenticate_reviewer
from mediaguard.decisions.review.models import DecisionRequest
from mediaguard.decisions.review.queue import priority, queue_sort_key
from mediaguard.decisions.review.reasons import APPEAL_REASONS, REVIEW_REASONS
from mediaguard.decisions.review.settings import ReviewSettings
from mediaguard.errors import UnauthorizedError

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


# --- priority ------------------------------------------------------------------------------------


def test_priority_is_risk_weighted_by_log_reach():
    # An unknown or zero audience leaves risk as it is; each tenfold audience adds one risk's worth.
    assert priority(0.9, None) == priority(0.9, 0) == 0.9
    assert priority(0.5, 999) == pytest.approx(0.5 * 4)
    assert priority(0.5, 999_999) == pytest.approx(0.5 * 7)
    # Beyond a billion followers reach stops counting, so priority stays within [0, 10].
    assert priority(1.0, 10**12) == priority(1.0, 10**9) == pytest.approx(1 + math.log10(1 + 10**9))


def test_sort_keys_order_by_priority_then_age():
    older, newer = T0, T0 + timedelta(seconds=1)
    keys = [queue_sort_key(p, at, m) for p, at, m in
            [(0.5, older, "c"), (9.99, newer, "a"), (0.5, newer, "b"), (0.0, older, "d"), (10.0, older, "e")]]
    assert [k.rsplit("#", 1)[1] for k in sorted(keys)] == ["e", "a", "c", "b", "d"]


# --- reasons ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "reason"), [("remove", "no_violation"), ("approve", "ncii"), ("remove", "spam"),
                                                ("delete", "ncii")])
def test_every_decision_needs_a_documented_reason_that_fits_the_action(action, reason):
    with pytest.raises(ValidationError):
        DecisionRequest(action=action, reason_code=reason)


def test_every_reason_code_is_documented_and_justifies_something():
    for reasons, outcomes in ((REVIEW_REASONS, {"approve", "label", "blur", "limit", "remove", "escalate"}),
                              (APPEAL_REASONS, {"uphold", "overturn"})):
        for code, (text, actions) in reasons.items():
            assert text.endswith(".") and actions and actions <= outcomes, code
        assert {a for _, acts in reasons.values() for a in acts} == outcomes


# --- who is calling -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("groups", ["[reviewer senior-reviewer]", ["reviewer", "senior-reviewer"],
                                    "reviewer,senior-reviewer"])
def test_groups_are_read_however_the_gateway_flattens_them(groups):
    caller = authenticate_reviewer({"sub": "u1", "cognito:groups": groups}, None, ReviewSettings())
    assert caller.roles == {"reviewer", "senior-reviewer"} and caller.senior


def test_dev_tokens_work_only_without_an_authorizer():
    settings = ReviewSettings(dev_tokens='{"tok-r": {"sub": "dev-reviewer", "roles": ["reviewer"]}}')
    assert authenticate_reviewer(None, "Bearer tok-r", settings).sub == "dev-reviewer"
    # A JWT's claims win: the token map is never consulted when an authorizer ran
    assert authenticate_reviewer({"sub": "jwt-user"}, "Bearer tok-r", settings).roles == frozenset()
    for header in (None, "", "Bearer nope", "Basic tok-r", "Bearer "):
        with pytest.raises(UnauthorizedError):
            authenticate_reviewer(None, header, settings)
    with pytest.raises(UnauthorizedError):
        authenticate_reviewer({}, "Bearer tok-r", ReviewSettings())  # no map configured (AWS)
