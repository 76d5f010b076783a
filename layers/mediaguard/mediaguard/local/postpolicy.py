"""S3 POST-policy enforcement for local mode.

moto stores whatever a browser-style POST sends: it checks neither the signature,
nor the expiry, nor a single policy condition. Real S3 checks all of them before it
stores a byte, and the upload API's safety rests on that (the key, the type and
the length range are pinned in the signed policy). Local mode therefore checks them
here, the way S3 documents it, and refuses with S3's own error codes:

* the policy must be signed with SigV4 by a key this cloud knows
  (``SignatureDoesNotMatch``, ``InvalidAccessKeyId``);
* it must not have expired (``AccessDenied``, "Policy expired");
* every condition must hold: exact matches, ``starts-with`` and
  ``content-length-range`` (``AccessDenied`` / ``EntityTooLarge`` / ``EntityTooSmall``);
* every form field except ``policy``, ``x-amz-signature``, ``file`` and ``x-ignore-*``
  must be named by a condition (``AccessDenied``, "Extra input fields").

SigV2 POST forms (``AWSAccessKeyId`` + ``signature``) are refused: the upload API
signs with SigV4 only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

_EXEMPT = {"policy", "x-amz-signature", "file"}


class S3ErrorResponse(Exception):
    """An error S3 answers with: a code, a message, an HTTP status and its XML body."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def xml(self) -> str:
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(self.code)}</Code>'
                f"<Message>{escape(str(self))}</Message></Error>")


class PostPolicyViolation(S3ErrorResponse):
    """What S3 would answer instead of storing the object."""


def _denied(message: str) -> PostPolicyViolation:
    return PostPolicyViolation("AccessDenied", f"Invalid according to Policy: {message}")


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_signature(secret: str, date: str, region: str, service: str, string_to_sign: str) -> str:
    """SigV4 over the base64 policy, as S3 computes it for POST uploads."""
    key = _sign(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _sign(key, part)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def verify_post(form: Mapping[str, str], content_length: int, bucket: str, *,
                secret_for: Callable[[str], str | None], now: datetime) -> dict[str, Any]:
    """Check one POST upload as S3 would; returns the decoded policy or raises
    :class:`PostPolicyViolation`.

    ``form`` holds the form fields (not the file), ``content_length`` the file's size,
    ``secret_for`` maps an access key id to its secret (None if unknown).
    """
    fields = {name.lower(): value for name, value in form.items()}
    policy_b64 = fields.get("policy")
    if not policy_b64:
        raise PostPolicyViolation("AccessDenied", "a POST upload needs a signed policy")
    if fields.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
        raise PostPolicyViolation("InvalidArgument", "only AWS4-HMAC-SHA256 POST policies are accepted", 400)
    try:
        access_key, date, region, service, terminal = fields["x-amz-credential"].split("/")
    except (KeyError, ValueError) as exc:
        raise PostPolicyViolation("InvalidArgument", "malformed x-amz-credential", 400) from exc
    secret = secret_for(access_key)
    if secret is None or terminal != "aws4_request":
        raise PostPolicyViolation("InvalidAccessKeyId", "the access key id is not known to this cloud")
    expected = sigv4_signature(secret, date, region, service, policy_b64)
    if not hmac.compare_digest(expected, fields.get("x-amz-signature", "")):
        raise PostPolicyViolation("SignatureDoesNotMatch", "the policy signature does not match")

    try:
        policy = json.loads(base64.b64decode(policy_b64, validate=True))
        expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        conditions = policy["conditions"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise PostPolicyViolation("InvalidPolicyDocument", "the policy cannot be read", 400) from exc
    if now >= expiration:
        raise _denied("Policy expired.")

    covered: set[str] = set()
    for condition in conditions:
        if isinstance(condition, dict):
            for name, value in condition.items():
                _check(fields, bucket, "eq", name, value)
                covered.add(name.lower())
        elif isinstance(condition, list) and condition and str(condition[0]).lower() == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if content_length > high:
                raise PostPolicyViolation("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                                          400)
            if content_length < low:
                raise PostPolicyViolation("EntityTooSmall", "Your proposed upload is smaller than the minimum "
                                          "allowed size", 400)
        elif isinstance(condition, list) and len(condition) == 3:
            operator, name, value = str(condition[0]).lower(), str(condition[1]), condition[2]
            if operator not in ("eq", "starts-with") or not name.startswith("$"):
                raise PostPolicyViolation("InvalidPolicyDocument", f"unsupported condition {operator}", 400)
            _check(fields, bucket, operator, name[1:], value)
            covered.add(name[1:].lower())
        else:
            raise PostPolicyViolation("InvalidPolicyDocument", "malformed policy condition", 400)

    extra = sorted(n for n in fields if n not in covered and n not in _EXEMPT and not n.startswith("x-ignore-"))
    if extra:
        raise _denied(f"Extra input fields: {', '.join(extra)}")
    return policy


def _check(fields: dict[str, str], bucket: str, operator: str, name: str, expected: Any) -> None:
    name = name.lower()
    actual = bucket if name == "bucket" else fields.get(name)
    ok = actual is not None and (actual == expected if operator == "eq" else actual.startswith(str(expected)))
    if not ok:
        raise _denied(f'Policy Condition failed: ["{operator}", "${name}", "{expected}"]')


def install(clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Callable[[], None]:
    """Make moto's S3 check POST policies before it stores an object; returns the undo.

    The known key is whatever the local process's default credentials are (moto's
    fake ones while a mock is active): the same credentials the in-process upload
    handler signs with.
    """
    import boto3
    from moto.s3.responses import S3Response

    original = S3Response._bucket_response_post

    def secret_for(access_key: str) -> str | None:
        credentials = boto3.Session().get_credentials()
        if credentials is None:
            return None
        frozen = credentials.get_frozen_credentials()
        return frozen.secret_key if hmac.compare_digest(frozen.access_key, access_key) else None

    def guarded(self: Any, request: Any, bucket_name: str):
        form = {k: v for k, v in self.form_data.items()}
        if any(k.lower() == "key" for k in form):  # an object upload, not a multi-object delete
            body = self.body.encode() if isinstance(self.body, str) else (self.body or b"")
            form.pop("file", None)
            try:
                verify_post(form, len(body), bucket_name, secret_for=secret_for, now=clock())
            except PostPolicyViolation as violation:
                return violation.status, {"content-type": "application/xml"}, violation.xml()
        return original(self, request, bucket_name)

    S3Response._bucket_response_post = guarded

    def undo() -> None:
        S3Response._bucket_response_post = original

    return undo
