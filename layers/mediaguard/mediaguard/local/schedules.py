"""Run the template's scheduled functions on their rates in local mode.

On AWS, EventBridge (``Schedule``) and EventBridge Scheduler (``ScheduleV2``) invoke the
digest, SLA sweep and index build every few minutes. moto deploys no schedule runner, so
under ``mediaguard serve`` none of them ever ran ("0 digests" after 15 minutes). This
thread reads every ``Schedule``/``ScheduleV2`` event of the template and invokes the
function on its rate, asynchronously as the schedulers do (so Lambda's async retries
apply). ``speed`` compresses time for tests: ``speed=300`` turns ``rate(5 minutes)``
into one second.

Only ``rate(...)`` expressions are run; a ``cron(...)`` or ``at(...)`` schedule is
reported by :func:`scheduled_functions` and skipped with a warning (none is declared today).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mediaguard.local.template import ACCOUNT_ID

logger = logging.getLogger("mediaguard.local")

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    """A schedule expression local mode cannot run."""


@dataclass(frozen=True)
class Schedule:
    function: str          # logical id
    event: str             # the event's name in the template
    kind: str              # Schedule | ScheduleV2
    expression: str
    period_seconds: float
    enabled: bool = True


def rate_seconds(expression: str) -> float:
    """Seconds between runs of ``rate(N unit)``; :class:`ScheduleError` for anything else."""
    match = _RATE.match(expression.strip())
    if not match:
        raise ScheduleError(f"local mode runs rate() schedules only, not {expression!r}")
    count, unit = int(match.group(1)), match.group(2).rstrip("s")
    if count < 1 or (count == 1) != (not match.group(2).endswith("s")):
        raise ScheduleError(f"invalid rate expression {expression!r}")  # rate(1 minute), rate(5 minutes)
    return float(count * _UNIT_SECONDS[unit])


def scheduled_functions(stack: Any) -> list[Schedule]:
    """Every ``Schedule``/``ScheduleV2`` event of the template's functions, with its period."""
    found = []
    for logical, resource in stack.of_type("AWS::Serverless::Function").items():
        for name, event in (resource.get("Properties", {}).get("Events") or {}).items():
            if event.get("Type") not in ("Schedule", "ScheduleV2"):
                continue
            props = stack.resolve(event.get("Properties", {}))
            expression = props["ScheduleExpression"]
            enabled = props.get("Enabled", True) is not False and props.get("State", "ENABLED") != "DISABLED"
            try:
                period = rate_seconds(expression)
            except ScheduleError as exc:
                logger.warning("local schedules: %s.%s skipped: %s", logical, name, exc)
                continue
            found.append(Schedule(logical, name, event["Type"], expression, period, enabled))
    return sorted(found, key=lambda s: (s.function, s.event))


def scheduled_event(stack: Any, schedule: Schedule, now: datetime) -> dict:
    """The payload the function receives: EventBridge's "Scheduled Event" (the shape of
    ``events/digest.json``, which both ``sam local invoke`` and the tests use)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events" if schedule.kind == "Schedule" else "aws.scheduler",
        "account": ACCOUNT_ID,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": stack.region,
        "resources": [f"arn:aws:events:{stack.region}:{ACCOUNT_ID}:rule/{stack.name}-{schedule.function}-"
                      f"{schedule.event}"],
        "detail": {},
    }


class Scheduler:
    """A daemon thread invoking every scheduled function on its (sped-up) rate.

    ``deliver(logical_id, event)`` runs one invocation (LocalCloud's async path). The first
    run of each schedule is one period after start, as with a new EventBridge rule.
    ``runs`` counts invocations per function.
    """

    def __init__(self, stack: Any, deliver: Callable[[str, dict], Any], *, speed: float = 1.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if speed <= 0:
            raise ScheduleError("speed must be positive")
        self.stack = stack
        self.schedules = [s for s in scheduled_functions(stack) if s.enabled]
        self.speed = speed
        self.runs: dict[str, int] = {s.function: 0 for s in self.schedules}
        self._deliver = deliver
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Scheduler:
        if self._thread is None and self.schedules:
            self._thread = threading.Thread(target=self._run, name="mediaguard-schedules", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        started = time.monotonic()
        due = {s: started + s.period_seconds / self.speed for s in self.schedules}
        while not self._stop.is_set():
            now = time.monotonic()
            for schedule, at in sorted(due.items(), key=lambda kv: kv[1]):
                if at > now or self._stop.is_set():
                    continue
                # Fixed rate from the start, as EventBridge keeps it; a slow run does not drift
                # the next ones, and runs missed while one was slow are not made up for.
                due[schedule] = at + max(1, int((now - at) * self.speed / schedule.period_seconds) + 1) \
                    * schedule.period_seconds / self.speed
                try:
                    self._deliver(schedule.function, scheduled_event(self.stack, schedule, self._clock()))
                except Exception:  # noqa: BLE001 - one failed run must not stop every schedule
                    logger.exception("local schedules: %s run failed", schedule.function)
                self.runs[schedule.function] += 1
            self._stop.wait(max(0.0, min(due.values()) - time.monotonic()))


__all__ = ["Schedule", "ScheduleError", "Scheduler", "rate_seconds", "scheduled_functions", "scheduled_event"]
