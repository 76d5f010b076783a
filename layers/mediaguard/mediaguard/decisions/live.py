"""Live streams: the states a stream moves through and the rules that move it (pure, no I/O).

A stream is analysed segment by segment (``stages.segment``); each segment's decision
comes from the same scoring code and policy as an upload (``decisions.scoring``). This
module turns that sequence of decisions into what viewers see::

    gating ──clean for gate_seconds──▶ reduced ──clean for reveal_seconds more──▶ live
       │                                  │                                        │
       └──────────── a segment decides blur or worse (or an audio match) ──────────┘
                                          ▼
                         restricted (overlays: blur / mute / warning)
                          │ a person clears        │ a person blocks
                          ▼                        ▼
                         live                   blocked          (any state) ──▶ ended

* ``gating``: a new or unverified streamer; nothing is shown until the first
  ``gate_seconds`` of video were analysed clean (the issue asks for 10-30 s).
* ``reduced``: shown, at reduced fidelity (the platform's player picks a low rendition)
  until ``reveal_seconds`` more were analysed clean.
* ``live``: shown as sent. A verified streamer starts here.
* ``restricted``: shown only under its overlays while a moderator inspects the segment
  that caused it. Overlays only accumulate: a later clean segment never lifts one,
  and a later worse one adds to them. Only a person (``moderate``) clears or blocks.
* ``blocked``: the platform stops the stream and deletes its stream key. Only a person
  blocks: stopping a broadcast is not undoable, and a classifier or a third-party hash
  can be wrong (the same reason an upload's block-bank match goes to people).
* ``ended``: the broadcast ended; later segments change nothing.

Every change of state or overlays is a :class:`Transition`, which the stage writes to
the audit chain ``stream:<id>`` and publishes as an event.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from mediaguard.decisions.scoring import SEVERITY
from mediaguard.models import Action

StreamState = Literal["gating", "reduced", "live", "restricted", "blocked", "ended"]
Overlay = Literal["blur", "mute", "warning"]
ModeratorDecision = Literal["clear", "block"]

# States in which viewers see the stream without an overlay (reduced: at low fidelity).
SHOWN_UNOBSCURED: frozenset[StreamState] = frozenset({"reduced", "live"})
TERMINAL: frozenset[StreamState] = frozenset({"blocked", "ended"})
# A segment decided at least this severe restricts the stream. "label" does not: on an
# upload it only adds a label, and the AI probe behind it is weak (FIELD-NOTES: a real
# photo scored 0.97), so it must not hide a clean stream.
RESTRICTING: frozenset[Action] = frozenset({"blur", "limit", "review", "remove"})
# Decisions a moderator should see with a warning to viewers while they look.
WARNED: frozenset[Action] = frozenset({"limit", "review", "remove"})
OVERLAY_ORDER: tuple[Overlay, ...] = ("blur", "mute", "warning")


class StreamStateError(ValueError):
    """A transition the state machine does not allow (e.g. clearing a stream that is not restricted)."""


@dataclass(frozen=True)
class LivePolicy:
    """How long a stream must be analysed clean before it is shown, then shown fully."""

    gate_seconds: float = 10.0
    reveal_seconds: float = 10.0


@dataclass(frozen=True)
class SegmentVerdict:
    """One segment's decision, as scoring made it. ``visual``: the evidence came from the
    frames (classifier, faces, image/video match); ``audio``: an audio-bank match
    (``signal="audio"``: the stream's audio window matched a banked clip)."""

    segment: int
    t_start: float
    t_end: float
    action: Action
    risk: float
    visual: bool = True
    audio: bool = False

    @property
    def seconds(self) -> float:
        return max(0.0, self.t_end - self.t_start)


def overlays_for(verdict: SegmentVerdict) -> tuple[Overlay, ...]:
    """The overlays one segment calls for: ``mute`` for an audio match, ``blur`` for a
    restricting decision with visual evidence, ``warning`` when a person must look
    (limit, review, remove). A clean segment calls for none.

    >>> overlays_for(SegmentVerdict(4, 8.0, 10.0, "remove", 1.0))
    ('blur', 'warning')
    """
    wanted: set[Overlay] = set()
    if verdict.audio:
        wanted.add("mute")
    if verdict.action in RESTRICTING and (verdict.visual or not verdict.audio):
        wanted.add("blur")
    if verdict.action in WARNED:
        wanted.add("warning")
    return tuple(o for o in OVERLAY_ORDER if o in wanted)


@dataclass(frozen=True)
class Stream:
    """One stream's state (stored in the streams table between segments)."""

    stream_id: str
    state: StreamState
    verified: bool = False
    overlays: tuple[Overlay, ...] = ()
    clean_seconds: float = 0.0  # analysed clean since the start (gating/reveal progress)
    segments: int = 0  # segments analysed
    # The most severe action since the start or the last clearance: it only rises.
    severity: Action = "allow"
    cause_segment: int | None = None  # the segment that restricted it

    @property
    def shown(self) -> bool:
        return self.state in SHOWN_UNOBSCURED or (self.state == "restricted" and bool(self.overlays))


@dataclass(frozen=True)
class Transition:
    """A change of state or overlays: one audit record and one event each."""

    stream_id: str
    from_state: StreamState
    to_state: StreamState
    overlays: tuple[Overlay, ...]
    cause: str  # "segment", "gate_passed", "revealed", "moderator:clear", "moderator:block", "ended", "started"
    actor: str = "system:live"
    segment: int | None = None
    action: Action | None = None
    risk: float | None = None
    added: tuple[Overlay, ...] = field(default=())
    reason: str | None = None  # a moderator's reason code

    def detail(self) -> dict:
        """What the audit record and the event carry: ids, states, codes; never media."""
        detail = {"from": self.from_state, "to": self.to_state, "overlays": list(self.overlays),
                  "added": list(self.added), "cause": self.cause, "segment": self.segment,
                  "action": self.action, "risk": self.risk}
        return {**detail, "reason": self.reason} if self.reason is not None else detail


def start(stream_id: str, *, verified: bool) -> tuple[Stream, Transition]:
    """A new stream: verified streamers go straight to ``live``, everyone else is gated."""
    state: StreamState = "live" if verified else "gating"
    stream = Stream(stream_id=stream_id, state=state, verified=verified)
    return stream, Transition(stream_id, state, state, (), "started")


def _more_severe(a: Action, b: Action) -> Action:
    return a if SEVERITY.index(a) >= SEVERITY.index(b) else b


def observe(stream: Stream, verdict: SegmentVerdict, policy: LivePolicy = LivePolicy()) -> tuple[Stream, list[Transition]]:
    """Apply one analysed segment. Segments may arrive out of order (S3 events do): the
    clean time is a sum and overlays a union, so the order does not change the outcome
    except for when a gate opens.

    >>> s, _ = start("abc", verified=False)
    >>> s, t = observe(s, SegmentVerdict(0, 0.0, 10.0, "allow", 0.0))
    >>> s.state, [x.to_state for x in t]
    ('reduced', ['reduced'])
    """
    if stream.state in TERMINAL:
        return replace(stream, segments=stream.segments + 1), []
    severity = _more_severe(stream.severity, verdict.action)
    stream = replace(stream, segments=stream.segments + 1, severity=severity)
    wanted = overlays_for(verdict)
    added = tuple(o for o in wanted if o not in stream.overlays)
    if wanted and (added or stream.state != "restricted"):
        overlays = tuple(o for o in OVERLAY_ORDER if o in stream.overlays or o in wanted)
        cause_segment = stream.cause_segment if stream.state == "restricted" else verdict.segment
        after = replace(stream, state="restricted", overlays=overlays, cause_segment=cause_segment)
        return after, [Transition(stream.stream_id, stream.state, "restricted", overlays, "segment",
                                  segment=verdict.segment, action=verdict.action, risk=verdict.risk, added=added)]
    if wanted or stream.state == "restricted":
        return stream, []  # nothing new: overlays stay until a person decides
    clean = stream.clean_seconds + verdict.seconds
    stream = replace(stream, clean_seconds=clean)
    # Tolerance: segment boundaries fall on frame times, so 5 x 2 s may sum to 9.999.
    if stream.state == "gating" and clean >= policy.gate_seconds - 0.05:
        to: StreamState = "live" if clean >= policy.gate_seconds + policy.reveal_seconds - 0.05 else "reduced"
        return replace(stream, state=to), [Transition(stream.stream_id, "gating", to, (), "gate_passed",
                                                      segment=verdict.segment)]
    if stream.state == "reduced" and clean >= policy.gate_seconds + policy.reveal_seconds - 0.05:
        return replace(stream, state="live"), [Transition(stream.stream_id, "reduced", "live", (), "revealed",
                                                          segment=verdict.segment)]
    return stream, []


def moderate(stream: Stream, decision: ModeratorDecision, actor: str,
             reason: str | None = None) -> tuple[Stream, Transition]:
    """A person's decision on a restricted stream: ``clear`` lifts every overlay and
    returns it to ``live`` (the severity starts again from ``allow``); ``block`` ends it
    as ``blocked``. A stream in any non-terminal state may be blocked by a person.
    ``reason`` (a short code) goes into the transition's audit record and event."""
    if stream.state in TERMINAL:
        raise StreamStateError(f"stream is {stream.state}")
    if decision == "clear":
        if stream.state != "restricted":
            raise StreamStateError("only a restricted stream can be cleared")
        after = replace(stream, state="live", overlays=(), severity="allow", cause_segment=None)
        return after, Transition(stream.stream_id, stream.state, "live", (), "moderator:clear", actor=actor,
                                 reason=reason)
    after = replace(stream, state="blocked")
    return after, Transition(stream.stream_id, stream.state, "blocked", stream.overlays, "moderator:block",
                             actor=actor, reason=reason)


def end(stream: Stream) -> tuple[Stream, list[Transition]]:
    """The broadcast ended (IVS wrote ``recording-ended.json``); a blocked stream stays blocked."""
    if stream.state in TERMINAL:
        return stream, []
    return replace(stream, state="ended"), [Transition(stream.stream_id, stream.state, "ended", stream.overlays,
                                                       "ended")]
