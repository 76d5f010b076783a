"""Shared fixtures: real photos shipped by scikit-image, encoded by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from bench.corpus import jpeg_bytes, photo  # noqa: F401  (tests import them from here)

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "events"


def load_event(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text())


def exif_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    return exif.tobytes()


@pytest.fixture(scope="session")
def astronaut_jpeg() -> bytes:
    return jpeg_bytes(photo("astronaut"), exif=exif_with_gps(), comment=b"home")
