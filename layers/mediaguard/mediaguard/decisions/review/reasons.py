"""Reason codes: every reviewer decision and every appeal outcome names one, and each
code lists the actions it can justify; the audit trail and transparency reports count them."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

# What a reviewer's action does to the item; "escalate" changes only the task.
ENFORCED_ACTION: dict[str, str] = {"approve": "allow", "label": "label", "blur": "blur", "limit": "limit",
                                   "remove": "remove"}
# Automated or human actions an uploader can appeal: everything that restricts the item.
APPEALABLE_ACTIONS = frozenset({"label", "blur", "limit", "remove"})

# Every decision names one of these; the audit trail and transparency reports count them.
# Each code lists the actions it can justify, so "no_violation" cannot justify a removal.
REVIEW_REASONS: dict[str, tuple[str, frozenset[str]]] = {
    "no_violation": ("Nothing in the item breaks policy (an automated false positive).", frozenset({"approve"})),
    "consent_verified": ("The person depicted consented, and the consent is on record.", frozenset({"approve"})),
    "newsworthy": ("Kept in the public interest (news, documentation, satire).",
                   frozenset({"approve", "label", "limit"})),
    "synthetic_undisclosed": ("AI-generated or manipulated media presented as real.",
                              frozenset({"label", "blur", "limit", "remove"})),
    "deepfake_impersonation": ("Synthetic depiction of a real person without their consent.",
                               frozenset({"blur", "limit", "remove"})),
    "ncii": ("Non-consensual intimate imagery.", frozenset({"remove"})),
    "sexual_content": ("Adult sexual content outside NCII (restricted, not banned).",
                       frozenset({"blur", "limit", "remove"})),
    "graphic_violence": ("Graphic violence or gore.", frozenset({"label", "blur", "limit", "remove"})),
    "hash_match_confirmed": ("A reviewer confirmed the hash-bank match shows the same content.",
                             frozenset({"blur", "limit", "remove"})),
    "minor_safety": ("A minor may be depicted: remove, or escalate for the legal reporting path.",
                     frozenset({"remove", "escalate"})),
    "legal_request": ("A court order or legal notice applies.", frozenset({"limit", "remove", "escalate"})),
    "needs_senior": ("Outside the reviewer's remit or judgement; a senior reviewer decides.",
                     frozenset({"escalate"})),
}
APPEAL_REASONS: dict[str, tuple[str, frozenset[str]]] = {
    "decision_correct": ("The original decision applied the policy correctly.", frozenset({"uphold"})),
    "statement_unsupported": ("The statement gives no context that changes the decision.", frozenset({"uphold"})),
    "new_context": ("The statement adds context that changes the decision.", frozenset({"overturn"})),
    "consent_verified": ("The person depicted consented, and the consent is on record.", frozenset({"overturn"})),
    "reviewer_error": ("The original decision misapplied the policy.", frozenset({"overturn"})),
    "automation_error": ("The automated signals were wrong for this item.", frozenset({"overturn"})),
}
# Enums for the request models, so the OpenAPI document lists the valid codes.
ReviewReason = StrEnum("ReviewReason", {code: code for code in REVIEW_REASONS})
AppealReason = StrEnum("AppealReason", {code: code for code in APPEAL_REASONS})


def reason_table(reasons: dict[str, tuple[str, Iterable[str]]]) -> list[dict[str, Any]]:
    """The documented reason codes, for the console and the README."""
    return [{"code": code, "description": text, "actions": sorted(actions)}
            for code, (text, actions) in reasons.items()]
