"""The report's arithmetic without a stack: sample-audit precision/recall, deadline compliance,
percentiles and the HTML page's self-containment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mediaguard.decisions.report import compliance, html, percentile, qa_metrics

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def test_no_samples_gives_null_not_a_number():
    m = qa_metrics([], n_positive=40, n_allow=960)
    assert (m["precision_by_audit"], m["recall_by_audit"]) == (None, None)


def test_recall_needs_sampled_allows_and_weights_by_volume():
    # GIVEN only positives sampled, THEN precision exists but recall does not
    only_positive = qa_metrics([("remove", "remove"), ("blur", "approve")], n_positive=10, n_allow=90)
    assert only_positive["precision_by_audit"] == 0.5 and only_positive["recall_by_audit"] is None
    # GIVEN 4 positives all confirmed and 10 allows with one miss, over 100 positives and 900 allows:
    # TP = 1.0 x 100 = 100, FN = 0.1 x 900 = 90 -> recall 100 / 190
    pairs = [("remove", "remove")] * 4 + [("allow", "approve")] * 9 + [("allow", "remove")]
    m = qa_metrics(pairs, n_positive=100, n_allow=900)
    assert m["precision_by_audit"] == 1.0 and m["recall_by_audit"] == round(100 / 190, 4)
    assert m["qa"]["exact_agreement"] == round(13 / 14, 4)  # approve counts as allow


def test_compliance_judges_enforcement_against_the_deadline():
    deadline = NOW + timedelta(hours=1)
    assert compliance({"deadline": deadline, "enforced_at": NOW}, NOW) == "on_time"
    assert compliance({"deadline": deadline, "enforced_at": deadline + timedelta(seconds=1)}, NOW) == "late"
    assert compliance({"deadline": deadline}, NOW) == "pending"
    assert compliance({"deadline": deadline}, deadline + timedelta(minutes=1)) == "overdue"
    assert compliance({"deadline": deadline, "status": "withdrawn"}, NOW) == "withdrawn"



def test_a_deadline_given_as_a_date_runs_to_the_end_of_that_day():
    from mediaguard.decisions.legal import OrderRequest

    # GIVEN an order due "by 2026-12-02" (a bare date, as the README's example gives it)
    order = OrderRequest(issuer="Court", legal_basis="Order 1", jurisdiction="FR", scope="items", targets=["m1"],
                         countries=["FR"], deadline="2026-12-02")
    # WHEN it is enforced that morning THEN it is on time (it counted as late from midnight)
    assert compliance({"deadline": order.deadline, "enforced_at": NOW + timedelta(hours=7)}, NOW) == "on_time"
    assert compliance({"deadline": order.deadline, "enforced_at": NOW + timedelta(days=1)}, NOW) == "late"
    # AND a date-time deadline is kept to the second
    exact = OrderRequest(issuer="Court", legal_basis="Order 1", jurisdiction="FR", scope="items", targets=["m1"],
                         countries=["FR"], deadline="2026-12-02T10:00:00Z")
    assert exact.deadline == NOW + timedelta(hours=10)

def test_percentile_is_nearest_rank():
    assert percentile([], 0.9) is None
    assert percentile([120.0, 600.0], 0.9) == 600.0
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9.0


def test_the_page_loads_and_runs_nothing():
    report = {"period": {"from": "a", "to": "b"}, "generated_at": "c",
              "metrics": {"precision_by_audit": None, "time_to_triage_s_by_lane": {}},
              "qa": {"formula": "f"}, "volumes": {"by_action": {"allow": 2, "<b>": 1}, "by_media_type": {}},
              "rejections_by_reason": {}, "reviews": {"by_action": {}}, "appeals": {},
              "geofence": {"by_country": {}}, "legal_orders": {"orders": []}}
    page = html(report)
    assert "<script" not in page and "src=" not in page and "href=" not in page and "style=" not in page
    assert "&lt;b&gt;" in page and "<b>" not in page  # labels are escaped
