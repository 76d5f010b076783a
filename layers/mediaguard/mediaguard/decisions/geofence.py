"""Geofence rules: a legal restriction on serving media in one country, and its validation.

The edge viewer-request function (``edge/viewer_request/app.py``) reads every rule of
the geofence table and answers HTTP 451 with the rule's legal reference. It reads
exactly four attributes, and this module writes them in exactly its terms:

* ``country``: ISO 3166-1 alpha-2, upper case, as ``CloudFront-Viewer-Country`` sends it;
* ``scope``: ``global`` or ``path:<uri prefix>``; the edge enforces nothing else;
* ``legal_reference``: shown in the 451 body and the ``X-Mediaguard-Legal-Reference`` header;
* ``expires_at``: epoch seconds, or absent for no expiry (the edge ignores expired rules).

Scopes an operator writes, and what is stored:

==========================  ===============================  =====================
written                     stored (the table's range key)   enforced at the edge
==========================  ===============================  =====================
``global``                  ``global``                       yes
``media:<media id>``        ``path:/media/<media id>/``      yes (every rendition)
``path:<uri prefix>``       the same                         yes
``uploader:<platform id>``  ``uploader-key:<keyed hash>``    no: see below
``uploader-key:<hex>``      the same                         no
``label:<label>``           ``label:<label>``                no
==========================  ===============================  =====================

The viewer function sees only a URI and a country, so it cannot tell who uploaded an
item or how it was labelled; it skips these scopes (``Rule.applies`` is false for
them). They are stored so that the rule and its legal basis are on record, and every
view of them says ``enforced_at_edge: false`` rather than pretending otherwise.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, field_validator

from mediaguard.decisions.history import KEY_HEX_CHARS, Pseudonymiser

# ISO 3166-1 alpha-2, all 249 officially assigned codes (as of ISO/TC 46 N1108, 2023-04-05;
# the list tzdata ships in iso3166.tab). Reserved and user-assigned codes (EU, UK, XK) are
# refused: a legal order names a country, and CloudFront sends assigned codes.
COUNTRY_CODES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD
CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF
GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI
SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
VN VU WF WS YE YT ZA ZM ZW
""".split())

# Where the pipeline serves an item: media/<media_id>/sanitized.<ext> and blurred.jpg
# (pipeline.py), behind CloudFront as /media/<media_id>/...
MEDIA_URI_PREFIX = "/media/"
_MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")  # models.Upload.media_id
_LABEL = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
_UPLOADER_KEY = re.compile(rf"^[0-9a-f]{{{KEY_HEX_CHARS}}}$")
# CloudFront hands the function a percent-encoded URI: visible ASCII only.
_PATH = re.compile(r"^/[!-~]{1,511}$")
# Long enough for "LG Berlin, Beschluss vom 12.03.2026, Az. 27 O 123/26 (einstweilige
# Verfuegung)" several times over; short enough for a response header.
MAX_REFERENCE_CHARS = 300

ScopeKind = Literal["global", "media", "path", "uploader", "label"]
EDGE_SCOPES: frozenset[str] = frozenset({"global", "media", "path"})


class GeofenceRuleError(ValueError):
    """A rule that must not be written: bad country, scope, reference or expiry."""

    reason = "invalid_rule"


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    value: str = ""

    @property
    def stored(self) -> str:
        """The range-key form, the one the edge reads."""
        return {
            "global": "global",
            "media": f"path:{MEDIA_URI_PREFIX}{self.value}/",
            "path": f"path:{self.value}",
            "uploader": f"uploader-key:{self.value}",
            "label": f"label:{self.value}",
        }[self.kind]

    @property
    def shown(self) -> str:
        """The form an operator writes and reads back (``media:<id>`` rather than its path)."""
        return f"media:{self.value}" if self.kind == "media" else self.stored

    @property
    def enforced_at_edge(self) -> bool:
        return self.kind in EDGE_SCOPES


def parse_scope(text: str, pseudonymiser: Pseudonymiser | None = None) -> Scope:
    """A scope as written by an operator or as stored; raises ``GeofenceRuleError``.

    ``uploader:<platform id>`` needs the pseudonymiser: only the keyed hash is stored.

    >>> parse_scope("media:3f1c2b9e").stored
    'path:/media/3f1c2b9e/'
    >>> parse_scope("path:/media/3f1c2b9e/").shown
    'media:3f1c2b9e'
    """
    text = (text or "").strip()
    kind, sep, value = text.partition(":")
    if text == "global":
        return Scope("global")
    if kind == "media" and sep and _MEDIA_ID.match(value):
        return Scope("media", value)
    if kind == "path" and sep and _PATH.match(value):
        # A stored media rule reads back as one, so that list and remove agree.
        inner = value[len(MEDIA_URI_PREFIX):-1] if value.startswith(MEDIA_URI_PREFIX) and value.endswith("/") else ""
        return Scope("media", inner) if _MEDIA_ID.match(inner) else Scope("path", value)
    if kind == "uploader-key" and sep and _UPLOADER_KEY.match(value):
        return Scope("uploader", value)
    if kind == "uploader" and sep and value.strip():
        if pseudonymiser is None:
            raise GeofenceRuleError("an uploader scope needs the uploader key (MEDIAGUARD_UPLOADER_KEY): "
                                    "only its keyed hash is stored")
        return Scope("uploader", pseudonymiser.key(value.strip()))
    if kind == "label" and sep and _LABEL.match(value):
        return Scope("label", value)
    # Never echo the text: it may be an uploader id.
    raise GeofenceRuleError("scope must be global, media:<media id>, path:/<uri prefix>, uploader:<id>, "
                            "uploader-key:<32 hex>, or label:<lower-case label>")


def check_reference(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise GeofenceRuleError("a legal reference is required (statute, court order or notice id)")
    if len(text) > MAX_REFERENCE_CHARS:
        raise GeofenceRuleError(f"the legal reference is longer than {MAX_REFERENCE_CHARS} characters")
    # It becomes a response header at the edge: CR/LF would split the response, and any
    # other control or invisible formatting character has no place in a citation.
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise GeofenceRuleError("the legal reference contains control characters")
    return text


class GeoRule(BaseModel):
    """One rule, in the edge's terms (stored scope, epoch seconds)."""

    model_config = ConfigDict(frozen=True)

    country: str
    scope: str
    legal_reference: str
    expires_at: int | None = None
    created_at: datetime | None = None

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, value: Any) -> str:
        code = str(value or "").strip().upper()
        if code not in COUNTRY_CODES:
            raise GeofenceRuleError("country must be an ISO 3166-1 alpha-2 code such as DE or BR")
        return code

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        return parse_scope(value).stored  # never a raw uploader id: that needs new_rule

    @field_validator("legal_reference")
    @classmethod
    def _reference(cls, value: str) -> str:
        return check_reference(value)

    @property
    def shown_scope(self) -> str:
        try:
            return parse_scope(self.scope).shown
        except GeofenceRuleError:  # a row written by hand, read with model_construct: show it as stored
            return self.scope

    @property
    def enforced_at_edge(self) -> bool:
        # Exactly the edge's own test (Rule.applies): global, or a path prefix.
        return self.scope == "global" or self.scope.startswith("path:")

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now.timestamp()

    def to_item(self) -> dict[str, Any]:
        """The table item's attributes; the four the edge reads plus ``created_at``."""
        return {"country": self.country, "scope": self.scope, "legal_reference": self.legal_reference,
                "expires_at": self.expires_at, "created_at": self.created_at}

    def view(self, now: datetime) -> dict[str, Any]:
        """What the CLI prints (``--json``): the stored rule and what the edge makes of it."""
        return {
            "country": self.country,
            "scope": self.shown_scope,
            "stored_scope": self.scope,
            "legal_reference": self.legal_reference,
            "expires_at": _iso(self.expires_at),
            "expired": self.expired(now),
            "enforced_at_edge": self.enforced_at_edge,
            "created_at": self.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z") if self.created_at else None,
        }


def _iso(epoch: int | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z") if epoch is not None else None


def new_rule(country: str, scope: str, legal_reference: str, expires_at: datetime | None, *, now: datetime,
             pseudonymiser: Pseudonymiser | None = None) -> GeoRule:
    """Validate an operator's new rule; raises ``GeofenceRuleError`` with a reason a person can act on.

    >>> new_rule("de", "media:abc", "LG Berlin 27 O 123/26", None, now=datetime.now(UTC)).scope
    'path:/media/abc/'
    """
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise GeofenceRuleError("the expiry needs a time zone")
        if expires_at <= now:
            raise GeofenceRuleError("the expiry is in the past: the rule would never apply")
    stored = parse_scope(scope, pseudonymiser).stored
    try:
        return GeoRule(country=country, scope=stored, legal_reference=legal_reference,
                       expires_at=int(expires_at.timestamp()) if expires_at else None, created_at=now)
    except ValueError as exc:  # pydantic wraps the validators' GeofenceRuleError
        errors = getattr(exc, "errors", None)
        message = errors()[0]["msg"].removeprefix("Value error, ") if callable(errors) else str(exc)
        raise GeofenceRuleError(message) from None


def rule_key(country: str, scope: str, pseudonymiser: Pseudonymiser | None = None) -> tuple[str, str]:
    """The (country, stored scope) key of a rule as an operator names it, for removal."""
    code = (country or "").strip().upper()
    if code not in COUNTRY_CODES:
        raise GeofenceRuleError("country must be an ISO 3166-1 alpha-2 code such as DE or BR")
    return code, parse_scope(scope, pseudonymiser).stored


class GeofenceStore(Protocol):
    """Where rules live: the stack's DynamoDB table, or a JSON file for local use."""

    def list(self) -> list[GeoRule]:
        """Every rule, expired ones included (TTL deletes them days late)."""

    def add(self, rule: GeoRule, *, replace: bool = False) -> bool:
        """Write the rule; False if one with its key exists and ``replace`` is not set."""

    def remove(self, country: str, scope: str) -> bool:
        """Delete by key (stored scope); False if there was no such rule."""


def sort_rules(rules: list[GeoRule]) -> list[GeoRule]:
    return sorted(rules, key=lambda r: (r.country, r.scope))
