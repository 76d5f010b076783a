"""The reviewer console end to end: ``mediaguard serve`` in a thread (the real template,
state machine and handlers on moto), uploads through the upload page, and a reviewer in
headless Debian chromium who finds the item first in the queue, sees it blurred and
greyscale, reveals it, and removes it with a reason code.

Needs Playwright (dev extras) and Debian's chromium (scripts/setup-browser.sh); Playwright
drives that binary through ``executable_path`` because it cannot download its own here.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import jpeg_bytes, photo

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed: run scripts/setup-browser.sh", allow_module_level=True)

VIEWPORT = {"width": 1280, "height": 1000}
DOCS = Path(__file__).resolve().parents[2] / "docs"
BANK, ENTRY = "watchlist", "case-0042"


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    """``mediaguard serve`` on free ports, its request log kept for the test to read."""
    from mediaguard.local.serve import LocalServer

    log = io.StringIO()
    local = LocalServer(port=0, moto_port=0, request_log=log)
    local.start()
    thread = threading.Thread(target=local.serve_forever, daemon=True)
    thread.start()
    local.request_log_text = log.getvalue
    yield local
    local.stop()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def image() -> bytes:
    # Colourful and detailed: greyscale and blur both show in pixel statistics.
    return jpeg_bytes(photo("astronaut"))


@pytest.fixture(scope="module")
def banked(server, image):
    """A flag bank whose configured action is ``review``, holding the photo's PDQ: the
    policy then sends any copy of it to a person (scoring: an explicit bank action)."""
    from mediaguard.adapters.banks import dynamo_bank_service
    from mediaguard.analysis.banks.model import NewEntry
    from mediaguard.ingress.ingest import prepare
    from mediaguard.settings import Settings

    fingerprints = prepare(image, "image/jpeg", Settings()).fingerprints
    banks = dynamo_bank_service(server.cloud.deps().settings)
    banks.create_bank(BANK, "flag", action="review", actor="test")
    banks.add_entries(BANK, [NewEntry(ref=ENTRY, signal="pdq", value=fingerprints.pdq,
                                      quality=fingerprints.pdq_quality)], actor="test")
    return fingerprints


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    # Reduced motion: the reveal is not animated, so a screenshot right after the click is final.
    context = browser.new_context(viewport=VIEWPORT, reduced_motion="reduce")
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    # A CSP violation (anything not from this origin, an inline style) is reported on the
    # console. (Expected refusals, such as a reviewer's 403 on the appeals list, are not.)
    page.on("console", lambda message: "Content Security Policy" in message.text and page.problems.append(message.text))
    if os.environ.get("MEDIAGUARD_E2E_CONSOLE_LOG") == "1":
        page.on("console", lambda message: print("console:", message.text))
    yield page
    context.close()


def docs_shot(page, name: str) -> None:
    """With MEDIAGUARD_DOCS_SCREENSHOTS=1, refresh the README's screenshot ``docs/<name>``."""
    if os.environ.get("MEDIAGUARD_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        # 128-colour palette: a UI screenshot stays legible at a fraction of the bytes.
        shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB").quantize(colors=128)
        shot.save(DOCS / name, optimize=True)


def token(server, role: str) -> str:
    return next(u.token for u in server.users if (role in u.roles) or (role == "uploader" and not u.roles))


def api(server, method: str, path: str, role: str, body: dict | None = None) -> tuple[int, dict]:
    response = requests.request(method, f"{server.url}/api{path}", json=body, timeout=30,
                                headers={"Authorization": f"Bearer {token(server, role)}"})
    return response.status_code, (response.json() if response.content else {})


def upload_via_api(server, data: bytes, reach: int | None = None, content_type: str = "image/jpeg") -> str:
    declaration = {"content_type": content_type, "content_length": len(data)}
    if reach is not None:
        declaration["reach"] = reach
    status, grant = api(server, "POST", "/v1/uploads", "uploader", declaration)
    assert status == 201, grant
    stored = requests.post(grant["upload"]["url"], data=grant["upload"]["fields"],
                           files={"file": ("upload", data, content_type)}, timeout=30)
    assert stored.status_code == 204, stored.text
    return grant["media_id"]


def upload_via_page(server, page, data: bytes, reach: int) -> str:
    page.goto(f"{server.url}/upload")
    page.get_by_label("Uploader token").fill(token(server, "uploader"))
    page.get_by_label("Images").set_input_files([{"name": "holiday.jpg", "mimeType": "image/jpeg", "buffer": data}])
    page.get_by_label("Audience (followers, optional)").fill(str(reach))
    page.get_by_role("button", name="Upload").click()
    # The page follows each upload to its decision (tests/e2e/test_upload_page.py covers the rest).
    card = page.locator("#uploads article[data-media-id]")
    sync_api.expect(card).to_have_count(1, timeout=60_000)
    return card.get_attribute("data-media-id")


def sign_in(server, page, role: str) -> None:
    page.goto(f"{server.url}/")
    # The modules must have wired the form: a click before that submits it natively (a reload).
    sync_api.expect(page.locator("body[data-ready=true]")).to_have_count(1)
    page.get_by_label("Bearer token").fill(token(server, role))
    page.get_by_role("button", name="Sign in").click()
    # (An admin's sign-in also lists the banks: on a loaded machine it takes a few seconds.)
    sync_api.expect(page.locator("#status")).to_contain_text("Signed in", timeout=15_000)


def pixel_stats(png: bytes) -> dict[str, float]:
    """Colourfulness (mean |R-G| + |G-B|) and sharpness (mean neighbour difference of the
    luma) of the middle of a screenshot, clear of the frame's caption bar."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)
    h, w, _ = rgb.shape
    core = rgb[int(h * 0.1): int(h * 0.75), int(w * 0.1): int(w * 0.9)]
    luma = core.mean(axis=2)
    return {
        "colour": float(np.abs(core[..., 0] - core[..., 1]).mean() + np.abs(core[..., 1] - core[..., 2]).mean()),
        "sharpness": float(np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean()),
    }


# --- the reviewer's path --------------------------------------------------------------------------


def test_reviewer_finds_reveals_and_removes_a_flagged_upload(server, banked, image, page, tmp_path):
    # GIVEN two uploads of a photo whose PDQ is in a review bank: one from an account nobody
    # follows, then one through the upload page from an account with a million followers
    low_reach = upload_via_api(server, image, reach=0)
    media_id = upload_via_page(server, page, image, reach=1_000_000)
    for uploaded in (low_reach, media_id):
        run = server.cloud.wait(uploaded, timeout=120)
        assert run.status == "SUCCEEDED", run.states
        assert server.cloud.item(uploaded)["action"] == "review"

    # WHEN a reviewer signs in
    sign_in(server, page, "reviewer")
    # (appeals are for senior reviewers: a reviewer is not offered them)
    sync_api.expect(page.get_by_role("button", name="Appeals")).to_be_hidden()

    # THEN the far-reaching copy is first in the queue, with its SLA deadline
    first = page.locator("#queue .task").first
    sync_api.expect(first).to_have_attribute("data-media-id", media_id)
    queued = [b.get_attribute("data-media-id") for b in page.locator("#queue .task").all()]
    assert queued.index(low_reach) > 0
    sync_api.expect(first).to_contain_text("due ")
    page.screenshot(path=tmp_path / "queue.png", full_page=False)

    # WHEN they open it
    first.click()
    sync_api.expect(page.locator("#item")).to_have_attribute("data-media-id", media_id)
    page.wait_for_function("() => { const i = document.getElementById('media-img'); "
                           "return i.complete && i.naturalWidth > 0; }")
    # THEN it shows every signal with its contribution, the bank match and the audit trail
    shown = {row.locator("th").inner_text(): row.locator("td").last.inner_text()
             for row in page.locator("#signals tbody tr").all()}
    scored = server.cloud.item(media_id)["signals"]
    assert scored and any(s["name"].startswith("bank.flag") for s in scored)
    assert shown == {s["name"]: f"+{float(s['contribution']):.3f}" for s in scored}
    match = page.locator("#matches tbody tr").first
    sync_api.expect(match).to_contain_text(BANK)
    sync_api.expect(match).to_contain_text(ENTRY)
    sync_api.expect(page.locator("#audit-summary")).to_contain_text("hash chain verified")
    sync_api.expect(page.locator("#claim-state")).to_contain_text("Claimed by you")

    # AND the media is blurred and greyscale until revealed
    toggle = page.locator("#media-toggle")
    sync_api.expect(toggle).to_have_attribute("aria-pressed", "false")
    css_filter = page.eval_on_selector("#media-img", "i => getComputedStyle(i).filter")
    assert "blur" in css_filter and "grayscale" in css_filter
    hidden_png = toggle.screenshot(path=tmp_path / "media-hidden.png")

    # WHEN the reviewer clicks the media
    toggle.click()
    sync_api.expect(toggle).to_have_attribute("aria-pressed", "true")
    # THEN the reveal is recorded and counted for today (bug 4)
    sync_api.expect(page.locator("#exposures")).to_contain_text("reveal")
    revealed_png = toggle.screenshot(path=tmp_path / "media-revealed.png")

    # THEN the screenshots show the difference: grey and soft before, colour and detail after
    hidden, revealed = pixel_stats(hidden_png), pixel_stats(revealed_png)
    assert hidden["colour"] < 1.0, hidden
    assert revealed["colour"] > 10 * max(hidden["colour"], 1.0), (hidden, revealed)
    assert revealed["sharpness"] > 3 * hidden["sharpness"], (hidden, revealed)
    # AND both are the whole (square) photo at display size, not a broken-image box
    for png in (hidden_png, revealed_png):
        width, height = Image.open(io.BytesIO(png)).size
        assert 300 <= width <= 522 and abs(width - height) <= 2, (width, height)  # 520 px frame, subpixel rounding

    # AND the keyboard hides it again (Space on the focused control)
    toggle.focus()
    page.keyboard.press("Space")
    sync_api.expect(toggle).to_have_attribute("aria-pressed", "false")

    # WHEN they pick a reason: only the actions it justifies are offered
    remove = page.get_by_role("button", name="Remove")
    sync_api.expect(remove).to_be_disabled()
    page.get_by_label("Reason code").select_option("hash_match_confirmed")
    sync_api.expect(remove).to_be_enabled()
    sync_api.expect(page.get_by_role("button", name="Approve")).to_be_disabled()
    page.get_by_label("Note (optional, kept in the audit trail)").fill("same photo as the banked case")
    # AND remove it
    remove.click()
    # (a removal waits out a few seconds' undo window before it is sent)
    sync_api.expect(page.locator("#undo-bar")).to_be_visible()
    sync_api.expect(page.locator("#status")).to_contain_text(f"Decided {media_id}: remove", timeout=15_000)
    page.screenshot(path=tmp_path / "decided.png")

    # THEN the API's state changed: the item is removed, the task decided with the reason,
    # and the decision and the look at the media are in the item's audit chain
    status, view = api(server, "GET", f"/items/{media_id}", "reviewer")
    assert status == 200
    assert view["action"] == "remove"
    assert (view["task"]["state"], view["task"]["decision_action"], view["task"]["decision_reason"]) == (
        "decided", "remove", "hash_match_confirmed")
    assert view["task"]["decided_by"] == "reviewer-1"
    events = [(e["event"], e["actor"]) for e in view["audit"]["events"]]
    # (bug 4) opening and revealing are separate records: who opened, and who looked
    assert ("media_opened", "reviewer:reviewer-1") in events and ("media_revealed", "reviewer:reviewer-1") in events
    assert events.index(("media_opened", "reviewer:reviewer-1")) < events.index(("media_revealed", "reviewer:reviewer-1"))
    assert ("review_decided", "reviewer:reviewer-1") in events and view["audit"]["verified"]
    # AND it has left the queue, while the other copy waits
    _, normal = api(server, "GET", "/review/queue?lane=normal&limit=100", "reviewer")
    _, fast = api(server, "GET", "/review/queue?lane=fast&limit=100", "reviewer")
    waiting = {t["media_id"] for t in normal["items"] + fast["items"]}
    assert media_id not in waiting and low_reach in waiting
    # AND the moto endpoint for `aws --endpoint-url` sees the very same state
    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=server.moto_url, region_name=server.region,
                       aws_access_key_id="any", aws_secret_access_key="any")
    row = ddb.get_item(TableName=server.cloud.deps().settings.media_table, Key={"media_id": {"S": media_id}})
    assert row["Item"]["action"]["S"] == "remove"

    # AND the screenshots were written at the viewport's size, and the page raised no
    # error (a CSP violation would be one)
    for name in ("queue.png", "decided.png"):
        assert Image.open(tmp_path / name).size == (VIEWPORT["width"], VIEWPORT["height"])
    assert page.problems == []


def test_senior_reviewer_decides_the_uploaders_appeal(server, banked, image, page):
    # GIVEN an upload a reviewer removed
    media_id = upload_via_api(server, image, reach=50)
    assert server.cloud.wait(media_id, timeout=120).status == "SUCCEEDED"
    assert api(server, "POST", f"/review/{media_id}/claim", "reviewer")[0] == 200
    status, decision = api(server, "POST", f"/review/{media_id}/decision", "reviewer",
                           {"action": "remove", "reason_code": "hash_match_confirmed"})
    assert status == 200, decision
    # AND the uploader appeals from the upload page
    page.goto(f"{server.url}/upload")
    page.get_by_label("Uploader token").fill(token(server, "uploader"))
    page.get_by_label("Media id").fill(media_id)
    statement = "It is my own photo <b>and</b> I took it."
    page.get_by_label("Why the decision is wrong").fill(statement)
    page.get_by_role("button", name="Send the appeal").click()
    sync_api.expect(page.locator("#status")).to_contain_text(f"Appeal ap-{media_id} is open")

    # WHEN a senior reviewer opens the appeals
    sign_in(server, page, "senior-reviewer")
    page.get_by_role("button", name="Appeals").click()
    card = page.locator(f'#appeals [data-appeal-id="ap-{media_id}"]')
    # THEN the appeal shows the uploader's statement as text (markup is not interpreted)
    sync_api.expect(card.locator("blockquote")).to_have_text(statement)
    assert card.locator("blockquote b").count() == 0
    # AND (bug 2) the removed item's media loads for the senior from the evidence copy, through
    # this server's /s3/ (the CSP would refuse a real AWS address)
    card.get_by_role("button", name="Open the item").click()
    sync_api.expect(page.locator("#item")).to_have_attribute("data-media-id", media_id)
    assert page.locator("#media-img").get_attribute("src").startswith(f"{server.url}/s3/")
    page.wait_for_function("() => { const i = document.getElementById('media-img'); "
                           "return i.complete && i.naturalWidth > 0; }")
    page.get_by_role("button", name="Appeals").click()
    # WHEN they uphold it with a reason that fits an upholding
    card.get_by_label("Outcome").select_option("uphold")
    card.get_by_label("Reason code").select_option("statement_unsupported")
    card.get_by_role("button", name="Record the decision").click()
    sync_api.expect(page.locator("#status")).to_contain_text(f"Appeal ap-{media_id}: uphold")

    # THEN the API has the appeal decided by them, and it left the open list
    _, decided = api(server, "GET", "/appeals?state=decided&limit=100", "senior-reviewer")
    appeal = next(a for a in decided["items"] if a["media_id"] == media_id)
    assert (appeal["outcome"], appeal["reason_code"], appeal["handled_by"]) == (
        "uphold", "statement_unsupported", "senior-1")
    _, still_open = api(server, "GET", "/appeals?state=open&limit=100", "senior-reviewer")
    assert media_id not in {a["media_id"] for a in still_open["items"]}
    # AND Find's decided appeals list it with when it was decided (it read a field the API
    # never sends, and showed "-")
    page.locator("#tab-find").click()
    listed = page.locator("#decided-appeals li", has_text=media_id)
    sync_api.expect(listed).to_contain_text("uphold (statement_unsupported) by senior-1, ")
    assert not listed.inner_text().rstrip().endswith(", -"), listed.inner_text()
    assert page.problems == []


def test_media_links_are_checked_like_s3_and_never_logged(server, banked, image):
    # GIVEN an item in review and the presigned link the item view hands a reviewer
    media_id = upload_via_api(server, image, reach=10)
    server.cloud.wait(media_id, timeout=120)
    status, view = api(server, "GET", f"/items/{media_id}", "reviewer")
    assert status == 200
    url = view["media"]["url"]
    # THEN the link points at this server's S3 stand-in, and it serves the sanitized copy
    assert url.startswith(f"{server.url}/s3/")
    served = requests.get(url, timeout=30)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(served.content)).size == (512, 512)
    # WHEN the link is tampered with (another key), or a caller brings no valid token
    tampered = requests.get(url.replace("/sanitized.", "/original."), timeout=30)
    anonymous = requests.get(f"{server.url}/api/items/{media_id}", timeout=30)
    # THEN S3's refusal comes back, and the API answers 401
    assert tampered.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in tampered.text
    assert anonymous.status_code == 401 and anonymous.json()["reason"] == "unauthorized"
    # AND the request log has paths and statuses but no signature, token or media key
    log = server.request_log_text()
    assert "GET /api/items/" in log and " 401" in log
    assert "X-Amz-Signature" not in log and "sanitized." not in log
    assert not any(u.token in log for u in server.users)


def test_config_json_tells_the_pages_where_the_apis_are(server):
    config = requests.get(f"{server.url}/config.json", timeout=10)
    assert config.status_code == 200
    assert json.loads(config.content) == {"api_base": f"{server.url}/api", "uploads_api_base": f"{server.url}/api",
                                          "mode": "local"}
    page = requests.get(f"{server.url}/", timeout=10)
    # Nothing may load from another origin: the CSP says so and the page names no other host.
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")


def test_the_api_docs_render_under_their_content_security_policy(server, page):
    # WHEN anyone opens the review API's Swagger UI page (served without a token)
    response = page.goto(f"{server.url}/api/docs")
    # THEN it comes with a Content-Security-Policy that admits nothing but its own inline code
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    # AND Swagger UI still renders every route under it, with no violation reported
    sync_api.expect(page.locator(".swagger-ui .info .title")).to_contain_text("mediaguard review API",
                                                                             timeout=30_000)
    sync_api.expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() >= 10
    assert page.problems == []


def test_a_reviewer_sees_a_restricted_live_stream_and_clears_it(server, page):
    from mediaguard.adapters.live import DynamoStreamStore
    from mediaguard.decisions.live import Stream
    from mediaguard.ports import StreamRecord

    # GIVEN a live stream a segment restricted under a mute and a warning (as the segment stage stores it)
    store = DynamoStreamStore(server.cloud.deps().settings)
    stream = Stream("e2e0stream01", "restricted", verified=True, overlays=("mute", "warning"), segments=4,
                    severity="remove", cause_segment=3)
    assert store.put(StreamRecord(stream, "arn:aws:ivs:us-east-1:123456789012:channel/e2eChannel",
                                  last={"segment": 3, "t_start": 6.0, "t_end": 8.0, "action": "remove", "risk": 1.0}))
    # WHEN a reviewer opens the live streams
    sign_in(server, page, "reviewer")
    page.get_by_role("button", name="Live streams").click()
    card = page.locator('#streams [data-stream-id="e2e0stream01"]')
    # THEN the stream shows its state, overlays and the segment that restricted it, and no Block
    # button (blocking is for senior reviewers)
    sync_api.expect(card).to_contain_text("mute; warning")
    sync_api.expect(card).to_contain_text("Restricted by segment")
    assert card.get_by_role("button", name="Block").count() == 0
    # WHEN they clear it with a reason code
    card.get_by_label("Reason code").fill("licensed_voice")
    card.get_by_role("button", name="Clear").click()
    # THEN it is live again and leaves the restricted list
    sync_api.expect(page.locator("#status")).to_contain_text("now live", timeout=15_000)
    sync_api.expect(card).to_have_count(0)
    assert store.get("e2e0stream01").stream.state == "live"
    assert page.problems == []


# --- bugs found by a first-time user (issue 15) ----------------------------------------------------------


@pytest.fixture(scope="module")
def waiting(server, banked, image):
    """Three copies of the banked photo waiting in the normal lane (reach 0..2)."""
    ids = [upload_via_api(server, image, reach=n) for n in range(3)]
    for media_id in ids:
        assert server.cloud.wait(media_id, timeout=120).status == "SUCCEEDED"
    return ids


def test_the_upload_pages_appeal_id_pattern_is_a_valid_regular_expression(server, page):
    # GIVEN the upload page (bug 1: an unescaped "-" made the pattern invalid under the v flag,
    # so Chromium ignored it and logged a warning)
    warnings = []
    page.on("console", lambda message: "pattern" in message.text.lower() and warnings.append(message.text))
    page.goto(f"{server.url}/upload")
    field = page.get_by_label("Media id")
    # WHEN an id with characters outside the pattern is typed, THEN the field is invalid
    field.fill("not an id!")
    assert field.evaluate("f => f.validity.patternMismatch") is True
    # AND a real id (with - and _) passes
    field.fill("abc-DEF_123")
    assert field.evaluate("f => f.validity.valid") is True
    assert warnings == [] and page.problems == []


def test_a_reviewer_token_on_the_upload_page_is_named_as_such(server, page, image):
    # GIVEN a reviewer's token (valid in the console) on the upload page (bug 6)
    page.goto(f"{server.url}/upload")
    page.get_by_label("Uploader token").fill(token(server, "reviewer"))
    page.get_by_label("Image").set_input_files([{"name": "a.jpg", "mimeType": "image/jpeg", "buffer": image}])
    page.get_by_role("button", name="Upload").click()
    # THEN the page says it is not an uploader's token, not that it is invalid
    sync_api.expect(page.locator("#status")).to_contain_text("review-console tokens cannot upload")


def test_reviewer_sign_in_names_them_and_probes_no_senior_route(server, page):
    # GIVEN a reviewer signing in (bug 6: sign-in used to call /api/appeals and get a 403)
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in(server, page, "reviewer")
    # THEN the header names who is signed in, with the role (feature 6)
    sync_api.expect(page.locator("#whoami")).to_have_text("reviewer-1 (reviewer)")
    assert not any("/api/appeals" in url for url in requested)
    assert any(url.endswith("/api/review/me") for url in requested)
    assert page.problems == []


def test_the_queue_and_the_item_show_what_the_decision_used(server, waiting, page):
    # GIVEN an item in the normal lane whose risk is just under the fast lane's 0.9, and
    # provenance with one marker under two spellings (bug 5)
    media_id = waiting[2]
    items = server.cloud.deps().items
    items.update(media_id, {"provenance": {"ai_generated": True, "ai_markers": [
        {"source": "png", "value": "parameters"}, {"source": "png", "value": "Parameters"}]}})
    sign_in(server, page, "reviewer")
    card = page.locator(f'#queue .task[data-media-id="{media_id}"]')
    sync_api.expect(card).to_contain_text("queued")
    _, task = api(server, "GET", f"/items/{media_id}", "reviewer")
    shown = card.inner_text()
    risk = task["risk"]
    assert f"risk {int(risk * 1000) / 1000:.3f}" in shown  # cut, never rounded up past the lane
    # WHEN it is opened (which claims it)
    card.click()
    sync_api.expect(page.locator("#claim-state")).to_contain_text("Claimed by you")
    # THEN its card says so
    sync_api.expect(card).to_contain_text("claimed by you")
    # AND the uploader is named (pseudonymously), the history is the one scoring used, in whole numbers
    history = page.locator("#history")
    sync_api.expect(history).to_contain_text("pseudonymised")
    sync_api.expect(history).to_contain_text("as scoring saw them")
    import re

    assert not re.search(r"\b\d+\.\d+\b", history.inner_text()), history.inner_text()
    # AND the AI marker is listed once
    markers = page.locator("#provenance dd").nth(
        [t.inner_text() for t in page.locator("#provenance dt").all()].index("AI markers"))
    assert markers.inner_text().lower().count("parameters") == 1
    assert page.problems == []


def test_at_375_px_nothing_overflows(server, waiting, browser):
    # GIVEN a phone-sized window (bug 3: Sign out was cut off, the queue clipped once an item was open)
    context = browser.new_context(viewport={"width": 375, "height": 800}, reduced_motion="reduce")
    page = context.new_page()
    try:
        sign_in(server, page, "senior-reviewer")
        sync_api.expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        # WHEN an item is opened
        page.locator("#queue .task").first.click()
        sync_api.expect(page.locator("#item")).to_be_visible()
        # THEN the page is still no wider than the screen
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate("[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 376)"
                             ".slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)")
        assert width <= 375, (width, wide)
        docs_shot(page, "console-375.png")
    finally:
        context.close()


# --- feature 6: SLA and identity ------------------------------------------------------------------------


def test_sla_counts_down_each_second_and_turns_red_when_overdue(server, waiting, page):
    # GIVEN the browser's clock under the test's control, at the real time
    from datetime import UTC, datetime

    page.clock.install(time=datetime.now(UTC))
    sign_in(server, page, "reviewer")
    card = page.locator(f'#queue .task[data-media-id="{waiting[0]}"]')
    sla = card.locator(".sla")
    # THEN a normal-lane task is due in about a day, counted to the second
    sync_api.expect(sla).to_contain_text("due in 2")
    before = sla.inner_text()
    page.clock.run_for(3000)
    assert sla.inner_text() != before
    assert "overdue" not in (card.get_attribute("class") or "")
    # WHEN the day passes (25 hours on the browser's clock)
    page.clock.fast_forward("25:00:00")
    page.clock.run_for(1500)
    # THEN the countdown says overdue, in the danger colour
    sync_api.expect(sla).to_contain_text("overdue by")
    assert "overdue" in card.get_attribute("class")
    sync_api.expect(sla).to_have_css("color", "rgb(180, 35, 24)")  # --danger


def test_seniors_see_why_a_task_was_escalated(server, banked, image, page):
    # GIVEN an item a reviewer escalated with a reason code and a note
    media_id = upload_via_api(server, image, reach=3)
    assert server.cloud.wait(media_id, timeout=120).status == "SUCCEEDED"
    assert api(server, "POST", f"/review/{media_id}/claim", "reviewer")[0] == 200
    status, body = api(server, "POST", f"/review/{media_id}/decision", "reviewer",
                       {"action": "escalate", "reason_code": "needs_senior", "note": "possible minor"})
    assert status == 200, body
    # WHEN a senior reviewer opens it from the escalated lane
    sign_in(server, page, "senior-reviewer")
    sync_api.expect(page.locator("#whoami")).to_have_text("senior-1 (senior-reviewer)")
    page.locator(f'#queue .lane-escalated .task[data-media-id="{media_id}"]').click()
    # THEN the escalation reason, who escalated and the note are shown
    text = page.locator("#escalation-text")
    sync_api.expect(text).to_contain_text("reviewer:reviewer-1")
    sync_api.expect(text).to_contain_text("needs_senior")
    sync_api.expect(text).to_contain_text("possible minor")
    # AND the audit trail shows the reason and the note, with times to the second
    record = page.locator('#audit-events li[data-event="review_escalated"]')
    sync_api.expect(record).to_contain_text("needs_senior")
    import re

    assert re.search(r"\d{1,2}:\d{2}:\d{2}", record.text_content())
    docs_shot(page, "console-item.png")
    # AND a reviewer's view of an item carries no escalation
    _, view = api(server, "GET", f"/items/{media_id}", "reviewer")
    assert view["escalation"] is None
    assert page.problems == []


def test_an_appeal_against_your_own_decision_is_visibly_not_yours(server, banked, image, page):
    # GIVEN an item senior-1 removed, and the uploader's appeal
    media_id = upload_via_api(server, image, reach=4)
    assert server.cloud.wait(media_id, timeout=120).status == "SUCCEEDED"
    assert api(server, "POST", f"/review/{media_id}/claim", "senior-reviewer")[0] == 200
    assert api(server, "POST", f"/review/{media_id}/decision", "senior-reviewer",
               {"action": "remove", "reason_code": "hash_match_confirmed"})[0] == 200
    assert api(server, "POST", f"/items/{media_id}/appeal", "uploader", {"statement": "mine"})[0] == 201
    # WHEN senior-1 opens the appeals
    sign_in(server, page, "senior-reviewer")
    page.get_by_role("button", name="Appeals").click()
    card = page.locator(f'#appeals [data-appeal-id="ap-{media_id}"]')
    # THEN their own is marked, and cannot be submitted
    sync_api.expect(card).to_have_attribute("data-own", "true")
    sync_api.expect(card).to_contain_text("another senior reviewer must decide it")
    sync_api.expect(card.get_by_role("button", name="Record the decision")).to_be_disabled()
    docs_shot(page, "console-appeals.png")


# --- feature 3: throughput --------------------------------------------------------------------------------


def test_keyboard_only_claim_decide_next(server, banked, image, page):
    # GIVEN two more items waiting
    fresh = [upload_via_api(server, image, reach=5), upload_via_api(server, image, reach=6)]
    for media_id in fresh:
        assert server.cloud.wait(media_id, timeout=120).status == "SUCCEEDED"
    # WHEN a reviewer signs in with the keyboard alone
    page.goto(f"{server.url}/")
    page.get_by_label("Bearer token").focus()
    page.keyboard.type(token(server, "reviewer"))
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#status")).to_contain_text("Signed in")
    # AND presses n: the first task opens, claimed
    page.keyboard.press("n")
    sync_api.expect(page.locator("#claim-state")).to_contain_text("Claimed by you")
    first = page.locator("#item").get_attribute("data-media-id")
    # AND v reveals the media
    page.keyboard.press("v")
    sync_api.expect(page.locator("#media-toggle")).to_have_attribute("aria-pressed", "true")
    # AND r opens the reason picker, h picks hash_match_confirmed, Enter hands back the keys
    page.keyboard.press("r")
    page.keyboard.press("h")
    page.keyboard.press("Enter")
    assert page.locator("#reason").input_value() == "hash_match_confirmed"
    # AND 3 blurs it
    page.keyboard.press("3")
    # THEN it is decided and the next task opens by itself, claimed
    sync_api.expect(page.locator("#status")).to_contain_text(f"Decided {first}: blur")
    sync_api.expect(page.locator("#item")).not_to_have_attribute("data-media-id", first)
    sync_api.expect(page.locator("#claim-state")).to_contain_text("Claimed by you")
    second = page.locator("#item").get_attribute("data-media-id")
    _, view = api(server, "GET", f"/items/{first}", "reviewer")
    assert (view["task"]["state"], view["task"]["decision_action"]) == ("decided", "blur")
    # WHEN they press 5 (remove) and then u within the undo window
    page.keyboard.press("r")
    page.keyboard.press("h")
    page.keyboard.press("Enter")
    page.keyboard.press("5")
    sync_api.expect(page.locator("#undo-bar")).to_be_visible()
    page.keyboard.press("u")
    # THEN nothing was sent: the task is still theirs, undecided
    sync_api.expect(page.locator("#status")).to_contain_text("undone")
    page.wait_for_timeout(5000)
    _, view = api(server, "GET", f"/items/{second}", "reviewer")
    assert view["task"]["state"] == "claimed" and view["action"] != "remove"
    assert page.problems == []


def test_the_queue_updates_itself_and_filters(server, banked, image, page):
    # GIVEN a reviewer looking at the queue
    sign_in(server, page, "reviewer")
    # WHEN a new item reaches review (nobody clicks Refresh)
    media_id = upload_via_api(server, image, reach=7)
    assert server.cloud.wait(media_id, timeout=120).status == "SUCCEEDED"
    # THEN its card appears by itself
    card = page.locator(f'#queue .task[data-media-id="{media_id}"]')
    sync_api.expect(card).to_be_visible(timeout=30_000)
    # AND filtering by the fast lane hides it (a normal-lane item), by its signal keeps it
    page.get_by_label("Lane", exact=True).select_option("fast")
    sync_api.expect(card).to_have_count(0)
    page.get_by_label("Lane", exact=True).select_option("")
    signal = page.locator("#filter-signal option").nth(1).get_attribute("value")
    page.get_by_label("Signal", exact=True).select_option(signal)
    sync_api.expect(card).to_be_visible()
    # AND "overdue only" hides what is not overdue; sorting by SLA keeps soonest first
    page.get_by_label("Overdue only").check()
    sync_api.expect(card).to_have_count(0)
    page.get_by_label("Overdue only").uncheck()
    page.get_by_label("Sort", exact=True).select_option("sla")
    dues = page.locator("#queue .lane-normal .task .sla").all_inner_texts()
    assert dues, dues
    docs_shot(page, "console-queue.png")
    assert page.problems == []


def test_bulk_decision_on_every_queued_match_of_one_banked_entry(server, banked, image, page):
    # GIVEN three queued copies matching the same banked entry
    ids = [upload_via_api(server, image, reach=8 + n) for n in range(3)]
    for media_id in ids:
        assert server.cloud.wait(media_id, timeout=120).status == "SUCCEEDED"
    sign_in(server, page, "reviewer")
    page.locator(f'#queue .task[data-media-id="{ids[0]}"]').click()
    sync_api.expect(page.locator("#claim-state")).to_contain_text("Claimed by you")
    # THEN the decision form offers the other queued matches of the entry
    sync_api.expect(page.locator("#bulk-label")).to_contain_text(f"{BANK}/{ENTRY}")
    page.get_by_label("Reason code").select_option("hash_match_confirmed")
    page.locator("#bulk-all").check()
    # WHEN they limit the item with the box ticked
    page.get_by_role("button", name="Limit").click()
    sync_api.expect(page.locator("#status")).to_contain_text("items in all", timeout=30_000)
    # THEN every one of the three is decided, limited, by them
    for media_id in ids:
        _, view = api(server, "GET", f"/items/{media_id}", "reviewer")
        assert (view["task"]["state"], view["task"]["decision_action"], view["task"]["decided_by"]) == (
            "decided", "limit", "reviewer-1"), media_id
    assert page.problems == []


# --- feature 4: reviewer wellness -------------------------------------------------------------------------


def test_wellness_settings_persist_reblur_and_remind_of_a_break(server, banked, image, page):
    media_id = upload_via_api(server, image, reach=20)
    assert server.cloud.wait(media_id, timeout=120).status == "SUCCEEDED"
    # GIVEN a reviewer who sets a lighter blur, greyscale kept after a reveal, a re-blur
    # after 2 s and a break reminder at every reveal
    sign_in(server, page, "reviewer")
    page.locator("#wellness summary").click()
    page.eval_on_selector("#w-blur", "n => { n.value = '12'; n.dispatchEvent(new Event('change')); }")
    page.get_by_label("Keep greyscale after reveal").check()
    page.get_by_label("Blur again after (s, 0 never)").fill("2")
    page.get_by_label("Break reminder every (reveals, 0 never)").fill("1")
    page.get_by_label("Break reminder every (reveals, 0 never)").dispatch_event("change")
    # WHEN they open an item
    page.locator(f'#queue .task[data-media-id="{media_id}"]').click()
    sync_api.expect(page.locator("#item")).to_have_attribute("data-media-id", media_id)
    img = page.locator("#media-img")
    # THEN the blur is theirs
    assert "blur(12px)" in img.evaluate("i => getComputedStyle(i).filter")
    # WHEN they reveal it
    page.locator("#media-toggle").click()
    # THEN it stays greyscale (no blur), the server counts the reveal, a break is suggested
    sync_api.expect(page.locator("#media-toggle")).to_have_attribute("aria-pressed", "true")
    shown = img.evaluate("i => getComputedStyle(i).filter")
    assert "grayscale(1)" in shown and "blur(0px)" in shown, shown
    sync_api.expect(page.locator("#break-reminder")).to_be_visible()
    _, me = api(server, "GET", "/review/me", "reviewer")
    sync_api.expect(page.locator("#exposures")).to_contain_text(f"{me['exposures_today']} reveal")
    sync_api.expect(page.locator("#break-text")).to_contain_text(f"revealed {me['exposures_today']} items today")
    # AND 2 s later it is blurred again by itself
    sync_api.expect(page.locator("#media-toggle")).to_have_attribute("aria-pressed", "false", timeout=5000)
    sync_api.expect(page.locator("#media-state")).to_contain_text("Blurred again automatically")
    # AND the settings survive a reload, for this reviewer
    page.reload()
    sync_api.expect(page.locator("#whoami")).to_have_text("reviewer-1 (reviewer)")
    assert page.locator("#w-blur").input_value() == "12"
    assert page.locator("#w-reveal-grey").is_checked()
    assert page.problems == []


# --- feature 2: finding past work -------------------------------------------------------------------------


def test_finding_past_work_by_hash_action_day_and_item_url(server, banked, image, page):
    # GIVEN an item a reviewer limited today, with a note
    media_id = upload_via_api(server, image, reach=30)
    assert server.cloud.wait(media_id, timeout=120).status == "SUCCEEDED"
    assert api(server, "POST", f"/review/{media_id}/claim", "reviewer")[0] == 200
    assert api(server, "POST", f"/review/{media_id}/decision", "reviewer",
               {"action": "limit", "reason_code": "hash_match_confirmed", "note": "same as case 42"})[0] == 200
    sha = server.cloud.item(media_id)["sha256"]
    # WHEN a reviewer searches by the original's hash and the action in force
    sign_in(server, page, "reviewer")
    page.get_by_role("button", name="Find").click()
    page.get_by_label("Hash (SHA-256 or PDQ hex)").fill(sha)
    page.get_by_label("Action in force").select_option("limit")
    page.get_by_role("button", name="Search").click()
    # THEN the item is found, with its decision, and the answer says how it was searched
    row = page.locator(f'#search-results tr[data-media-id="{media_id}"]')
    sync_api.expect(row).to_contain_text("limit (hash_match_confirmed) by reviewer-1")
    sync_api.expect(page.locator("#search-note")).to_contain_text("Searched")
    # AND today's decisions list it (one Query on the day's chain)
    sync_api.expect(page.locator(f'#decided-list tr[data-media-id="{media_id}"]')).to_be_visible()
    # AND by media id it is found with one read
    page.get_by_label("Hash (SHA-256 or PDQ hex)").fill("")
    page.get_by_label("Action in force").select_option("")
    page.get_by_label("Media id").fill(media_id)
    page.get_by_role("button", name="Search").click()
    sync_api.expect(page.locator("#search-note")).to_contain_text("Found by id")
    docs_shot(page, "console-find.png")
    # WHEN they follow its link
    row.get_by_role("link").click()
    # THEN the item's own URL opens it, and its trail shows reason, note, actor and time to the second
    sync_api.expect(page).to_have_url(f"{server.url}/#item/{media_id}")
    sync_api.expect(page.locator("#item")).to_have_attribute("data-media-id", media_id)
    record = page.locator('#audit-events li[data-event="review_decided"]')
    text = record.text_content()
    import re

    assert "hash_match_confirmed" in text and "same as case 42" in text and "reviewer:reviewer-1" in text
    assert re.search(r"\d{1,2}:\d{2}:\d{2}", text), text
    # WHEN they go back to Find and follow the same link to the item already open (no
    # hashchange fires for the URL already shown)
    page.get_by_role("button", name="Find").click()
    row.get_by_role("link").click()
    # THEN the item is brought back into view all the same
    sync_api.expect(page.locator("#queue-view")).to_be_visible()
    sync_api.expect(page.locator("#item")).to_have_attribute("data-media-id", media_id)
    # AND the URL works from a fresh tab (after sign-in)
    fresh = page.context.new_page()
    fresh.goto(f"{server.url}/#item/{media_id}")
    fresh.get_by_label("Bearer token").fill(token(server, "reviewer"))
    fresh.get_by_role("button", name="Sign in").click()
    sync_api.expect(fresh.locator("#item")).to_have_attribute("data-media-id", media_id)
    assert page.problems == []


# --- feature 5 (part): video and audio ----------------------------------------------------------------------


def test_a_video_plays_blurred_under_its_poster_until_revealed(server, page, tmp_path):
    import subprocess

    # GIVEN a 2-second video with a sound track, uploaded and through the pipeline
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "2", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(clip)],
                   check=True, timeout=60)
    media_id = upload_via_api(server, clip.read_bytes(), content_type="video/mp4")
    assert server.cloud.wait(media_id, timeout=180).status == "SUCCEEDED"
    # WHEN a reviewer opens it by its URL
    page.goto(f"{server.url}/#item/{media_id}")
    page.get_by_label("Bearer token").fill(token(server, "reviewer"))
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.locator("#item")).to_have_attribute("data-media-id", media_id)
    # THEN the sanitized video is there, with its poster, blurred and greyscale, and it loads
    video = page.locator("#media-video")
    sync_api.expect(video).to_be_visible()
    assert video.get_attribute("poster")
    assert "blur" in video.evaluate("v => getComputedStyle(v).filter")
    page.wait_for_function("() => document.getElementById('media-video').readyState >= 1", timeout=30_000)
    assert 1.5 <= video.evaluate("v => v.duration") <= 2.5
    sync_api.expect(page.locator("#media-kind")).to_contain_text("frames analysed")
    sync_api.expect(page.locator("#media-kind")).to_contain_text("audio: aac")
    # WHEN they reveal it THEN it plays unblurred
    page.locator("#media-toggle").click()
    assert "blur(0px)" in video.evaluate("v => getComputedStyle(v).filter")
    assert page.problems == []


# --- found by a stranger's read of the console (after issue 16) ----------------------------------------------


def test_two_quick_opens_show_the_later_item_whatever_order_the_answers_come_in(server, banked, image, page):
    import time

    # GIVEN two items, and a reviewer whose answer for the first one will come late
    first, second = upload_via_api(server, image, reach=30), upload_via_api(server, image, reach=31)
    for media_id in (first, second):
        assert server.cloud.wait(media_id, timeout=120).status == "SUCCEEDED"
    sign_in(server, page, "reviewer")

    def late(route):
        time.sleep(3.0)  # the second item opens and renders meanwhile
        route.continue_()

    page.route(f"**/api/items/{first}", late)
    # WHEN they open the first item and, before it arrives, the second
    with page.expect_response(lambda response: response.url.endswith(f"/api/items/{first}")):
        page.evaluate("([a, b]) => { location.hash = `#item/${a}`;"
                      " setTimeout(() => { location.hash = `#item/${b}`; }, 300); }", [first, second])
    page.wait_for_timeout(500)  # the late answer has been handed to the page
    # THEN the item on screen is the second, the one the decision buttons act on
    sync_api.expect(page.locator("#item")).to_have_attribute("data-media-id", second)
    assert page.evaluate("() => location.hash") == f"#item/{second}"
    assert page.problems == []


def test_an_audio_items_first_play_is_recorded_as_a_look(server, page, tmp_path):
    import subprocess

    # GIVEN a 3-second audio upload through the pipeline
    clip = tmp_path / "tone.m4a"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
                    "-c:a", "aac", str(clip)], check=True, timeout=60)
    media_id = upload_via_api(server, clip.read_bytes(), content_type="audio/mp4")
    assert server.cloud.wait(media_id, timeout=180).status == "SUCCEEDED"
    # WHEN a reviewer opens it (a player, nothing to blur) and plays it, twice
    page.goto(f"{server.url}/#item/{media_id}")
    page.get_by_label("Bearer token").fill(token(server, "reviewer"))
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.locator("#media-audio")).to_be_visible()
    for _ in range(2):  # (a play event, as the player's own button sends; headless has no sound card)
        page.locator("#media-audio").evaluate("a => a.dispatchEvent(new Event('play'))")
    # THEN the first play is recorded as a look by this reviewer, once, and counted
    sync_api.expect(page.locator("#exposures")).to_contain_text("reveal")
    page.wait_for_timeout(500)
    looks = [r for r in server.cloud.deps().items.audit_chain(media_id) if r.event == "media_revealed"]
    assert [r.actor for r in looks] == ["reviewer:reviewer-1"]
    assert page.problems == []


def test_every_lane_badge_has_a_background_so_its_white_text_shows(server, page):
    # GIVEN the console's stylesheet, and a badge for each lane a task can be in
    sign_in(server, page, "reviewer")
    colours = page.evaluate("""() => ['fast', 'normal', 'escalated', 'qa'].map((lane) => {
        const badge = document.createElement('span');
        badge.className = `badge badge-${lane}`;
        document.body.append(badge);
        const colour = getComputedStyle(badge).backgroundColor;
        badge.remove();
        return colour;
    })""")
    # THEN none is transparent (the qa lane's was: white text on the white card)
    assert all(c not in ("rgba(0, 0, 0, 0)", "transparent") for c in colours), colours
