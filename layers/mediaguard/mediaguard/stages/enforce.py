"""Enforce: apply the scored action, audited, evented, safe to retry (see ``decisions.enforcement``)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from mediaguard import observability
from mediaguard.decisions import enforcement
from mediaguard.models import EnforceInput, EnforceResult
from mediaguard.ports import Deps

logger = Logger(service="mediaguard", child=True)


def enforce(request: EnforceInput, deps: Deps) -> EnforceResult:
    """Uploader, reach and matches come from the execution input, not from re-reading the item."""
    deps.need("items")
    score = request.score
    context = {"risk": score.risk, "policy_version": score.policy_version, "sanitized_key": request.sanitized_key,
               "poster_key": request.poster_key, "reach": request.reach}
    decision = enforcement.apply(request.media_id, score.action, actor="system:enforce",
                                 reason=enforcement.reason_from_score(score), context=context, deps=deps,
                                 fields={"status": "done", "reach": request.reach})
    if deps.history is not None and request.uploader:
        deps.history.record_outcome(request.uploader, request.media_id, decision.action,
                                    {m.kind for m in request.matches})
    observability.count("Decisions", action=decision.action)
    # After the decision is in force: a sample audits what happened, and a retried stage
    # finds its task already there (the sampling is a hash of the id, not a coin toss).
    review = deps.enforcement.review if deps.enforcement is not None else None
    if review is not None:
        review.sample_for_qa(request.media_id, decision.action)
    logger.info("enforced", extra={"media_id": request.media_id, "action": decision.action})
    return EnforceResult(action=decision.action, served_key=decision.served_key, derivative_key=decision.derivative_key)
