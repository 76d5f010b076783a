"""Legal and government orders: record, enforce through the existing paths, track the deadline.

An order names an issuer, a legal basis, a jurisdiction, a scope (``items``: media ids;
``hashes``: SHA-256 of originals; ``uploader``: an uploader, stored only as its keyed hash),
the countries it applies in (``*``: worldwide) and a deadline. Enforcing it:

* countries given: one geofence rule per (country, item), ``media:<id>``, which the edge
  answers with HTTP 451 citing the order (``decisions.geofence``); an ``uploader`` order also
  gets an ``uploader-key:<hash>`` rule per country, recorded for platforms that apply it;
* worldwide: the item is removed through ``decisions.enforcement.apply`` (evidence preserved
  under Object Lock first, as for any removal), reason code ``legal_request``.

``enforced_at`` against ``deadline`` is the compliance the transparency report counts. Every
step is audited: the order's own chain ``legal:<order_id>`` (recorded, enforced), the
``geofence:<CC>`` chains for rules, and each item's chain (via enforcement). Items under a
non-withdrawn order are on legal hold: an erasure request keeps them (``decisions.erasure``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mediaguard.decisions import enforcement, geofence
from mediaguard.decisions.history import Pseudonymiser
from mediaguard.decisions.report import compliance
from mediaguard.ports import Deps

ScopeKind = Literal["items", "hashes", "uploader"]
OrderStatus = Literal["recorded", "enforced", "withdrawn"]
WORLDWIDE = "*"
ACTOR = "system:legal"
REASON = "legal_request"
_MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class LegalOrderError(ValueError):
    """An order that cannot be recorded as given (bad scope, target, country or deadline)."""

    reason = "invalid_order"


class ExpiredOrderError(LegalOrderError):
    """An order whose ``expires_at`` has passed: enforcing it now would restrict without end."""

    reason = "order_expired"


class OrderRequest(BaseModel):
    """An order as an operator enters it (CLI or ``POST /admin/legal``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    issuer: str = Field(min_length=1, max_length=200)
    legal_basis: str = Field(min_length=1, max_length=geofence.MAX_REFERENCE_CHARS)
    jurisdiction: str = Field(min_length=2, max_length=64)
    scope: ScopeKind
    targets: list[str] = Field(min_length=1, max_length=1000)
    countries: list[str] = Field(min_length=1, max_length=250)
    deadline: datetime
    reference: str | None = Field(default=None, max_length=geofence.MAX_REFERENCE_CHARS)
    expires_at: datetime | None = None

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        codes = sorted({c.strip().upper() for c in value})
        if WORLDWIDE in codes:
            return [WORLDWIDE]
        bad = [c for c in codes if c not in geofence.COUNTRY_CODES]
        if bad:
            raise ValueError(f"not ISO 3166-1 alpha-2 codes (or * for worldwide): {', '.join(bad)}")
        return codes

    @field_validator("deadline", mode="before")
    @classmethod
    def _whole_day(cls, value: Any) -> Any:
        # A deadline given as a date ("by 2026-12-03") runs to the end of that day (UTC):
        # read as its first instant, an order enforced that morning counted as late.
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            return datetime.combine(date.fromisoformat(value.strip()), time.max, UTC)
        return value

    @field_validator("deadline", "expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class LegalOrder(BaseModel):
    """An order as stored. ``targets`` of an uploader order hold the keyed hash, never the id."""

    order_id: str
    issuer: str
    legal_basis: str
    jurisdiction: str
    scope_kind: ScopeKind
    targets: list[str]
    countries: list[str]
    deadline: datetime
    reference: str
    received_at: datetime
    recorded_by: str
    status: OrderStatus = "recorded"
    expires_at: datetime | None = None
    enforced_at: datetime | None = None
    # What enforcing did: [{media_id, action: "geofence" | "remove", countries}]
    enforcement: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def worldwide(self) -> bool:
        return self.countries == [WORLDWIDE]

    def view(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "compliance": compliance(self.model_dump(), datetime.now(UTC))}


class LegalOrderStore(Protocol):
    def put(self, order: LegalOrder) -> None: ...

    def get(self, order_id: str) -> LegalOrder | None: ...

    def list(self) -> list[LegalOrder]: ...


class ItemFinder(Protocol):
    """Items by what an order can name besides their id."""

    def by_sha256(self, digests: list[str]) -> list[str]:
        """Media ids whose original hashes to one of ``digests``."""

    def by_uploader(self, key: str) -> list[str]:
        """Media ids uploaded by the uploader with this keyed hash."""


@dataclass
class LegalPorts:
    orders: LegalOrderStore
    geofence: geofence.GeofenceStore
    finder: ItemFinder
    deps: Deps  # items (audit) and enforcement
    pseudonymiser: Pseudonymiser | None = None
    enforcer: Any = None  # None: mediaguard.decisions.enforcement
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def record(request: OrderRequest, who: str, ports: LegalPorts) -> LegalOrder:
    """Validate and store an order, audited on ``legal:<order_id>``; not yet enforced."""
    if request.expires_at is not None and request.expires_at <= ports.clock():
        # Stored, it would sit "recorded" and later count as overdue: refused before that.
        raise ExpiredOrderError(f"the order expired at {request.expires_at.isoformat()}")
    targets = _targets(request, ports.pseudonymiser)
    reference = request.reference or f"{request.issuer}: {request.legal_basis}"
    try:  # it becomes the 451's header at the edge: refused here, before anything is stored
        reference = geofence.check_reference(reference[:geofence.MAX_REFERENCE_CHARS])
    except geofence.GeofenceRuleError as exc:
        raise LegalOrderError(f"the order's reference cannot be shown at the edge: {exc}") from None
    order = LegalOrder(order_id=f"lo-{secrets.token_hex(6)}", issuer=request.issuer, legal_basis=request.legal_basis,
                       jurisdiction=request.jurisdiction, scope_kind=request.scope, targets=targets,
                       countries=request.countries, deadline=request.deadline, reference=reference,
                       received_at=ports.clock(), recorded_by=who, expires_at=request.expires_at)
    ports.orders.put(order)
    ports.deps.items.append_audit(f"legal:{order.order_id}", who, "legal_order_recorded", {
        "issuer": order.issuer, "legal_basis": order.legal_basis, "jurisdiction": order.jurisdiction,
        "scope": order.scope_kind, "targets": order.targets, "countries": order.countries,
        "deadline": order.deadline.isoformat()})
    return order


def _targets(request: OrderRequest, pseudonymiser: Pseudonymiser | None) -> list[str]:
    values = sorted({t.strip() for t in request.targets if t.strip()})
    if request.scope == "uploader":
        if pseudonymiser is None:
            raise LegalOrderError("an uploader order needs the uploader key: only its keyed hash is stored")
        return sorted({pseudonymiser.key(v) for v in values})
    pattern = _MEDIA_ID if request.scope == "items" else _SHA256
    if not values or any(not pattern.match(v) for v in values):
        raise LegalOrderError(f"every target of a {request.scope} order must be "
                              + ("a media id" if request.scope == "items" else "a lower-case hex SHA-256"))
    return values


def affected_items(order: LegalOrder, finder: ItemFinder) -> list[str]:
    if order.scope_kind == "items":
        return list(order.targets)
    if order.scope_kind == "hashes":
        return sorted(set(finder.by_sha256(order.targets)))
    return sorted({m for key in order.targets for m in finder.by_uploader(key)})


def enforce(order_id: str, who: str, ports: LegalPorts) -> LegalOrder:
    """Apply the order to every item it names now (safe to repeat: rules are replaced, removal
    is idempotent); ``enforced_at`` is set the first time and kept after."""
    order = ports.orders.get(order_id)
    if order is None:
        raise LookupError(f"no legal order {order_id}")
    if order.status == "withdrawn":
        raise LegalOrderError("a withdrawn order is not enforced")
    now = ports.clock()
    expires = order.expires_at
    if expires is not None and expires <= now:
        # A geofence rule without the passed expiry would outlive the order: refuse instead.
        raise ExpiredOrderError(f"order {order.order_id} expired at {expires.isoformat()}")
    done: list[dict[str, Any]] = []
    # The rules in force, read once (a Scan) and kept current as this order writes its own.
    rules = {(r.country, r.scope): r for r in ports.geofence.list()}
    for media_id in affected_items(order, ports.finder):
        if ports.deps.items.get(media_id) is None:
            done.append({"media_id": media_id, "action": "not_found"})
            continue
        if order.worldwide:
            enforcer = ports.enforcer or enforcement
            enforcer.apply(media_id, "remove", actor=ACTOR, reason=REASON, deps=ports.deps)
            done.append({"media_id": media_id, "action": "remove"})
        else:
            for country in order.countries:
                _rule(country, f"media:{media_id}", order, expires, now, who, ports, rules)
            done.append({"media_id": media_id, "action": "geofence", "countries": order.countries})
        ports.deps.items.append_audit(media_id, who, "legal_order_applied",
                                      {"order_id": order.order_id, "action": done[-1]["action"]})
    if order.scope_kind == "uploader" and not order.worldwide:
        for key in order.targets:
            for country in order.countries:
                _rule(country, f"uploader-key:{key}", order, expires, now, who, ports, rules)
    first = order.enforced_at is None
    order = order.model_copy(update={"status": "enforced", "enforced_at": order.enforced_at or now,
                                     "enforcement": done})
    ports.orders.put(order)
    ports.deps.items.append_audit(f"legal:{order.order_id}", who, "legal_order_enforced", {
        "items": [d["media_id"] for d in done], "actions": sorted({d["action"] for d in done}),
        "enforced_at": order.enforced_at.isoformat(), "first": first,
        "on_time": order.enforced_at <= order.deadline})
    return order


def _rule(country: str, scope: str, order: LegalOrder, expires: datetime | None, now: datetime, who: str,
          ports: LegalPorts, rules: dict[tuple[str, str], geofence.GeoRule]) -> None:
    rule = geofence.new_rule(country, scope, order.reference, expires, now=now)
    current = rules.get((rule.country, rule.scope))
    # A lapsed rule (its TTL deletion pending) no longer blocks anything: replaced, not merged.
    if current is not None and (current.expires_at is None or current.expires_at > now.timestamp()):
        rule = _merged(current, rule)
    ports.geofence.add(rule, replace=True)
    rules[(rule.country, rule.scope)] = rule
    ports.deps.items.append_audit(f"geofence:{rule.country}", who, "geofence_added",
                                  {"scope": rule.scope, "legal_reference": rule.legal_reference,
                                   "expires_at": rule.expires_at, "order_id": order.order_id})


def _merged(current: geofence.GeoRule, new: geofence.GeoRule) -> geofence.GeoRule:
    """One rule per country and scope (the edge's key): a second order on the same item and
    country must not shorten the first one's block. The rule lasts as long as the longer
    of the two (no expiry wins) and names both references when they fit the header."""
    expires = None if current.expires_at is None or new.expires_at is None else max(current.expires_at,
                                                                                    new.expires_at)
    # Already named as a whole "; "-separated part (a reference may itself hold "; "); an
    # empty reference (a row written by hand) adds nothing.
    if f"; {new.legal_reference}; " in f"; {current.legal_reference}; ":
        joined = current.legal_reference
    else:
        joined = "; ".join(r for r in (current.legal_reference.strip(), new.legal_reference) if r)
    if len(joined) > geofence.MAX_REFERENCE_CHARS:
        joined = current.legal_reference or new.legal_reference
    return new.model_copy(update={"expires_at": expires, "legal_reference": joined})


def held_items(orders: list[LegalOrder], finder: ItemFinder) -> dict[str, str]:
    """Media id -> the order holding it, for every order not withdrawn: what erasure must keep."""
    held: dict[str, str] = {}
    for order in orders:
        if order.status == "withdrawn":
            continue
        for entry in order.enforcement:
            held.setdefault(entry["media_id"], order.order_id)
        for media_id in affected_items(order, finder):
            held.setdefault(media_id, order.order_id)
    return held
