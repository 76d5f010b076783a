from __future__ import annotations

import pytest

from mediaguard.local.runtime import LocalCloud


@pytest.fixture(scope="module")
def cloud():
    """The real template and state machine deployed into in-process moto."""
    with LocalCloud(parameters={"LogLevel": "WARNING"}) as local:
        yield local
