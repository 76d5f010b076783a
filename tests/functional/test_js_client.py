"""The JavaScript client (clients/js) under Node: its own test suite, and its PDQ and pHash
against the server's on real photos and the pinned reference values (issue 17).

Node has no image decoder, so Python decodes each upload with Pillow at full size, as a
browser would, and hands Node the raw RGBA; the server's side is ``ingest.prepare`` on the
very bytes that would be uploaded (draft decode and all).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from bench.corpus import PHOTOS, TRANSFORMS, jpeg_bytes, photo
from mediaguard.ingress.ingest import prepare
from mediaguard.settings import Settings
from mediaguard.signals.base import bits_to_hex, hamming
from tests.unit.test_fingerprint import ASTRONAUT_PDQ, ASTRONAUT_PHASH

REPO = Path(__file__).resolve().parents[2]
JS = REPO / "clients" / "js"
NODE = shutil.which("node")
# The bound the issue sets for a client hash: the server's threshold is 31 bits, so a client
# within a few bits never turns a banked picture into a miss or a stranger into a match.
MEAN_BOUND, WORST_BOUND = 4.0, 12

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (scripts/setup.sh installs nodejs)")


def test_node_test_suite_passes():
    # GIVEN the client's own tests (strip, PDQ properties, upload flow against a local server)
    # WHEN Node's test runner runs them
    result = subprocess.run([NODE, "--test", "test/"], cwd=JS, capture_output=True, text=True, timeout=120)
    # THEN every test passes
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def hash_in_node(tmp: Path, uploads: list[tuple[bytes, str]]) -> list[dict]:
    """The JS fingerprints of each upload's fully decoded pixels (one Node process)."""
    manifest = []
    for i, (data, content_type) in enumerate(uploads):
        with Image.open(io.BytesIO(data)) as img:
            rgba = img.convert("RGBA")
        path = tmp / f"{i}.rgba"
        path.write_bytes(rgba.tobytes())
        manifest.append({"path": str(path), "width": rgba.width, "height": rgba.height, "type": content_type})
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    result = subprocess.run([NODE, str(JS / "bench" / "hash-raw.mjs"), str(tmp / "manifest.json")],
                            capture_output=True, text=True, timeout=300, check=True)
    return [json.loads(line) for line in result.stdout.splitlines()]


def corpus() -> list[tuple[str, bytes, str]]:
    """44 uploads: every test photo as a JPEG, colour-shifted and cropped JPEGs of it, and a
    PNG of it; plus two upscaled to 12 MP (4000x3000), where the server draft-decodes at 1/4."""
    uploads = []
    for name in PHOTOS:
        img = photo(name)
        uploads.append((f"{name}.jpg", jpeg_bytes(img), "image/jpeg"))
        uploads.append((f"{name}-colour.jpg", jpeg_bytes(TRANSFORMS["colour"](img)), "image/jpeg"))
        uploads.append((f"{name}-crop.jpg", jpeg_bytes(TRANSFORMS["crop"](img)), "image/jpeg"))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        uploads.append((f"{name}.png", buf.getvalue(), "image/png"))
    for name in ("astronaut", "coffee"):
        big = photo(name).resize((4000, 3000), Image.Resampling.BICUBIC)
        uploads.append((f"{name}-12mp.jpg", jpeg_bytes(big), "image/jpeg"))
    return uploads


def test_js_pdq_agrees_with_the_server_on_real_photos(tmp_path, capsys):
    # GIVEN 46 uploads made from the test photos, and the server's fingerprints of each
    uploads = corpus()
    settings = Settings()
    server = [prepare(data, ctype, settings, forensics=False).fingerprints for _, data, ctype in uploads]
    # WHEN the JS client hashes what it decoded
    client = hash_in_node(tmp_path, [(data, ctype) for _, data, ctype in uploads])
    # THEN its PDQ is within the bound of the server's, and quality agrees where it matters
    distances = [hamming(c["pdq"], s.pdq) for c, s in zip(client, server, strict=True)]
    phash = [hamming(c["phash"], s.phash) for c, s in zip(client, server, strict=True)]
    mean, worst = sum(distances) / len(distances), max(distances)
    with capsys.disabled():
        print(f"\nJS vs server PDQ over {len(uploads)} uploads: mean {mean:.2f} bits, max {worst} "
              f"({uploads[distances.index(worst)][0]}); pHash mean {sum(phash) / len(phash):.2f}, max {max(phash)} of 64")
    assert len(uploads) >= 20
    assert mean <= MEAN_BOUND and worst <= WORST_BOUND, list(zip([u[0] for u in uploads], distances, strict=True))
    for c, s in zip(client, server, strict=True):
        assert (c["pdq_quality"] >= 50) == (s.pdq_quality >= 50) or abs(c["pdq_quality"] - s.pdq_quality) <= 5


def test_js_pdq_is_the_reference_algorithm_on_identical_pixels(tmp_path):
    # GIVEN the same decoded pixels for JS and for pdqhash (Meta's C++), pinned photo included
    uploads = [(jpeg_bytes(photo(name)), "image/jpeg") for name in PHOTOS[:6]]
    client = hash_in_node(tmp_path, uploads)
    for (data, _), c in zip(uploads, client, strict=True):
        with Image.open(io.BytesIO(data)) as img:
            rgba = img.convert("RGBA")
        vector, quality = pdqhash.compute(np.ascontiguousarray(np.asarray(rgba.convert("RGB"), dtype=np.uint8)))
        # THEN the port gives the reference's bits (float32 rounding may flip a tie at the median)
        assert hamming(c["pdq_full"], bits_to_hex(vector)) <= 2
        assert c["quality_full"] == quality


def test_js_hashes_equal_the_pinned_reference_values(tmp_path):
    # GIVEN skimage's astronaut as RGB, whose PDQ and pHash the server's tests pin
    img = photo("astronaut")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    # WHEN the JS client hashes it
    (client,) = hash_in_node(tmp_path, [(buf.getvalue(), "image/png")])
    # THEN both are bit-identical to the pinned values
    assert client["pdq_full"] == ASTRONAUT_PDQ
    assert client["pdq"] == ASTRONAUT_PDQ
    assert client["phash"] == ASTRONAUT_PHASH
