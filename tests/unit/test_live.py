"""The live-stream state machine (mediaguard.decisions.live) and the recording key layout."""

from __future__ import annotations

import pytest

from mediaguard.decisions import live
from mediaguard.decisions.live import LivePolicy, SegmentVerdict
from mediaguard.stages.segment import (
    UnknownRecordingKeyError,
    parse_key,
    segment_media_id,
    sibling_key,
    window_segments,
)

POLICY = LivePolicy(gate_seconds=10.0, reveal_seconds=10.0)


def clean(n: int, seconds: float = 2.0) -> SegmentVerdict:
    return SegmentVerdict(n, n * seconds, (n + 1) * seconds, "allow", 0.01)


def feed(stream: live.Stream, verdicts) -> tuple[live.Stream, list[live.Transition]]:
    out = []
    for v in verdicts:
        stream, transitions = live.observe(stream, v, POLICY)
        out += transitions
    return stream, out


def test_an_unverified_stream_is_gated_then_reduced_then_live():
    # GIVEN a new, unverified streamer
    stream, started = live.start("s1", verified=False)
    assert stream.state == "gating" and not stream.shown
    # WHEN 4 clean 2 s segments (8 s) arrive THEN it is still gated
    stream, transitions = feed(stream, [clean(n) for n in range(4)])
    assert stream.state == "gating" and transitions == []
    # WHEN the fifth completes 10 s THEN it is shown at reduced fidelity
    stream, transitions = feed(stream, [clean(4)])
    assert (stream.state, [t.cause for t in transitions]) == ("reduced", ["gate_passed"])
    # AND after 10 s more it is live
    stream, transitions = feed(stream, [clean(n) for n in range(5, 10)])
    assert (stream.state, [(t.from_state, t.to_state) for t in transitions]) == ("live", [("reduced", "live")])


def test_a_verified_streamer_starts_live():
    stream, started = live.start("s2", verified=True)
    assert stream.state == "live" and started.to_state == "live" and stream.shown


@pytest.mark.parametrize(("action", "audio", "overlays"), [
    ("remove", False, ("blur", "warning")),
    ("review", False, ("blur", "warning")),
    ("blur", False, ("blur",)),
    ("review", True, ("mute", "warning")),  # an audio-only match mutes, it does not blur
])
def test_a_restricting_segment_restricts_with_the_overlays_it_calls_for(action, audio, overlays):
    stream, _ = live.start("s3", verified=True)
    verdict = SegmentVerdict(3, 6.0, 8.0, action, 0.8, visual=not audio, audio=audio)
    stream, transitions = live.observe(stream, verdict, POLICY)
    assert (stream.state, stream.overlays) == ("restricted", overlays)
    assert transitions[0].segment == 3 and transitions[0].added == overlays


def test_label_does_not_restrict_and_counts_as_clean():
    # GIVEN a gated stream WHEN its segments are only "label" (the weak AI probe's level)
    stream, _ = live.start("s4", verified=False)
    stream, _ = feed(stream, [SegmentVerdict(n, 2.0 * n, 2.0 * n + 2, "label", 0.4) for n in range(5)])
    # THEN the gate still opens
    assert stream.state == "reduced"


def test_decisions_only_escalate_until_a_person_clears():
    # GIVEN a stream restricted with a blur
    stream, _ = live.start("s5", verified=True)
    stream, _ = live.observe(stream, SegmentVerdict(1, 2.0, 4.0, "blur", 0.5), POLICY)
    # WHEN clean segments follow THEN nothing is lifted
    stream, transitions = feed(stream, [clean(n) for n in range(2, 12)])
    assert (stream.state, stream.overlays, transitions) == ("restricted", ("blur",), [])
    # WHEN a worse segment follows THEN its overlays are added, none removed
    stream, transitions = live.observe(stream, SegmentVerdict(12, 24.0, 26.0, "review", 0.7, audio=True), POLICY)
    assert stream.overlays == ("blur", "mute", "warning") and transitions[0].added == ("mute", "warning")
    assert stream.severity == "review" and stream.cause_segment == 1
    # WHEN a person clears it THEN it is live without overlays, severity reset
    stream, transition = live.moderate(stream, "clear", "reviewer:r1")
    assert (stream.state, stream.overlays, stream.severity) == ("live", (), "allow")
    assert transition.actor == "reviewer:r1" and transition.cause == "moderator:clear"


def test_a_person_blocks_and_blocked_is_final():
    stream, _ = live.start("s6", verified=False)
    stream, _ = live.observe(stream, SegmentVerdict(0, 0.0, 2.0, "remove", 1.0), POLICY)
    stream, transition = live.moderate(stream, "block", "reviewer:r2")
    assert (stream.state, transition.to_state) == ("blocked", "blocked")
    # THEN later segments and the end of the recording change nothing
    stream, transitions = live.observe(stream, clean(1), POLICY)
    assert (stream.state, transitions) == ("blocked", [])
    assert live.end(stream) == (stream, [])
    with pytest.raises(live.StreamStateError):
        live.moderate(stream, "clear", "reviewer:r2")


def test_only_a_restricted_stream_can_be_cleared():
    stream, _ = live.start("s7", verified=True)
    with pytest.raises(live.StreamStateError):
        live.moderate(stream, "clear", "reviewer:r3")


def test_the_end_of_the_recording_ends_the_stream():
    stream, _ = live.start("s8", verified=False)
    stream, transitions = live.end(stream)
    assert stream.state == "ended" and transitions[0].cause == "ended"


def test_out_of_order_clean_segments_open_the_gate_all_the_same():
    stream, _ = live.start("s9", verified=False)
    stream, _ = feed(stream, [clean(n) for n in (3, 0, 4, 2, 1)])
    assert stream.state == "reduced" and stream.segments == 5


def test_ivs_recording_keys_name_the_channel_the_broadcast_and_the_segment():
    key = "ivs/v1/123456789012/AsXego4U6tnj/2020/6/23/20/12/j8Z9O91ndcVs/media/hls/720p30/17.ts"
    obj = parse_key(key, "us-east-1")
    assert (obj.channel_arn, obj.stream_id, obj.kind, obj.segment) == (
        "arn:aws:ivs:us-east-1:123456789012:channel/AsXego4U6tnj", "j8Z9O91ndcVs", "segment", 17)
    ended = parse_key("ivs/v1/123456789012/AsXego4U6tnj/2020/6/23/20/12/j8Z9O91ndcVs/events/recording-ended.json",
                      "us-east-1")
    assert ended.kind == "ended"
    with pytest.raises(UnknownRecordingKeyError):
        parse_key("ivs/v1/123456789012/AsXego4U6tnj/2020/6/23/20/12/j8Z9O91ndcVs/media/thumbnails/1.jpg", "us-east-1")
    # AND the review item id passes the review API's id pattern
    assert segment_media_id("j8Z9O91ndcVs", 17) == "live-j8Z9O91ndcVs-000017"


def test_the_audio_window_is_the_last_ten_seconds_of_the_same_rendition():
    key = "ivs/v1/123456789012/AsXego4U6tnj/2020/6/23/20/12/j8Z9O91ndcVs/media/hls/720p30/seg12.ts"
    # GIVEN segment 12 of a recording WHEN its audio window is formed
    # THEN it joins the four 2 s segments before it (10 s in all), or fewer at the start
    assert window_segments(12, 2.0) == [8, 9, 10, 11]
    assert window_segments(1, 2.0) == [0] and window_segments(0, 2.0) == []
    assert window_segments(12, 6.0) == [11]  # 6 s segments: two make 12 s
    assert window_segments(30, 0.1) == list(range(21, 30))  # capped at 10 segments
    # AND the earlier segments are read from the same recording and rendition
    assert sibling_key(key, 8) == key.replace("seg12.ts", "seg8.ts")


def test_a_moderators_reason_is_in_the_transition_record():
    stream, _ = live.start("s9", verified=True)
    stream, _ = live.observe(stream, SegmentVerdict(0, 0.0, 2.0, "remove", 1.0, visual=False, audio=True), POLICY)
    assert stream.overlays == ("mute", "warning")
    _, transition = live.moderate(stream, "clear", "reviewer:r1", "licensed_voice")
    assert transition.detail()["reason"] == "licensed_voice"
    _, transition = live.moderate(stream, "block", "reviewer:r2")
    assert "reason" not in transition.detail()
