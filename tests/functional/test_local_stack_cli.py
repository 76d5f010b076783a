"""`audit verify`, `bank` and `geofence` find a running `mediaguard serve` by themselves
(issue 14, local fidelity 3): serve writes $MEDIAGUARD_HOME/serve.json, the CLI reads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mediaguard.adapters.banks import dynamo_bank_service
from mediaguard.local.serve import LocalServer
from mediaguard.local.state import LocalStackState, use_running_stack
from tests.conftest import jpeg_bytes, photo

LAYER = Path(__file__).resolve().parents[2] / "layers" / "mediaguard"


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI as a user runs it: a new process, no AWS variables, only MEDIAGUARD_HOME."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "MEDIAGUARD_HOME": str(home),
           "PYTHONPATH": str(LAYER)}
    return subprocess.run([sys.executable, "-m", "mediaguard.cli", *args], env=env, cwd=home,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("mediaguard-home")
    server = LocalServer(port=0, moto_port=0, request_log=None, schedules=None, state_file=home / "serve.json")
    server.start()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, home
    finally:
        server.stop()
        thread.join(timeout=10)


def test_serve_announces_its_stack_without_secrets(served):
    # GIVEN a running serve
    server, home = served
    # WHEN its state file is read
    state = LocalStackState.read(home / "serve.json")
    # THEN it names moto's endpoint, this process, the stack's tables, and no dev token
    assert state is not None and state.endpoint == server.moto_url and state.alive()
    assert state.environment["AUDIT_TABLE"] and state.environment["BANKS_TABLE"]
    assert "MEDIAGUARD_DEV_TOKEN" not in state.environment
    assert all(u.token not in (home / "serve.json").read_text() for u in server.users)
    assert (home / "serve.json").stat().st_mode & 0o077 == 0


def test_audit_verify_bank_and_geofence_reach_the_running_serve(served):
    # GIVEN a serve that processed one upload, anchored by a digest, and holds one bank
    server, home = served
    cloud = server.cloud
    media_id = cloud.upload(jpeg_bytes(photo("coffee")), "image/jpeg")
    assert cloud.wait(media_id).status == "SUCCEEDED"
    cloud.invoke("DigestFunction", {})
    dynamo_bank_service(cloud.deps().settings).create_bank("served-bank", "block", actor="test")

    # WHEN the CLI runs with no --stack and no AWS environment
    verify = _cli(home, "audit", "verify")
    banks = _cli(home, "bank", "list", "--json")
    geofence = _cli(home, "geofence", "list", "--json")

    # THEN each uses the served stack
    assert verify.returncode == 0, verify.stderr
    assert "1 digest" in verify.stdout and "0 digests" not in verify.stdout
    assert banks.returncode == 0, banks.stderr
    assert "served-bank" in [json.loads(line)["name"] for line in banks.stdout.splitlines()]
    assert geofence.returncode == 0, geofence.stderr
    assert "local stack" in geofence.stderr


def test_a_stale_state_file_is_ignored(tmp_path):
    # GIVEN a serve.json left by a serve that is gone (nothing listens on its endpoint)
    LocalStackState("http://127.0.0.1:9", "us-east-1", os.getpid(), None,
                    {"AUDIT_TABLE": "gone"}).write(tmp_path / "serve.json")
    environ = {"MEDIAGUARD_HOME": str(tmp_path)}
    # WHEN the CLI looks for a local stack
    # THEN it finds none and leaves the environment alone (the local file stores apply)
    assert use_running_stack(environ) is None
    assert environ == {"MEDIAGUARD_HOME": str(tmp_path)}
