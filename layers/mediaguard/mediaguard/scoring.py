"""Explainable composite risk and the policy that maps it to an action.

The policy is a versioned JSON file in ``mediaguard/policy``; its version is
stamped on every decision. Risk is the clamped sum of signal contributions, so an
appeal can read exactly why an item scored what it did.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel

from .forensics import Provenance
from .models import Action, ClassifyResult, ScoreResult, Signal, SimilarityResult

# Older policy files stay in the package: a decision names its version, and an appeal
# must be able to replay the policy that made it.
DEFAULT_POLICY = "policy-2026-11-23.2.json"


class Threshold(BaseModel):
    min_risk: float
    action: Action


class Policy(BaseModel):
    version: str
    description: str = ""
    weights: dict[str, float]
    bank_contributions: dict[str, float]
    thresholds: list[Threshold]
    bank_overrides: dict[str, Action]


@lru_cache(maxsize=4)
def load_policy(name: str = DEFAULT_POLICY) -> Policy:
    text = (resources.files("mediaguard") / "policy" / name).read_text()
    policy = Policy.model_validate(json.loads(text))
    policy.thresholds.sort(key=lambda t: t.min_risk, reverse=True)
    return policy


def score(
    classify: ClassifyResult,
    similarity: SimilarityResult,
    policy: Policy,
    provenance: Provenance | None = None,
) -> ScoreResult:
    """Combine the signals into a risk in 0..1 and pick the action.

    Provenance is positive-only evidence: a marker of AI generation adds risk, and
    no marker (or a valid camera manifest) takes none away.

    Bank overrides win over thresholds, and an allow-bank match wins over a block
    match: third-party hashes can be wrong, and a verified original must not be removed.
    """
    signals = [
        Signal(
            name="classifier.nsfw",
            value=classify.nsfw,
            contribution=round(policy.weights["classifier.nsfw"] * classify.nsfw, 6),
        )
    ]
    weight = policy.weights.get("provenance.ai_generated")
    if provenance is not None and provenance.ai_generated and weight:
        signals.append(Signal(name="provenance.ai_generated", value=1.0, contribution=weight))
    closest: dict[str, int] = {}
    for match in similarity.matches:
        closest[match.kind] = min(match.distance, closest.get(match.kind, 10**6))
    for kind, distance in sorted(closest.items()):
        signals.append(
            Signal(name=f"bank.{kind}", value=float(distance), contribution=policy.bank_contributions[kind])
        )
    risk = round(min(1.0, max(0.0, sum(s.contribution for s in signals))), 6)

    action: Action = "allow"
    for threshold in policy.thresholds:
        if risk >= threshold.min_risk:
            action = threshold.action
            break
    override = None
    for kind in ("allow", "block", "flag"):
        if kind in closest and kind in policy.bank_overrides:
            action = policy.bank_overrides[kind]
            override = f"bank.{kind} match => {action}"
            break
    explicit = [m.action for m in similarity.matches if m.action and m.kind != "allow"]
    if override is None and explicit:
        action = explicit[0]
        override = f"bank action => {action}"
    return ScoreResult(risk=risk, action=action, signals=signals, policy_version=policy.version, override=override)
