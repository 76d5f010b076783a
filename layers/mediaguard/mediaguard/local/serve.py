"""``mediaguard serve``: the reviewer console, the review API and the upload API on one
local port, over the same local stack ``mediaguard scan`` uses.

What runs, all in one process and on ONE moto state:

* :class:`~mediaguard.local.runtime.LocalCloud`: template.yaml deployed into in-process
  moto, the real state machine, every Lambda handler invoked in-process;
* moto's server (the app ``ThreadedMotoServer`` runs) on a second port, so
  ``aws --endpoint-url`` and boto3 see (and change) the very buckets and tables the pipeline uses: the server and
  ``mock_aws`` share moto's process-wide backends (measured: a bucket created through
  either is listed by the other). moto checks no credentials, so this port is always bound to
  loopback, whatever ``--host`` says, and it refuses browsers (any request with an ``Origin``
  or ``Sec-Fetch-*`` header) and sends no CORS headers: no web page, including one that
  rebinds its DNS name to 127.0.0.1, can read the evidence bucket through it;
* an HTTP server (werkzeug, which moto already brings) that serves the console at ``/``,
  the upload page at ``/upload``, and turns every request under ``/api/`` into an API
  Gateway HTTP API (payload v2) event for the same handler AWS runs:
  ``/api/v1/uploads`` -> the uploads function, ``/api/v1/generations`` -> the generations
  function, ``/api/v1/generations/<id>/outputs`` -> the generation outputs function,
  everything else -> the review API function.

Presigned URLs name S3 (``https://<bucket>.s3.amazonaws.com/...``), which a browser cannot
reach in local mode. Answers of the API are therefore rewritten so that S3 URLs of the
stack's buckets point at ``/s3/<bucket>/...`` on this server, which plays S3's part:

* ``POST /s3/<upload bucket>/``: the browser's form upload, handed to
  :meth:`LocalCloud.post_upload`, where the signed POST policy is enforced as S3 would
  (moto alone enforces none of it);
* ``GET /s3/<media or evidence bucket>/<key>?X-Amz-...``: a reviewer's presigned GET of a
  sanitized copy (after a removal, the evidence store's), served only after its SigV4
  query signature and expiry check out.

Requests whose ``Host`` is not a name this server is bound to are refused (421) before
anything else: a page that rebinds its own DNS name to 127.0.0.1 would otherwise be
same-origin with the console and the APIs, and ``/config.json`` would name it as their base.

Logging: request lines carry the method, the path without its query string (where the
signatures live) and the status; never a body, a token or a presigned URL.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from mediaguard.local.faults import FaultPlan
from mediaguard.local.postpolicy import S3ErrorResponse, sigv4_signature
from mediaguard.local.runtime import ACCOUNT_ID, LocalCloud
from mediaguard.local.state import LocalStackState, StateFileError, stack_environment

CONSOLE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    # The console's ES modules (app.js imports them).
    **{f"/{name}.js": (f"{name}.js", "text/javascript; charset=utf-8") for name in ("lib", "wellness", "search", "banks",
                                                                          "frames", "operators")},
    "/style.css": ("style.css", "text/css; charset=utf-8"),
    "/upload": ("upload.html", "text/html; charset=utf-8"),
    "/upload.js": ("upload.js", "text/javascript; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
    # The JS upload client (clients/js/src, linked into the package as console/client): the
    # upload page imports it as an ES module from this origin, which script-src 'self' allows.
    **{f"/client/{name}": (f"client/{name}", "text/javascript; charset=utf-8")
       for name in ("index.js", "pdq.js", "strip.js", "upload.js")},
}
# Everything the pages load comes from this origin: no CDN, no external fonts. Media links
# are rewritten to /s3/ on this origin, so img-src needs nothing else either.
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; media-src 'self'; "
               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# Uploads larger than the pipeline accepts are refused by the POST policy; this only keeps
# one request from filling the server's memory first (50 MiB limit + form overhead).
MAX_REQUEST_BYTES = 64 * 1024 * 1024
# API Gateway HTTP APIs refuse larger payloads with 413 before any function runs.
MAX_API_BODY_BYTES = 10 * 1024 * 1024
UPLOADS_PATH = "/v1/uploads"
GENERATIONS_PATH = "/v1/generations"
GENERATION_OUTPUTS_PATH = re.compile(r"^/v1/generations/[^/]+/outputs$")
BANKS_PATH = "/admin/banks"

logger = logging.getLogger("mediaguard.serve")


def is_bank_admin(method: str, path: str) -> bool:
    """The bank-admin function's routes (template.yaml's BankAdminFunction events): every
    route below ``/admin/banks/``, and creating one; listing banks stays on the review API."""
    return path.startswith(BANKS_PATH + "/") or (path == BANKS_PATH and method.upper() == "POST")


# --- dev identities -------------------------------------------------------------------------


@dataclass(frozen=True)
class DevUser:
    """One local identity: a bearer token, the subject it stands for and its roles."""

    token: str
    sub: str
    roles: tuple[str, ...]

    @property
    def label(self) -> str:
        return ", ".join(self.roles) if self.roles else "uploader"


def dev_users() -> list[DevUser]:
    """Fresh random tokens for a reviewer, a senior reviewer, an admin, the platform's
    backend (the generation routes, ``genguard``) and an uploader.

    New on every start, so a token copied out of a terminal is worthless after a restart.
    The uploader's subject is ``dev``: what the upload API calls the holder of its local
    dev token, so the same person can appeal their own item.
    """
    return [
        DevUser(secrets.token_urlsafe(18), "reviewer-1", ("reviewer",)),
        DevUser(secrets.token_urlsafe(18), "senior-1", ("senior-reviewer",)),
        DevUser(secrets.token_urlsafe(18), "admin-1", ("admin",)),
        DevUser(secrets.token_urlsafe(18), "platform-1", ("platform",)),
        DevUser(secrets.token_urlsafe(18), "dev", ()),
    ]


def token_map(users: Iterable[DevUser]) -> str:
    """``MEDIAGUARD_DEV_TOKENS``: JSON ``{token: {"sub": ..., "roles": [...]}}``."""
    return json.dumps({u.token: {"sub": u.sub, "roles": list(u.roles)} for u in users})


# --- API Gateway HTTP API (payload v2) ---------------------------------------------------------------


def api_event(request: Request, path: str) -> dict[str, Any]:
    """The event API Gateway's HTTP API sends a Lambda proxy integration (payload 2.0)
    for ``request``, with ``path`` as the route path (the ``/api`` prefix removed).

    No ``authorizer`` block: no JWT authorizer ran, which is how the handlers know to
    accept only a local dev token.
    """
    now = datetime.now(UTC)
    body = request.get_data(cache=False)
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        import base64

        text, encoded = base64.b64encode(body).decode(), True
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    query = request.query_string.decode("latin-1")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": "local",
            "http": {"method": request.method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": request.remote_addr or "127.0.0.1",
                     "userAgent": request.headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if body:
        event["body"] = text
    return event


def http_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """What API Gateway makes of a handler's payload-v2 answer."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # Payload v2 lets a handler return a bare JSON value: API Gateway answers 200 with it.
        return 200, {"content-type": "application/json"}, json.dumps(result).encode()
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        import base64

        data = base64.b64decode(body)
    else:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return int(result["statusCode"]), headers, data


# --- S3 URLs -----------------------------------------------------------------------------------------------

# Virtual-hosted (bucket.s3.amazonaws.com, bucket.s3.region.amazonaws.com, bucket.s3-region...)
# and path-style (s3.amazonaws.com/bucket/...) URLs, the forms botocore presigns.
_S3_URL = re.compile(r"^https://(?P<host>(?:(?P<vbucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\.)?"
                     r"s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com)(?P<path>/[^?#]*)(?:\?(?P<query>[^#]*))?$")


def split_s3(host: str, raw_path: str) -> tuple[str, str]:
    """``(bucket, key)`` of a request for ``raw_path`` on S3 host ``host``."""
    match = _S3_URL.match(f"https://{host}{raw_path}")
    if match is None:
        raise ValueError("not an S3 URL")
    if match.group("vbucket"):
        return match.group("vbucket"), unquote(raw_path[1:])
    bucket, _, key = raw_path[1:].partition("/")
    return bucket, unquote(key)


def localize_s3_urls(value: Any, buckets: set[str], base: str, origins: dict[str, str] | None = None) -> Any:
    """Rewrite every S3 URL of one of ``buckets`` inside a JSON value to ``{base}/s3/{bucket}/...``.

    ``https://b.s3.amazonaws.com/k?q`` (or path-style ``https://s3.amazonaws.com/b/k?q``)
    becomes ``{base}/s3/b/k?q``: path and query (the signature) are kept as they are, and
    ``origins[b]`` records the origin the URL was signed for, so the server can check the
    signature exactly as S3 would.
    """
    if isinstance(value, dict):
        return {k: localize_s3_urls(v, buckets, base, origins) for k, v in value.items()}
    if isinstance(value, list):
        return [localize_s3_urls(v, buckets, base, origins) for v in value]
    if isinstance(value, str):
        match = _S3_URL.match(value)
        if match:
            try:
                bucket, _ = split_s3(match.group("host"), match.group("path"))
            except ValueError:
                return value
            if bucket in buckets:
                host, path = match.group("host"), match.group("path")
                origin = f"https://{host}" if match.group("vbucket") else f"https://{host}/{bucket}"
                rest = path if match.group("vbucket") else path[len(bucket) + 1:]
                if origins is not None:
                    origins[bucket] = origin
                query = match.group("query")
                return f"{base}/s3/{bucket}{rest}" + (f"?{query}" if query is not None else "")
    return value


class PresignError(S3ErrorResponse):
    """S3's refusal of a presigned GET: an error code, a message and a status."""


def verify_presigned_get(host: str, raw_path: str, raw_query: str, *, secret_for: Callable[[str], str | None],
                         now: datetime) -> None:
    """Check a SigV4 presigned GET as S3 does (query-string auth, host as the one signed
    header, unsigned payload); raises :class:`PresignError` when S3 would refuse it.

    SigV2 URLs (``AWSAccessKeyId`` + ``Signature``) are refused: S3 does not accept SigV2
    for buckets created after June 2020, so a stack deployed today could not serve them.
    """
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    params = dict(pairs)
    if "Signature" in params or "AWSAccessKeyId" in params:
        raise PresignError("InvalidRequest", "SigV2 presigned URLs are not accepted; sign with SigV4 (s3v4)", 400)
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise PresignError("AccessDenied", "a presigned GET needs a SigV4 query signature")
    try:
        access_key, date, region, service, terminal = params["X-Amz-Credential"].split("/")
        signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(params["X-Amz-Expires"])
        signed_headers = params["X-Amz-SignedHeaders"]
        signature = params["X-Amz-Signature"]
    except (KeyError, ValueError) as exc:
        raise PresignError("AuthorizationQueryParametersError", "malformed SigV4 query parameters", 400) from exc
    secret = secret_for(access_key)
    if secret is None or terminal != "aws4_request" or service != "s3":
        raise PresignError("InvalidAccessKeyId", "the access key id is not known to this cloud")
    if signed_headers != "host":
        raise PresignError("AccessDenied", "local mode checks presigned GETs that sign the host header only")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(pairs) if k != "X-Amz-Signature"
    )
    canonical_request = "\n".join(["GET", quote(unquote(raw_path), safe="/-_.~"), canonical_query,
                                   f"host:{host}", "", "host", "UNSIGNED-PAYLOAD"])
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    expected = sigv4_signature(secret, date, region, service, string_to_sign)
    if not hmac.compare_digest(expected, signature):
        raise PresignError("SignatureDoesNotMatch", "the request signature does not match")
    if now > signed_at + timedelta(seconds=expires):
        raise PresignError("AccessDenied", "Request has expired")


def _local_secret(access_key: str) -> str | None:
    """The secret of the process's own credentials (what the in-process handlers sign
    with), for the key id they belong to; None for any other key id."""
    import boto3

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        return None
    frozen = credentials.get_frozen_credentials()
    return frozen.secret_key if hmac.compare_digest(frozen.access_key, access_key) else None


# --- the console ----------------------------------------------------------------------------------


def console_file(name: str) -> bytes:
    """One of the console's static files, as shipped in the package."""
    return (resources.files("mediaguard") / "console" / name).read_bytes()


def console_config(api_base: str, uploads_api_base: str | None = None, mode: str = "aws") -> dict[str, str]:
    """The ``config.json`` the pages read: where the review API and the upload API live."""
    return {"api_base": api_base.rstrip("/"), "uploads_api_base": (uploads_api_base or api_base).rstrip("/"),
            "mode": mode}


def export_console(dest: Path, api_base: str, uploads_api_base: str | None = None) -> list[Path]:
    """Write the console's static files and a ``config.json`` to ``dest`` for the
    ConsoleBucket (``aws s3 sync dest s3://<ConsoleBucket>/``); returns the files written."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted({name for name, _ in CONSOLE_FILES.values()}):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(console_file(name))
        written.append(dest / name)
    config = dest / "config.json"
    config.write_text(json.dumps(console_config(api_base, uploads_api_base), indent=2) + "\n")
    written.append(config)
    return written


# --- the WSGI application -------------------------------------------------------------------------------


@dataclass
class _Function:
    name: str
    lock: threading.Lock = field(default_factory=threading.Lock)


class ServeApp:
    """The WSGI app behind ``mediaguard serve`` (see the module docstring for the routes)."""

    def __init__(self, cloud: LocalCloud, hosts: HostCheck | None = None) -> None:
        self.cloud = cloud
        self.hosts = hosts
        self.uploads = self._function("uploads")
        self.generations = self._function("generations")
        self.generation_outputs = self._function("generation_outputs")
        self.api = self._function("api")
        self.bank_admin = self._function("bank_admin")
        stack = cloud.stack
        self.upload_bucket = cloud.upload_bucket
        self.media_bucket = stack.ref("MediaBucket")
        # After a removal a senior reviewer's link names the evidence copy: it must be
        # rewritten to this origin too, or the console's CSP refuses the real S3 address.
        self.evidence_bucket = stack.ref("EvidenceBucket")
        self.readable = {self.media_bucket, self.evidence_bucket}
        self.buckets = {self.upload_bucket, *self.readable}
        self.origins: dict[str, str] = {}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    def client(self, service: str) -> Any:
        # Made once under a lock: creating boto3 clients from many threads at once is not
        # thread-safe; using one client from many threads is.
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self.cloud.client(service)
            return self._clients[service]

    def _function(self, folder: str) -> _Function | None:
        # Found by code folder, not logical id: the handler file is what must match AWS.
        for spec in self.cloud.functions.values():
            if spec.code_dir.name == folder:
                return _Function(spec.name)
        return None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        limit = MAX_API_BODY_BYTES if request.path.startswith("/api/") else MAX_REQUEST_BYTES
        request.max_content_length = limit
        request.max_form_memory_size = limit
        try:
            if self.hosts is not None and not self.hosts.accepts(request.headers.get("host", "")):
                # Before anything is read or answered: see the module docstring (DNS rebinding).
                response = _json(421, {"reason": "misdirected_request",
                                       "message": "this server does not answer for that host name"})
            else:
                response = self.route(request)
        except RequestEntityTooLarge:
            response = _too_large(request.path, limit)
        except Exception:  # noqa: BLE001 - one failed request must not stop the server
            logger.exception("serve: request failed", extra={"path": request.path})
            response = _json(500, {"reason": "internal_error", "message": "the local server failed; see its log"})
        return response(environ, start_response)

    def route(self, request: Request) -> Response:
        path = request.path
        if path in CONSOLE_FILES and request.method in ("GET", "HEAD"):
            name, content_type = CONSOLE_FILES[path]
            return _static(console_file(name), content_type)
        if path == "/config.json" and request.method in ("GET", "HEAD"):
            base = request.host_url.rstrip("/")
            config = console_config(f"{base}/api", f"{base}/api", mode="local")
            return _static(json.dumps(config).encode(), "application/json")
        if path.startswith("/api/"):
            return self.api_call(request, path[len("/api"):])
        if path.startswith("/s3/"):
            return self.s3_call(request)
        return _json(404, {"reason": "not_found", "message": "no such page"})

    # -- the APIs ----------------------------------------------------------------------------------
    def api_call(self, request: Request, path: str) -> Response:
        target = self.uploads if path == UPLOADS_PATH or path.startswith(f"{UPLOADS_PATH}/") else self.api
        if path == GENERATIONS_PATH:
            target = self.generations
        elif GENERATION_OUTPUTS_PATH.match(path):
            target = self.generation_outputs
        if is_bank_admin(request.method, path):
            target = self.bank_admin
        if target is None:
            return _json(503, {"reason": "not_deployed", "message": "the template has no function for this API"})
        payload = self.invoke(target, api_event(request, path))
        if payload is None:
            # What API Gateway answers when the integration fails.
            return _json(500, {"message": "Internal Server Error"})
        status, headers, body = http_response(payload)
        if headers.get("content-type", "").startswith("application/json") and body:
            document = json.loads(body)
            body = json.dumps(localize_s3_urls(document, self.buckets, request.host_url.rstrip("/"),
                                               self.origins)).encode()
        response = Response(body, status=status)
        for name, value in headers.items():
            if name != "content-length":
                response.headers[name] = value
        # Answers carry presigned links and personal data: never cached by the browser.
        response.headers["cache-control"] = "no-store"
        return response

    def invoke(self, target: _Function, event: dict) -> Any | None:
        """Invoke through the Lambda API (as API Gateway does); None when the function errored.

        One request at a time per function, as in one Lambda execution environment:
        Powertools keeps the current event on the module-level resolver.
        """
        with target.lock:
            answer = self.client("lambda").invoke(FunctionName=target.name, Payload=json.dumps(event).encode())
        payload = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            # The error type only: a message can carry whatever the handler was looking at.
            logger.warning("serve: %s failed with %s", target.name, (payload or {}).get("errorType", "an error"))
            return None
        return payload

    # -- local S3 ------------------------------------------------------------------------------------
    def s3_call(self, request: Request) -> Response:
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
        raw_path, _, raw_query = raw.partition("?")
        bucket, slash, rest = raw_path[len("/s3/"):].partition("/")
        # The S3 origin the URL was signed for (recorded when the API's answer was rewritten).
        origin = urlsplit(self.origins.get(bucket, f"https://{bucket}.s3.amazonaws.com"))
        key = unquote(rest)
        if request.method == "POST" and bucket == self.upload_bucket and not key:
            return self.s3_post(request, f"{origin.scheme}://{origin.netloc}{origin.path}/")
        if request.method in ("GET", "HEAD") and bucket in self.readable and key:
            try:
                verify_presigned_get(origin.netloc, f"{origin.path}{slash}{rest}", raw_query,
                                     secret_for=_local_secret, now=self.cloud.clock())
            except PresignError as refusal:
                return _s3_error(refusal)
            return self.s3_get(bucket, key)
        return _s3_error(PresignError("AccessDenied", "local mode serves presigned uploads and media links only"))

    def s3_post(self, request: Request, url: str) -> Response:
        upload = request.files.get("file")
        if upload is None:
            return _s3_error(PresignError("InvalidArgument", "POST requires exactly one file upload per request", 400))
        fields = {k: v for k, v in request.form.items()}
        result = self.cloud.post_upload({"url": url, "fields": fields}, upload.read())
        if result.stored:
            return Response(b"", status=204)
        return _s3_error(PresignError(result.error_code or "InternalError", result.message or "", result.status))

    def s3_get(self, bucket: str, key: str) -> Response:
        s3 = self.client("s3")
        try:
            obj = s3.get_object(Bucket=bucket, Key=key)
        except s3.exceptions.NoSuchKey:
            return _s3_error(PresignError("NoSuchKey", "The specified key does not exist.", 404))
        response = Response(obj["Body"].read(), content_type=obj.get("ContentType") or "application/octet-stream")
        response.headers["cache-control"] = "private, no-store"
        response.headers["x-content-type-options"] = "nosniff"
        return response


def _static(data: bytes, content_type: str) -> Response:
    response = Response(data, content_type=content_type)
    response.headers["content-security-policy"] = CONSOLE_CSP
    response.headers["x-content-type-options"] = "nosniff"
    # The pages must never hand a presigned URL or an item id to another site.
    response.headers["referrer-policy"] = "no-referrer"
    response.headers["cache-control"] = "no-cache"
    return response


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _s3_error(error: PresignError) -> Response:
    return Response(error.xml(), status=error.status, content_type="application/xml")


def _too_large(path: str, limit: int) -> Response:
    """413 for a body over ``limit``: as S3 would for the storage stand-in, in the APIs' one
    error format (``media_id`` null on the upload API, as before an id is assigned) otherwise."""
    if path.startswith("/s3/"):
        return _s3_error(PresignError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", 413))
    body: dict[str, Any] = {"reason": "body_too_large", "message": f"request bodies are limited to {limit} bytes"}
    if path == f"/api{UPLOADS_PATH}":
        body["media_id"] = None
    response = _json(413, body)
    # The body was not read: the connection cannot carry another request.
    response.headers["connection"] = "close"
    return response


# --- host names -----------------------------------------------------------------------------------------


# What binding to every interface is spelled as (compared against, never bound here).
_WILDCARDS = {"", "0.0.0.0", "::"}  # noqa: S104


@dataclass(frozen=True)
class HostCheck:
    """The ``Host`` values a server bound to ``host``:``port`` answers: the names it was
    bound to (and ``localhost`` for a loopback address), with its port.

    Bound to every interface, any IP address is accepted too: an IP literal cannot be
    rebound, only a DNS name can. ``localhost`` always resolves to this machine.

    >>> HostCheck.bound_to("127.0.0.1", 8080).accepts("localhost:8080")
    True
    >>> HostCheck.bound_to("127.0.0.1", 8080).accepts("attacker.example:8080")
    False
    """

    names: frozenset[str]
    port: int
    any_address: bool = False

    @classmethod
    def bound_to(cls, host: str, port: int) -> HostCheck:
        names = {host.lower().strip("[]")}
        if host in _WILDCARDS:
            names |= {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
        elif is_loopback(host):
            names |= {"localhost", "127.0.0.1", "::1"}
        return cls(frozenset(names - {""}), port, any_address=host in _WILDCARDS)

    def accepts(self, value: str) -> bool:
        if not value or "@" in value or "/" in value:
            return False
        try:
            split = urlsplit(f"//{value}")
            port = split.port or 80
        except ValueError:
            return False
        name = (split.hostname or "").rstrip(".")
        if port != self.port or not name:
            return False
        if name in self.names:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return self.any_address


class _AwsClientsOnly:
    """moto's server for AWS clients only: a request a browser sent (it carries ``Origin``
    or ``Sec-Fetch-*``; the AWS CLI and SDKs send neither) is refused, and the CORS headers
    moto adds to every answer are dropped, so no page can read what it answers."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if any(k == "HTTP_ORIGIN" or k.startswith("HTTP_SEC_FETCH_") for k in environ):
            response = _json(403, {"reason": "forbidden",
                                   "message": "the local AWS endpoint answers AWS clients, not browsers"})
            return response(environ, start_response)

        def without_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, kept, exc_info)

        return self.app(environ, without_cors)


# --- the server ------------------------------------------------------------------------------------------------


class _RequestLog(WSGIRequestHandler):
    """Request lines without query strings: presigned signatures live there."""

    stream: TextIO | None = sys.stderr

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.stream is not None:
            path = self.path.split("?", 1)[0]
            if path.startswith("/s3/"):
                path = "/s3/..."  # a media key names the item; the method and status suffice
            self.stream.write(f"{self.command} {path} {code}\n")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass  # werkzeug's own lines repeat the full request line, query string included


class _QuietMotoHandler(MotoRequestHandler):
    """moto's request handler without its request lines (they carry presigned query strings)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _AppSlot:
    """The WSGI app a server is bound with before the app exists (ports are bound first)."""

    app: Callable | None = None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.app is None:
            response = _json(503, {"reason": "starting", "message": "the local stack is still starting"})
            return response(environ, start_response)
        return self.app(environ, start_response)


class LocalServer:
    """``mediaguard serve``'s moving parts: LocalCloud, moto's server and the HTTP server.

    Example (what the e2e test does)::

        server = LocalServer(port=0, moto_port=0)
        server.start()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ...  # a browser at server.url, boto3 at server.moto_url
        server.stop()
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, moto_port: int | None = None,
                 log_level: str = "WARNING", users: list[DevUser] | None = None,
                 request_log: TextIO | None = sys.stderr, template: Path | None = None,
                 faults: FaultPlan | None = None, schedules: float | None = 1.0,
                 state_file: Path | None = None) -> None:
        """``faults``: inject AWS faults (local/faults.py). ``schedules``: run the template's
        scheduled functions at this speed (1.0 = their real rates; None = never).
        ``state_file``: where to announce the stack to the CLI while serving (local/state.py)."""
        self.faults = faults
        self.schedules = schedules
        self.state_file = state_file
        self.host = host
        self.template = template
        self.port = port
        self.moto_port = moto_port if moto_port is not None else (port + 1 if port else 0)
        self.log_level = log_level
        self.users = users or dev_users()
        self.request_log = request_log
        self.cloud: LocalCloud | None = None
        self._moto: BaseWSGIServer | None = None
        self._moto_thread: threading.Thread | None = None
        self._http: BaseWSGIServer | None = None
        self._app = _AppSlot()
        self._serving = threading.Event()

    def start(self) -> None:
        """Bind both ports, deploy the stack, start moto's server (not this one's loop yet).

        Ports are bound first, so a port in use fails at once with ``OSError`` instead of
        after the deployment. moto's server is its own WSGI app and request handler run the
        way ``ThreadedMotoServer`` runs them, except that the socket is bound here, in the
        caller's thread: ``ThreadedMotoServer.start()`` waits forever when its port is taken.
        """
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from mediaguard.local.runtime import DEFAULT_TEMPLATE
        from mediaguard.local.template import Stack

        template = self.template or DEFAULT_TEMPLATE
        declared = Stack.from_file(template).parameters
        uploader = next(u for u in self.users if not u.roles)
        parameters = {"LogLevel": self.log_level, "DevToken": uploader.token, "DevTokens": token_map(self.users)}
        try:
            handler = type("RequestLog", (_RequestLog,), {"stream": self.request_log})
            self._http = make_server(self.host, self.port, self._app, threaded=True, request_handler=handler)
            self._moto = make_server(self.moto_host, self.moto_port,
                                     _AwsClientsOnly(DomainDispatcherApplication(create_backend_app)),
                                     threaded=True, request_handler=_QuietMotoHandler)
            self.cloud = LocalCloud(template, parameters={k: v for k, v in parameters.items() if k in declared},
                                    faults=self.faults, schedules=self.schedules)
            self.cloud.__enter__()
            self._app.app = ServeApp(self.cloud, HostCheck.bound_to(self.host, self._http.server_port))
            self._moto_thread = threading.Thread(target=self._moto.serve_forever, name="moto-server", daemon=True)
            self._moto_thread.start()
            self._write_state()
        except BaseException:
            self.stop()
            raise

    def _write_state(self) -> None:
        if self.state_file is not None and self.cloud is not None:
            LocalStackState(self.moto_url, self.region, os.getpid(), self.url,
                            stack_environment(dict(os.environ))).write(self.state_file)

    def _remove_state(self) -> None:
        # Only our own: a second serve (another port) may have replaced it.
        if self.state_file is not None:
            try:
                state = LocalStackState.read(self.state_file)
            except StateFileError:
                return
            if state is not None and state.pid == os.getpid() and self._moto is not None \
                    and state.endpoint == self.moto_url:
                self.state_file.unlink(missing_ok=True)

    def serve_forever(self) -> None:
        if self._http is None or self._app.app is None:
            raise RuntimeError("call start() first")
        self._serving.set()
        try:
            self._http.serve_forever()
        finally:
            self._serving.clear()

    def stop(self) -> None:
        """Stop serving, stop moto's server, tear the stack down; safe to call twice."""
        self._remove_state()
        if self._http is not None:
            # shutdown() waits for serve_forever to return: only ask one that is running.
            if self._serving.is_set():
                self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._moto is not None:
            if self._moto_thread is not None:
                self._moto.shutdown()
                self._moto_thread.join(timeout=10)
                self._moto_thread = None
            self._moto.server_close()
            self._moto = None
        if self.cloud is not None:
            self.cloud.stop()
            self.cloud = None

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("not started")
        return f"http://{_netloc(self.host, self._http.server_port)}"

    @property
    def moto_host(self) -> str:
        """Where moto's server listens: ``--host`` if that is loopback, else 127.0.0.1. moto
        checks no credentials, so it must never be reachable from another machine."""
        return self.host if is_loopback(self.host) else "127.0.0.1"

    @property
    def moto_url(self) -> str:
        if self._moto is None:
            raise RuntimeError("not started")
        return f"http://{_netloc(self.moto_host, self._moto.server_port)}"

    @property
    def region(self) -> str:
        return self.cloud.stack.region if self.cloud else "us-east-1"

    def banner(self) -> list[str]:
        """What ``serve`` prints: where things are and the dev tokens."""
        lines = [
            f"mediaguard console   {self.url}/",
            f"upload page          {self.url}/upload",
            f"review API           {self.url}/api/  (OpenAPI: {self.url}/api/openapi.json)",
            f"moto (AWS API)       {self.moto_url}  e.g. aws --endpoint-url {self.moto_url} "
            f"--region {self.region} s3 ls",
            "dev tokens (Authorization: Bearer <token>; new on every start):",
        ]
        lines += [f"  {u.label:<16} {u.sub:<11} {u.token}" for u in self.users]
        if not is_loopback(self.host):
            lines += exposure_warning(self.host)
        lines.append("Ctrl-C stops")
        return lines


def exposure_warning(host: str) -> list[str]:
    """What binding ``serve`` to a non-loopback ``host`` exposes, line by line."""
    return [
        f"WARNING: bound to {host}, not loopback. Anyone who can reach it, over plain HTTP (tokens and media",
        "  travel unencrypted), can: load the console and upload pages; read the OpenAPI document at /api/docs;",
        "  with a dev token above, use the review, admin and upload APIs with that token's roles (read items",
        "  and audit trails, decide, appeal, change geofence rules, upload); fetch media and post uploads",
        "  through /s3/ with the signed links the APIs hand out.",
        "  moto's AWS endpoint (every bucket and table, no credentials checked) stays on 127.0.0.1 only.",
    ]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


__all__ = ["DevUser", "HostCheck", "LocalServer", "PresignError", "ServeApp", "api_event", "console_config",
           "dev_users", "exposure_warning", "export_console", "localize_s3_urls", "verify_presigned_get"]
