"""Mark, sign and remember one generated output.

:func:`mark_output` takes the image the platform's model produced for a recorded
generation and returns it watermarked (``genguard.watermark``, payload = this
generation) and carrying a signed C2PA manifest (``genguard.provenance``); it records
the output's sha256 and PDQ on the generation (once: a second output is refused,
409),
banks the PDQ in the ``own-generations`` flag bank (action ``label``, created on
first use), and appends ``output`` to the generation's audit chain (``records``).

The bank is what outlives everything else: metadata strippers remove the manifest,
a resize or a crop removes the watermark, but a re-upload still matches the banked
PDQ and the normal pipeline labels it AI-generated (enforcement's reason
``ai_generated_own``). PDQ does not survive a 10 % crop (bench/watermark.py); the
embeddings do (the pipeline's open_nsfw and CLIP likeness), and are banked when the
caller passes a featurizer (the CLI does; the output API does not, its function
carries no model layer).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from mediaguard import models
from mediaguard.analysis.banks.errors import BankExistsError, BankNotFoundError
from mediaguard.analysis.banks.model import Features, Featurizer
from mediaguard.analysis.banks.service import BankService
from mediaguard.errors import ApiError, MediaRejectedError
from mediaguard.genguard import provenance, watermark
from mediaguard.genguard.records import GenerationLedger, GenerationNotFoundError, OutputExistsError
from mediaguard.ingress.ingest import prepare
from mediaguard.ingress.media import load_rgb, open_image, sniff
from mediaguard.settings import Settings

OWN_GENERATIONS_BANK = models.OWN_GENERATIONS_BANK
OWN_GENERATIONS_ACTION = "label"
# An output travels base64 in a JSON body: 4 MB of image is ~5.4 MB of body, under
# Lambda's 6 MB synchronous payload (API Gateway's own limit is 10 MB).
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
JPEG_QUALITY = 95

def bank_ref(generation_id: str, key: bytes) -> str:
    """The own-generations entry ref: the watermark's (keyed) digest first, so ``verify`` finds
    the entry of a decoded mark with one prefix query, then the generation id."""
    return f"{watermark.generation_digest(generation_id, key).hex()}:{generation_id}"


def generation_of_ref(ref: str) -> str:
    return ref.split(":", 1)[1] if ":" in ref else ref


@dataclass(frozen=True)
class MarkedOutput:
    generation_id: str
    data: bytes
    content_type: str
    output_sha256: str
    pdq: str
    pdq_quality: int


class OutputRejectedError(ApiError):
    """The output cannot be marked: not a still image we read, or under 256x256."""

    status = 400
    reason = "invalid_output"


class OutputTooLargeError(OutputRejectedError):
    status = 413
    reason = "output_too_large"


def ensure_bank(banks: BankService, *, actor: str) -> None:
    """Create the own-generations bank (flag, action label) unless it exists."""
    try:
        banks.get_bank(OWN_GENERATIONS_BANK)
    except BankNotFoundError:
        try:
            banks.create_bank(OWN_GENERATIONS_BANK, "flag", action=OWN_GENERATIONS_ACTION, actor=actor)
        except BankExistsError:  # created meanwhile by a concurrent mark
            pass


def mark_output(image: bytes, generation_id: str, *, ledger: GenerationLedger, banks: BankService,
                signing: provenance.SigningMaterial, settings: Settings,
                actor: str = "system:genguard", featurizer: Featurizer | None = None) -> MarkedOutput:
    """Watermark, sign, record and bank the output of ``generation_id``.

    Raises :class:`~mediaguard.genguard.records.GenerationNotFoundError` (404, unknown id),
    :class:`OutputExistsError` (409, the generation has its output),
    :class:`OutputRejectedError` (400/413, unusable image). The generation's chain gets
    ``output`` with the output's sha256, PDQ, the watermark digest and the bank entry.

    ``featurizer`` (``analysis.featurize.media_featurizer``, where the models are installed)
    banks the embeddings too, so the pipeline also finds crops PDQ loses (open_nsfw / CLIP
    likeness); without one only the PDQ is banked.

    Example::

        out = mark_output(png_bytes, "g-1", ledger=GenerationLedger(store, items), banks=svc,
                          signing=dev_signing_material(), settings=Settings())
        Path("out.png").write_bytes(out.data)
    """
    record = ledger.get(generation_id)
    if record is None:
        raise GenerationNotFoundError("no such generation")
    if record.output_sha256 is not None:
        raise OutputExistsError("the generation already has an output")
    key = signing.watermark_key
    marked, content_type = _watermarked(image, watermark.payload_for(generation_id, key), settings)
    signed = provenance.sign(marked, content_type, signing, generation_id=generation_id, model=record.model)
    sha256 = hashlib.sha256(signed).hexdigest()
    if featurizer is not None:
        features = featurizer(signed, content_type)[0]
        pdq, quality = features.pdq, features.quality
    else:
        pdq, quality = pipeline_pdq(signed, settings)
        features = Features(pdq=pdq, quality=quality)

    def remember() -> None:
        ensure_bank(banks, actor=actor)
        banks.add_media(OWN_GENERATIONS_BANK, bank_ref(generation_id, key), [features], actor=actor, source="genguard")

    # The record is claimed first (conditional write): of two concurrent outputs only the
    # one that claimed it banks its PDQ. A failure after the claim answers 500 and leaves
    # the record with its output (sha256, PDQ) but the chain without "output".
    ledger.record_output(generation_id, sha256, pdq, actor, then=remember, detail={
        "watermark": watermark.generation_digest(generation_id, key).hex(), "content_type": content_type,
        "c2pa": provenance.TRAINED_ALGORITHMIC_MEDIA.rsplit("/", 1)[-1],
        "bank": OWN_GENERATIONS_BANK, "ref": bank_ref(generation_id, key),
    })
    return MarkedOutput(generation_id, signed, content_type, sha256, pdq, quality)


def pipeline_pdq(data: bytes, settings: Settings) -> tuple[str, int]:
    """The PDQ the pipeline computes for these bytes (sanitized, reduced, hashed)."""
    fingerprints = prepare(data, None, settings, forensics=False).fingerprints
    return fingerprints.pdq, fingerprints.pdq_quality


def _watermarked(image: bytes, payload: np.ndarray, settings: Settings) -> tuple[bytes, str]:
    """The image with the mark, as PNG (a PNG came in) or JPEG q95 4:4:4 (anything else)."""
    if len(image) > MAX_OUTPUT_BYTES:
        raise OutputTooLargeError(f"an output is at most {MAX_OUTPUT_BYTES // (1024 * 1024)} MB")
    try:
        kind = sniff(image)
        rgb = np.asarray(load_rgb(open_image(image, settings.max_pixels)))
    except (MediaRejectedError, OSError, ValueError) as exc:
        raise OutputRejectedError("the output is not a still image mediaguard reads") from exc
    try:
        marked = watermark.embed(np.ascontiguousarray(rgb[..., :3]), payload)
    except watermark.WatermarkError as exc:
        raise OutputRejectedError(str(exc)) from exc
    buf = io.BytesIO()
    if kind.name == "png":
        Image.fromarray(marked).save(buf, "PNG", optimize=False)
        return buf.getvalue(), "image/png"
    # 4:4:4: the mark lives in chroma, and our own save should not be the first to thin it.
    Image.fromarray(marked).save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buf.getvalue(), "image/jpeg"
