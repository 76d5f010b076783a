"""Local mode runs the template's scheduled functions on their rates (issue 14, local fidelity 2)."""

from __future__ import annotations

import time

from mediaguard.adapters.audit import DynamoAuditStore, names_from_settings
from mediaguard.audit.chain import verify_trail
from mediaguard.local.runtime import DEFAULT_TEMPLATE, LocalCloud
from mediaguard.local.schedules import scheduled_functions
from mediaguard.local.template import Stack
from tests.conftest import jpeg_bytes, photo


def test_every_schedule_of_the_template_is_found_with_its_rate():
    # GIVEN the real template
    # WHEN local mode reads its Schedule/ScheduleV2 events
    found = {s.function: s.period_seconds for s in scheduled_functions(Stack.from_file(DEFAULT_TEMPLATE))}
    # THEN the digest, the SLA sweep and the index build run at their declared rates
    assert found == {"DigestFunction": 300.0, "SlaFunction": 300.0, "IndexBuildFunction": 900.0, "SweepFunction": 300.0}


def test_the_digest_sla_sweep_and_index_build_run_on_their_rates():
    # GIVEN a local stack whose schedules run 600x faster (5 minutes -> 0.5 s) and one upload
    with LocalCloud(parameters={"LogLevel": "WARNING"}, schedules=600) as cloud:
        media_id = cloud.upload(jpeg_bytes(photo("coffee")), "image/jpeg")
        assert cloud.wait(media_id).status == "SUCCEEDED"

        # WHEN a few (sped-up) periods pass
        names = names_from_settings(cloud.deps().settings)
        deadline = time.monotonic() + 60
        report = verify_trail(DynamoAuditStore(names).snapshot(None))
        while (report.digests == 0 or cloud.scheduler.runs["IndexBuildFunction"] == 0) \
                and time.monotonic() < deadline:
            time.sleep(0.5)
            report = verify_trail(DynamoAuditStore(names).snapshot(None))

        # THEN each scheduled function has run, without anyone invoking it
        # (stopped before the final read: a snapshot taken while a digest is being written can
        # see the digest's table record before its archive object, see the closing note)
        cloud.scheduler.stop()
        report = verify_trail(DynamoAuditStore(names).snapshot(None))
        runs = dict(cloud.scheduler.runs)
        assert runs["DigestFunction"] >= 1 and runs["SlaFunction"] >= 1 and runs["IndexBuildFunction"] >= 1
        assert not [i for i in cloud.invocations if i.error and i.function in runs]
        # AND the digest anchored the upload's chain: `audit verify` finds digests and no problem
        assert report.digests >= 1
        assert report.ok, report.problems
