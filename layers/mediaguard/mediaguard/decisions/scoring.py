"""Explainable composite risk, the policy that maps it to an action, and a shadow policy.

A policy is a versioned JSON file in ``mediaguard/policy``; its version is stamped on
every decision, and every file ever shipped stays in the package so an appeal can
replay the exact policy that decided (``load_policy(result.policy_version)``).

Risk is the clamped sum of signal contributions, and every signal is recorded with its
raw value and contribution, so a decision can be explained line by line:

* ``classifier.<model>.<label>``: each classifier score (the max over frames), times
  its weight. Keys the policy has no weight for are recorded with contribution 0.
* ``provenance.ai_generated`` / ``provenance.c2pa_invalid``: positive-only evidence
  from the forensics stage; no marker never lowers risk.
* ``bank.<kind>.<signal>``: the closest match per bank kind (block, flag, allow) and
  match signal (pdq, pdq_dihedral, embedding, clip, vpdq). One bank kind counts once, through
  its strongest signal: two signals matching the same entry are one piece of evidence.
* ``faces.present`` (0 or 1) and ``faces.count`` (faces in the frame with the most):
  from the detect stage; ``faces.count`` needs a ramp like the history counts.
* ``history.<name>``: uploader behaviour (``HistorySnapshot.signals``), through a ramp
  that maps a count onto 0..1 before the weight applies.

Overrides then win over the thresholds: a bank kind (or one of its signals) can force
an action and escalation whatever the risk, e.g. "block-bank match => remove and
escalate". An allow-bank match wins over a block match: third-party hashes can be
wrong, and a verified original must not be removed.

The shadow policy is evaluated beside the active one on the same inputs; what it would
have done is recorded on the result and never acted on.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mediaguard import models
from mediaguard.decisions.history import HistorySnapshot
from mediaguard.models import Action, BankKind, Match, Provenance, ScoreResult, Signal

# The policy a deployment runs unless MEDIAGUARD_POLICY names another. Older files stay
# in the package: a decision names its version, and an appeal must be able to replay it.
DEFAULT_POLICY = "policy-2026-12-02.2.json"
_POLICY_NAME = re.compile(r"^(?:policy-)?(\d{4}-\d{2}-\d{2}\.\d+)(?:\.json)?$")
# Which bank override wins when an item matches several kinds: a verified original
# (allow) first, then block before flag.
OVERRIDE_ORDER: tuple[BankKind, ...] = ("allow", "block", "flag")
# Least to most restrictive, to pick one action when several signals of a kind force one.
SEVERITY: tuple[Action, ...] = ("allow", "label", "blur", "limit", "review", "remove")
# A match signal newer than a policy is ruled like its older sibling there: a policy
# written before ``clip`` existed treats a clip match as an open_nsfw embedding match,
# rather than letting a block bank's clip match inherit the kind's "remove". (Decisions
# made before clip existed hold no clip match, so their replay is unchanged.)
SIGNAL_FALLBACK: dict[str, str] = {"clip": "embedding"}


# --- policy ---------------------------------------------------------------------------------


class Ramp(BaseModel):
    """Maps a raw value onto 0..1: 0 at or below ``start``, 1 at or above ``full``, linear between."""

    model_config = ConfigDict(extra="forbid")

    start: float = Field(ge=0)
    full: float

    @model_validator(mode="after")
    def _ordered(self) -> Ramp:
        if self.full <= self.start:
            raise ValueError("a ramp needs full > start")
        return self

    def factor(self, value: float) -> float:
        return min(1.0, max(0.0, (value - self.start) / (self.full - self.start)))


class BankSignalRule(BaseModel):
    """A per-signal refinement of a bank kind's rule; unset fields inherit the kind's."""

    model_config = ConfigDict(extra="forbid")

    contribution: float | None = Field(default=None, ge=0, le=1)
    action: Action | None = None
    escalate: bool | None = None


class BankRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contribution: float = Field(default=0.0, ge=0, le=1)
    # Forced action for a match of this kind, whatever the risk (None: thresholds decide).
    action: Action | None = None
    escalate: bool = False
    # Keyed by match signal: pdq, pdq_dihedral, embedding, clip, vpdq.
    signals: dict[str, BankSignalRule] = Field(default_factory=dict)

    def for_signal(self, signal: str) -> tuple[float, Action | None, bool]:
        """(contribution, forced action, escalate) of a match through ``signal``."""
        rule = self.signals.get(signal) or self.signals.get(SIGNAL_FALLBACK.get(signal, ""), BankSignalRule())
        return (
            self.contribution if rule.contribution is None else rule.contribution,
            self.action if rule.action is None else rule.action,
            self.escalate if rule.escalate is None else rule.escalate,
        )


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_risk: float = Field(ge=0, le=1)
    action: Action


class Policy(BaseModel):
    """Weights, ramps, bank rules and thresholds of one policy version.

    Files from before 2026-11-23.3 spell bank rules as ``bank_contributions`` and
    ``bank_overrides``; they are read into ``banks`` unchanged in meaning.
    """

    model_config = ConfigDict(extra="forbid")

    version: str
    description: str = ""
    # Keyed by signal name: "classifier.open_nsfw.nsfw", "provenance.ai_generated", "history.burst".
    weights: dict[str, float]
    ramps: dict[str, Ramp] = Field(default_factory=dict)
    banks: dict[BankKind, BankRule]
    thresholds: list[Threshold]

    @model_validator(mode="before")
    @classmethod
    def _legacy_bank_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and "bank_contributions" in data:
            data = dict(data)
            contributions = data.pop("bank_contributions")
            overrides = data.pop("bank_overrides", {})
            data["banks"] = {kind: {"contribution": value, "action": overrides.get(kind)}
                             for kind, value in contributions.items()}
        return data

    @field_validator("weights")
    @classmethod
    def _evidence_only_adds(cls, weights: dict[str, float]) -> dict[str, float]:
        # Lowering risk is what allow banks (an explicit, audited override) are for; a
        # negative weight would make "more evidence" mean "less risk" and be hard to explain.
        negative = sorted(name for name, weight in weights.items() if weight < 0 or not math.isfinite(weight))
        if negative:
            raise ValueError(f"weights must be finite and >= 0: {negative}")
        return weights

    @model_validator(mode="after")
    def _complete(self) -> Policy:
        missing = {"block", "flag", "allow"} - set(self.banks)
        if missing:
            raise ValueError(f"the policy has no rule for bank kinds {sorted(missing)}")
        unramped = sorted(n for n in self.weights
                          if (n.startswith("history.") or n == "faces.count") and n not in self.ramps)
        if unramped:  # counts are not in 0..1: without a ramp one burst would saturate risk
            raise ValueError(f"count weights need a ramp: {unramped}")
        self.thresholds.sort(key=lambda t: t.min_risk, reverse=True)
        return self


def policy_file(name: str) -> str:
    """The file name for a policy name or version: ``2026-11-23.3`` -> ``policy-2026-11-23.3.json``."""
    found = _POLICY_NAME.match(name.strip())
    if not found:
        raise ValueError(f"not a policy name: {name!r} (expected e.g. {DEFAULT_POLICY!r} or its version)")
    return f"policy-{found.group(1)}.json"


def available_policies() -> list[str]:
    """Every policy file shipped in the package, oldest first."""
    folder = resources.files("mediaguard") / "policy"
    return sorted(p.name for p in folder.iterdir() if _POLICY_NAME.match(p.name))


@lru_cache(maxsize=8)
def load_policy(name: str = DEFAULT_POLICY) -> Policy:
    """A shipped policy, by file name or by the version a decision recorded.

    >>> load_policy("2026-11-23.1").version
    '2026-11-23.1'
    """
    filename = policy_file(name)
    path = resources.files("mediaguard") / "policy" / filename
    if not path.is_file():
        raise ValueError(f"unknown policy {name!r}; shipped: {', '.join(available_policies())}")
    policy = Policy.model_validate(json.loads(path.read_text()))
    if policy_file(policy.version) != filename:  # replay finds a policy by the version it stamped
        raise ValueError(f"{filename} declares version {policy.version}")
    return policy


def select_policies(active: str | None = None, shadow: str | None = None) -> tuple[Policy, Policy | None]:
    """The active and shadow policies named by settings (MEDIAGUARD_POLICY / MEDIAGUARD_SHADOW_POLICY).

    No active name means ``DEFAULT_POLICY``; no shadow name means no shadow. A name that
    is not shipped fails here, at cold start, rather than on the first decision.
    """
    return load_policy(active or DEFAULT_POLICY), load_policy(shadow) if shadow else None


# --- inputs ---------------------------------------------------------------------------------


class ScoreInputs(BaseModel):
    """Everything a decision is made from; recorded with the decision, it makes replay possible."""

    # Classifier scores keyed "<model>.<label>" (e.g. "open_nsfw.nsfw"): for a video or an
    # animation, the max over its frames.
    classifier: dict[str, float] = Field(default_factory=dict)
    matches: list[Match] = Field(default_factory=list)
    provenance: Provenance | None = None
    history: HistorySnapshot | None = None
    # Faces in the analysed frame with the most; None when no detect stage ran (older decisions).
    faces: int | None = Field(default=None, ge=0)

    @field_validator("classifier")
    @classmethod
    def _probabilities(cls, scores: dict[str, float]) -> dict[str, float]:
        bad = sorted(k for k, v in scores.items() if not k or not math.isfinite(v) or not 0.0 <= v <= 1.0)
        if bad:
            raise ValueError(f"classifier scores must be in 0..1: {bad}")
        return scores


# --- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Decision:
    risk: float
    action: Action
    signals: list[Signal]
    override: str | None
    escalate: bool


def _weighted(name: str, value: float, policy: Policy) -> Signal:
    weight = policy.weights.get(name)
    if weight is None:
        return Signal(name=name, value=value, contribution=0.0, note=f"no weight in policy {policy.version}")
    ramp = policy.ramps.get(name)
    factor = ramp.factor(value) if ramp else value
    return Signal(name=name, value=value, contribution=round(weight * factor, 6))


def _bank_signals(matches: list[Match], policy: Policy) -> list[Signal]:
    closest: dict[tuple[str, str], float] = {}
    for m in matches:
        key = (m.kind, m.signal)
        closest[key] = min(float(m.distance), closest.get(key, math.inf))
    signals: list[Signal] = []
    for kind in sorted({kind for kind, _ in closest}):
        found = sorted((sig, dist) for (k, sig), dist in closest.items() if k == kind)
        rule = policy.banks[kind]  # type: ignore[index]
        # The kind counts once, through its strongest signal (max keeps the first by name on a tie).
        strongest = max(found, key=lambda f: rule.for_signal(f[0])[0])[0]
        for sig, dist in found:
            contribution = rule.for_signal(sig)[0]
            if sig == strongest:
                signals.append(Signal(name=f"bank.{kind}.{sig}", value=dist, contribution=contribution))
            else:
                signals.append(Signal(name=f"bank.{kind}.{sig}", value=dist, contribution=0.0,
                                      note=f"bank.{kind} counted once, through bank.{kind}.{strongest}"))
    return signals


def _override(matches: list[Match], policy: Policy) -> tuple[Action, str, bool] | None:
    """The forced (action, explanation, escalate) of the first matched bank kind in OVERRIDE_ORDER that forces one."""
    for kind in OVERRIDE_ORDER:
        rule = policy.banks[kind]
        forced: list[tuple[Action, str, bool]] = []
        for sig in sorted({m.signal for m in matches if m.kind == kind}):
            _, action, escalate = rule.for_signal(sig)
            if action is not None:
                forced.append((action, sig, escalate))
        if forced:
            # Several signals of one kind forcing different actions: the most restrictive wins.
            action, sig, _ = max(forced, key=lambda f: SEVERITY.index(f[0]))
            escalate = any(f[2] for f in forced)
            return action, f"bank.{kind}.{sig} match => {action}" + (" and escalate" if escalate else ""), escalate
    return None


def _evaluate(inputs: ScoreInputs, policy: Policy) -> _Decision:
    """One policy's decision on ``inputs``; ``score`` runs it for the active and the shadow policy."""
    signals = [_weighted(f"classifier.{key}", value, policy) for key, value in sorted(inputs.classifier.items())]
    provenance = inputs.provenance
    if provenance is not None and provenance.ai_generated:
        signals.append(_weighted("provenance.ai_generated", 1.0, policy))
    if provenance is not None and provenance.c2pa.state == "invalid":
        signals.append(_weighted("provenance.c2pa_invalid", 1.0, policy))
    if inputs.faces is not None:
        signals.append(_weighted("faces.present", 1.0 if inputs.faces else 0.0, policy))
        signals.append(_weighted("faces.count", float(inputs.faces), policy))
    signals.extend(_bank_signals(inputs.matches, policy))
    if inputs.history is not None:
        signals.extend(_weighted(name, value, policy) for name, value in inputs.history.signals().items())
    risk = round(min(1.0, max(0.0, sum(s.contribution for s in signals))), 6)

    action: Action = next((t.action for t in policy.thresholds if risk >= t.min_risk), "allow")
    override, escalate = None, False
    forced = _override(inputs.matches, policy)
    if forced is not None:
        action, override, escalate = forced
    else:
        # A bank entry may carry its own action (set by whoever added it) when no policy rule covers its kind.
        explicit = [m for m in inputs.matches if m.action and m.kind != "allow"]
        if explicit:
            action = explicit[0].action  # type: ignore[assignment]
            override = f"bank {explicit[0].bank} entry action => {action}"
    return _Decision(risk=risk, action=action, signals=signals, override=override, escalate=escalate)


def score(inputs: ScoreInputs, active: Policy, shadow: Policy | None = None) -> ScoreResult:
    """Decide with the active policy and record what the shadow policy would have done.

    The result names the active policy's version, lists every signal with its value and
    contribution, and says whether the decision escalates. ``shadow`` (when given) is
    evaluated on the same inputs; only its version, risk, action, escalation and whether
    any of them differ from the active decision are kept. Nothing acts on it.

    >>> result = score(ScoreInputs(classifier={"open_nsfw.nsfw": 0.9}), load_policy())  # doctest: +SKIP
    >>> result.action, result.policy_version                                            # doctest: +SKIP
    ('limit', '2026-12-02.2')
    """
    decision = _evaluate(inputs, active)
    shadow_decision = None
    if shadow is not None:
        other = _evaluate(inputs, shadow)
        shadow_decision = models.ShadowDecision(
            policy_version=shadow.version, risk=other.risk, action=other.action, escalate=other.escalate,
            override=other.override, differs=(other.action, other.escalate) != (decision.action, decision.escalate),
        )
    return ScoreResult(risk=decision.risk, action=decision.action, signals=decision.signals,
                       policy_version=active.version, override=decision.override, escalate=decision.escalate,
                       shadow=shadow_decision)
