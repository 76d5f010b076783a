"""``POST /v1/generations/{generation_id}/outputs``: mark the output of an allowed generation.

The caller is the platform's backend, authenticated as on ``POST /v1/generations`` (the
upload API's JWT with the platform role, else 403; a dev token with role ``platform``
locally); the generation must belong to the caller's tenant (the same JWT claim, setting
``tenant_claim``, else the subject), or it answers 404 as for an unknown id.

Request: ``{"image": <base64 of the generated PNG/JPEG/WebP, at most 4 MB>}``. Base64 JSON
in and out, no presigned upload: 4 MB of image is ~5.4 MB of body, under Lambda's 6 MB
synchronous payload (API Gateway's own cap is 10 MB), and an output that needs more than
that is rare for a still. Answers:

* ``201 {generation_id, content_type, image, output_sha256, pdq}``: ``image`` is the
  marked output (base64): watermarked, with a signed C2PA manifest (trainedAlgorithmicMedia);
  its PDQ is banked in ``own-generations`` and the record and its chain have the output;
* ``404 unknown_generation``; ``409 output_exists`` (one generation, one output);
* ``400 invalid_output`` (not a still image mediaguard reads, or under 256x256),
  ``413 output_too_large`` / ``body_too_large``, ``422`` for a body off the schema, ``401``.

The handler plugs in the ports with :func:`use`; this module knows no AWS client.

Deployed as its own function, ``GenerationOutputsFunction`` (``functions/generation_outputs``),
not inside the lean generations function: marking decodes images and signs with c2pa, so
it carries the core layer plus the ForensicsLayer (c2pa-python; no model layer, so the
PDQ only is banked). Its role may touch the generations table (GetItem, UpdateItem), the
own-generations bank's rows only, and append to ``generation:*`` and
``bank:own-generations`` chains only; it reads one secret, ``GenguardSigningSecret``
(``MEDIAGUARD_GENGUARD_SIGNING_SECRET_ARN``). The records store's ``record_output`` is
conditional on no output yet, so two concurrent requests cannot both pass the 409.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel, ConfigDict, Field

from mediaguard.analysis.banks.service import BankService
from mediaguard.api import errors
from mediaguard.api.auth import credentials
from mediaguard.api.generations import platform_caller
from mediaguard.genguard.config import GenGuardSettings
from mediaguard.genguard.mark import MAX_OUTPUT_BYTES, OutputRejectedError, mark_output
from mediaguard.genguard.provenance import SigningMaterial
from mediaguard.genguard.records import GenerationLedger, GenerationNotFoundError
from mediaguard.settings import Settings

# base64 of MAX_OUTPUT_BYTES, plus the JSON around it.
_MAX_IMAGE_CHARS = (MAX_OUTPUT_BYTES + 2) // 3 * 4
MAX_BODY_BYTES = _MAX_IMAGE_CHARS + 1024
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

app = errors.ApiResolver(enable_validation=True, max_body_bytes=MAX_BODY_BYTES)
errors.install(app, validation_status=422)


class OutputRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=4, max_length=_MAX_IMAGE_CHARS, description="base64 of the generated image")


class MarkedOutputView(BaseModel):
    generation_id: str
    content_type: str
    image: str = Field(description="base64 of the marked output")
    output_sha256: str
    pdq: str


@dataclass(frozen=True)
class OutputPorts:
    ledger: GenerationLedger
    banks: BankService
    signing: Callable[[], SigningMaterial]
    settings: Settings
    # Tenant claim and platform role, read as POST /v1/generations reads them.
    guard: GenGuardSettings = field(default_factory=GenGuardSettings)


_ports: Callable[[], OutputPorts] | None = None


def use(ports: Callable[[], OutputPorts]) -> None:
    """Plug in the ports (cached by whoever passes them)."""
    global _ports
    _ports = ports


@app.post("/v1/generations/<generation_id>/outputs", summary="Watermark, sign, record and bank a generated output")
def mark(generation_id: Annotated[str, Path(pattern=_ID)],
         request: Annotated[OutputRequest, Body()]) -> Response[MarkedOutputView]:
    if _ports is None:
        raise RuntimeError("mediaguard.api.generation_outputs.use() was not called")
    ports = _ports()
    sub, tenant = platform_caller(*credentials(app.current_event), ports.guard)
    record = ports.ledger.get(generation_id)
    if record is None or record.tenant != tenant:  # another tenant's generation is not revealed
        raise GenerationNotFoundError("no such generation")
    try:
        image = base64.b64decode(request.image, validate=True)
    except (binascii.Error, ValueError):
        raise OutputRejectedError("image is not valid base64") from None
    out = mark_output(image, generation_id, ledger=ports.ledger, banks=ports.banks, signing=ports.signing(),
                      settings=ports.settings, actor=f"platform:{sub}")
    view = MarkedOutputView(generation_id=generation_id, content_type=out.content_type,
                            image=base64.b64encode(out.data).decode(), output_sha256=out.output_sha256, pdq=out.pdq)
    return Response(201, content_types.APPLICATION_JSON, view)
