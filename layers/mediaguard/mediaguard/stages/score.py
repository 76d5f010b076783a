"""Score: composite, explainable risk and the active policy's action (plus what the shadow policy would do)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from mediaguard.decisions.scoring import ScoreInputs, score, select_policies
from mediaguard.models import ScoreInput, ScoreResult
from mediaguard.ports import Deps

logger = Logger(service="mediaguard", child=True)


def _frames(request: ScoreInput) -> int:
    return sum(len(batch.frames) for batch in request.classify)


def score_item(request: ScoreInput, deps: Deps) -> ScoreResult:
    """Every signal's contribution, the active policy's action and the shadow policy's;
    the inputs are stored so the decision can be replayed. The uploader comes from the
    execution input (the start stage read the grant), not from another read."""
    settings, items = deps.settings, deps.need("items")
    active, shadow = select_policies(settings.policy, settings.shadow_policy)
    history = deps.history
    snapshot = history.snapshot(request.uploader) if history is not None and request.uploader else None
    busiest, face_model = request.faces_frame(), next((b.face_model for b in request.detect or []), None)
    inputs = ScoreInputs(classifier=request.classifier_scores(), matches=request.similarity.matches,
                         provenance=request.provenance, history=snapshot,
                         faces=len(busiest.faces) if busiest is not None else None)
    result = score(inputs, active, shadow)
    models = {m.id: m.sha256 for batch in [*request.classify, *(request.detect or [])] for m in batch.models}
    # What ``scan --json`` shows: the boxes of the frame with the most faces (a still has one frame).
    faces = None
    if busiest is not None:
        faces = {"count": len(busiest.faces), "model": face_model, "frame": busiest.key,
                 "boxes": busiest.faces}
    items.update(
        request.media_id,
        # ``action`` is what is in force: enforcement sets it when it applied one. A crash
        # between here and there must not show the proposal as done.
        {"matches": [m.model_dump() for m in request.similarity.matches],  # the similarity stage's
         "risk": result.risk, "proposed_action": result.action, "signals": [s.model_dump() for s in result.signals],
         "policy_version": result.policy_version, "override": result.override, "escalate": result.escalate,
         "shadow": result.shadow.model_dump() if result.shadow else None,
         "score_inputs": inputs.model_dump(mode="json"), "scores": inputs.classifier, "faces": faces,
         # A video's frame behind each score (a still has one frame: nothing to point at).
         "signal_frames": request.signal_frames() if _frames(request) > 1 else None,
         "models": [{"id": k, "sha256": v} for k, v in sorted(models.items())]},
    )
    items.append_audit(request.media_id, "system:score", "scored",
                       {**result.model_dump(), "models": sorted(models.items())})
    logger.info("scored", extra={"media_id": request.media_id, "risk": result.risk, "action": result.action,
                                 "escalate": result.escalate,
                                 "shadow_differs": bool(result.shadow and result.shadow.differs)})
    return result
