"""The Python upload client: strip and hash on the caller's machine, ask the upload API for a
presigned POST declaring the PDQ, post the file with progress, follow the decision.

The same steps as the JavaScript client (``clients/js``), with the project's own code: the
sanitizer and fingerprints are :func:`mediaguard.ingress.ingest.prepare`'s, so the PDQ
declared is the one the server will compute from the bytes it receives. Only the standard
library talks HTTP, so the client works against ``mediaguard serve`` and a deployed stack
alike. It runs on a platform's or a user's machine, never in a Lambda: the layer build
leaves ``client/`` out (layers/mediaguard/Makefile DEV_ONLY).

Everything declared is a hint: the server re-sniffs, re-strips, re-hashes and re-matches what
lands. A client PDQ only spares an upload that a block bank would have removed anyway.

Example::

    client = UploadClient("https://uploads.example.com", token=lambda: my_jwt())
    result = client.upload(Path("photo.jpg"), follow=True)
    result.as_json()  # {"file": ..., "media_id": ..., "status": "done", "action": "allow", ...}
"""

from __future__ import annotations

import http.client
import json
import mimetypes
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from mediaguard.errors import MediaguardError

# Pre-upload refusals of the upload API (api/uploads.py): nothing is uploaded after them.
REFUSALS = frozenset({"blocked_by_bank", "unsupported_media_type", "too_large"})
FINAL_STATUSES = frozenset({"done", "rejected", "failed"})
# Methods of Sanitized whose output is the same picture, not a re-encode in another quality.
# WebP and GIF are re-encoded by the sanitizer and TIFF/HEIF converted: those are sent as
# they are (the server strips them) so the stored original is what the user chose.
_CONTAINER_REWRITES = ("jpeg-segments", "png-chunks")
CHUNK = 256 * 1024

Progress = Callable[[dict[str, Any]], None]
Token = str | Callable[[], str]


class UploadError(Exception):
    """The API or storage answered an error that is not a pre-upload refusal, or the network
    failed on every retry. ``status`` is the HTTP status (None for a network error)."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None,
                 media_id: str | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.media_id = status, reason, media_id

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


@dataclass
class PreparedUpload:
    """What goes to the API and to storage for one file."""

    data: bytes
    content_type: str
    removed: list[str] = field(default_factory=list)
    pdq: str | None = None
    pdq_quality: int | None = None
    phash: str | None = None
    sha256: str | None = None

    def declaration(self, reach: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"content_type": self.content_type, "content_length": len(self.data)}
        if self.sha256:
            body["sha256"] = self.sha256
        if self.pdq is not None:
            body |= {"pdq": self.pdq, "pdq_quality": self.pdq_quality}
        if reach is not None:
            body["reach"] = reach
        return body


@dataclass
class UploadResult:
    """One file's outcome; :meth:`as_json` is the ``mediaguard upload --json`` contract."""

    file: str
    media_id: str | None
    status: str
    action: str | None = None
    refused: bool = False
    reason: str | None = None
    pdq: str | None = None
    removed: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "media_id": self.media_id, "status": self.status, "action": self.action,
                "refused": self.refused, "reason": self.reason}


def prepare_upload(data: bytes, content_type: str, *, strip: bool = True) -> PreparedUpload:
    """Strip and fingerprint ``data`` as the server will.

    A JPEG or PNG is sent as the sanitizer rewrites it (segments/chunks dropped; a picture
    turned by its EXIF orientation re-encoded upright, as the server does). Other stills are
    sent unchanged but still hashed; media the sanitizer cannot read (video, audio) go
    unchanged and unhashed, for the server to judge. ``strip=False`` sends every file as it
    is (a C2PA manifest then still reaches the server's provenance reader), hashed all the same.
    """
    import hashlib

    from mediaguard.ingress.ingest import prepare
    from mediaguard.settings import Settings

    try:
        prepared = prepare(data, content_type, Settings(), forensics=False)
    except MediaguardError:
        return PreparedUpload(data, content_type, sha256=hashlib.sha256(data).hexdigest())
    fp, clean = prepared.fingerprints, prepared.sanitized
    upright = clean.method == "reencode" and clean.kind is prepared.kind and clean.kind.content_type in (
        "image/jpeg", "image/png")
    rewrite = strip and (clean.method in _CONTAINER_REWRITES or upright)
    out, removed = (clean.data, clean.removed) if rewrite else (data, [])
    ctype = clean.kind.content_type if rewrite else content_type
    return PreparedUpload(out, ctype, removed, fp.pdq, fp.pdq_quality, fp.phash, hashlib.sha256(out).hexdigest())


class UploadClient:
    """Uploads to one mediaguard upload API.

    ``api``: the upload API's base URL (``https://<id>.execute-api.<region>.amazonaws.com``,
    or ``http://127.0.0.1:8080/api`` for ``mediaguard serve``); a URL ending in
    ``/v1/uploads`` (the stack's ``UploadsApiUrl`` output) is accepted too. ``token``: a
    bearer token, or a function returning a fresh one (a Cognito or the platform's own JWT).
    """

    def __init__(self, api: str, token: Token, *, retries: int = 3, backoff: float = 0.5, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        base = api.rstrip("/")
        self.api = base[: -len("/v1/uploads")] if base.endswith("/v1/uploads") else base
        self.token, self.retries, self.backoff, self.timeout, self.sleep = token, retries, backoff, timeout, sleep

    # -- HTTP -------------------------------------------------------------------------------
    def _retrying(self, call: Callable[[], Any], on_progress: Progress | None) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return call()
            except (UploadError, OSError) as exc:
                retryable = exc.retryable if isinstance(exc, UploadError) else True
                if not retryable or attempt == self.retries:
                    if isinstance(exc, UploadError):
                        raise
                    raise UploadError(f"network error: {type(exc).__name__}") from exc
                if on_progress:
                    on_progress({"phase": "retry", "attempt": attempt + 1})
                # Exponential backoff with full jitter, so many clients do not retry in step.
                self.sleep(random.uniform(0, self.backoff * 2 ** attempt))  # noqa: S311 - jitter, not a secret
        raise AssertionError("unreachable")

    def _api(self, method: str, path: str, body: dict | None = None, on_progress: Progress | None = None) -> dict:
        def call() -> dict:
            token = self.token() if callable(self.token) else self.token
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            data = None
            if body is not None:
                data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
            request = urllib.request.Request(f"{self.api}{path}", data=data, method=method, headers=headers)  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) URL given by the caller
                    return json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as exc:
                try:
                    answer = json.loads(exc.read() or b"{}")
                except ValueError:
                    answer = {}
                raise UploadError(answer.get("message") or f"HTTP {exc.code}", exc.code, answer.get("reason"),
                                  answer.get("media_id")) from None

        return self._retrying(call, on_progress)

    def _post_file(self, upload: dict, prepared: PreparedUpload, on_progress: Progress | None) -> None:
        boundary = f"----mediaguard{uuid.uuid4().hex}"
        head = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                       for k, v in upload["fields"].items())
        # The file last: S3 ignores form fields that come after it.
        head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\n"
                 f"Content-Type: {prepared.content_type}\r\n\r\n")
        body = head.encode() + prepared.data + f"\r\n--{boundary}--\r\n".encode()
        url = urlsplit(upload["url"])

        def call() -> None:
            cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
            connection = cls(url.netloc, timeout=self.timeout)
            try:
                connection.putrequest("POST", (url.path or "/") + (f"?{url.query}" if url.query else ""))
                connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
                connection.putheader("Content-Length", str(len(body)))
                connection.endheaders()
                for start in range(0, len(body), CHUNK):
                    connection.send(body[start:start + CHUNK])
                    if on_progress:
                        on_progress({"phase": "upload", "loaded": min(len(body), start + CHUNK), "total": len(body)})
                response = connection.getresponse()
                text = response.read().decode("utf-8", "replace")
                if not 200 <= response.status < 300:
                    code = (text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in text
                            else f"HTTP {response.status}")
                    raise UploadError(f"storage refused the upload: {code}", response.status, code)
            finally:
                connection.close()

        self._retrying(call, on_progress)

    # -- the steps ----------------------------------------------------------------------------
    def status(self, media_id: str) -> dict[str, Any]:
        """``GET /v1/uploads/{media_id}``: ``{media_id, status, final, action, reason}``."""
        return self._api("GET", f"/v1/uploads/{quote(media_id, safe='')}")

    def follow(self, media_id: str, *, timeout: float = 120.0, interval: float = 1.0,
               on_progress: Progress | None = None) -> dict[str, Any]:
        """Poll the status until it is final or ``timeout`` seconds have passed."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(media_id)
            if on_progress:
                on_progress({"phase": "status", "status": status.get("status")})
            if status.get("final") or time.monotonic() + interval > deadline:
                return status
            self.sleep(interval)

    def upload(self, file: Path | bytes, content_type: str | None = None, *, reach: int | None = None,
               follow: bool = False, timeout: float = 120.0, strip: bool = True,
               on_progress: Progress | None = None) -> UploadResult:
        """Strip, hash, request, post, and with ``follow`` wait for the decision.

        A pre-upload refusal (``blocked_by_bank``, ``too_large``, ``unsupported_media_type``)
        comes back as ``refused=True`` with no byte of the file sent; other API errors raise
        :class:`UploadError`.
        """
        name = str(file) if isinstance(file, Path) else "-"
        data = file.read_bytes() if isinstance(file, Path) else file
        ctype = content_type or (mimetypes.guess_type(file.name)[0] if isinstance(file, Path) else None) \
            or "application/octet-stream"
        prepared = prepare_upload(data, ctype, strip=strip)
        if on_progress:
            on_progress({"phase": "hash", "pdq": prepared.pdq, "pdq_quality": prepared.pdq_quality,
                         "removed": prepared.removed})
        try:
            grant = self._api("POST", "/v1/uploads", prepared.declaration(reach), on_progress)
        except UploadError as exc:
            if exc.reason in REFUSALS:
                return UploadResult(name, exc.media_id, "refused", refused=True, reason=exc.reason,
                                    pdq=prepared.pdq, removed=prepared.removed)
            raise
        self._post_file(grant["upload"], prepared, on_progress)
        result = UploadResult(name, grant["media_id"], "uploaded", pdq=prepared.pdq, removed=prepared.removed)
        if follow:
            status = self.follow(grant["media_id"], timeout=timeout, on_progress=on_progress)
            result.status, result.action, result.reason = status["status"], status.get("action"), status.get("reason")
        return result


__all__ = ["PreparedUpload", "UploadClient", "UploadError", "UploadResult", "prepare_upload"]
