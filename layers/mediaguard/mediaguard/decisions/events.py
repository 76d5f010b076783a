"""Decision events for the platform, and the signature scheme of the optional webhook.

Every enforcement decision becomes one ``DecisionEvent``: ids, the action, the action
it replaced, who decided (the kind of actor, never the reviewer's id), the policy
version, the risk and a reason code. Never media, object keys, URLs or personal data;
the model forbids extra fields so nothing else can ride along.

Delivery is at least once (a retried stage sends again): consumers deduplicate on
``decision_id``.

Webhook signature (the scheme Stripe uses, so platform developers know it):

* header ``Mediaguard-Signature: t=<unix seconds>,v1=<hex>`` (one ``v1`` per active
  secret while a secret is being rotated);
* ``v1 = hex(HMAC-SHA256(key=secret as UTF-8, msg=f"{t}." as ASCII + raw body))``;
* the receiver recomputes ``v1`` over the raw bytes it received (before any JSON
  parsing), compares in constant time, and rejects a ``t`` more than 5 minutes away
  from its clock: a captured request cannot be replayed later.

``verify_signature`` does all three with the standard library only (``hmac``,
``hashlib``), so a platform can copy it and ``_mac`` into its own code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mediaguard.errors import MediaguardError
from mediaguard.models import Action

SOURCE = "mediaguard"
DETAIL_TYPE = "mediaguard.decision"
SIGNATURE_HEADER = "Mediaguard-Signature"
EVENT_ID_HEADER = "Mediaguard-Event-Id"
SCHEME = "v1"
# Stripe's default tolerance: long enough for clock skew and a slow retry, short enough
# that a captured request is useless soon after.
DEFAULT_TOLERANCE_SECONDS = 300
# A shorter key makes HMAC guessable offline from captured bodies; 32 random characters
# is the floor, the template generates 64.
MIN_SECRET_LENGTH = 32

ReasonCode = str
Distribution = Literal["normal", "limited", "withheld", "removed"]


class EventDeliveryError(MediaguardError):
    """A sink did not accept the event; the decision stands and re-sending is safe."""

    reason = "event_delivery_failed"


class WebhookSignatureError(MediaguardError):
    """The signature header is missing, malformed, stale or does not match the body."""

    reason = "bad_signature"


class DecisionEvent(BaseModel):
    """What the platform learns about one decision (EventBridge ``detail``, webhook ``data``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    decision_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    media_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    action: Action
    previous_action: Action | None
    actor_kind: Literal["system", "reviewer"]
    policy_version: str | None
    risk: float | None = Field(ge=0.0, le=1.0)
    reason: ReasonCode = Field(pattern=r"^[a-z][a-z0-9_.:-]{0,63}$")
    # A category code for the platform to render in its own words and language.
    label: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,31}$")
    distribution: Distribution
    # True when a person overturned an earlier decision (an upheld appeal).
    overturned: bool = False
    decided_at: str

    def webhook_body(self) -> bytes:
        """The exact bytes a webhook POSTs (and signs): a small envelope around the event."""
        envelope = {"id": self.decision_id, "type": DETAIL_TYPE, "data": self.model_dump(mode="json")}
        return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


def sign(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The ``Mediaguard-Signature`` header value for ``body`` sent at ``timestamp``.

    >>> sign(b'{"id":"x"}', ["a" * 32], 1700000000)  # doctest: +ELLIPSIS
    't=1700000000,v1=...'
    """
    if not secrets:
        raise ValueError("at least one webhook secret is needed")
    parts = [f"t={int(timestamp)}"]
    for secret in secrets:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"webhook secrets must be at least {MIN_SECRET_LENGTH} characters")
        parts.append(f"{SCHEME}={_mac(secret, int(timestamp), body)}")
    return ",".join(parts)


def verify_signature(
    body: bytes,
    header: str | None,
    secrets: str | Sequence[str],
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a webhook request; return its timestamp or raise ``WebhookSignatureError``.

    ``body`` must be the raw request bytes. ``secrets`` may list several keys (the
    receiver's side of a rotation). A timestamp further than ``tolerance_seconds``
    from ``now`` in either direction is refused, which bounds replays to that window;
    deduplicate on the event id to close it. Example (Flask)::

        verify_signature(request.get_data(), request.headers.get("Mediaguard-Signature"), SECRET)
    """
    if not header:
        raise WebhookSignatureError("no signature header")
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookSignatureError("malformed signature header")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookSignatureError("malformed signature timestamp") from None
        elif name == SCHEME:
            candidates.append(value)
        # Other schemes (a future v2) are ignored, as Stripe's clients do.
    if timestamp is None or not candidates:
        raise WebhookSignatureError("signature header lacks t= or v1=")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise WebhookSignatureError("signature timestamp outside the tolerance window")
    for key in keys:
        expected = _mac(key, timestamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return timestamp
    raise WebhookSignatureError("no signature matches the body")


def parse_webhook(body: bytes, header: str | None, secrets: str | Sequence[str], **options) -> DecisionEvent:
    """Verify, then parse: the decision a signed webhook request carries."""
    verify_signature(body, header, secrets, **options)
    return DecisionEvent.model_validate(json.loads(body)["data"])


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
