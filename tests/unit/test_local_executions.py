"""Local mode's waiter for Step Functions executions: woken by the end of the execution."""

from __future__ import annotations

import threading

from mediaguard.local.executions import TerminalWatch

ARN = "arn:aws:states:eu-west-1:123456789012:execution:pipeline:media-1"


def test_a_waiter_is_woken_when_its_execution_ends():
    # GIVEN a waiter blocked on one execution
    watch = TerminalWatch()
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(watch.wait(ARN, timeout=60)))
    waiter.start()
    # WHEN another execution ends, then its own
    watch.ended(ARN.replace("media-1", "media-2"))
    watch.ended(ARN)
    waiter.join(timeout=60)
    # THEN it returned because its execution ended, not because the time ran out
    assert woke == [True]


def test_an_execution_that_ended_before_the_wait_does_not_block():
    watch = TerminalWatch()
    watch.ended(ARN)
    assert watch.wait(ARN, timeout=0) is True


def test_a_wait_on_an_execution_that_never_ends_gives_up():
    assert TerminalWatch().wait(ARN, timeout=0.01) is False
