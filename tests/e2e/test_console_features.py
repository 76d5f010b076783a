"""The console's later features end to end (issue 15 features 1, 5 and 8), on their own
``mediaguard serve`` stack: banks (create, add images hashed in the browser, import a CSV,
confirm, withdraw, add an item to a bank, a match's entry beside the upload), a video's
frames strip, and the operators' page. Same fixtures and needs as test_console.py.
"""

from __future__ import annotations

import subprocess
import time

import pytest
import requests

from mediaguard.analysis.matching import DELTA_SECONDS
from tests.conftest import jpeg_bytes, photo
from tests.e2e import test_console as base
from tests.e2e.test_console import VIEWPORT, api, docs_shot, sign_in, sync_api, token

# The same fixtures; pytest makes this module its own serve stack (module scope).
server, browser, page = base.server, base.browser, base.page
expect = sync_api.expect


def test_the_bank_admin_routes_are_an_admins_and_name_a_missing_bank(server):
    # GIVEN a reviewer and an admin
    # WHEN the reviewer tries to create a bank, THEN 403 before the body is even read
    assert api(server, "POST", "/admin/banks", "reviewer", {"nonsense": 1})[0] == 403
    # AND an admin's request for a missing bank's entries is a 404 in the one error format
    status, body = api(server, "GET", "/admin/banks/nope/entries", "admin")
    assert (status, body["reason"]) == (404, "bank_not_found")
    # AND a malformed CSV writes nothing and says which row
    assert api(server, "POST", "/admin/banks", "admin", {"name": "csvcheck", "kind": "flag"})[0] == 201
    status, body = api(server, "POST", "/admin/banks/csvcheck/csv", "admin", {"csv": "pdq_hash\nnot-hex\n"})
    assert status == 400 and "row" in body["message"]
    assert api(server, "GET", "/admin/banks/csvcheck/entries", "admin")[1]["counts"] == {"active": 0, "withdrawn": 0}


def test_an_admin_creates_fills_confirms_and_withdraws_a_bank(server, page, tmp_path):
    from mediaguard.ingress.ingest import prepare
    from mediaguard.settings import Settings

    picture = jpeg_bytes(photo("coffee"))
    server_pdq = prepare(picture, "image/jpeg", Settings()).fingerprints.pdq
    # GIVEN an admin in the console
    sign_in(server, page, "admin")
    page.locator("#tab-banks").click()
    # WHEN they create a flag bank
    page.get_by_label("Name").fill("console-flags")
    page.get_by_label("Kind").select_option("flag")
    page.get_by_label("Action on a match").select_option("review")
    page.get_by_role("button", name="Create bank").click()
    expect(page.locator("#banks-list tr[data-bank='console-flags']")).to_have_count(1)
    expect(page.locator("#bank-entries-title")).to_have_text("Entries of console-flags")
    # AND add a picture, hashed in the browser
    page.get_by_label("Images to bank").set_input_files([{"name": "case.jpg", "mimeType": "image/jpeg",
                                                          "buffer": picture}])
    page.get_by_role("button", name="Hash and add").click()
    expect(page.locator("#bank-entries tbody tr[data-status='active']")).to_have_count(1)
    # THEN only the hash went to the server, and it is the PDQ the pipeline computes
    entries = api(server, "GET", "/admin/banks/console-flags/entries", "admin")[1]["items"]
    assert [(e["pdq"], e["source"]) for e in entries] == [(server_pdq, "console")]
    assert entries[0]["ref"].startswith("img-") and "case" not in entries[0]["ref"]
    # WHEN they import a CSV of one more hash
    csv = tmp_path / "shared.csv"
    csv.write_text("pdq_hash,quality,ref\n" + "f" * 64 + ",90,partner-7\n")
    page.get_by_label("PDQ CSV").set_input_files(str(csv))
    page.get_by_role("button", name="Import CSV").click()
    expect(page.locator("#bank-counts")).to_have_text("2 active, 0 withdrawn")
    # AND confirm the picture's entry and withdraw the CSV's
    page.locator(f"#bank-entries tr[data-ref='{entries[0]['ref']}']").get_by_role("button", name="Confirm").click()
    expect(page.locator(f"#bank-entries tr[data-ref='{entries[0]['ref']}']")).to_contain_text("admin:")
    page.locator("#bank-entries tr[data-ref='partner-7']").get_by_role("button", name="Withdraw").click()
    expect(page.locator("#bank-counts")).to_have_text("1 active, 1 withdrawn")
    expect(page.locator("#bank-entries tr[data-ref='partner-7']")).to_contain_text("withdrawn by admin:")
    # THEN the bank's audit chain says who did each (the function's role may write bank:* chains)
    records = server.cloud.deps().items.audit_chain("bank:console-flags")
    assert [r.event for r in records] == ["bank_created", "entries_added", "entries_added", "entries_confirmed",
                                          "entries_withdrawn"]
    assert {r.actor for r in records} == {f"admin:{next(u.sub for u in server.users if 'admin' in u.roles)}"}
    docs_shot(page, "console-banks.png")
    assert not page.problems, page.problems


def video_clip(tmp_path, seconds: int = 4) -> bytes:
    """A moving test pattern with a keyframe each second (-g 10 at 10 fps): the frames stage
    takes the keyframes, so the strip has one frame a second."""
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10",
                    "-t", str(seconds), "-g", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart",
                    str(clip)], check=True, timeout=60)
    return clip.read_bytes()


def upload(server, data: bytes, content_type: str) -> str:
    status, grant = api(server, "POST", "/v1/uploads", "uploader",
                        {"content_type": content_type, "content_length": len(data)})
    assert status == 201, grant
    stored = requests.post(grant["upload"]["url"], data=grant["upload"]["fields"],
                           files={"file": ("upload", data, content_type)}, timeout=30)
    assert stored.status_code == 204, stored.text
    assert server.cloud.wait(grant["media_id"], timeout=180).status == "SUCCEEDED"
    return grant["media_id"]


@pytest.fixture(scope="module")
def rebanked(server, browser, tmp_path_factory):
    """A photo and a video the platform holds, each added to a bank by an admin in the
    console ("add to bank"), then a copy of each uploaded again: the copies match."""
    picture, clip = jpeg_bytes(photo("chelsea")), video_clip(tmp_path_factory.mktemp("video"))
    first_photo, first_video = upload(server, picture, "image/jpeg"), upload(server, clip, "video/mp4")
    for name in ("held", "held-videos"):
        assert api(server, "POST", "/admin/banks", "admin", {"name": name, "kind": "flag", "action": "review"})[0] == 201
    context = browser.new_context(viewport=VIEWPORT, reduced_motion="reduce")
    page = context.new_page()
    sign_in(server, page, "admin")
    for media_id, bank, added in ((first_photo, "held", "1 added"), (first_video, "held-videos", "added")):
        page.goto(f"{server.url}/#item/{media_id}")
        expect(page.locator("#item")).to_have_attribute("data-media-id", media_id)
        page.get_by_label("Add this item to a bank").select_option(bank)
        page.get_by_role("button", name="Add to bank").click()
        expect(page.locator("#status")).to_contain_text(f"Banked {media_id} in {bank}: ")
        expect(page.locator("#status")).to_contain_text(added)
    context.close()
    # The matchers see bank changes within DELTA_SECONDS (30 s; the first uploads started the period).
    time.sleep(DELTA_SECONDS + 1)
    return {"photo": (first_photo, upload(server, picture, "image/jpeg")),
            "video": (first_video, upload(server, clip, "video/mp4"))}


def test_add_to_bank_from_an_item_then_a_match_shows_the_banked_item_beside_it_blurred(server, rebanked, page):
    first, second = rebanked["photo"]
    # WHEN an admin opens the copy of an item they banked
    sign_in(server, page, "admin")
    page.goto(f"{server.url}/#item/{second}")
    # THEN the item shows the matched entry beside the upload: its facts and the banked
    # item's sanitized copy, blurred until revealed
    card = page.locator(f"#match-side .match-card[data-bank='held'][data-ref='{first}']")
    expect(card).to_have_count(1)
    expect(card).to_contain_text(f"item {first}")
    expect(card).to_contain_text("not confirmed")
    banked = card.locator("figure.media")
    expect(banked).to_have_attribute("data-revealed", "false")
    expect(banked.locator("img")).to_have_js_property("complete", True)
    assert banked.locator("img").evaluate("i => getComputedStyle(i).filter").startswith("blur(")
    expect(banked.locator(".media-cue")).to_be_visible()  # it says how to look
    card.scroll_into_view_if_needed()
    docs_shot(page, "console-match-side.png")
    banked.get_by_role("button").click()
    expect(banked).to_have_attribute("data-revealed", "true")
    expect(banked.locator(".media-cue")).to_be_hidden()
    # AND the look at the banked copy is recorded on that item's chain, by this admin
    page.wait_for_timeout(500)
    revealed = [r for r in server.cloud.deps().items.audit_chain(first) if r.event == "media_revealed"]
    assert revealed and revealed[-1].actor.endswith("admin-1")
    assert not page.problems, page.problems



def test_a_banked_video_beside_its_copy_shows_its_poster_and_plays_blurred(server, rebanked, page):
    first, second = rebanked["video"]
    # WHEN an admin opens the copy of a video they banked
    sign_in(server, page, "admin")
    page.goto(f"{server.url}/#item/{second}")
    # THEN the banked video is shown as a video (it was an <img> of an MP4 before): its poster
    # frame in the reveal frame and the video below, both blurred until revealed
    banked = page.locator(f"#match-side .match-card[data-bank='held-videos'][data-ref='{first}'] figure.media")
    expect(banked).to_have_attribute("data-kind", "video")
    expect(banked.locator("img")).to_have_js_property("complete", True)
    assert banked.locator("img").evaluate("i => i.naturalWidth") > 0  # the poster is a picture
    video = banked.locator("video.media-play")
    expect(video).to_have_count(1)
    assert video.evaluate("v => getComputedStyle(v).filter").startswith("blur(")
    # AND revealing it unblurs both and is recorded on the banked item's chain
    banked.get_by_role("button").click()
    assert video.evaluate("v => getComputedStyle(v).filter") in ("none", "blur(0px) grayscale(0)",
                                                                 "blur(0px) grayscale(0%)")
    page.wait_for_timeout(500)
    assert any(r.event == "media_revealed" for r in server.cloud.deps().items.audit_chain(first))
    assert not page.problems, page.problems

def test_a_videos_frames_strip_marks_the_frame_that_matched(server, rebanked, page):
    first, second = rebanked["video"]
    view = api(server, "GET", f"/items/{second}", "reviewer")[1]
    (match,) = [m for m in view["matches"] if m["bank"] == "held-videos"]
    assert match["signal"] == "vpdq" and isinstance(match["frame"], int)
    # WHEN a reviewer opens the copy
    sign_in(server, page, "reviewer")
    page.goto(f"{server.url}/#item/{second}")
    expect(page.locator("#item")).to_have_attribute("data-media-id", second)
    # THEN the strip shows every analysed frame, drawn from the video, blurred until revealed
    strip = page.locator("#frames-strip figure")
    expect(strip).to_have_count(len(view["frames"]["t"]))
    expect(page.locator("#frames-strip canvas[data-drawn='true']")).to_have_count(len(view["frames"]["t"]),
                                                                              timeout=30_000)
    canvas = page.locator("#frames-strip canvas").first
    assert canvas.evaluate("c => getComputedStyle(c).filter").startswith("blur(")
    # AND the matching frame is marked with what it matched
    marked = page.locator(f"#frames-strip figure[data-frame='{match['frame']}']")
    expect(marked).to_contain_text(f"vpdq match held-videos/{first}")
    # AND so is the frame behind each classifier score that added to the risk
    driving = {n for n, s in view["signal_frames"].items()
               if any(sig["name"] == f"classifier.{n}" and sig["contribution"] > 0 for sig in view["signals"])}
    assert driving, view["signals"]
    for name in driving:
        expect(page.locator(f"#frames-strip figure[data-frame='{view['signal_frames'][name]}']")).to_contain_text(name)
    # AND the drawn frames are the video's, not blank canvases
    assert canvas.evaluate("c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                           " let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s; }") > 0
    page.locator("#frames-section").scroll_into_view_if_needed()
    docs_shot(page, "console-frames.png")
    page.locator("#media-toggle").click()
    assert canvas.evaluate("c => getComputedStyle(c).filter") in ("none", "blur(0px) grayscale(0)",
                                                                  "blur(0px) grayscale(0%)")
    assert not page.problems, page.problems


def test_the_bank_routes_reach_their_own_function(server):
    # GIVEN mediaguard serve, routing like API Gateway routes the template's events
    from mediaguard.local.serve import is_bank_admin

    assert is_bank_admin("POST", "/admin/banks") and is_bank_admin("GET", "/admin/banks/x/entries")
    assert not is_bank_admin("GET", "/admin/banks")
    # THEN listing stays on the review API (an uploader is refused there, not by the bank function)
    response = requests.get(f"{server.url}/api/admin/banks", timeout=30,
                            headers={"Authorization": f"Bearer {token(server, 'reviewer')}"})
    assert response.status_code == 403


def test_the_operators_page_draws_the_report_as_charts_and_lists_the_metrics(server, rebanked, page):
    # GIVEN the transparency report of the last 30 days, as the API gives it
    report = api(server, "GET", "/admin/report", "admin")[1]
    assert report["volumes"]["uploads"] >= 4
    # WHEN an admin opens the operators' page
    sign_in(server, page, "admin")
    page.get_by_role("button", name="Operations").click()
    expect(page.locator("#status")).to_have_text("Report loaded.")
    # (the "To" day is included: the API's exclusive bound is the next day, across a year end too)
    assert page.evaluate("() => import('./operators.js').then((m) => [m.nextDay('2026-12-31'), m.nextDay('2028-02-28')])") \
        == ["2027-01-01", "2028-02-29"]
    # THEN each volume is a bar whose length follows its count, its number written beside it
    chart = page.locator("figure.chart[data-chart='Uploads by media type']")
    bars = chart.locator("rect.bar-fill")
    expect(bars).to_have_count(len(report["volumes"]["by_media_type"]))
    drawn = {int(float(b.get_attribute("data-value"))): float(b.get_attribute("width")) for b in bars.all()}
    counts = report["volumes"]["by_media_type"]
    assert set(drawn) == set(counts.values())
    assert max(drawn, key=drawn.get) == max(counts.values())
    expect(chart).to_contain_text("image")
    expect(page.locator("#ops-period-text")).to_contain_text("precision by audit")
    # AND the metrics the stack emits are listed with their dimensions
    expect(page.locator("#ops-metrics tbody tr")).to_have_count(20)
    expect(page.locator("#ops-metrics")).to_contain_text("ReviewQueueOldestAge")
    docs_shot(page, "console-operations.png")
    # (the charts are SVG built with DOM calls: no inline style or script, which the CSP would report)
    assert not page.problems, page.problems


def test_at_375_px_the_new_views_do_not_overflow(server, rebanked, browser):
    # GIVEN a phone-sized window and an admin
    context = browser.new_context(viewport={"width": 375, "height": 800}, reduced_motion="reduce")
    page = context.new_page()
    try:
        sign_in(server, page, "admin")

        def fits(where: str) -> None:
            width = page.evaluate("document.documentElement.scrollWidth")
            wide = page.evaluate("[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect()"
                                 ".right > 376).slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)")
            assert width <= 375, (where, width, wide)

        # WHEN they open the banks with a bank's entries, the operators' page, an item with a
        # banked entry beside it, and a video's frames strip THEN nothing is wider than the screen
        page.get_by_role("button", name="Banks").click()
        page.locator("#banks-list tr[data-bank='held'] button").click()
        expect(page.locator("#bank-entries tbody tr")).to_have_count(1)
        fits("banks")
        page.get_by_role("button", name="Operations").click()
        expect(page.locator("figure.chart").first).to_be_visible()
        fits("operations")
        page.goto(f"{server.url}/#item/{rebanked['photo'][1]}")
        expect(page.locator("#match-side .match-card")).to_have_count(1)
        fits("match beside the upload")
        page.goto(f"{server.url}/#item/{rebanked['video'][1]}")
        expect(page.locator("#frames-strip figure").first).to_be_visible()
        fits("frames strip")
    finally:
        context.close()


def test_a_live_segments_item_shows_its_streams_state_and_the_segment_that_restricted_it(server, page):
    from mediaguard.adapters.live import DynamoStreamStore
    from mediaguard.decisions.live import Stream
    from mediaguard.ports import StreamRecord
    from mediaguard.stages.segment import segment_media_id

    # GIVEN a stream its segment 3 restricted, and an item that is one of its segments
    store = DynamoStreamStore(server.cloud.deps().settings)
    assert store.put(StreamRecord(Stream("e2e0stream02", "restricted", overlays=("blur",), segments=5,
                                         severity="remove", cause_segment=3),
                                  "arn:aws:ivs:us-east-1:123456789012:channel/e2eChannel"))
    media_id = upload(server, jpeg_bytes(photo("astronaut")), "image/jpeg")
    server.cloud.deps().items.update(media_id, {"stream_id": "e2e0stream02"})
    # WHEN a reviewer opens the item
    sign_in(server, page, "reviewer")
    page.goto(f"{server.url}/#item/{media_id}")
    # THEN it says where the stream stands now and links the segment that restricted it
    facts = page.locator("#stream-facts")
    expect(facts).to_contain_text("Live stream e2e0stream02: restricted (overlays: blur)")
    expect(facts).to_contain_text("Restricted by segment #3")
    cause = segment_media_id("e2e0stream02", 3)
    expect(facts.get_by_role("link", name=cause)).to_have_attribute("href", f"#item/{cause}")
    assert not page.problems, page.problems
