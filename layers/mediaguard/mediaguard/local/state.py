"""Where a running ``mediaguard serve`` is, so the CLI finds it without hand-set variables.

``serve`` writes ``serve.json`` into ``$MEDIAGUARD_HOME`` (else ``./.mediaguard``, the
folder ``bank`` and ``geofence`` already use) while it runs and removes it on stop:

    {"version": 1, "pid": 4242, "endpoint": "http://127.0.0.1:8081", "region": "us-east-1",
     "console": "http://127.0.0.1:8080", "environment": {"AUDIT_TABLE": "...", ...}}

``environment`` holds the variables the template gives its functions that name resources
(tables, buckets, the state machine, the event bus) plus the stack's uploader key, so
``geofence add`` pseudonymises an uploader scope exactly as the local pipeline does. Dev
tokens and webhook secrets are never written. The file is created mode 0600.

``audit verify``, ``bank`` and ``geofence`` given no ``--stack`` (nor ``--store``/``--home``)
and run where no ``AUDIT_TABLE``/``BANKS_TABLE``/``GEOFENCE_TABLE`` is set use the stack the
file names, if its process is alive and its endpoint answers; a stale file is ignored.
Precedence: ``--stack`` > ``--store``/``--home`` > the environment > ``serve.json`` >
the local file stores.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mediaguard.settings import _ENV

FILE_NAME = "serve.json"
VERSION = 1
# Never written: credentials of people (dev tokens) or of a receiver (webhook secret).
_NEVER = {"MEDIAGUARD_DEV_TOKEN", "MEDIAGUARD_DEV_TOKENS", "MEDIAGUARD_WEBHOOK_SECRET"}
_SHARED = frozenset(v for v in _ENV.values() if v not in _NEVER and v != "AWS_REGION")
# Variables that, when set, mean the caller already chose a stack.
_CHOSEN = ("AUDIT_TABLE", "BANKS_TABLE", "GEOFENCE_TABLE", "AWS_ENDPOINT_URL")


class StateFileError(ValueError):
    """A serve.json that cannot be read (not JSON, another version)."""


def home(environ: dict[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("MEDIAGUARD_HOME") or ".mediaguard")


def default_path(environ: dict[str, str] | None = None) -> Path:
    return home(environ) / FILE_NAME


@dataclass(frozen=True)
class LocalStackState:
    endpoint: str
    region: str
    pid: int
    console: str | None = None
    environment: dict[str, str] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        """Write atomically, readable by the owner only (it holds the stack's uploader key)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"version": VERSION, "pid": self.pid, "endpoint": self.endpoint, "region": self.region,
                       "console": self.console, "environment": self.environment}, handle, indent=2)
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> LocalStackState | None:
        """The state in ``path``; None if there is no file."""
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StateFileError(f"{path}: unreadable ({type(exc).__name__})") from None
        if not isinstance(document, dict) or document.get("version") != VERSION:
            raise StateFileError(f"{path}: not a version {VERSION} serve state file")
        return cls(str(document["endpoint"]), str(document["region"]), int(document["pid"]),
                   document.get("console"), {str(k): str(v) for k, v in (document.get("environment") or {}).items()})

    def alive(self, timeout: float = 0.5) -> bool:
        """The serve process exists and its moto endpoint accepts a connection."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, another user's
        parts = urlsplit(self.endpoint)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout):
                return True
        except OSError:
            return False

    def environ(self) -> dict[str, str]:
        """The variables a CLI process sets to act on this stack (moto's dummy credentials)."""
        return {**{k: v for k, v in self.environment.items() if k in _SHARED},
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def stack_environment(environ: dict[str, str]) -> dict[str, str]:
    """The subset of a local stack's function environment that serve.json records."""
    return {k: v for k, v in environ.items() if k in _SHARED and v}


def use_running_stack(environ: dict[str, str] | None = None, path: Path | None = None) -> LocalStackState | None:
    """If no stack is chosen in ``environ`` (default ``os.environ``) and a live ``serve``
    left a state file, point ``environ`` at it and return its state; else None."""
    environ = os.environ if environ is None else environ
    if any(environ.get(name) for name in _CHOSEN):
        return None
    state = LocalStackState.read(path or default_path(environ))
    if state is None or not state.alive():
        return None
    environ.pop("AWS_PROFILE", None)
    environ.pop("AWS_SESSION_TOKEN", None)
    environ.update(state.environ())
    from mediaguard.settings import get_settings

    get_settings.cache_clear()
    return state


__all__ = ["LocalStackState", "StateFileError", "default_path", "home", "stack_environment", "use_running_stack"]
