"""Signals: every fingerprint kind mediaguard computes, stores or matches, one class each.

This package owns what a kind *is*: its name, the content it is computed from, the
validation of its string form, how it is computed, how two values compare, its match
threshold(s) (defined once, on the class: every caller reads the attribute), the index
class that searches it and examples. :data:`REGISTRY` maps names to kinds; the stored
fingerprints of a still (``models.Fingerprints`` and the media item's fields) are derived
from it. Adding a kind is one class plus examples, registered here, and
``tests/unit/test_signals.py`` runs the shared contract over it.

Kinds: :class:`PdqSignal` (stills, with its eight dihedral variants and a quality floor),
:class:`VpdqSignal` (videos: per-frame PDQ and a frame share required both ways),
:class:`EmbeddingSignal` (a model's pooled layer, by cosine), :class:`ClipSignal` (CLIP's
image embedding, by cosine, with its own threshold), :class:`AudioSignal` (Chromaprint
sub-fingerprints, by the share of aligned words that agree), and :class:`PHashSignal` /
:class:`DHashSignal`.

pHash and dHash are computed and recorded, not matched (``matched = False``, no index):
- Behaviour: nothing matched them before this registry existed; matching them now would
  add matches, and with them different decisions, to the same uploads.
- No bank can hold them: hash exchanges (ThreatExchange, StopNCII) exchange PDQ (and
  video MD5/TMK), bank imports accept PDQ, and banked media is featurized as PDQ plus an
  embedding.
- They add no reach: PDQ (256 bits, a quality to refuse flat pictures, the eight
  rotations/mirrors) survives every transform 64-bit pHash does, and the embedding
  carries crops, which neither hash survives.
They stay computed (from the still already decoded for PDQ) because the ``scan --json`` /
``hash --json`` contract (README) reports ``phash``, the edge function forwards both as
headers and the media item keeps both. A future per-bank pHash threshold would start by
setting ``matched = True`` and an index here.

Layering: below every area; imports nothing from mediaguard outside this package, so
``mediaguard.models`` can build ``Fingerprints`` from it. pdqhash is imported lazily, on
the first hash, as before.
"""

from __future__ import annotations

from typing import Any

from mediaguard.signals.audio import AudioSignal
from mediaguard.signals.base import Comparison, ContentType, HexHashSignal, SignalType, bits_to_hex, hamming
from mediaguard.signals.embedding import ClipSignal, EmbeddingSignal
from mediaguard.signals.pdq import PdqSignal
from mediaguard.signals.phash import DHashSignal, PHashSignal
from mediaguard.signals.vpdq import VpdqSignal

REGISTRY: dict[str, type[SignalType]] = {
    s.name: s for s in (PdqSignal, VpdqSignal, EmbeddingSignal, ClipSignal, PHashSignal, DHashSignal, AudioSignal)}

# The kinds computed from a still at sanitize time, in the order their fields are stored.
STILL_KINDS: tuple[type[SignalType], ...] = tuple(s for s in REGISTRY.values() if s.record_fields)


def record_fields() -> dict[str, tuple[Any, Any]]:
    """Every field a still's stored fingerprints carry besides ``sha256``: (type, default)."""
    return {field: spec for s in STILL_KINDS for field, spec in s.record_fields.items()}


def item_fields() -> tuple[str, ...]:
    """The fingerprint fields written on the media item."""
    return tuple(field for s in STILL_KINDS for field in s.item_fields)


__all__ = [
    "REGISTRY", "STILL_KINDS", "AudioSignal", "ClipSignal", "Comparison", "ContentType", "DHashSignal",
    "EmbeddingSignal", "HexHashSignal",
    "PHashSignal", "PdqSignal", "SignalType", "VpdqSignal", "bits_to_hex", "hamming", "item_fields", "record_fields",
]
