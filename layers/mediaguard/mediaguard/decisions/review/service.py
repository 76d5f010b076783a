"""``ReviewService``: everything the review API does (queue, claims, decisions, the item
view, appeals), over ports; ``mediaguard.api.review`` is its HTTP face."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from mediaguard import observability
from mediaguard.audit import chain as audit
from mediaguard.decisions.history import HistoryStore
from mediaguard.decisions.review.appeals import (
    Appeal,
    AppealDecisionRequest,
    AppealPage,
    AppealReceipt,
    AppealRequest,
    AppealState,
    AppealView,
    appeal_id_for,
)
from mediaguard.decisions.review.models import (
    AUDIT_DETAIL_KEYS,
    AuditEntry,
    AuditSummary,
    BankEntryFacts,
    DecisionRequest,
    Escalation,
    ItemView,
    Lane,
    MatchView,
    Me,
    MediaLink,
    QueuePage,
    RevealReceipt,
    ReviewDecision,
    SearchHit,
    SearchPage,
    SignalView,
    Task,
    utcnow,
)
from mediaguard.decisions.review.ports import AppealStore, Enforcer, TaskStore, UrlSigner
from mediaguard.decisions.review.queue import shard_of
from mediaguard.decisions.review.reasons import APPEALABLE_ACTIONS, ENFORCED_ACTION
from mediaguard.decisions.review.roles import ROLE_LEVELS, Caller
from mediaguard.decisions.review.settings import ReviewSettings
from mediaguard.decisions.review.uploader import uploader_of
from mediaguard.errors import ConflictError, ForbiddenError, NotFoundError
from mediaguard.ingress import grant
from mediaguard.ports import Deps

logger = Logger(service="mediaguard", child=True)


def _escalation(records: list[Any]) -> Escalation | None:
    """The latest ``review_escalated`` record, read for the seniors who take the task."""
    last = next((r for r in reversed(records) if r.event == "review_escalated"), None)
    if last is None:
        return None
    detail = last.detail or {}
    return Escalation(by=detail.get("by", "unknown"), actor=last.actor, at=last.at,
                      reason_code=detail.get("reason_code"), note=detail.get("note"),
                      from_lane=detail.get("from_lane"), due_at=detail.get("due_at"))


# A search without a media id Scans the media table (it has no index by hash, uploader,
# action or date): pages of 200, at most 2,000 items examined per request. Beyond that the
# answer says ``truncated`` and the console says so; a deployment with millions of items
# would add a GSI (action + received_at) rather than raise this.
SCAN_PAGE, SCAN_MAX = 200, 2000


# The day's decisions are spread over this many chains (by a hash of the media id): one
# chain would be one hot key every reviewer's decision appends to, serialised by its head.
DECISION_SHARDS = 8


def decisions_chain(day: str, shard: int) -> str:
    """One of the audit chains listing the reviewer decisions of one UTC day:
    ``decisions:<date>:<shard>``, the shard ``shard_of(media_id, DECISION_SHARDS)``."""
    return f"decisions:{day}:{shard}"


def _audio_view(audio: Any) -> dict[str, Any] | None:
    """The audio track as a reviewer sees it: codec and duration, never the fingerprint."""
    if not isinstance(audio, dict):
        return None
    return {k: audio[k] for k in ("present", "codec", "duration_s", "fingerprint_kind") if k in audio}


def exposure_chain(sub: str, at: datetime) -> str:
    """The audit chain of one reviewer's reveals on one UTC day: ``exposure:<sub>:<date>``."""
    return f"exposure:{sub}:{at.date().isoformat()}"


@dataclass
class ReviewService:
    """Everything the review API does, over ports; ``mediaguard.api.review`` is its HTTP face."""

    deps: Deps
    tasks: TaskStore
    appeals: AppealStore
    signer: UrlSigner
    enforcer: Enforcer
    settings: ReviewSettings
    history: HistoryStore | None = None
    clock: Callable[[], datetime] = field(default=utcnow)
    # (bank, ref) pairs -> their stored entries (BankStore.get_entries): the facts shown
    # beside a match. None: matches show what the item recorded only.
    bank_entries: Callable[[list[tuple[str, str]]], dict[tuple[str, str], Any]] | None = None

    # -- queue --------------------------------------------------------------------------
    def queue(self, caller: Caller, lane: Lane, limit: int) -> QueuePage:
        """Open tasks of one lane, highest priority first (senior reviewers only for escalated)."""
        caller.require("senior-reviewer" if lane == "escalated" else "reviewer")
        tasks = self.tasks.queue(lane, limit)
        # One GetItem per listed task (at most ``limit``, 100): the signals and bank entries
        # the console filters and groups by live on the item, not on the task. A quality
        # sample gets neither: its signals and matches would tell the automated decision.
        for task in tasks:
            if task.quality_sample:
                continue
            item = self.deps.items.get(task.media_id) or {}
            task.signals = [s["name"] for s in item.get("signals") or [] if s.get("contribution", 0) > 0]
            task.matched = sorted({f"{m['bank']}/{m['ref']}" for m in item.get("matches") or []
                                   if m.get("bank") and m.get("ref")})
        return QueuePage(items=[t.blind() for t in tasks])

    def claim(self, caller: Caller, media_id: str) -> Task:
        """Take (or renew) the lease on a task; 409 while another reviewer's lease runs."""
        caller.require("reviewer")
        task = self._task(media_id)
        if task.lane == "escalated" and not caller.senior:
            raise ForbiddenError("escalated tasks are for senior reviewers", reason="escalated")
        now = self.clock()
        claimed = self.tasks.claim(media_id, caller.sub, now, now + timedelta(minutes=self.settings.lease_minutes),
                                   senior=caller.senior)
        logger.info("review claimed", extra={"media_id": media_id, "lane": claimed.lane})
        return claimed.blind()

    def _task(self, media_id: str) -> Task:
        task = self.tasks.get(media_id)
        if task is None:
            raise NotFoundError("no review task for this item")
        return task

    # -- decisions ----------------------------------------------------------------------
    def decide(self, caller: Caller, media_id: str, request: DecisionRequest) -> ReviewDecision:
        """Apply a reviewer's decision to a task the caller has claimed.

        The task is marked decided first, with a write conditional on the caller's claim:
        that write is the single point where one decision wins. Enforcement follows; if
        it fails, the task goes back to the caller's claim so the decision can be retried.
        """
        caller.require("reviewer")
        task = self._task(media_id)
        if task.lane == "escalated" and not caller.senior:
            raise ForbiddenError("escalated tasks are for senior reviewers", reason="escalated")
        if task.state == "decided":
            raise ConflictError("this task is already decided", reason="already_decided")
        if task.claimed_by != caller.sub:
            raise ConflictError("claim the task before deciding it", reason="not_claimed")
        reason = request.reason_code.value
        now = self.clock()
        if request.action == "escalate":
            escalated = self.tasks.escalate(media_id, caller.actor, now, reviewer=caller.sub)
            self.deps.items.append_audit(media_id, caller.actor, "review_escalated",
                                         {"by": "reviewer", "reason_code": reason, "note": request.note,
                                          "priority": escalated.priority})
            return ReviewDecision(media_id=media_id, action="escalate", enforced_action=None, reason_code=reason,
                            note=request.note, decided_by=caller.sub, decided_at=now, lane="escalated")
        enforced = ENFORCED_ACTION[request.action]
        if task.quality_sample:
            return self._decide_sample(caller, task, request, enforced, now)
        decided = self.tasks.decide(media_id, caller.sub, request.action, reason, request.note, now,
                                    senior=caller.senior)
        try:
            self.enforcer.apply(media_id, enforced, actor=caller.actor, reason=reason,
                                context={"source": "review", "review_action": request.action, "lane": decided.lane,
                                         "note": request.note},
                                deps=self.deps)
        except Exception:
            self.tasks.undo_decide(media_id, caller.sub)
            raise
        strike = self._count_decision(media_id, enforced, reason)
        self.deps.items.append_audit(media_id, caller.actor, "review_decided",
                                     {"action": request.action, "enforced_action": enforced, "reason_code": reason,
                                      "note": request.note, "lane": decided.lane, "risk": decided.risk,
                                      "waited_s": round((now - decided.enqueued_at).total_seconds()),
                                      "strike": strike})
        # The day's list of decisions (the console's "decided" view) is one Query, no Scan.
        self.deps.items.append_audit(decisions_chain(now.date().isoformat(), shard_of(media_id, DECISION_SHARDS)),
                                     caller.actor, "review_decided",
                                     {"media_id": media_id, "action": request.action, "reason_code": reason})
        logger.info("review decided", extra={"media_id": media_id, "action": request.action, "reason_code": reason})
        observability.count("ReviewDecisions", action=request.action, lane=decided.lane)
        return ReviewDecision(media_id=media_id, action=request.action, enforced_action=enforced, reason_code=reason,
                        note=request.note, decided_by=caller.sub, decided_at=now, lane=decided.lane)

    def _decide_sample(self, caller: Caller, task: Task, request: DecisionRequest, enforced: str,
                       now: datetime) -> ReviewDecision:
        """A quality sample: record whether the reviewer agrees with the automated action.

        It enforces nothing, with one exception: a reviewer who finds the item must come
        down (``remove``) while the automated action left it up gets it removed, through
        the same enforcement as any review; everything softer waits for the report. An
        ``escalate`` has already been handled: the task moves to seniors, still a sample.
        """
        media_id, reason, automated = task.media_id, request.reason_code.value, task.action or "unknown"
        agree = enforced == automated
        decided = self.tasks.decide(media_id, caller.sub, request.action, reason, request.note, now,
                                    senior=caller.senior, agree=agree)
        enforced_now = enforced if enforced == "remove" and automated != "remove" else None
        if enforced_now:
            try:
                self.enforcer.apply(media_id, enforced_now, actor=caller.actor, reason=reason,
                                    context={"source": "qa", "review_action": request.action, "lane": decided.lane,
                                             "note": request.note}, deps=self.deps)
            except Exception:
                self.tasks.undo_decide(media_id, caller.sub)
                raise
        self.deps.items.append_audit(media_id, caller.actor, "qa_decided",
                                     {"automated_action": automated, "reviewer_action": enforced, "agree": agree,
                                      "reason_code": reason, "note": request.note, "enforced": enforced_now,
                                      "waited_s": round((now - decided.enqueued_at).total_seconds())})
        observability.count("QaDecisions", action=automated, agree=str(agree).lower())
        logger.info("quality sample decided", extra={"media_id": media_id, "agree": agree})
        return ReviewDecision(media_id=media_id, action=request.action, enforced_action=enforced_now,
                              reason_code=reason, note=request.note, decided_by=caller.sub, decided_at=now,
                              lane=decided.lane)

    def _count_decision(self, media_id: str, action: str, reason: str) -> bool:
        """Count the decision in the uploader's history; a removal by a person is a strike
        (one per item: the store ignores repeats), which an overturned appeal withdraws."""
        uploader = uploader_of(media_id, self.deps) if self.history is not None else None
        if uploader is None:
            return False
        self.history.record_outcome(uploader, media_id, action, [])
        return action == "remove" and self.history.add_strike(uploader, media_id, reason)

    # -- items -----------------------------------------------------------------------------
    def item_view(self, caller: Caller, media_id: str) -> ItemView:
        """What a reviewer needs to decide: scores and their reasons, matches, provenance,
        the uploader's history, a 5-minute link to the sanitized copy, the audit trail."""
        caller.require("reviewer")
        item = self.deps.items.get(media_id)
        if item is None:
            raise NotFoundError("no such item")
        task = self.tasks.get(media_id)
        blind = task is not None and task.quality_sample and task.state != "decided"
        media = self._media_link(caller, media_id, item, sample=blind)
        records = self.deps.items.audit_chain(media_id)
        if blind:
            return self._blind_view(item, media_id, media, task, records)
        uploader = uploader_of(media_id, self.deps)
        history = self.history.snapshot(uploader).model_dump() if (self.history and uploader) else None
        return ItemView(
            media_id=media_id,
            status=item.get("status", "unknown"),
            action=item.get("action"),
            proposed_action=item.get("proposed_action"),
            risk=item.get("risk"),
            signals=[SignalView.model_validate(s) for s in item.get("signals") or []],
            policy_version=item.get("policy_version"),
            provenance=item.get("provenance"),
            matches=self._matches_beside(caller, media_id, item.get("matches") or []),
            uploader_ref=self.history.key_of(uploader)[:12] if (self.history and uploader) else None,
            uploader_history=history,
            # What scoring weighed (stored with its inputs): the basis of the decision under review.
            scored_history=(item.get("score_inputs") or {}).get("history"),
            media=media,
            media_type=item.get("media_type"),
            poster=self._poster_link(item) if media is not None and media.source == "live" else None,
            frames=item.get("frames"),
            signal_frames=item.get("signal_frames"),
            audio=_audio_view(item.get("audio")),
            stream_id=item.get("stream_id"),
            task=task,
            escalation=_escalation(records) if caller.senior else None,
            audit=AuditSummary(records=len(records), verified=not audit.verify(records),
                               events=[AuditEntry(seq=r.seq, at=r.at, actor=r.actor, event=r.event,
                                                  detail={k: r.detail[k] for k in AUDIT_DETAIL_KEYS
                                                          if (r.detail or {}).get(k) is not None})
                                       for r in records]),
        )

    def _blind_view(self, item: dict[str, Any], media_id: str, media: MediaLink | None, task: Task,
                    records: list) -> ItemView:
        """An open quality sample, seen blind: the media and its provenance, nothing that
        tells the automated decision. Hidden: the action in force and proposed, risk,
        signal contributions, policy, bank matches (a match all but names the action), the
        uploader's counters (they count this item's outcome) and which audit events exist
        beyond sanitizing and sampling (``enforced``, ``evidence_preserved`` would tell).
        Shown: what the media is (its type, frames and audio track), so a video plays as one;
        not its poster frame (linked only while the copy is live, so its absence would tell a
        removal) nor which frame drove a score."""
        shown = {"sanitized", "image_accepted", "animation_accepted", "video_accepted", "audio_accepted", "qa_sampled",
                 "media_opened", "media_revealed", "review_escalated"}
        return ItemView(
            media_id=media_id, status=item.get("status", "unknown"), provenance=item.get("provenance"),
            media=media, media_type=item.get("media_type"), frames=item.get("frames"),
            audio=_audio_view(item.get("audio")), task=task.blind(),
            audit=AuditSummary(records=len(records), verified=not audit.verify(records),
                               events=[AuditEntry(seq=r.seq, at=r.at, actor=r.actor, event=r.event)
                                       for r in records if r.event in shown]),
        )

    def _media_link(self, caller: Caller, media_id: str, item: dict[str, Any], *,
                    sample: bool = False) -> MediaLink | None:
        """A 5-minute link to the sanitized copy, never the original; every link is audited.

        After a removal the sanitized copy lives only in the evidence store. Senior
        reviewers, who decide appeals, get a link to that preserved sanitized copy (the
        evidence store's original stays out of reach); other reviewers get no link.
        An open quality sample is the exception: any reviewer gets the copy, wherever it
        is, as ``source="sample"`` (a missing link or "evidence" would tell a removal).
        """
        settings, ttl = self.deps.settings, self.settings.media_url_ttl_seconds
        enforcement = item.get("enforcement") or {}
        bucket, key, source = settings.media_bucket, item.get("sanitized_key"), "live"
        if enforcement.get("custody") in ("preserved", "evidence"):
            preserved = next((e for e in enforcement.get("evidence", [])
                              if e.get("role") == "sanitized" and e.get("state") == "preserved"), None)
            if preserved is None or not (caller.senior or sample):
                return None
            bucket, key, source = settings.evidence_bucket, preserved["evidence_key"], "evidence"
        if not bucket or not key:
            return None
        url = self.signer.presign_get(bucket, key, ttl)
        # Opening an item hands out a link; the media stays blurred until a reveal, which
        # is recorded apart (media_revealed), so the trail tells who actually looked. The
        # chain records where the copy really was; only the reviewer's link is blind.
        self.deps.items.append_audit(media_id, caller.actor, "media_opened",
                                     {"key": key, "source": source, "expires_in": ttl, "sample": sample})
        return MediaLink(url=url, expires_in=ttl, source="sample" if sample else source)

    def _matches_beside(self, caller: Caller, media_id: str, matches: list[dict[str, Any]]) -> list[MatchView]:
        """Each match with its entry's facts (who added and confirmed it, when, from what).

        Banks keep no media (hash exchange practice), so a match is shown as facts. An entry
        banked from an item this platform holds (``source: item:<id>``) names that item: its
        sanitized copy is linked (the console blurs it like the upload), and handing out the
        link is audited on that item's chain like any other opening.
        """
        views = [MatchView.model_validate(m) for m in matches]
        if not views or self.bank_entries is None:
            return views
        # A video (or any media banked as several parts) is entries ``ref#0``, ``ref#1``...
        # added together, and its match names the group ``ref``: its first part has the facts.
        stored = self.bank_entries(sorted({key for v in views for key in ((v.bank, v.ref), (v.bank, f"{v.ref}#0"))}))
        linked: dict[str, tuple[MediaLink | None, str | None, MediaLink | None]] = {}
        for view in views:
            entry = stored.get((view.bank, view.ref)) or stored.get((view.bank, f"{view.ref}#0"))
            if entry is None:
                continue
            view.entry = BankEntryFacts(status=entry.status, source=entry.source, added_by=entry.added_by,
                                        added_at=_iso(entry.added_at), confirmed_by=entry.confirmed_by,
                                        confirmed_at=_iso(entry.confirmed_at))
            source_id = (entry.source or "").removeprefix("item:") if (entry.source or "").startswith("item:") else None
            if source_id and source_id != media_id:
                view.entry.source_media_id = source_id
                if source_id not in linked:
                    held = self.deps.items.get(source_id)
                    link = self._media_link(caller, source_id, held) if held else None
                    poster = self._poster_link(held) if link is not None and link.source == "live" else None
                    linked[source_id] = (link, held.get("media_type") if held else None, poster)
                link, media_type, poster = linked[source_id]
                view.entry.source_media, view.entry.source_poster = link, poster
                view.entry.source_media_type = media_type if link is not None else None
        return views

    def _poster_link(self, item: dict[str, Any]) -> MediaLink | None:
        """A video's poster frame (covered by the same media_opened record as the video)."""
        key, ttl = item.get("poster_key"), self.settings.media_url_ttl_seconds
        if item.get("media_type") != "video" or not key or not self.deps.settings.media_bucket:
            return None
        return MediaLink(url=self.signer.presign_get(self.deps.settings.media_bucket, key, ttl), expires_in=ttl)

    # -- reveals (who looked, and how often today) -----------------------------------------
    def reveal(self, caller: Caller, media_id: str) -> RevealReceipt:
        """Record that the caller un-blurred the item's media: ``media_revealed`` in the
        item's chain, and one record in the caller's exposure chain for the (UTC) day,
        whose length is the day's exposure count (a Query on one chain key, no Scan)."""
        caller.require("reviewer")
        item = self.deps.items.get(media_id)
        if item is None:
            raise NotFoundError("no such item")
        now = self.clock()
        self.deps.items.append_audit(media_id, caller.actor, "media_revealed", {"revealed_at": now.isoformat()})
        self.deps.items.append_audit(exposure_chain(caller.sub, now), caller.actor, "media_revealed",
                                     {"media_id": media_id})
        return RevealReceipt(media_id=media_id, revealed_by=caller.sub, revealed_at=now,
                             exposures_today=self.exposures_today(caller))

    # -- finding past work ----------------------------------------------------------------
    def _hit(self, media_id: str, item: dict[str, Any] | None) -> SearchHit:
        item = item or {}
        task = self.tasks.get(media_id)
        received = item.get("received_at")
        # An open quality sample is seen blind everywhere, search and decided list included.
        blind = task is not None and task.quality_sample and task.state != "decided"
        return SearchHit(media_id=media_id, status=item.get("status"), action=None if blind else item.get("action"),
                         risk=None if blind else item.get("risk"),
                         received_at=received.isoformat() if isinstance(received, datetime) else received,
                         task_state=task.state if task else None,
                         decided_by=task.decided_by if task else None, decided_at=task.decided_at if task else None,
                         decision_action=task.decision_action if task else None,
                         decision_reason=task.decision_reason if task else None)

    def search(self, caller: Caller, *, media_id: str | None = None, sha256: str | None = None,
               uploader: str | None = None, action: str | None = None, since: datetime | None = None,
               until: datetime | None = None, limit: int = 50) -> SearchPage:
        """Items by id (a GetItem), or by hash (sha256 of the original or the sanitized
        copy, or the PDQ hex), uploader (the console's pseudonymous ref, or the id), action
        in force and the day received: a bounded Scan (see ``SCAN_MAX``)."""
        caller.require("reviewer")
        if media_id:
            item = self.deps.items.get(media_id)
            return SearchPage(items=[self._hit(media_id, item)] if item else [], method="get")
        wanted = (sha256 or "").lower() or None
        ref = (uploader or "").strip() or None
        # The item stores the uploader's keyed HMAC (written at start), never the id: an id
        # is searched by its key, a pseudonymous ref (6+ hex characters) as a prefix of it.
        ref_key = self.history.key_of(ref) if (ref and self.history) else None
        hits: list[SearchHit] = []
        scanned, start = 0, None
        while scanned < SCAN_MAX and len(hits) < limit:
            page, start = self.deps.items.scan_page(SCAN_PAGE, start)
            scanned += len(page)
            for item in page:
                if self._matches(item, wanted, ref, ref_key, action, since, until):
                    hit = self._hit(item["media_id"], item)
                    if action and hit.action is None:
                        continue  # a blind sample: finding it by its action would tell the action
                    hits.append(hit)
                    if len(hits) >= limit:
                        break
            if start is None:
                break
        return SearchPage(items=hits, method="scan", scanned=scanned, truncated=start is not None)

    def _matches(self, item: dict[str, Any], sha256: str | None, ref: str | None, ref_key: str | None,
                  action: str | None, since: datetime | None, until: datetime | None) -> bool:
        if sha256 and sha256 not in {str(item.get(k) or "").lower() for k in ("sha256", "sanitized_sha256", "pdq")}:
            return False
        if action and item.get("action") != action:
            return False
        received = item.get("received_at")
        if isinstance(received, str):
            received = datetime.fromisoformat(received.replace("Z", "+00:00"))
        if (since or until) and not isinstance(received, datetime):
            return False
        if since and received < since:
            return False
        if until and received >= until:
            return False
        if ref:
            key = str(item.get("uploader") or "")
            if not key or (key != ref_key and not (len(ref) >= 6 and key.startswith(ref.lower()))):
                return False
        return True

    def decided(self, caller: Caller, day: str) -> SearchPage:
        """Every reviewer decision of one UTC day, newest first (a Query per shard of the day's chains)."""
        caller.require("reviewer")
        records = [r for shard in range(DECISION_SHARDS) for r in self.deps.items.audit_chain(decisions_chain(day, shard))]
        records.sort(key=lambda r: r.at)
        seen: dict[str, None] = {}
        for record in reversed(records):
            seen.setdefault(str((record.detail or {}).get("media_id")), None)
        return SearchPage(items=[self._hit(m, self.deps.items.get(m)) for m in seen if m != "None"], method="query")

    def exposures_today(self, caller: Caller) -> int:
        """How many reveals the caller made today (UTC)."""
        return len(self.deps.items.audit_chain(exposure_chain(caller.sub, self.clock())))

    def whoami(self, caller: Caller) -> Me:
        """Who the console is signed in as, what the roles allow, today's exposure count."""
        caller.require("reviewer")
        roles = sorted(caller.roles)
        role = max(roles, key=lambda r: ROLE_LEVELS.get(r, 0)) if roles else "none"
        return Me(sub=caller.sub, name=caller.name or caller.sub, role=role, roles=roles, senior=caller.senior,
                  admin=caller.level >= ROLE_LEVELS["admin"], exposures_today=self.exposures_today(caller))

    # -- appeals ------------------------------------------------------------------------------
    def open_appeal(self, caller: Caller, media_id: str, request: AppealRequest) -> AppealReceipt:
        """The uploader appeals the restrictive action in force on their item (once).

        Anyone but the uploader gets 404, so the route does not confirm which ids exist.
        """
        item = self.deps.items.get(media_id)
        if item is None or uploader_of(media_id, self.deps) != caller.sub:
            raise NotFoundError("no such item of yours")
        task = self.tasks.get(media_id)
        # An open quality sample is not a review of the uploader's case: it never blocks an appeal.
        if item.get("action") == "review" or (task is not None and task.state != "decided"
                                              and not task.quality_sample):
            raise ConflictError("this item is still in review", reason="review_pending")
        if item.get("action") not in APPEALABLE_ACTIONS:
            raise ConflictError("nothing restricts this item", reason="nothing_to_appeal")
        decided_by_human = task is not None and task.state == "decided" and task.decided_by
        appeal = Appeal(
            appeal_id=appeal_id_for(media_id), media_id=media_id, uploader=caller.sub, statement=request.statement,
            state="open", created_at=self.clock(), appealed_action=item["action"],
            original_decider=task.decided_by if decided_by_human else "system",
        )
        self.appeals.create(appeal)
        self.deps.items.append_audit(
            media_id, grant.client_actor(caller.sub), "appeal_opened",
            # The statement is the uploader's own words: the chain keeps its hash, the
            # appeals table its text.
            {"appeal_id": appeal.appeal_id, "appealed_action": appeal.appealed_action,
             "statement_sha256": hashlib.sha256(request.statement.encode()).hexdigest(),
             "statement_chars": len(request.statement)},
        )
        logger.info("appeal opened", extra={"media_id": media_id, "appeal_id": appeal.appeal_id})
        observability.count("AppealsOpened", action=appeal.appealed_action)
        return AppealReceipt(appeal_id=appeal.appeal_id, media_id=media_id, state=appeal.state,
                             created_at=appeal.created_at)

    def list_appeals(self, caller: Caller, state: AppealState, limit: int) -> AppealPage:
        caller.require("senior-reviewer")
        return AppealPage(items=[AppealView.model_validate(a.model_dump()) for a in self.appeals.list(state, limit)])

    def decide_appeal(self, caller: Caller, appeal_id: str, request: AppealDecisionRequest) -> AppealView:
        """Uphold or overturn, by a senior reviewer other than the original decider and the uploader.

        Closing the appeal is conditional on it being open (one outcome wins); an overturn
        then restores the item and removes the uploader's strike. If restoring fails the
        appeal is reopened.
        """
        caller.require("senior-reviewer")
        appeal = self.appeals.get(appeal_id)
        if appeal is None:
            raise NotFoundError("no such appeal")
        if caller.sub == appeal.original_decider:
            raise ForbiddenError("a different reviewer must decide an appeal against your decision",
                                 reason="own_decision")
        if caller.sub == appeal.uploader:
            raise ForbiddenError("you cannot decide an appeal of your own upload", reason="own_upload")
        if appeal.state != "open":
            raise ConflictError("this appeal is already decided", reason="appeal_closed")
        reason = request.reason_code.value
        closed = self.appeals.close(appeal_id, request.outcome, reason, request.note, caller.sub, self.clock())
        strike_removed = False
        if request.outcome == "overturn":
            try:
                self.enforcer.restore(appeal.media_id, actor=caller.actor, reason=reason, deps=self.deps)
            except Exception:
                self.appeals.reopen(appeal_id)
                raise
            if self.history is not None:
                strike_removed = self.history.remove_strike(appeal.uploader, appeal.media_id)
        self.deps.items.append_audit(appeal.media_id, caller.actor, "appeal_decided",
                                     {"appeal_id": appeal_id, "outcome": request.outcome, "reason_code": reason,
                                      "note": request.note, "appealed_action": appeal.appealed_action,
                                      "strike_removed": strike_removed})
        logger.info("appeal decided", extra={"media_id": appeal.media_id, "appeal_id": appeal_id,
                                             "outcome": request.outcome})
        # outcome=overturn over all decided appeals is the false-positive appeal rate.
        observability.count("AppealsDecided", outcome=request.outcome, action=appeal.appealed_action)
        return AppealView.model_validate(closed.model_dump())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
