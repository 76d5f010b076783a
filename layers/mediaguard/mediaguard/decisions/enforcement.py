"""Progressive enforcement: the one place an action takes effect, for the pipeline and for people.

Actions, mildest first (``apply``):

* ``allow``: serve the sanitized copy.
* ``label``: serve it with label data (a category code and a default text) the platform shows.
* ``blur``: serve a blurred JPEG derivative instead (of the poster frame for a video), labelled.
* ``limit``: serve it with distribution ``limited``: the platform must stop recommending it.
* ``review``: serve nothing until a person decides; the item goes to ``ports.ReviewQueue``.
* ``remove``: withdraw it. The original (the upload version the pipeline scanned, pinned at
  start) and the sanitized copy are copied to the evidence store and verified (the SHA-256
  S3 computes over each copy must equal the hash recorded at ingestion); the audit chain
  then records what is about to be deleted; only then is that upload version (every version
  for an item that pinned none) deleted, and every object under ``media/<id>/``.

``restore`` is the way back after an overturned decision: the sanitized copy (and poster)
return from the evidence store, verified the same way, and the new action applies.

Idempotency: Step Functions and reviewers' clients retry. ``apply`` moves the item to the
state its action implies with steps that are each safe to repeat, and records progress on
the item (``enforcement.decision.state``: applying, audited, emitted). A retry of the same
action resumes with the same decision id; a repeat after completion changes nothing and
returns ``changed=False``. An audit record is written before the item marks its step done,
so a crash in between repeats an audit record (visible, harmless) and never loses one.

Item fields written: ``action``, ``served_key``, ``derivative_key`` and ``enforcement``
(JSON: ``decision``, ``custody``, ``evidence``, ``pending_delete``).
"""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from aws_lambda_powertools import Logger
from PIL import Image, ImageFilter
from pydantic import BaseModel, ConfigDict, Field

from mediaguard.decisions.events import DecisionEvent, Distribution, EventDeliveryError
from mediaguard.errors import MediaguardError
from mediaguard.ingress.media import load_rgb, open_image
from mediaguard.models import OWN_GENERATIONS_BANK, Action
from mediaguard.ports import Deps, EnforcementPorts

logger = Logger(service="mediaguard", child=True)

ACTIONS: frozenset[str] = frozenset(get_args(Action))
# "system:<stage>" or "reviewer:<JWT subject>"; only the part before the colon leaves the system.
ACTOR = re.compile(r"^(system|reviewer):\S{1,128}$")
# A code, never free text: reason codes reach the platform, free text could carry personal data.
REASON = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
DISTRIBUTION: dict[str, Distribution] = {
    "allow": "normal", "label": "normal", "blur": "normal", "limit": "limited", "review": "withheld",
    "remove": "removed",
}
DERIVATIVE_NAME = "blurred.jpg"
Custody = Literal["live", "preserved", "evidence"]


class EnforcementError(MediaguardError):
    reason = "enforcement_failed"


class ItemNotFoundError(EnforcementError):
    reason = "item_not_found"


class EvidenceMismatchError(EnforcementError):
    """The evidence copy does not hash to what was recorded: nothing is deleted."""

    reason = "evidence_mismatch"


class Label(BaseModel):
    """What the platform shows next to the item: a category code and a default English text."""

    category: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    text: str = Field(min_length=1, max_length=200)


SENSITIVE = Label(category="sensitive", text="Sensitive content")
AI_GENERATED = Label(category="ai_generated", text="Made with AI")
# Labels by reason code; anything else that needs a label is "sensitive".
DEFAULT_LABELS: dict[str, Label] = {
    "provenance.ai_generated": AI_GENERATED,
    "synthetic_undisclosed": AI_GENERATED,
    # A re-upload of the platform's own generated output (models.OWN_GENERATIONS_BANK).
    "ai_generated_own": AI_GENERATED,
}
LABELLED = frozenset({"label", "blur"})  # blurred media gets a click-through label too


class EnforcementContext(BaseModel):
    """Optional inputs of a decision. Unknown keys (a reviewer's note, the review lane) are
    accepted and ignored: they are never stored or sent anywhere from here."""

    model_config = ConfigDict(extra="ignore")

    risk: float | None = Field(default=None, ge=0.0, le=1.0)
    reach: int | None = Field(default=None, ge=0)
    policy_version: str | None = None
    label: Label | None = None
    sanitized_key: str | None = None
    # Video: the still to blur (the first frame). Defaults to the item's sanitized copy.
    poster_key: str | None = None


class EvidenceObject(BaseModel):
    role: Literal["original", "sanitized", "poster"]
    source_bucket: str
    source_key: str
    evidence_key: str
    sha256: str | None
    size: int | None
    # "missing": the source no longer existed (expired by lifecycle) and nothing was preserved.
    state: Literal["preserved", "missing"]
    # The original's pinned upload version (models.Upload.version_id): what was copied, and
    # the only version removal deletes. The evidence copy's own version is what restore reads.
    source_version_id: str | None = None
    evidence_version_id: str | None = None


class Decision(BaseModel):
    """The outcome of ``apply``/``restore``; ``event()`` is what the platform receives."""

    decision_id: str
    media_id: str
    action: Action
    previous_action: Action | None
    actor: str
    reason: str
    policy_version: str | None
    risk: float | None
    label: Label | None
    distribution: Distribution
    served_key: str | None
    derivative_key: str | None
    overturned: bool = False
    decided_at: str
    changed: bool = True

    def event(self) -> DecisionEvent:
        """The platform's view: codes and ids only; the reviewer's id becomes "reviewer"."""
        return DecisionEvent(
            decision_id=self.decision_id, media_id=self.media_id, action=self.action,
            previous_action=self.previous_action, actor_kind=self.actor.split(":", 1)[0],
            policy_version=self.policy_version, risk=self.risk, reason=self.reason,
            label=self.label.category if self.label else None, distribution=self.distribution,
            overturned=self.overturned, decided_at=self.decided_at,
        )


# --- entry points -------------------------------------------------------------------


def apply(
    media_id: str, action: str, *, actor: str, reason: str, context: dict[str, Any] | None = None, deps: Deps,
    fields: dict[str, Any] | None = None,
) -> Decision:
    """Make ``action`` the item's enforcement, audit it and tell the platform.

    Used by the pipeline (``actor="system:enforce"``) and by reviewers
    (``actor="reviewer:<sub>"``). ``reason`` is a code (``classifier.nsfw``, ``ncii``);
    ``context`` may carry ``risk``, ``reach``, ``policy_version``, ``label``,
    ``sanitized_key`` and ``poster_key``. ``fields`` are more item fields written with the
    decision's last update (the pipeline's ``status: done``: one write fewer). Safe to repeat::

        apply("m1", "blur", actor="system:enforce", reason="classifier.nsfw",
              context={"risk": 0.56, "policy_version": "2026-11-23.2"}, deps=deps)
    """
    return _decide(media_id, action, actor, reason, context, deps, overturned=False, fields=fields)


def restore(
    media_id: str, *, actor: str, reason: str, deps: Deps, action: str = "allow",
    context: dict[str, Any] | None = None,
) -> Decision:
    """Overturn the item's decision: bring served copies back from evidence, then apply ``action``.

    For an upheld appeal (``reason="reviewer_error"``, say). The original stays in the
    evidence store; the sanitized copy and poster return to the media bucket byte for
    byte (their SHA-256 is checked against the evidence record). Audited as ``restored``;
    the event says ``overturned: true``. Restoring an item that was never removed just
    applies ``action``.
    """
    if action in ("remove", "review"):
        raise ValueError("restore ends in a serving action (allow, label, blur or limit)")
    return _decide(media_id, action, actor, reason, context, deps, overturned=True)


def reason_from_score(score: Any) -> str:
    """The reason code of an automated decision (``models.ScoreResult``): the bank
    override that forced the action, else the signal that contributed most."""
    if score.override:
        # The own-generations bank's entries carry action "label" (no policy rule covers
        # flag banks' actions), so its matches arrive as "bank own-generations entry action".
        if score.override.startswith(f"bank {OWN_GENERATIONS_BANK} "):
            return "ai_generated_own"
        head = score.override.split(" ", 1)[0].lower()
        return head if head.startswith("bank.") and REASON.match(head) else "bank.action"
    top = max(score.signals, key=lambda s: s.contribution, default=None)
    if top is None or top.contribution <= 0:
        return "policy.no_signal"
    name = top.name.lower()
    return name if REASON.match(name) else "policy.threshold"


# Long side of a blurred derivative (2048 px keeps 68 px of blur radius on it).
BLUR_MAX_SIDE = 2048


def blur_image(data: bytes, max_pixels: int) -> bytes:
    """A blurred JPEG derivative strong enough that nothing explicit survives.

    The radius scales with the image (1/30 of the long side, at least 8 px on a >= 512 px
    decode), so a thumbnail and a 12 MP photo lose the same share of detail. Nothing finer
    than that radius survives, so the derivative is made at (and served at) most
    :data:`BLUR_MAX_SIDE` on the long side: blurring a 64 MP PNG at full size peaked at
    854 MB in a 1024 MB function.
    """
    rgb = load_rgb(open_image(data, max_pixels), min_side=512)
    if max(rgb.size) > BLUR_MAX_SIDE:
        rgb.thumbnail((BLUR_MAX_SIDE, BLUR_MAX_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    radius = max(8, max(rgb.size) // 30)
    buf = io.BytesIO()
    rgb.filter(ImageFilter.GaussianBlur(radius)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def ports_of(deps: Deps) -> EnforcementPorts:
    """Enforcement's adapters from ``deps.enforcement`` (built by
    ``adapters.enforcement.enforcement_ports``); a clear error when they are not wired."""
    if not isinstance(deps.enforcement, EnforcementPorts):
        raise EnforcementError("deps.enforcement is not configured", reason="misconfigured")
    return deps.enforcement


# --- the decision --------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _require(value: str | None, name: str) -> str:
    if not value:
        raise EnforcementError(f"setting {name} is not configured", reason="misconfigured")
    return value


def _label(action: str, reason: str, ctx: EnforcementContext) -> Label | None:
    if ctx.label is not None:
        return ctx.label
    if action in LABELLED:
        return DEFAULT_LABELS.get(reason, SENSITIVE)
    return None


def _settled_action(last: dict | None) -> str | None:
    """The action in force before this decision: an unfinished decision never took effect."""
    if last is None:
        return None
    return last["action"] if last.get("state") in ("audited", "emitted") else last.get("previous_action")


def _decide(media_id: str, action: str, actor: str, reason: str, context: dict | None, deps: Deps, *,
            overturned: bool, fields: dict[str, Any] | None = None) -> Decision:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not ACTOR.match(actor):
        raise ValueError("actor must be system:<name> or reviewer:<id>")
    if not REASON.match(reason):
        raise ValueError("reason must be a code like classifier.nsfw, not free text")
    ctx = EnforcementContext.model_validate(context or {})
    ports = ports_of(deps)
    item = deps.items.get(media_id)
    if item is None:
        raise ItemNotFoundError(f"no item {media_id}")
    record: dict[str, Any] = dict(item.get("enforcement") or {})
    last = record.get("decision")
    label = _label(action, reason, ctx)
    label_json = label.model_dump() if label else None
    same = last is not None and last["action"] == action and last.get("label") == label_json
    if same and last["state"] == "emitted":
        if fields:
            deps.items.update(media_id, fields)
        logger.info("decision already applied",
                    extra={"media_id": media_id, "action": action, "decision_id": last["decision_id"]})
        return Decision.model_validate({**last, "changed": False})

    state = last["state"] if same else "applying"
    decision = Decision(
        decision_id=last["decision_id"] if same else uuid.uuid4().hex,
        media_id=media_id,
        action=action,
        previous_action=last["previous_action"] if same else _settled_action(last),
        actor=actor,
        reason=reason,
        policy_version=ctx.policy_version or item.get("policy_version"),
        risk=ctx.risk if ctx.risk is not None else _float(item.get("risk")),
        label=label,
        distribution=DISTRIBUTION[action],
        served_key=last.get("served_key") if same else None,
        derivative_key=last.get("derivative_key") if same else None,
        overturned=last.get("overturned", overturned) if same else overturned,
        decided_at=last["decided_at"] if same else _now(),
    )
    if not same:
        record["decision"] = _stored(decision, "applying")
        deps.items.update(media_id, {"enforcement": record})

    if state == "applying":
        served, derivative, detail = _reconcile(decision, item, record, ctx, deps, ports)
        _mark_served(item.get("served_key"), served, action, deps)
        decision = decision.model_copy(update={"served_key": served, "derivative_key": derivative})
        deps.items.append_audit(
            media_id, actor, "restored" if decision.overturned else "enforced",
            {**_stored(decision, None), **detail},
        )
        record["decision"] = _stored(decision, "audited")
        deps.items.update(media_id, {"action": action, "served_key": served, "derivative_key": derivative,
                                     "enforcement": record})

    _emit(decision.event(), ports)
    record["decision"] = _stored(decision, "emitted")
    deps.items.update(media_id, {"enforcement": record, **(fields or {})})
    logger.info("enforced", extra={"media_id": media_id, "action": action, "previous_action": decision.previous_action,
                                   "decision_id": decision.decision_id, "overturned": decision.overturned})
    return decision


# The edge distribution may read only objects carrying this tag (template.yaml,
# MediaBucketPolicy): what a decision serves is tagged, what it stops serving untagged, so
# a blurred or withheld item's sanitized copy is not one predictable URL away.
SERVED_TAG = "mediaguard-served"


def _mark_served(previous: str | None, served: str | None, action: str, deps: Deps) -> None:
    bucket = deps.settings.media_bucket
    if not bucket or deps.blobs is None:
        return
    if served:
        deps.blobs.tag(bucket, served, {SERVED_TAG: "true"})
    # A removal has already deleted what was served; anything else leaves it in place.
    if previous and previous != served and action != "remove":
        deps.blobs.tag(bucket, previous, {SERVED_TAG: "false"})


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _stored(decision: Decision, state: str | None) -> dict[str, Any]:
    data = decision.model_dump(mode="json", exclude={"changed"})
    if state is not None:
        data["state"] = state
    return data


def _emit(event: DecisionEvent, ports: EnforcementPorts) -> None:
    """Every sink is tried; the first failure is raised afterwards so a retry re-sends
    (consumers deduplicate on decision_id)."""
    failures: list[EventDeliveryError] = []
    for sink in ports.sinks:
        try:
            sink.publish(event)
        except EventDeliveryError as exc:
            logger.warning("event not delivered", extra={"media_id": event.media_id, "decision_id": event.decision_id,
                                                         "sink": type(sink).__name__, "reason": exc.reason})
            failures.append(exc)
    if failures:
        raise failures[0]


# --- reconcile: make the stored objects match the action -----------------------------


def _reconcile(decision: Decision, item: dict, record: dict, ctx: EnforcementContext, deps: Deps,
               ports: EnforcementPorts) -> tuple[str | None, str | None, dict[str, Any]]:
    """Served key, derivative key and extra audit detail; every step is safe to repeat."""
    settings = deps.settings
    media_bucket = _require(settings.media_bucket, "MEDIA_BUCKET")
    media_id, action = decision.media_id, decision.action
    if action == "remove":
        evidence = _withdraw(decision, item, record, ctx, deps, ports)
        return None, None, {"evidence": [_evidence_summary(e) for e in evidence]}
    detail: dict[str, Any] = {}
    if record.get("custody", "live") != "live":
        detail["restored"] = _bring_back(record, deps, ports)
    sanitized = ctx.sanitized_key or item.get("sanitized_key")
    if action == "review":
        if ports.review is None:
            raise EnforcementError("no review queue is configured", reason="misconfigured")
        risk = decision.risk if decision.risk is not None else 0.0
        reach = ctx.reach if ctx.reach is not None else item.get("reach")
        ports.review.enqueue(media_id, risk, int(reach) if reach is not None else None, decision.reason)
        return None, None, detail
    if action == "blur":
        derivative = _blur(media_id, media_bucket, item, ctx, sanitized, deps, ports)
        return derivative, derivative, detail
    return sanitized, None, detail


def _blur(media_id: str, bucket: str, item: dict, ctx: EnforcementContext, sanitized: str | None, deps: Deps,
          ports: EnforcementPorts) -> str:
    derivative = f"media/{media_id}/{DERIVATIVE_NAME}"
    if ports.custody.head(bucket, derivative) is not None:
        return derivative  # written by an earlier attempt
    source = ctx.poster_key or item.get("poster_key")
    # Audio has no picture to blur: like a video without its poster, a typed refusal.
    if source is None and item.get("media_type", "image") not in ("video", "audio"):
        source = sanitized
    if not source:
        raise EnforcementError("blurring a video needs its poster frame (context poster_key)",
                               reason="poster_required")
    data, _ = deps.blobs.get(bucket, source)
    deps.blobs.put(bucket, derivative, blur_image(data, deps.settings.max_pixels), "image/jpeg")
    return derivative


def _evidence_key(media_id: str, role: str, source_key: str) -> str:
    if role == "original":
        return f"evidence/{media_id}/original"
    return f"evidence/{media_id}/media/{source_key.rsplit('/', 1)[-1]}"


def _evidence_summary(e: dict) -> dict:
    summary = {k: e[k] for k in ("role", "evidence_key", "sha256", "size", "state")}
    if e.get("source_version_id"):
        summary["version_id"] = e["source_version_id"]
    return summary


def _withdraw(decision: Decision, item: dict, record: dict, ctx: EnforcementContext, deps: Deps,
              ports: EnforcementPorts) -> list[dict]:
    """Copy to evidence and verify, audit what will be deleted, then delete. Resumable at each step."""
    custody, settings, media_id = ports.custody, deps.settings, decision.media_id
    if record.get("custody") == "evidence":
        return record.get("evidence", [])
    media_bucket = _require(settings.media_bucket, "MEDIA_BUCKET")
    if record.get("custody") != "preserved":
        evidence_bucket = _require(settings.evidence_bucket, "EVIDENCE_BUCKET")
        evidence = [
            _preserve(role, bucket, key, version, expected, evidence_bucket, _evidence_key(media_id, role, key),
                      custody)
            for role, bucket, key, version, expected in _evidence_sources(item, ctx, media_bucket)
        ]
        pending = []
        upload_bucket, upload_key = item.get("upload_bucket"), item.get("upload_key")
        if upload_bucket and upload_key:
            # Exactly the scanned version when one was pinned: later versions of the key
            # (a reused upload form, refused by the start stage) were never scanned, are
            # not what this decision is about, and stay tagged for an investigator.
            pending.append({"bucket": upload_bucket, "key": upload_key, "version_id": item.get("upload_version_id")})
        pending += [{"bucket": media_bucket, "key": key} for key in custody.list(media_bucket, f"media/{media_id}/")]
        # The chain records every object about to be deleted, and where its evidence copy is,
        # before the first delete: a crash after this point leaves a plan, never a silent gap.
        detail: dict[str, Any] = {
            "decision_id": decision.decision_id,
            "evidence": [_evidence_summary(e) for e in evidence],
            "to_delete": [p["key"] for p in pending],
        }
        if item.get("replaced_versions"):
            detail["refused_versions_kept"] = sorted(item["replaced_versions"])
        deps.items.append_audit(media_id, decision.actor, "evidence_preserved", detail)
        record.update(custody="preserved", evidence=evidence, pending_delete=pending)
        deps.items.update(media_id, {"enforcement": record})
    by_bucket: dict[str, list[str]] = {}
    deleted = 0
    for entry in record.get("pending_delete", []):
        if entry.get("version_id"):
            deleted += custody.delete_version(entry["bucket"], entry["key"], entry["version_id"])
        else:
            by_bucket.setdefault(entry["bucket"], []).append(entry["key"])
    deleted += sum(custody.delete(bucket, keys) for bucket, keys in by_bucket.items())
    logger.info("withdrawn", extra={"media_id": media_id, "versions_deleted": deleted})
    record["custody"] = "evidence"
    record.pop("pending_delete", None)
    return record["evidence"]


def _evidence_sources(item: dict, ctx: EnforcementContext, media_bucket: str):
    """(role, bucket, key, version id or None, expected sha256 or None) of what removal must
    preserve. The original is the version the pipeline scanned and hashed (``sha256``)."""
    if item.get("upload_bucket") and item.get("upload_key"):
        yield "original", item["upload_bucket"], item["upload_key"], item.get("upload_version_id"), item.get("sha256")
    sanitized = ctx.sanitized_key or item.get("sanitized_key")
    if sanitized:
        recorded = item.get("sanitized_sha256") if sanitized == item.get("sanitized_key") else None
        yield "sanitized", media_bucket, sanitized, None, recorded
    poster = ctx.poster_key or item.get("poster_key")
    if poster and poster != sanitized:
        yield "poster", media_bucket, poster, None, None


def _preserve(role: str, bucket: str, key: str, version_id: str | None, expected: str | None,
              evidence_bucket: str, evidence_key: str, custody: Any) -> dict:
    """Copy one object (that version, when given) into evidence unless a verified copy is already there."""
    existing = custody.head(evidence_bucket, evidence_key)
    source = custody.head(bucket, key, version_id)
    if source is None and existing is None:
        # Expired by the upload bucket's lifecycle, or never written: nothing left to keep.
        return EvidenceObject(role=role, source_bucket=bucket, source_key=key, evidence_key=evidence_key,
                              sha256=expected, size=None, state="missing", source_version_id=version_id).model_dump()
    if source is None:
        kept = existing  # preserved by an earlier attempt, deleted from its source since
    else:
        if expected is None:
            expected = source.sha256 or custody.digest(bucket, key, version_id)
        if existing is not None and _sha(existing, custody) == expected:
            kept = existing  # copied by an earlier attempt
        else:
            kept = custody.copy(bucket, key, evidence_bucket, evidence_key, src_version_id=version_id)
    actual = _sha(kept, custody)
    if expected is not None and actual != expected:
        raise EvidenceMismatchError(f"evidence copy of the {role} does not hash to the recorded sha256")
    return EvidenceObject(role=role, source_bucket=bucket, source_key=key, evidence_key=evidence_key,
                          sha256=actual, size=kept.size, state="preserved", source_version_id=version_id,
                          evidence_version_id=kept.version_id).model_dump()


def _sha(obj: Any, custody: Any) -> str | None:
    return obj.sha256 or custody.digest(obj.bucket, obj.key, obj.version_id)


def _bring_back(record: dict, deps: Deps, ports: EnforcementPorts) -> list[str]:
    """Copy every served object that removal took away back from evidence, verified.

    The original stays in the evidence store (that copy is the chain of custody); pending
    deletions of an interrupted removal are cancelled.
    """
    evidence_bucket = _require(deps.settings.evidence_bucket, "EVIDENCE_BUCKET")
    restored = []
    for entry in record.get("evidence", []):
        if entry["role"] == "original" or entry["state"] != "preserved":
            continue
        if ports.custody.head(entry["source_bucket"], entry["source_key"]) is not None:
            continue  # never deleted, or restored by an earlier attempt
        # The evidence version preserved and verified at removal, not whatever the key holds now.
        copied = ports.custody.copy(evidence_bucket, entry["evidence_key"], entry["source_bucket"], entry["source_key"],
                                    src_version_id=entry.get("evidence_version_id"))
        if _sha(copied, ports.custody) != entry["sha256"]:
            raise EvidenceMismatchError(f"restored {entry['role']} does not hash to its evidence record")
        restored.append(entry["source_key"])
    record["custody"] = "live"
    record.pop("pending_delete", None)
    return restored
