"""The one code path from uploaded bytes to a sanitized copy and its fingerprints.

The sanitize stage, ``mediaguard hash``, ``mediaguard sanitize`` and bank building
all call :func:`prepare`, so a fingerprint in a bank is computed exactly like the
fingerprint of an upload.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mediaguard.ingress.fingerprint import fingerprint
from mediaguard.ingress.forensics import inspect
from mediaguard.ingress.media import MediaKind, check_declared, check_size, load_rgb, open_image, sniff
from mediaguard.ingress.sanitize import Sanitized, sanitize
from mediaguard.models import Fingerprints, Provenance
from mediaguard.settings import Settings

# PDQ needs >= 512 px to stay within ~2 bits of a full decode (12-26 bits below).
PDQ_MIN_SIDE = 512


@dataclass
class Prepared:
    kind: MediaKind  # what was uploaded; ``sanitized.kind`` is what is served
    sanitized: Sanitized
    fingerprints: Fingerprints
    provenance: Provenance | None = None


def prepare(data: bytes, declared: str | None, settings: Settings, *, forensics: bool = True) -> Prepared:
    """Check, sanitize, read provenance from the original and fingerprint one upload.

    Raises a :class:`~mediaguard.errors.MediaRejectedError` subclass for bad input.

    Example::

        p = prepare(open("a.jpg", "rb").read(), "image/jpeg", Settings())
        p.fingerprints.pdq, p.sanitized.removed
    """
    sha256 = hashlib.sha256(data).hexdigest()
    check_size(data, settings.max_image_bytes)
    kind = sniff(data)
    check_declared(kind, declared)
    # Sanitizing first validates every limit and refuses polyglots, so no forensic
    # reader ever decodes a bomb; the readers still see the original bytes, before
    # stripping destroyed the C2PA manifest, XMP and text chunks they read.
    clean = sanitize(data, kind, max_pixels=settings.max_pixels, max_frames=settings.max_frames,
                     max_total_pixels=settings.max_total_pixels, max_side=settings.max_side)
    provenance = None
    if forensics:
        provenance = inspect(data, kind.name, trust_anchors=settings.c2pa_trust_anchors,
                             max_pixels=settings.max_pixels)
    rgb = load_rgb(open_image(clean.data, settings.max_pixels), min_side=PDQ_MIN_SIDE)
    # Formats without draft decoding get the same treatment by integer box reduction,
    # so a PNG and a JPEG of one picture hash alike and PDQ never runs at full size.
    factor = min(rgb.size) // PDQ_MIN_SIDE
    if factor >= 2:
        rgb = rgb.reduce(factor)
    return Prepared(kind, clean, Fingerprints(sha256=sha256, **fingerprint(rgb)), provenance)
