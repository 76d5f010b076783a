"""Decision events, the webhook signature scheme, and delivery to a real local HTTP receiver."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError

from mediaguard.adapters.enforcement import WebhookDeliveryError, WebhookSink
from mediaguard.decisions.events import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    DecisionEvent,
    WebhookSignatureError,
    parse_webhook,
    sign,
    verify_signature,
)

SECRET = "whsec_test_0123456789abcdef0123456789abcdef"
OTHER = "whsec_other_fedcba9876543210fedcba9876543210"
NOW = 1_700_000_000


def event(**overrides) -> DecisionEvent:
    fields = dict(decision_id="0123456789abcdef0123456789abcdef", media_id="m1", action="remove",
                  previous_action="blur", actor_kind="reviewer", policy_version="2026-11-23.2", risk=0.97,
                  reason="ncii", label=None, distribution="removed", decided_at="2026-11-23T10:00:00+00:00")
    return DecisionEvent(**{**fields, **overrides})


# --- the signature scheme -------------------------------------------------------------


def test_signature_matches_an_independent_hmac_of_timestamp_dot_body():
    # Pinned from `openssl dgst -sha256 -hmac "$SECRET"` over the bytes '1700000000.{"id":"x"}',
    # so the documented scheme cannot drift from what receivers implement.
    assert sign(b'{"id":"x"}', [SECRET], NOW) == (
        "t=1700000000,v1=9800e72f5796208e81f7c1d3da0d7277bb1e72fea8e51d4764b11f97b4c85250")


def test_a_signed_body_verifies_and_parses_back_to_the_event():
    body = event().webhook_body()
    header = sign(body, [SECRET], NOW)

    assert verify_signature(body, header, SECRET, now=NOW + 10) == NOW
    assert parse_webhook(body, header, SECRET, now=NOW) == event()


@pytest.mark.parametrize(("body", "header", "now", "why"), [
    (b'{"id":"y"}', sign(b'{"id":"x"}', [SECRET], NOW), NOW, "body changed"),
    (b'{"id":"x"}', sign(b'{"id":"x"}', [OTHER], NOW), NOW, "signed with another secret"),
    (b'{"id":"x"}', sign(b'{"id":"x"}', [SECRET], NOW), NOW + 301, "replayed after the window"),
    (b'{"id":"x"}', sign(b'{"id":"x"}', [SECRET], NOW), NOW - 301, "timestamp from the future"),
    (b'{"id":"x"}', sign(b'{"id":"x"}', [SECRET], NOW).replace("t=1700000000", "t=1700000001"), NOW + 1,
     "timestamp moved"),
    (b'{"id":"x"}', "v1=abc", NOW, "no timestamp"),
    (b'{"id":"x"}', "t=1700000000", NOW, "no signature"),
    (b'{"id":"x"}', "garbage", NOW, "malformed"),
    (b'{"id":"x"}', None, NOW, "missing header"),
])
def test_verification_refuses(body, header, now, why):
    with pytest.raises(WebhookSignatureError):
        verify_signature(body, header, SECRET, now=now)


def test_during_a_rotation_either_secret_verifies():
    # GIVEN a sender signing with the old and the new secret
    header = sign(b"{}", [SECRET, OTHER], NOW)

    # THEN a receiver that knows only one of them accepts
    assert header.count("v1=") == 2
    assert verify_signature(b"{}", header, OTHER, now=NOW) == NOW
    assert verify_signature(b"{}", header, [SECRET], now=NOW) == NOW


def test_short_secrets_are_refused():
    with pytest.raises(ValueError):
        sign(b"{}", ["short"], NOW)


def test_an_event_cannot_carry_anything_but_its_fields():
    with pytest.raises(ValidationError):
        event(url="https://cdn.example/media/m1/sanitized.jpg")
    with pytest.raises(ValidationError):
        event(reason="the uploader's name is Bob")


# --- delivery to a local receiver --------------------------------------------------------


class Receiver:
    """A real HTTP server on 127.0.0.1 answering from a script: a status per request,
    ``"hang"`` to stall past the client's timeout, or ``("redirect", url)``."""

    def __init__(self) -> None:
        self.script: list = []
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "at": time.monotonic(),
                                          "path": self.path})
                step = receiver.script.pop(0) if receiver.script else 200
                if step == "hang":
                    time.sleep(1.0)
                    step = 200
                if isinstance(step, tuple):
                    self.send_response(302)
                    self.send_header("Location", step[1])
                    self.end_headers()
                    return
                self.send_response(step)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/mediaguard"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def sink(url, **options) -> WebhookSink:
    defaults = dict(timeout=0.5, max_seconds=3.0, base_delay=0.05, max_delay=0.2)
    return WebhookSink(url, lambda: [SECRET], **{**defaults, **options})


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(receiver):
    # GIVEN a receiver that answers 503, then 500, then 200
    receiver.script = [503, 500, 200]
    delays: list[float] = []

    # WHEN the event is delivered
    delivery = sink(receiver.url, sleep=lambda s: delays.append(s)).deliver(event())

    # THEN it took three attempts, backing off exponentially (with jitter) in between
    assert (delivery.status, delivery.attempts) == (200, 3)
    assert 0.025 <= delays[0] <= 0.05 and 0.05 <= delays[1] <= 0.1
    # AND every attempt carried the same body and event id, each with a valid signature
    assert len({r["body"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        assert verify_signature(request["body"], request["headers"][SIGNATURE_HEADER], SECRET) > 0
        assert request["headers"][EVENT_ID_HEADER] == event().decision_id
        assert request["headers"]["Content-Type"] == "application/json"
    assert parse_webhook(receiver.requests[-1]["body"], receiver.requests[-1]["headers"][SIGNATURE_HEADER],
                         SECRET) == event()


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_a_client_error_is_not_retried(receiver, status):
    receiver.script = [status]

    with pytest.raises(WebhookDeliveryError):
        sink(receiver.url, sleep=lambda s: None).deliver(event())

    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [408, 429])
def test_try_later_answers_are_retried(receiver, status):
    receiver.script = [status, 200]

    assert sink(receiver.url, sleep=lambda s: None).deliver(event()).attempts == 2


def test_a_dead_receiver_costs_at_most_the_time_budget(receiver):
    # GIVEN a receiver that always answers 500
    receiver.script = [500] * 100
    started = time.monotonic()

    # WHEN delivery is given one second in all
    with pytest.raises(WebhookDeliveryError):
        sink(receiver.url, max_seconds=1.0, max_attempts=100, base_delay=0.1, max_delay=0.3).deliver(event())

    # THEN it gave up after several attempts, within the budget (plus slack for a loaded
    # machine; without the budget, 100 attempts backing off up to 0.3 s would take ~25 s)
    assert time.monotonic() - started < 2.0
    assert len(receiver.requests) >= 3


def test_a_hanging_receiver_times_out_and_is_retried_within_the_budget(receiver):
    # GIVEN a receiver that stalls past the 0.3 s timeout once, then answers
    receiver.script = ["hang", 200]
    started = time.monotonic()

    delivery = sink(receiver.url, timeout=0.3, max_seconds=2.0).deliver(event())

    # THEN the stalled attempt was cut at its timeout (waiting it out would have taken 1 s
    # and counted as one successful attempt) and the retry succeeded
    assert delivery.attempts == 2
    assert time.monotonic() - started < 2.5


def test_redirects_are_not_followed(receiver):
    # GIVEN a receiver that redirects to another path (it could as well be another host)
    receiver.script = [("redirect", receiver.url + "/elsewhere")]

    with pytest.raises(WebhookDeliveryError):
        sink(receiver.url, sleep=lambda s: None).deliver(event())

    assert [r["path"] for r in receiver.requests] == ["/hooks/mediaguard"]


@pytest.mark.parametrize("url", ["http://platform.example/hooks", "ftp://127.0.0.1/x", "file:///etc/passwd"])
def test_only_https_or_local_http_urls_are_accepted(url):
    with pytest.raises(ValueError):
        sink(url)
