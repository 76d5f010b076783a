"""The upload page on the JS client, in headless Debian chromium against ``mediaguard serve``:
the client-side hash and what was stripped are shown, the progress bar fills, the outcome
of each upload comes back; a block-bank hit is refused before any byte is sent; and the
hashing time of a 12 MP JPEG in the browser (issue 17).
"""

from __future__ import annotations

import base64
import io
import shutil
import threading
from pathlib import Path

import pytest
from PIL import Image

from mediaguard.signals.base import hamming
from tests.conftest import exif_with_gps, jpeg_bytes, photo

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed: run scripts/setup-browser.sh", allow_module_level=True)


@pytest.fixture(scope="module")
def server():
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
def blocked(server) -> bytes:
    """A photo a block bank holds, created before any upload loads the matcher."""
    from mediaguard.adapters.banks import dynamo_bank_service
    from mediaguard.analysis.banks.model import NewEntry
    from mediaguard.ingress.ingest import prepare
    from mediaguard.settings import Settings

    data = jpeg_bytes(photo("chelsea"))
    fp = prepare(data, "image/jpeg", Settings(), forensics=False).fingerprints
    banks = dynamo_bank_service(server.cloud.deps().settings)
    banks.create_bank("page-blocklist", "block", actor="test")
    banks.add_entries("page-blocklist", [NewEntry(ref="case-9", signal="pdq", value=fp.pdq, quality=fp.pdq_quality)],
                      actor="test")
    # And a flag bank that sends another photo to people (its configured action is review),
    # also before any upload loads the matcher: the uploader view's test has it removed.
    flagged = prepare(jpeg_bytes(photo("coffee")), "image/jpeg", Settings(), forensics=False).fingerprints
    banks.create_bank("page-watchlist", "flag", action="review", actor="test")
    banks.add_entries("page-watchlist", [NewEntry(ref="case-10", signal="pdq", value=flagged.pdq,
                                                  quality=flagged.pdq_quality)], actor="test")
    return data


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.on("console", lambda message: "Content Security Policy" in message.text and page.problems.append(message.text))
    yield page
    context.close()


def uploader(server) -> str:
    return next(u.token for u in server.users if not u.roles)


def open_page(server, page) -> None:
    page.goto(f"{server.url}/upload")
    sync_api.expect(page.locator("body[data-ready=true]")).to_have_count(1)
    page.get_by_label("Uploader token").fill(uploader(server))


def fact(card, term: str) -> str:
    return card.locator(f"dt:text-is('{term}') + dd").inner_text()


def test_the_page_hashes_strips_uploads_and_shows_the_outcome(server, blocked, page):
    from mediaguard.ingress.ingest import prepare
    from mediaguard.settings import Settings

    # GIVEN a JPEG with GPS in its EXIF
    data = jpeg_bytes(photo("astronaut"), exif=exif_with_gps(), comment=b"home")
    server_pdq = prepare(data, "image/jpeg", Settings(), forensics=False).fingerprints.pdq
    # WHEN it is uploaded through the page
    open_page(server, page)
    page.get_by_label("Images").set_input_files([{"name": "holiday.jpg", "mimeType": "image/jpeg", "buffer": data}])
    page.get_by_role("button", name="Upload").click()
    card = page.locator("#uploads article[data-file='holiday.jpg']")
    sync_api.expect(card).to_have_attribute("data-outcome", "done", timeout=90_000)
    # THEN the card shows the client's PDQ (the server's within a few bits), what was
    # stripped, a full progress bar and the decision
    client_pdq = fact(card, "Client PDQ")
    assert hamming(client_pdq, server_pdq) <= 4, (client_pdq, server_pdq)
    assert "exif" in fact(card, "Stripped") and "comment" in fact(card, "Stripped")
    assert card.locator("progress").evaluate("p => p.value") == 1
    assert fact(card, "Status").startswith("Decided:")
    # AND the original the server stored has no EXIF
    media_id = card.get_attribute("data-media-id")
    stored = server.cloud.client("s3").get_object(Bucket=server.cloud.upload_bucket,
                                                  Key=f"uploads/{media_id}")["Body"].read()
    with Image.open(io.BytesIO(stored)) as img:
        assert not img.getexif()
    assert b"TestCam" not in stored
    assert not page.problems, page.problems


def test_a_blocked_picture_is_refused_on_the_page_before_any_byte_is_sent(server, blocked, page):
    # GIVEN a picture a block bank holds
    posts_before = server.request_log_text().count("POST /s3/")
    open_page(server, page)
    page.get_by_label("Images").set_input_files([{"name": "cat.jpg", "mimeType": "image/jpeg", "buffer": blocked}])
    # WHEN it is submitted
    page.get_by_role("button", name="Upload").click()
    card = page.locator("#uploads article[data-file='cat.jpg']")
    # THEN the page says it cannot be uploaded, names no bank, and storage saw no POST
    sync_api.expect(card).to_have_attribute("data-outcome", "refused", timeout=60_000)
    assert "cannot be uploaded" in fact(card, "Status")
    assert "page-blocklist" not in card.inner_text() and "case-9" not in card.inner_text()
    assert server.request_log_text().count("POST /s3/") == posts_before
    assert not page.problems, page.problems


def test_hashing_a_12_megapixel_jpeg_in_chromium(server, page, capsys):
    from mediaguard.ingress.ingest import prepare
    from mediaguard.settings import Settings

    # GIVEN a 4000x3000 JPEG (a photo upscaled to a phone camera's size)
    data = jpeg_bytes(photo("coffee").resize((4000, 3000), Image.Resampling.BICUBIC))
    server_pdq = prepare(data, "image/jpeg", Settings(), forensics=False).fingerprints.pdq
    page.goto(f"{server.url}/upload")
    # WHEN the page decodes it (createImageBitmap + canvas) and hashes it with the client, twice
    timings = page.evaluate("""async (b64) => {
        const client = await import('/client/index.js');
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const runs = [];
        for (let i = 0; i < 2; i++) {
          let t = performance.now();
          const px = await client.decodeInBrowser(bytes, 'image/jpeg');
          const decode = performance.now() - t;
          t = performance.now();
          const full = client.pdqHash(px.rgba, px.width, px.height);
          const pdqFull = performance.now() - t;
          t = performance.now();
          const fp = client.fingerprint(px.rgba, px.width, px.height, 'image/jpeg');
          const fingerprint = performance.now() - t;
          runs.push({decode, pdqFull, fingerprint, pdq: fp.pdq, width: px.width, height: px.height});
        }
        return runs;
    }""", base64.b64encode(data).decode())
    last = timings[-1]
    with capsys.disabled():
        print(f"\nChromium, 12 MP JPEG: decode {last['decode']:.0f} ms, PDQ at full size {last['pdqFull']:.0f} ms, "
              f"fingerprint as the server scales it (PDQ + pHash) {last['fingerprint']:.0f} ms")
    # THEN the whole picture was decoded and its hash agrees with the server's
    assert (last["width"], last["height"]) == (4000, 3000)
    assert hamming(last["pdq"], server_pdq) <= 4


def test_the_uploader_sees_their_uploads_outcomes_and_appeals_from_the_list(server, blocked, page):
    import requests

    def api(method: str, path: str, role: str, body: dict | None = None):
        tok = next(u.token for u in server.users if role in u.roles)
        return requests.request(method, f"{server.url}/api{path}", json=body, timeout=30,
                                headers={"Authorization": f"Bearer {tok}"})

    # GIVEN a photo uploaded through the page that a flag bank sends to people, and a reviewer who removes it
    open_page(server, page)
    page.get_by_label("Images").set_input_files([{"name": "cup.jpg", "mimeType": "image/jpeg",
                                                  "buffer": jpeg_bytes(photo("coffee"))}])
    page.get_by_role("button", name="Upload").click()
    card = page.locator("#uploads article[data-file='cup.jpg']")
    sync_api.expect(card).to_have_attribute("data-outcome", "done", timeout=90_000)
    media_id = card.get_attribute("data-media-id")
    assert api("POST", f"/review/{media_id}/claim", "reviewer").status_code == 200
    decided = api("POST", f"/review/{media_id}/decision", "reviewer",
                  {"action": "remove", "reason_code": "hash_match_confirmed"})
    assert decided.status_code == 200, decided.text
    # WHEN the uploader lists their uploads on the page (a fresh page: nothing remembered)
    open_page(server, page)
    page.get_by_role("button", name="Show the list").click()
    # THEN every upload of theirs is listed, newest first, with where it stands
    rows = page.locator("#mine tbody tr[data-media-id]")
    sync_api.expect(rows.first).to_have_attribute("data-media-id", media_id)
    listed = rows.evaluate_all("rs => rs.map(r => r.dataset.mediaId)")
    assert len(listed) >= 2 and media_id in listed
    row = page.locator(f"#mine tr[data-media-id='{media_id}']")
    sync_api.expect(row).to_contain_text("remove")
    # AND only the removed one offers an appeal; appealing from the list opens one
    assert page.locator("#mine tbody button", has_text="Appeal").count() == 1
    row.get_by_role("button", name="Appeal").click()
    sync_api.expect(page.get_by_label("Media id")).to_have_value(media_id)
    page.get_by_label("Why the decision is wrong").fill("This is my own photo of my coffee.")
    page.get_by_role("button", name="Send the appeal").click()
    sync_api.expect(page.locator("#status")).to_contain_text("is open")
    sync_api.expect(row).to_contain_text("appealed (ap-")
    # AND the list is the caller's own: a reviewer's token gets no uploads list of the uploader's
    other = requests.get(f"{server.url}/api/v1/uploads", timeout=30,
                         headers={"Authorization": f"Bearer {next(u.token for u in server.users if u.roles)}"})
    assert other.status_code == 401
    assert not page.problems, page.problems


def test_at_375_px_the_uploader_view_does_not_overflow(server, blocked, browser):
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    try:
        open_page(server, page)
        page.get_by_role("button", name="Show the list").click()
        sync_api.expect(page.locator("#mine tbody tr").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        context.close()
