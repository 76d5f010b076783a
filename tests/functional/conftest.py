from __future__ import annotations

import os

import pytest
from moto import mock_aws

from mediaguard.local.runtime import LocalCloud

# The region of the moto account tests that build their own tables use.
MOTO_REGION = "eu-west-1"


@pytest.fixture(scope="module")
def cloud():
    """The real template and state machine deployed into in-process moto.

    Quality sampling is off here: it picks 2 % of random media ids by hash and then queues a
    ``qa`` task and appends ``system:qa``'s record, so a test that pins the review task or the
    audit chain after enforcement failed on one run in fifty. ``test_observability`` runs the
    template's default rate on a stack of its own."""
    with LocalCloud(parameters={"LogLevel": "WARNING", "QaSampleRate": "0"}) as local:
        yield local


@pytest.fixture(scope="module")
def moto_account():
    """One empty moto account for a module that creates its own tables (starting one costs
    up to seconds on a busy machine); credentials are fake and any profile is hidden."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": MOTO_REGION}
    saved = {var: os.environ.get(var) for var in [*env, "AWS_PROFILE"]}
    os.environ.update(env)
    os.environ.pop("AWS_PROFILE", None)
    with mock_aws():
        yield
    for var, value in saved.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
