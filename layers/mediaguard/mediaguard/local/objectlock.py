"""S3 Object Lock retention rules moto does not enforce, enforced in local mode.

moto stores whatever ``PutObjectRetention`` asks for: a COMPLIANCE lock can be shortened,
removed or switched to GOVERNANCE, and a GOVERNANCE lock shortened without the bypass
header. Real S3 answers ``403 AccessDenied`` to all of these, and the audit digest archive
(``DigestBucket``) and the evidence bucket rely on it; without this patch a test of "a
digest cannot be rewritten" would pass against a store that allows it.

What S3 does (Amazon S3 User Guide, "Object Lock", retention modes):

* COMPLIANCE, still in force: the retain-until date may only be extended, the mode only
  stay COMPLIANCE; nobody, root included, can shorten or remove it.
* GOVERNANCE, still in force: extending, or switching to COMPLIANCE, is allowed; shortening,
  removing or leaving GOVERNANCE for nothing needs ``x-amz-bypass-governance-retention:
  true`` (and ``s3:BypassGovernanceRetention``: local mode has no IAM, so the header is
  what is checked).
* An expired retention can be changed freely.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def retention_change_allowed(current_mode: str | None, current_until: str | None,
                             new_mode: str | None, new_until: str | None, *, bypass: bool,
                             now: datetime) -> bool:
    """Whether S3 lets a retention of (``current_mode``, ``current_until``) become
    (``new_mode``, ``new_until``); the pure rule the patch applies."""
    until = _parse(current_until)
    if not current_mode or until is None or until <= now:
        return True  # no lock, or one that has expired
    target = _parse(new_until)
    extends = target is not None and target >= until
    if current_mode == "COMPLIANCE":
        return new_mode == "COMPLIANCE" and extends
    # GOVERNANCE
    if new_mode in ("GOVERNANCE", "COMPLIANCE") and extends:
        return True
    return bypass


def install(clock: Callable[[], datetime]) -> Callable[[], None]:
    """Patch moto's PutObjectRetention response to refuse what S3 refuses; returns the undo."""
    from moto.s3.exceptions import AccessDeniedByLock
    from moto.s3.responses import S3Response

    original = S3Response.put_object_retention

    def put_object_retention(self: Any) -> Any:
        bucket = self.backend.get_bucket(self.bucket_name)
        if bucket.object_lock_enabled:
            key = self.backend.get_object(self.bucket_name, self.parse_key_name(),
                                          version_id=self._get_param("versionId"))
            if key is not None:
                new_mode, new_until = self._mode_until_from_body()
                bypass = self.headers.get("x-amz-bypass-governance-retention", "").lower() == "true"
                if not retention_change_allowed(key.lock_mode, key.lock_until, new_mode, new_until,
                                                bypass=bypass, now=clock()):
                    raise AccessDeniedByLock
        return original(self)

    S3Response.put_object_retention = put_object_retention

    def undo() -> None:
        S3Response.put_object_retention = original

    return undo
