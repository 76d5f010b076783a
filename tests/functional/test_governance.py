"""Issue 13 #4-#7 on the local stack (real template, tables, enforcement, review service, audit):
the transparency report equals a hand count of a scripted history, legal orders are enforced
through geofence and removal and their deadlines judged, an evidence package verifies offline
and a tampered one does not, the governance map carries the four functions with real model
hashes, and an uploader's erasure keeps what a legal hold requires."""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from mediaguard import wiring
from mediaguard.adapters.governance import Governance, local_target
from mediaguard.cli.govern import run_govern
from mediaguard.cli.main import main
from mediaguard.decisions import enforcement, legal
from mediaguard.decisions.evidence import verify_package
from mediaguard.decisions.review.appeals import AppealDecisionRequest, AppealRequest
from mediaguard.decisions.review.models import DecisionRequest
from mediaguard.decisions.review.roles import Caller
from mediaguard.models import Upload
from tests.conftest import REPO, jpeg_bytes, load_event, photo

SAM = Caller("sam", frozenset({"senior-reviewer"}))
SUE = Caller("sue", frozenset({"senior-reviewer"}))
ADMIN = {"sub": "root-admin", "cognito:groups": "[admin]"}
# Scripted history lives in 2030 (clocks of the queue and the review service are set to it),
# so the hand count is exact whatever else the stack holds.
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def gov(cloud):
    return Governance(local_target())


def _stored(cloud, media_id: str, uploader: str, *, media_type: str = "image", proposed: str | None = None,
            c2pa: str = "absent", received: datetime | None = None, photo_name: str = "astronaut") -> bytes:
    """What the pipeline leaves for an item: original (versioned) and sanitized copy, scores, uploader key."""
    deps, s3 = cloud.deps(), cloud.client("s3")
    data = jpeg_bytes(photo(photo_name))
    key = f"uploads/{media_id}"
    settings = deps.settings
    version = _put_quietly(cloud, settings.upload_bucket, key, data)
    s3.put_object(Bucket=settings.media_bucket, Key=f"media/{media_id}/sanitized.jpg", Body=data,
                  ContentType="image/jpeg")
    assert deps.items.create_once(Upload(media_id=media_id, bucket=settings.upload_bucket, key=key,
                                         version_id=version))
    # The upload API's grant (who was handed the form) and the start stage's receipt.
    deps.items.append_audit(f"upload:{media_id}", f"client:{uploader}", "upload_granted", {"reach": 10})
    deps.items.append_audit(media_id, "system:start", "received", {"key": key})
    digest = hashlib.sha256(data).hexdigest()
    fields = {"status": "done", "sha256": digest, "sanitized_key": f"media/{media_id}/sanitized.jpg",
              "sanitized_sha256": digest, "media_type": media_type, "proposed_action": proposed,
              "provenance": {"c2pa": {"present": c2pa != "absent", "state": c2pa}}}
    if received is not None:
        fields["received_at"] = received
    deps.items.update(media_id, fields)
    return data


def _put_quietly(cloud, bucket: str, key: str, data: bytes) -> str | None:
    """Put an upload without its S3 event starting the pipeline (the history is scripted)."""
    s3 = cloud.client("s3")
    notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
    notifications.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    try:
        return s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg").get("VersionId")
    finally:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notifications)


def _at(minutes: float):
    return lambda: T0 + timedelta(minutes=minutes)


def _review(cloud, media_id: str, *, enqueued: float, decided: float, action: str, reason: str,
            risk: float = 0.8) -> None:
    """Automated review decision (enqueued at T0+enqueued min), then Sam decides at T0+decided."""
    deps = cloud.deps()
    deps.enforcement.review.clock = _at(enqueued)
    enforcement.apply(media_id, "review", actor="system:enforce", reason="classifier.nsfw",
                      context={"risk": risk, "reach": 10}, deps=deps)
    service = wiring.review_service()
    service.clock = _at(decided)
    service.claim(SAM, media_id)
    service.decide(SAM, media_id, DecisionRequest(action=action, reason_code=reason))


def _qa_task(cloud, media_id: str, automated: str, reviewer: str, decided: datetime, lane: str = "qa") -> None:
    """A decided task of the QA lane as ``decisions.review.quality`` stores it (``action`` the automated
    one, ``decision_action`` the reviewer's, ``agree``)."""
    table = cloud.client("dynamodb")
    table.put_item(TableName=wiring.review_service().settings.review_table, Item={
        "media_id": {"S": media_id}, "state": {"S": "decided"}, "lane": {"S": lane}, "shard": {"N": "0"},
        "risk": {"N": "0.1"}, "reach": {"N": "0"}, "priority": {"N": "0.1"}, "reason": {"S": "qa:sample"},
        "enqueued_at": {"S": (decided - timedelta(minutes=5)).isoformat()}, "due_at": {"S": decided.isoformat()},
        "queue_sk": {"S": f"x#{media_id}"}, "decided_at": {"S": decided.isoformat()},
        "action": {"S": automated}, "decision_action": {"S": reviewer},
        "agree": {"BOOL": automated == reviewer}})


def test_report_equals_a_hand_count_of_a_scripted_history(cloud, gov, tmp_path):
    started = datetime.now(UTC) - timedelta(seconds=1)
    # GIVEN six uploads in the period, scripted through the real library
    _stored(cloud, "rep-a", "u1", proposed="allow", c2pa="valid", received=T0)
    enforcement.apply("rep-a", "allow", actor="system:enforce", reason="policy.no_signal", deps=cloud.deps())
    _stored(cloud, "rep-b", "u1", proposed="review", received=T0)
    _review(cloud, "rep-b", enqueued=0, decided=2, action="remove", reason="ncii")  # 120 s
    _stored(cloud, "rep-c", "u2", media_type="video", proposed="review", c2pa="trusted", received=T0)
    _review(cloud, "rep-c", enqueued=0, decided=10, action="approve", reason="no_violation")  # 600 s
    _stored(cloud, "rep-d", "u2", received=T0)
    cloud.deps().items.update("rep-d", {"status": "rejected", "error_reason": "unsupported_media",
                                        "proposed_action": None})
    _stored(cloud, "rep-e", "u3", proposed="blur", c2pa="invalid", received=T0)
    enforcement.apply("rep-e", "blur", actor="system:enforce", reason="classifier.nsfw", deps=cloud.deps())
    _stored(cloud, "rep-f", "u3", proposed="review", received=T0)
    _review(cloud, "rep-f", enqueued=0, decided=30, action="escalate", reason="legal_request", risk=0.95)
    # AND two appeals: the removal of b is overturned, the blur of e upheld
    service = wiring.review_service()
    service.clock = _at(40)
    appeal_b = service.open_appeal(Caller("u1"), "rep-b", AppealRequest(statement="mine, with consent"))
    appeal_e = service.open_appeal(Caller("u3"), "rep-e", AppealRequest(statement="not nudity"))
    service.decide_appeal(SUE, appeal_b.appeal_id, AppealDecisionRequest(outcome="overturn",
                                                                         reason_code="consent_verified"))
    service.decide_appeal(SUE, appeal_e.appeal_id, AppealDecisionRequest(outcome="uphold",
                                                                         reason_code="decision_correct"))
    # AND five QA samples: (remove, remove) (blur, approve) (allow, approve) (allow, approve) (allow, label)
    for n, (auto, human) in enumerate([("remove", "remove"), ("blur", "approve"), ("allow", "approve"),
                                       ("allow", "approve"), ("allow", "label")]):
        _qa_task(cloud, f"qa-{n}", auto, human, T0 + timedelta(minutes=50))

    # WHEN the report covers the period
    report = gov.report(started, T0 + timedelta(days=1), now=T0 + timedelta(days=1))
    m = report["metrics"]

    # THEN every number equals the hand count
    # precision: 1 of 2 sampled actions agreed; miss rate: 1 of 3 sampled allows overturned;
    # volumes (proposed): 1 allow, 4 actions -> TP = 0.5 x 4 = 2, FN = 1/3 x 1 -> recall 2 / 2.333
    assert m["precision_by_audit"] == 0.5
    assert m["recall_by_audit"] == round(2 / (2 + 1 / 3), 4)
    # triage: b 120 s and c 600 s decided; f was escalated (still open), not triaged
    assert m["mean_time_to_triage_s"] == 360.0 and m["p90_time_to_triage_s"] == 600.0
    assert report["reviews"]["by_action"] == {"approve": 1, "remove": 1}
    assert m["false_positive_appeal_rate"] == 0.5  # 1 overturned of 2 decided
    assert m["provenance_adoption_rate"] == round(2 / 6, 4)  # a (valid) and c (trusted) of six
    assert m["escalations_legal"] == 1  # f, escalated with legal_request
    assert report["volumes"]["uploads"] == 6
    assert report["volumes"]["by_action"] == {"allow": 3, "blur": 1, "rejected": 1, "review": 1}
    assert report["volumes"]["by_media_type"] == {"image": 5, "video": 1}
    assert report["rejections_by_reason"] == {"unsupported_media": 1}
    assert report["qa"]["samples"] == 5 and report["appeals"] == {"opened": 2, "decided": 2, "overturned": 1}

    # AND with no QA samples in a period, precision and recall are null, not a number
    empty = gov.report(T0 + timedelta(days=3), T0 + timedelta(days=4))
    assert empty["metrics"]["precision_by_audit"] is None and empty["metrics"]["recall_by_audit"] is None
    assert empty["metrics"]["mean_time_to_triage_s"] is None

    # AND --out writes a self-contained HTML page with SVG charts and one CSV per table
    out = tmp_path / "report"
    code = main(["report", "--from", started.isoformat(), "--to", (T0 + timedelta(days=1)).isoformat(),
                 "--out", str(out), "--json"])
    assert code == 0
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 6 and "<script" not in page and "src=" not in page and "href=" not in page
    assert "Content-Security-Policy" in page
    rows = (out / "metrics.csv").read_text().splitlines()
    assert "precision_by_audit,0.5" in rows and (out / "legal_orders.csv").exists()

    # AND the admin API returns the same JSON
    status, body = _api(cloud, "GET", "/admin/report", ADMIN,
                        query={"from": started.isoformat(), "to": (T0 + timedelta(days=1)).isoformat()})
    assert status == 200 and body["metrics"]["precision_by_audit"] == 0.5
    assert body["volumes"] == report["volumes"]
    assert _api(cloud, "GET", "/admin/report", {"sub": "sam", "cognito:groups": "[senior-reviewer]"})[0] == 403


def test_legal_orders_are_enforced_and_their_deadlines_judged(cloud, gov):
    now = datetime.now(UTC)
    _stored(cloud, "leg-h", "u7", photo_name="camera")
    data_i = _stored(cloud, "leg-i", "u7", photo_name="coffee")
    ports = gov.legal_ports()
    # GIVEN a German court order on one item, deadline tomorrow
    on_time = legal.record(legal.OrderRequest(
        issuer="LG Berlin", legal_basis="Beschluss 27 O 123/26", jurisdiction="DE", scope="items",
        targets=["leg-h"], countries=["de"], deadline=now + timedelta(days=1)), "admin:test", ports)
    # AND a worldwide order by hash whose deadline has already passed
    late = legal.record(legal.OrderRequest(
        issuer="Agency X", legal_basis="Notice 7", jurisdiction="EU", scope="hashes",
        targets=[hashlib.sha256(data_i).hexdigest()], countries=["*"], deadline=now - timedelta(hours=1)),
        "admin:test", ports)
    # WHEN both are enforced
    on_time = legal.enforce(on_time.order_id, "admin:test", ports)
    late = legal.enforce(late.order_id, "admin:test", ports)
    # THEN the first is a 451 at the edge in DE, the second a removal with evidence preserved
    rules = [(r.country, r.scope, r.legal_reference) for r in gov.geofence().list()]
    assert ("DE", "path:/media/leg-h/", "LG Berlin: Beschluss 27 O 123/26") in rules
    item_i = cloud.item("leg-i")
    assert item_i["action"] == "remove" and item_i["enforcement"]["custody"] == "evidence"
    # AND compliance is judged from enforced_at against the deadline
    assert on_time.view()["compliance"] == "on_time" and late.view()["compliance"] == "late"
    report = gov.report(now - timedelta(minutes=1), now + timedelta(days=2))
    assert (report["legal_orders"]["on_time"], report["legal_orders"]["late"]) == (1, 1)
    assert report["legal_orders"]["deadline_compliance_rate"] == 0.5
    # AND every step is on the audit trail
    events = [r.event for r in cloud.deps().items.audit_chain(f"legal:{on_time.order_id}")]
    assert events == ["legal_order_recorded", "legal_order_enforced"]
    assert "legal_order_applied" in [r.event for r in cloud.deps().items.audit_chain("leg-h")]
    # AND the admin API shows one and records a new one, refusing a malformed target
    status, shown = _api(cloud, "GET", f"/admin/legal/{late.order_id}", ADMIN)
    assert status == 200 and shown["compliance"] == "late"
    order = {"issuer": "Tribunal", "legal_basis": "Ordonnance 12", "jurisdiction": "FR", "scope": "items",
             "targets": ["leg-h"], "countries": ["FR", "BE"], "deadline": (now + timedelta(days=2)).isoformat()}
    status, added = _api(cloud, "POST", "/admin/legal", ADMIN, body=order)
    assert status == 201 and added["status"] == "enforced" and added["compliance"] == "on_time"
    assert _api(cloud, "POST", "/admin/legal", ADMIN, body=order | {"scope": "hashes"})[1]["reason"] == "invalid_order"
    # (a zero-width character in the reference the edge would send as a header: a 400, not a 500)
    status, refused = _api(cloud, "POST", "/admin/legal", ADMIN, body=order | {"reference": "Ord\u200b 12"})
    assert (status, refused["reason"]) == (400, "invalid_order")
    assert _api(cloud, "POST", "/admin/legal", {"sub": "sue", "cognito:groups": "[senior-reviewer]"},
                body=order)[0] == 403
    # AND an uploader order from the CLI stores only the keyed hash and restricts their items
    _stored(cloud, "leg-u", "user-ordered", photo_name="rocket")
    assert main(["legal", "add", "--issuer", "Court", "--basis", "Order 3", "--jurisdiction", "NL",
                 "--scope", "uploader", "--target", "user-ordered", "--country", "NL",
                 "--deadline", (now + timedelta(days=1)).date().isoformat(), "--json"]) == 0
    stored = [o for o in gov.legal_ports().orders.list() if o.scope_kind == "uploader"][0]
    assert stored.targets == [wiring.uploader_keys().key("user-ordered")] and "user-ordered" not in stored.reference
    assert [e["media_id"] for e in stored.enforcement] == ["leg-u"]
    nl = {r.scope for r in gov.geofence().list() if r.country == "NL"}
    assert {"path:/media/leg-u/", f"uploader-key:{stored.targets[0]}"} <= nl
    assert main(["legal", "list", "--json"]) == 0


def test_evidence_package_verifies_offline_and_a_tampered_one_fails(cloud, gov, tmp_path):
    # GIVEN a removed item whose chain a digest has anchored
    data = _stored(cloud, "evi-g", "u8", photo_name="chelsea")
    enforcement.apply("evi-g", "remove", actor="system:enforce", reason="bank.block", deps=cloud.deps())
    cloud.invoke("DigestFunction", load_event("digest"))
    # WHEN it is exported (CLI) for law enforcement
    out = tmp_path / "evi-g.zip"
    assert main(["evidence", "export", "evi-g", str(out)]) == 0
    package = out.read_bytes()
    # THEN it holds the original from the evidence bucket, the sanitized copy, the chain, its anchor
    files = zipfile.ZipFile(io.BytesIO(package)).namelist()
    assert {"original", "sanitized", "audit/chain.jsonl", "audit/anchor.json", "manifest.json", "SHA256SUMS",
            "VERIFY.txt"} <= set(files)
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(package)).read("manifest.json"))
    assert manifest["files"]["original"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["files"]["original"]["source"].startswith(f"s3://{cloud.deps().settings.evidence_bucket}/")
    problems, summary = verify_package(package)
    assert problems == [] and summary["anchored_seq"] is not None and summary["unanchored_records"] == 0
    assert main(["evidence", "verify", str(out)]) == 0
    # AND the export itself is audited
    assert cloud.deps().items.audit_chain("evi-g")[-1].event == "evidence_exported"

    # WHEN one byte of the original changes
    assert verify_package(_rezip(package, {"original": _flip(data)}))[0]
    # AND even when SHA256SUMS and the manifest are rewritten to match, the chain still names the original
    forged = _flip(data)
    rewritten = _rezip(package, {"original": forged}, rehash=True)
    problems, _ = verify_package(rewritten)
    assert any("recorded on the audit chain" in p for p in problems)
    # AND an edited audit record fails the chain
    chain = zipfile.ZipFile(io.BytesIO(package)).read("audit/chain.jsonl").decode().replace('"system:enforce"',
                                                                                          '"system:other"', 1)
    assert any(p.startswith("audit chain") for p in verify_package(_rezip(package, {"audit/chain.jsonl":
                                                                                    chain.encode()}, rehash=True))[0])
    bad = tmp_path / "bad.zip"
    bad.write_bytes(rewritten)
    assert main(["evidence", "verify", str(bad)]) == 1


def test_erasure_deletes_what_it_may_and_keeps_legal_holds(cloud, gov):
    s3, settings = cloud.client("s3"), cloud.deps().settings
    # GIVEN an uploader with four items: a plain one, one under a legal order, one removed
    # (evidence), and one removed then restored on appeal (live again, its evidence locked)
    for media_id in ("era-j", "era-k", "era-l", "era-m"):
        _stored(cloud, media_id, "user-erase")
    wiring.review_service().history.record_upload("user-erase", "era-j")
    # (the totals row carries the UploaderHistoryRetentionDays TTL: 730 days by default)
    totals = _history_row(cloud, "user-erase", "t")
    assert abs(int(totals["expires_at"]["N"]) - (datetime.now(UTC) + timedelta(days=730)).timestamp()) < 120
    ports = gov.legal_ports()
    order = legal.record(legal.OrderRequest(issuer="Court", legal_basis="Hold 1", jurisdiction="FR", scope="items",
                                            targets=["era-k"], countries=["FR"],
                                            deadline=datetime.now(UTC) + timedelta(days=1)), "admin:test", ports)
    legal.enforce(order.order_id, "admin:test", ports)
    enforcement.apply("era-l", "remove", actor="system:enforce", reason="bank.block", deps=cloud.deps())
    enforcement.apply("era-m", "remove", actor="system:enforce", reason="bank.block", deps=cloud.deps())
    enforcement.restore("era-m", actor="reviewer:senior-1", reason="reviewer_error", deps=cloud.deps())

    # WHEN the uploader asks for erasure (admin API)
    status, result = _api(cloud, "POST", "/admin/erasure", ADMIN, body={"uploader": "user-erase"})

    # THEN the plain item's files are gone and it no longer names the uploader; so are the
    # restored item's public copies, its evidence said to be retained (it read as wholly deleted)
    assert status == 200, result
    assert [(d["media_id"], d.get("evidence_retained")) for d in result["deleted"]] == [
        ("era-j", None), ("era-m", True)]
    assert _versions(s3, settings.media_bucket, "media/era-m/") == 0
    assert _versions(s3, settings.evidence_bucket, "evidence/era-m/") >= 1
    assert _versions(s3, settings.upload_bucket, "uploads/era-j") == 0
    assert _versions(s3, settings.media_bucket, "media/era-j/") == 0
    assert cloud.item("era-j")["erased_at"]
    # AND the held items are kept, each with its reason
    assert {(k["media_id"], k["reason"]) for k in result["kept"]} == {
        ("era-k", f"legal_order:{order.order_id}"), ("era-l", "evidence_object_lock")}
    assert _versions(s3, settings.upload_bucket, "uploads/era-k") == 1
    assert _versions(s3, settings.evidence_bucket, "evidence/era-l/") >= 1
    # AND the history is gone, and the trail says what was deleted and kept (ids only)
    assert result["history_rows_deleted"] >= 1
    assert wiring.review_service().history.snapshot("user-erase").model_dump()["uploads_total"] == 0
    record = cloud.deps().items.audit_chain(f"erasure:{result['uploader_key']}")[-1]
    assert record.event == "uploader_erasure" and "user-erase" not in json.dumps(record.detail)


def test_governance_map_has_the_four_functions_and_the_real_model_hashes(cloud, tmp_path):
    from mediaguard.analysis.classify import OPEN_NSFW_SHA256
    from mediaguard.analysis.faces import CENTERFACE_SHA256
    from mediaguard.analysis.synthetic import CLIP_SHA256

    # WHEN the map is generated from the local stack's configuration
    out = tmp_path / "rmf.md"
    lines: list[str] = []

    class Out:
        def line(self, text: str) -> None:
            lines.append(text)

    args = argparse.Namespace(command="governance", json=True, out=out, stack=None, region=None)
    assert run_govern(args, Out()) == 0
    rmf = json.loads(lines[-1])
    # THEN it has the four functions, the pinned model hashes, the policy and the retention
    assert all(rmf[f] for f in ("GOVERN", "MAP", "MEASURE", "MANAGE"))
    hashes = json.dumps(rmf["MEASURE"])
    for digest in (OPEN_NSFW_SHA256, CENTERFACE_SHA256, CLIP_SHA256):
        assert digest in hashes
    govern = {c["id"]: c["evidence"] for c in rmf["GOVERN"]}
    assert govern["GOVERN 1.2"]["policy_version"] == "2026-12-02.2"
    assert govern["GOVERN 4.3"]["DerivativesRetentionDays"] == "0"
    text = out.read_text()
    assert all(f"## {f}" in text for f in ("GOVERN", "MAP", "MEASURE", "MANAGE"))
    # AND every shipped model has a card naming its pinned sha256
    from mediaguard.decisions.governance import shipped_models

    for model in shipped_models():
        card = (REPO / "docs" / "model-cards" / model.card).read_text()
        assert model.sha256 is None or model.sha256 in card, model.id


# --- helpers --------------------------------------------------------------------------------


def _api(cloud, method: str, path: str, claims: dict, body: dict | None = None, query: dict | None = None):
    event = copy.deepcopy(load_event("api"))
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    from urllib.parse import urlencode

    event["rawQueryString"] = urlencode(query or {})
    event["queryStringParameters"] = query
    event["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["content-type"] = "application/json"
    result = cloud.invoke("ApiFunction", event)
    return result["statusCode"], json.loads(result.get("body") or "null")


def _flip(data: bytes) -> bytes:
    return data[:100] + bytes([data[100] ^ 1]) + data[101:]


def _rezip(package: bytes, replace: dict[str, bytes], *, rehash: bool = False) -> bytes:
    """The package with some files replaced; ``rehash``: SHA256SUMS and manifest rewritten to match."""
    src = zipfile.ZipFile(io.BytesIO(package))
    files = {name: src.read(name) for name in src.namelist()} | replace
    if rehash:
        manifest = json.loads(files["manifest.json"])
        for name, data in replace.items():
            manifest["files"][name]["sha256"] = hashlib.sha256(data).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()
        files["SHA256SUMS"] = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(files.items())
                                      if n not in ("SHA256SUMS", "VERIFY.txt")).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _history_row(cloud, uploader: str, bucket: str) -> dict:
    key = wiring.uploader_keys().key(uploader)
    return cloud.client("dynamodb").get_item(TableName=cloud.deps().settings.history_table,
                                             Key={"uploader": {"S": key}, "bucket": {"S": bucket}})["Item"]


def _versions(s3, bucket: str, prefix: str) -> int:
    listed = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return len(listed.get("Versions", []))


def test_an_order_past_its_expiry_is_refused_not_enforced_without_end(cloud, gov):
    import dataclasses

    now = datetime.now(UTC)
    _stored(cloud, "leg-x", "u9", photo_name="camera")
    ports = gov.legal_ports()
    request = dict(issuer="LG Berlin", legal_basis="Beschluss 27 O 9/26", jurisdiction="DE", scope="items",
                   targets=["leg-x"], countries=["de"], deadline=now + timedelta(days=1))
    before = len(ports.orders.list())
    # GIVEN a German order on one item that expired an hour ago
    # WHEN it is recorded THEN it is refused with a typed error, and nothing is stored (kept
    # "recorded", it would later count as overdue)
    with pytest.raises(legal.ExpiredOrderError) as refused:
        legal.record(legal.OrderRequest(**request, expires_at=now - timedelta(hours=1)), "admin:test", ports)
    assert refused.value.reason == "order_expired" and len(ports.orders.list()) == before
    # GIVEN one recorded while in force, enforced only after it expired
    order = legal.record(legal.OrderRequest(**request, expires_at=now + timedelta(hours=1)), "admin:test", ports)
    later = dataclasses.replace(ports, clock=lambda: now + timedelta(hours=2))
    # WHEN it is enforced THEN it is refused too
    with pytest.raises(legal.ExpiredOrderError):
        legal.enforce(order.order_id, "admin:test", later)
    # AND no geofence rule for the item exists (none, and certainly none without expiry)
    assert not [r for r in gov.geofence().list() if "leg-x" in r.scope]


def test_two_orders_on_one_item_and_country_keep_the_longer_block_and_both_references(cloud, gov):
    now = datetime.now(UTC)
    _stored(cloud, "leg-y", "u9", photo_name="camera")
    ports = gov.legal_ports()
    # GIVEN a French order without expiry on an item, then a second one on the same item
    # that expires in two days (each order's rule used to replace the other's)
    orders = [legal.record(legal.OrderRequest(
        issuer=f"Court {n}", legal_basis=f"Order {n}-1", jurisdiction="FR", scope="items", targets=["leg-y"],
        countries=["FR"], deadline=now + timedelta(days=1), reference=f"REF-{n}", expires_at=expires),
        "admin:test", ports) for n, expires in (("A", None), ("B", now + timedelta(days=2)))]
    # WHEN both are enforced, in that order
    for order in orders:
        legal.enforce(order.order_id, "admin:test", ports)
    # THEN the one rule for the item in France has no expiry (A's) and names both orders
    (rule,) = [r for r in gov.geofence().list() if r.country == "FR" and "leg-y" in r.scope]
    assert (rule.expires_at, rule.legal_reference) == (None, "REF-A; REF-B")
    # AND enforcing B again names it once
    legal.enforce(orders[1].order_id, "admin:test", ports)
    (rule,) = [r for r in gov.geofence().list() if r.country == "FR" and "leg-y" in r.scope]
    assert rule.legal_reference == "REF-A; REF-B"
    # AND a reference that itself holds "; " is named once however often it is enforced
    third = legal.record(legal.OrderRequest(
        issuer="LG Berlin", legal_basis="Az 1", jurisdiction="DE", scope="items", targets=["leg-y"], countries=["FR"],
        deadline=now + timedelta(days=1), reference="LG Berlin: Az 1; Art. 17"), "admin:test", ports)
    for _ in range(2):
        legal.enforce(third.order_id, "admin:test", ports)
    (rule,) = [r for r in gov.geofence().list() if r.country == "FR" and "leg-y" in r.scope]
    assert rule.legal_reference == "REF-A; REF-B; LG Berlin: Az 1; Art. 17"


def test_a_quality_sample_a_reviewer_escalated_is_not_counted_as_triage(cloud, gov):
    # GIVEN, alone in a period, a QA sample that was escalated and then decided by a senior
    start = T0 + timedelta(days=10)
    _qa_task(cloud, "qa-esc", "allow", "approve", start + timedelta(hours=5), lane="escalated")
    # WHEN the report covers the period
    report = gov.report(start, start + timedelta(days=1), now=start + timedelta(days=1))
    # THEN it is no triage (it counted as one, with its 5-hour wait) and no review decision
    assert report["metrics"]["mean_time_to_triage_s"] is None
    assert report["reviews"]["by_action"] == {}
