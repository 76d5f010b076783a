"""Wiring: which adapters each function gets, built once per container and reused warm.

One factory per function. Each builds only the clients its function uses, which is
what the function's IAM role in ``template.yaml`` allows: the score function gets no
S3 client, the classifier no DynamoDB table. The same factories serve AWS and local
mode (``mediaguard.local`` deploys the template into moto and calls the handlers,
which call these).

The adapter imports sit inside the factories on purpose: importing every adapter
here would make the start function load the bank service (numpy) and the review
tables it never touches, and cold starts are paid per function.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mediaguard.ports import Deps
from mediaguard.settings import Settings, get_settings

if TYPE_CHECKING:
    from mediaguard.adapters.audit import DynamoAuditStore
    from mediaguard.adapters.aws import S3PostPresigner
    from mediaguard.adapters.enforcement import WebhookSink
    from mediaguard.api.generation_outputs import OutputPorts
    from mediaguard.api.review import GeofenceAdmin
    from mediaguard.decisions.history import Pseudonymiser
    from mediaguard.decisions.review.queue import TaskQueue
    from mediaguard.decisions.review.service import ReviewService
    from mediaguard.genguard.service import GenGuard

_clock: Callable[[], float] = time.time


def _blobs(settings: Settings) -> Any:
    from mediaguard.adapters.aws import s3_blob_store

    return s3_blob_store(settings)


def _items(settings: Settings) -> Any:
    from mediaguard.adapters.aws import DynamoItemStore

    return DynamoItemStore(settings)


def _history(settings: Settings) -> Any:
    from mediaguard.adapters.review import history_store

    return history_store(settings, uploader_keys()) if settings.history_table else None


@lru_cache(maxsize=1)
def uploader_keys() -> Pseudonymiser | None:
    """The uploader-id HMAC, its key read from Secrets Manager once per container (the
    history and the geofence admin share it)."""
    from mediaguard.adapters.secrets import uploader_pseudonymiser

    return uploader_pseudonymiser(get_settings())


def _bank_reader(settings: Settings) -> Any:
    if not (settings.banks_table and settings.bank_entries_table):
        return None
    from mediaguard.adapters.banks import dynamo_bank_service

    # Readers only: the matcher and the index build never change a bank, so no audit hook.
    return dynamo_bank_service(settings)


def _deps(**ports: Any) -> Deps:
    return Deps(settings=get_settings(), clock=_clock, **ports)


@lru_cache(maxsize=1)
def start_deps() -> Deps:
    from mediaguard.adapters.aws import workflow

    settings = get_settings()
    # blobs: only to tag a refused replacement version (stages.start._refuse_replacement).
    return _deps(blobs=_blobs(settings), items=_items(settings), workflow=workflow(settings),
                 history=_history(settings))


@lru_cache(maxsize=1)
def sanitize_deps() -> Deps:
    settings = get_settings()
    return _deps(blobs=_blobs(settings), items=_items(settings))


@lru_cache(maxsize=1)
def frames_deps() -> Deps:
    settings = get_settings()
    return _deps(blobs=_blobs(settings), items=_items(settings))


@lru_cache(maxsize=1)
def classify_deps() -> Deps:
    return _deps(blobs=_blobs(get_settings()))


@lru_cache(maxsize=1)
def detect_deps() -> Deps:
    return _deps(blobs=_blobs(get_settings()))


@lru_cache(maxsize=1)
def similarity_deps() -> Deps:
    settings = get_settings()
    return _deps(blobs=_blobs(settings), items=_items(settings), bank_reader=_bank_reader(settings))


@lru_cache(maxsize=1)
def index_build_deps() -> Deps:
    settings = get_settings()
    return _deps(blobs=_blobs(settings), bank_reader=_bank_reader(settings))


@lru_cache(maxsize=1)
def score_deps() -> Deps:
    settings = get_settings()
    return _deps(items=_items(settings), history=_history(settings))


@lru_cache(maxsize=1)
def enforce_deps() -> Deps:
    settings = get_settings()
    items = _items(settings)
    return _deps(blobs=_blobs(settings), items=items, history=_history(settings),
                 enforcement=_enforcement(settings, items))


@lru_cache(maxsize=1)
def failure_deps() -> Deps:
    """A failed item goes to people: the failure stage enqueues a review task."""
    from mediaguard.adapters.review import make_task_queue

    settings = get_settings()
    items = _items(settings)
    return _deps(blobs=_blobs(settings), items=items, review=make_task_queue(settings, items))


@lru_cache(maxsize=1)
def sweep_deps() -> Deps:
    """The items (the start_pending index) and StartExecution, as the start function has."""
    from mediaguard.adapters.aws import workflow

    settings = get_settings()
    return _deps(items=_items(settings), workflow=workflow(settings))


@lru_cache(maxsize=1)
def redrive_deps() -> Deps:
    """What ``POST /admin/items/{media_id}/redrive`` needs: the items, StartExecution and
    the review queue (a re-driven failed item's task is withdrawn)."""
    from mediaguard.adapters.aws import workflow
    from mediaguard.adapters.review import make_task_queue

    settings = get_settings()
    items = _items(settings)
    return _deps(items=items, workflow=workflow(settings), review=make_task_queue(settings, items))


@lru_cache(maxsize=1)
def uploads_deps() -> Deps:
    """Pre-upload screening matches with the same matcher as the similarity stage."""
    settings = get_settings()
    # history: GET /v1/uploads lists the caller's uploads from its per-item rows (one Query).
    return _deps(blobs=_blobs(settings), items=_items(settings), bank_reader=_bank_reader(settings),
                 history=_history(settings))


@lru_cache(maxsize=1)
def generations_guard() -> GenGuard:
    """The generation guard: quota and record tables, the media table (references are read
    from what the pipeline stored) and the audit trail; a text model only if configured."""
    from mediaguard.adapters.generations import DynamoGenerationStore, DynamoQuotaStore, bind
    from mediaguard.genguard.config import get_genguard_settings
    from mediaguard.genguard.records import GenerationLedger
    from mediaguard.genguard.service import GenGuard, reference_from_item
    from mediaguard.ingress.grant import read_facts

    settings, guard_settings = get_settings(), get_genguard_settings()
    bind(guard_settings, settings.region)
    items = _items(settings)
    scorer = None
    if guard_settings.text_models_config:
        from mediaguard.genguard.textmodel import text_scorer

        scorer = text_scorer(guard_settings.text_models_config, settings.onnx_threads)
    return GenGuard(settings=guard_settings, quota=DynamoQuotaStore(settings.region),
                    ledger=GenerationLedger(DynamoGenerationStore(), items),
                    references=lambda media_id: reference_from_item(media_id, items.get(media_id)),
                    uploader_of=lambda media_id: read_facts(media_id, items.audit_chain).uploader,
                    text_scorer=scorer, clock=lambda: _clock())


@lru_cache(maxsize=1)
def generation_output_ports() -> OutputPorts:
    """Marking an output: the records table, the own-generations bank (its audit chain
    ``bank:own-generations``), the audit trail and the C2PA signer, read from Secrets
    Manager on first use (a cold start that is never asked to sign never reads it)."""
    from mediaguard.adapters.banks import dynamo_bank_service
    from mediaguard.adapters.generations import DynamoGenerationStore, bind
    from mediaguard.adapters.secrets import genguard_signing_material
    from mediaguard.api.generation_outputs import OutputPorts
    from mediaguard.genguard.config import get_genguard_settings
    from mediaguard.genguard.records import GenerationLedger

    settings, guard_settings = get_settings(), get_genguard_settings()
    bind(guard_settings, settings.region)
    items = _items(settings)
    signing = lru_cache(maxsize=1)(lambda: genguard_signing_material(settings))
    return OutputPorts(ledger=GenerationLedger(DynamoGenerationStore(), items),
                       banks=dynamo_bank_service(settings, audit=items.append_audit), signing=signing,
                       settings=settings, guard=guard_settings)


@lru_cache(maxsize=1)
def segment_deps() -> Deps:
    """A live segment: the recording and media buckets, the matcher, the streams table, IVS,
    the classify/detect functions, and a review queue whose every task is fast lane (a
    live stream cannot wait for the normal lane's day)."""
    from mediaguard.adapters.live import live_ports
    from mediaguard.adapters.review import make_task_queue

    settings = get_settings()
    items = _items(settings)
    queue = make_task_queue(settings, items)
    queue.settings = queue.settings.model_copy(update={"fast_lane_risk": 0.0})
    return _deps(blobs=_blobs(settings), items=items, bank_reader=_bank_reader(settings), review=queue,
                 live=live_ports(settings))


@lru_cache(maxsize=1)
def moderation_deps() -> Deps:
    """What the review API's ``/streams`` routes need: the streams table, IVS (timed
    metadata after a clear; stop and key deletion for a block), the stream events and
    the audit chain ``stream:<id>``. No frame analysis: people act, nothing is analysed."""
    from mediaguard.adapters.live import live_ports

    settings = get_settings()
    return _deps(items=_items(settings), live=live_ports(settings, analysis=False))


@lru_cache(maxsize=1)
def presigner() -> S3PostPresigner:
    from mediaguard.adapters.aws import s3_post_presigner

    return s3_post_presigner(get_settings())


def _enforcement(settings: Settings, items: Any) -> Any:
    if not settings.evidence_bucket:
        return None
    from mediaguard.adapters.enforcement import enforcement_ports
    from mediaguard.adapters.review import make_task_queue

    return enforcement_ports(settings, review=make_task_queue(settings, items))


@lru_cache(maxsize=1)
def operator_deps() -> Deps:
    """Everything, for the CLI and the local stack, which run with an operator's rights."""
    settings = get_settings()
    items = _items(settings)
    from mediaguard.adapters.aws import workflow
    from mediaguard.adapters.review import make_task_queue

    return _deps(blobs=_blobs(settings), items=items, workflow=workflow(settings), history=_history(settings),
                 bank_reader=_bank_reader(settings), enforcement=_enforcement(settings, items),
                 review=make_task_queue(settings, items))


@lru_cache(maxsize=1)
def task_queue() -> TaskQueue:
    """The review queue for the SLA sweep."""
    from mediaguard.adapters.review import make_task_queue

    settings = get_settings()
    return make_task_queue(settings, _items(settings))


@lru_cache(maxsize=1)
def review_service() -> ReviewService:
    """The review API's service: decisions go through the same enforcement as the pipeline."""
    from mediaguard.adapters.review import DynamoAppealStore, DynamoTaskStore, S3UrlSigner
    from mediaguard.decisions import enforcement
    from mediaguard.decisions.review.service import ReviewService
    from mediaguard.decisions.review.settings import get_review_settings

    settings = get_settings()
    items = _items(settings)
    deps = _deps(blobs=_blobs(settings), items=items, history=_history(settings),
                 enforcement=_enforcement(settings, items))
    review_settings = get_review_settings()
    return ReviewService(deps=deps, tasks=DynamoTaskStore(review_settings, settings),
                                appeals=DynamoAppealStore(review_settings, settings),
                                signer=S3UrlSigner.for_region(settings.region), enforcer=enforcement,
                                settings=review_settings, history=deps.history, bank_entries=bank_entries)


@lru_cache(maxsize=1)
def geofence_admin() -> GeofenceAdmin:
    from mediaguard.adapters.review import make_geofence_admin

    return make_geofence_admin(get_settings(), uploader_keys())


def list_banks() -> list[dict[str, Any]]:
    """Every bank's configuration (no entries): what the admin console lists."""
    from mediaguard.adapters.banks import DynamoBankStore

    return [bank.to_dict() for bank in DynamoBankStore(get_settings()).list_banks()]


@lru_cache(maxsize=1)
def bank_admin() -> Any:
    """The bank-admin function's ports: the bank service, whose audit hook writes
    ``bank:<name>`` chains (only this function's role may), and the media table (read)."""
    from mediaguard.adapters.banks import dynamo_bank_service
    from mediaguard.api.bank_admin import BankAdmin
    from mediaguard.decisions.review.settings import get_review_settings

    settings = get_settings()
    items = _items(settings)
    return BankAdmin(banks=dynamo_bank_service(settings, audit=items.append_audit), items=items,
                     settings=get_review_settings())


def bank_entries(keys: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """Bank entries by (bank, ref), for the item view's matches (one BatchGetItem)."""
    from mediaguard.adapters.banks import DynamoBankStore

    return DynamoBankStore(get_settings()).get_entries(keys)


@lru_cache(maxsize=1)
def governance_services() -> Any:
    """Report, legal orders, evidence and erasure over this stack (``adapters.governance``)."""
    from mediaguard.adapters.governance import Governance, local_target

    return Governance(local_target())


@lru_cache(maxsize=1)
def audit_store() -> DynamoAuditStore:
    from mediaguard.adapters.audit import DynamoAuditStore, names_from_settings

    return DynamoAuditStore(names_from_settings(get_settings()))


@lru_cache(maxsize=1)
def webhook_sink() -> WebhookSink:
    from mediaguard.adapters.enforcement import webhook_sink as build

    return build(get_settings())


_FACTORIES = (segment_deps, start_deps, sanitize_deps, frames_deps, classify_deps, similarity_deps, index_build_deps,
              score_deps, enforce_deps, failure_deps, sweep_deps, redrive_deps, uploads_deps, presigner, operator_deps,
              moderation_deps,
              task_queue, review_service, geofence_admin, governance_services, audit_store, webhook_sink, uploader_keys,
              generations_guard, generation_output_ports, bank_admin)
_DEPS_FACTORIES = (segment_deps, start_deps, sanitize_deps, frames_deps, classify_deps, similarity_deps, index_build_deps,
                   score_deps, enforce_deps, failure_deps, sweep_deps, redrive_deps, uploads_deps, operator_deps,
                   moderation_deps)


def set_clock(clock: Callable[[], float]) -> None:
    """Replace the clock of every stage's deps (built or not): how a local run lets the
    matcher's delta see a minute pass without waiting one."""
    global _clock
    _clock = clock
    for factory in _DEPS_FACTORIES:
        if factory.cache_info().currsize:
            factory().clock = clock


def reset() -> None:
    """Forget settings and every built adapter (a new local stack must not see the last one's names)."""
    global _clock
    _clock = time.time
    get_settings.cache_clear()
    for factory in _FACTORIES:
        factory.cache_clear()
    from mediaguard.decisions.review.settings import get_review_settings

    get_review_settings.cache_clear()
    from mediaguard.genguard.config import get_genguard_settings

    get_genguard_settings.cache_clear()
