"""CLIP embeddings beside open_nsfw's for near-duplicate search: real models from their
wheels, real photos, banked and queried through the code the pipeline runs.

The bank side is ``featurize.media_featurizer`` (what ``mediaguard bank add`` and
``scan --bank`` use); the query side decodes an upload as the classify and detect
stages do. Thresholds are the ones on the signal kinds (``EmbeddingSignal``: 0.90,
``ClipSignal``: 0.95); ``analysis/neardup.py`` has the measurement behind them.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from bench.corpus import centre_crop, jpeg_bytes
from mediaguard.analysis.banks.embeddings import encode_embedding
from mediaguard.analysis.banks.indexing import index_entries
from mediaguard.analysis.banks.model import Entry
from mediaguard.analysis.featurize import media_featurizer
from mediaguard.analysis.matching import BankInfo, BuiltIndex, Matcher, Query
from mediaguard.settings import Settings
from mediaguard.signals import ClipSignal, EmbeddingSignal, PdqSignal, hamming
from tests.conftest import photo
from tests.fakes import Clock


@pytest.fixture(scope="module")
def featurize():
    return media_featurizer(Settings(), clip=True)


def png(name: str) -> bytes:
    buf = io.BytesIO()
    photo(name).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def banked(featurize):
    """A block bank holding ``retina`` as ``mediaguard bank add`` stores it, as an index build."""
    (features,) = featurize(png("retina"), "image/png")
    entry = Entry(bank="ncii", ref="retina-1", pdq=features.pdq, quality=features.quality,
                  embedding=encode_embedding(features.embedding), clip=encode_embedding(features.clip))
    build = BuiltIndex.build(index_entries(entry), built_at=1.0)
    return features, Matcher(_Reader(), build, clock=Clock(1000.0))


class _Reader:
    def banks(self):
        return [BankInfo("ncii", "block")]

    def active_entries(self):
        return []

    def changed_since(self, since):
        return []


def query_of(features) -> Query:
    return Query(frames=[(features.pdq, features.quality)], embeddings=np.asarray(features.embedding)[None],
                 clip=np.asarray(features.clip)[None])


def test_a_tight_crop_of_a_banked_photo_matches_by_clip_where_open_nsfw_loses_it(featurize, banked):
    reference, matcher = banked
    # GIVEN retina banked in full WHEN a 75 % centre crop of it is uploaded
    (copy,) = featurize(jpeg_bytes(centre_crop(photo("retina"), 0.75), quality=90), "image/jpeg")
    # THEN PDQ is far off and open_nsfw's cosine is below its threshold (measured 0.856) ...
    assert hamming(copy.pdq, reference.pdq) > PdqSignal.match_threshold
    assert float(np.dot(copy.embedding, reference.embedding)) < EmbeddingSignal.match_threshold
    # ... while CLIP's is above its own (measured 0.982), and the match names the clip signal
    assert float(np.dot(copy.clip, reference.clip)) >= ClipSignal.match_threshold
    (match,) = matcher.match(query_of(copy))
    assert (match.bank, match.ref, match.signal) == ("ncii", "retina-1", "clip")
    assert match.distance == pytest.approx(1 - float(np.dot(copy.clip, reference.clip)), abs=2e-3)


@pytest.mark.parametrize("name", ["coffee", "camera", "immunohistochemistry"])
def test_an_unrelated_photo_matches_by_no_signal(featurize, banked, name):
    _, matcher = banked
    # GIVEN the same bank WHEN an unrelated photo is uploaded THEN nothing matches
    (other,) = featurize(jpeg_bytes(photo(name), quality=90), "image/jpeg")
    assert matcher.match(query_of(other)) == []


def test_the_featurizer_computes_clip_as_the_detect_stage_does(featurize):
    from mediaguard.analysis.faces import MAX_SIDE
    from mediaguard.analysis.synthetic import synthetic_detector
    from mediaguard.ingress.ingest import prepare
    from mediaguard.ingress.media import load_rgb, open_image

    # GIVEN a photo banked through the featurizer
    data = jpeg_bytes(photo("chelsea"), quality=90)
    (features,) = featurize(data, "image/jpeg")
    # WHEN the detect stage's decode + CLIP runs on the same sanitized image
    settings = Settings()
    sanitized = prepare(data, "image/jpeg", settings, forensics=False).sanitized.data
    frame = load_rgb(open_image(sanitized, settings.max_pixels), min_side=MAX_SIDE)
    stage = synthetic_detector(settings.onnx_threads).embed(frame)
    # THEN the banked vector is the stage's: 512-d, unit length, the same to float rounding
    assert np.asarray(features.clip).shape == (ClipSignal.dimension,)
    assert float(np.dot(features.clip, stage)) > 0.9999
