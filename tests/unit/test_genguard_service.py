"""One generation request through quota, references, screening and the record (in memory)."""

from __future__ import annotations

import logging

import pytest

from mediaguard.audit.chain import verify
from mediaguard.genguard.config import GenGuardSettings
from mediaguard.genguard.quota import InMemoryQuotaStore, Limits
from mediaguard.genguard.records import (
    GenerationLedger,
    GenerationNotFoundError,
    InMemoryGenerationStore,
    generation_chain,
    prompt_sha256,
    refusal_chain,
)
from mediaguard.genguard.service import (
    GenerationRefusedError,
    GenerationRequest,
    GenGuard,
    RateLimitedError,
    ReferenceNotReadyError,
    UnknownReferenceError,
    reference_from_item,
    request_generation,
)
from tests.fakes import Clock, Items

T0 = 1_795_424_400.0
ITEMS = {
    "face": {"scores": {"open_nsfw.nsfw": 0.02}, "faces": {"count": 1}},
    "landscape": {"scores": {"open_nsfw.nsfw": 0.01}, "faces": {"count": 0}},
    "pending": {"status": "sanitized"},
    "platform-ref": {"scores": {"open_nsfw.nsfw": 0.01}, "faces": {"count": 0}},
    "other-tenants": {"scores": {"open_nsfw.nsfw": 0.01}, "faces": {"count": 1}},
    "other-pending": {"status": "sanitized"},
}
# The upload grants' uploaders: u1's own uploads, the platform backend's, and another tenant's user's.
UPLOADERS = {"face": "u1", "landscape": "u1", "pending": "u1", "platform-ref": "backend",
             "other-tenants": "someone-else", "other-pending": "someone-else"}


def make_guard(**settings) -> tuple[GenGuard, Items, InMemoryGenerationStore]:
    audit, store = Items(), InMemoryGenerationStore()
    guard = GenGuard(settings=GenGuardSettings(**settings), quota=InMemoryQuotaStore(),
                     ledger=GenerationLedger(store, audit),
                     references=lambda media_id: reference_from_item(media_id, ITEMS.get(media_id)),
                     uploader_of=UPLOADERS.get,
                     clock=Clock(T0))
    return guard, audit, store


def ask(guard, prompt, refs=(), user="u1"):
    return request_generation(GenerationRequest(user=user, prompt=prompt, reference_media_ids=list(refs),
                                                model="gen-v3"), "acme", "platform:backend", guard,
                              caller="backend")


def test_an_allowed_request_is_recorded_with_the_prompt_hash_only_and_its_chain_verifies():
    guard, audit, store = make_guard()
    # WHEN a benign edit of a photo with a face is asked for
    allowed = ask(guard, "turn this photo into a watercolor", ["face"])
    # THEN it is allowed, recorded without the prompt, and its chain starts with the same record
    record = store.get(allowed.generation_id)
    assert record.prompt is None and record.prompt_sha256 == prompt_sha256("turn this photo into a watercolor")
    assert record.reference_media_ids == ["face"] and record.tenant == "acme" and record.model == "gen-v3"
    chain = audit.chains[generation_chain(allowed.generation_id)]
    assert [r.event for r in chain] == ["created"] and "prompt" not in chain[0].detail
    assert verify(chain) == []
    assert allowed.quota["user"]["minute"]["remaining"] == 5


def test_prompts_are_kept_only_when_configured():
    guard, audit, store = make_guard(store_prompts=True)
    allowed = ask(guard, "a red fox")
    assert store.get(allowed.generation_id).prompt == "a red fox"


def test_a_refusal_is_audited_on_the_users_refusal_chain_before_it_is_raised():
    guard, audit, store = make_guard()
    with pytest.raises(GenerationRefusedError) as refused:
        ask(guard, "put her in a bikini", ["face"])
    body = refused.value.body()
    assert refused.value.status == 403 and body["allowed"] is False and body["reasons"] == ["ncii.reference_face"]
    chain = audit.chains[refusal_chain("acme", "u1")]
    assert [r.event for r in chain] == ["refused"] and chain[0].detail["status"] == 403
    assert chain[0].detail["prompt_sha256"] == prompt_sha256("put her in a bikini")
    assert "bikini" not in chain[0].detail.get("prompt", "") and store.records == {}


def test_a_spent_quota_answers_429_audited_and_spends_nothing_more():
    guard, audit, _ = make_guard(limits=Limits.model_validate({"user": {"minute": {"limit": 2}}}))
    ask(guard, "a cat")
    ask(guard, "a dog")
    with pytest.raises(RateLimitedError) as limited:
        ask(guard, "a bird")
    assert limited.value.status == 429 and limited.value.retry_after == 30
    assert limited.value.body()["reasons"] == ["rate_limited"]
    detail = audit.chains[refusal_chain("acme", "u1")][-1].detail
    assert detail["status"] == 429 and detail["retry_after"] == 30
    # AND another user of the tenant is not affected
    assert ask(guard, "a bird", user="u2").generation_id


def test_unknown_and_unscored_references_are_typed_errors():
    guard, _, _ = make_guard()
    with pytest.raises(UnknownReferenceError):
        ask(guard, "a cat", ["nope"])
    with pytest.raises(ReferenceNotReadyError):
        ask(guard, "a cat", ["pending"])


def test_only_the_users_own_or_the_platforms_uploads_are_references_others_are_unknown():
    guard, _, _ = make_guard()
    # GIVEN uploads of u1, of the platform's backend, and of another tenant's user
    # WHEN u1 references its own or the platform's  THEN they are read
    assert ask(guard, "a watercolor of this", ["landscape", "platform-ref"]).generation_id
    # WHEN u1 references someone else's, scored or not  THEN exactly the 404 of an unknown id:
    # neither existence, readiness (409) nor screening reasons (a face) leak
    unknown = pytest.raises(UnknownReferenceError)
    with unknown as nope:
        ask(guard, "put her in a bikini", ["nope"])
    for foreign in ("other-tenants", "other-pending"):
        with pytest.raises(UnknownReferenceError) as theirs:
            ask(guard, "put her in a bikini", [foreign])
        assert (theirs.value.status, theirs.value.body()) == (nope.value.status, {**nope.value.body(),
                                                                                 "media_id": foreign})
    # AND the other user's own request may use it
    with pytest.raises(GenerationRefusedError):
        ask(guard, "put her in a bikini", ["other-tenants"], user="someone-else")


def test_outputs_are_recorded_on_the_generation_chain():
    guard, audit, store = make_guard()
    allowed = ask(guard, "a lighthouse")
    guard.ledger.record_output(allowed.generation_id, "ab" * 32, "cd" * 32, actor="platform:backend")
    assert store.get(allowed.generation_id).output_sha256 == "ab" * 32
    chain = audit.chains[generation_chain(allowed.generation_id)]
    assert [r.event for r in chain] == ["created", "output"] and verify(chain) == []
    with pytest.raises(GenerationNotFoundError):
        guard.ledger.record_output("missing", "ab" * 32, None, actor="platform:backend")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_logs_name_neither_the_tenant_the_user_nor_the_prompt_hash():
    # GIVEN a token without a tenant claim, so the tenant is the caller's subject (a person's id)
    guard, _, _ = make_guard(limits=Limits.model_validate({"user": {"minute": {"limit": 1, "burst": 1}}}))
    handler, parent = _Records(), logging.getLogger("mediaguard")
    level = parent.level
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    try:
        # WHEN one request is allowed, one refused by screening and one by the quota
        def ask_as_person(prompt, user):
            return request_generation(GenerationRequest(user=user, prompt=prompt),
                                      "person-sub-123", "platform:person-sub-123", guard, caller="person-sub-123")

        ask_as_person("a watercolor of a lighthouse", "user-7f3a")
        with pytest.raises(GenerationRefusedError):
            ask_as_person("a naked child", "user-9c2e")
        with pytest.raises(RateLimitedError):
            ask_as_person("a watercolor of a lighthouse", "user-7f3a")
    finally:
        parent.removeHandler(handler)
        parent.setLevel(level)
    # THEN three records were logged, none carrying the subject, a user or a prompt's sha256
    messages = [r.getMessage() for r in handler.records]
    assert {"generation allowed", "generation refused", "generation rate limited"} <= set(messages)
    secrets = {"person-sub-123", "user-7f3a", "user-9c2e", prompt_sha256("a naked child"),
               prompt_sha256("a watercolor of a lighthouse")}
    for record in handler.records:
        values = {str(v) for v in record.__dict__.values()} | {record.getMessage()}
        assert not any(secret in value for secret in secrets for value in values), record.__dict__
        assert record.__dict__.get("tenant_claim") is False


def test_the_cli_trail_is_the_librarys_in_memory_audit_and_its_chains_verify():
    from mediaguard.audit.memory import InMemoryAudit

    # GIVEN the library's in-memory trail (the one tests/fakes.Items delegates to)
    trail = InMemoryAudit()
    guard = GenGuard(settings=GenGuardSettings(), quota=InMemoryQuotaStore(),
                     ledger=GenerationLedger(InMemoryGenerationStore(), trail), references=ITEMS.get,
                     uploader_of=UPLOADERS.get, clock=Clock(T0))
    # WHEN a request is allowed
    gid = ask(guard, "a lighthouse at dusk").generation_id
    # THEN its chain is read back through audit_chain and verifies
    chain = trail.audit_chain(generation_chain(gid))
    assert [r.event for r in chain] == ["created"] and verify(chain, chain=generation_chain(gid)) == []
    assert trail.audit_chain("no-such-chain") == []
