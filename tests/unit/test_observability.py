"""``observability.observed``: what the handler decorator asks X-Ray to keep."""

from __future__ import annotations

import pytest

from mediaguard import observability


class RecordingTracer:
    """Stands in for the Powertools Tracer at the one call ``observed`` makes: records how it is asked to wrap."""

    def __init__(self) -> None:
        self.asked: dict = {}

    def capture_lambda_handler(self, handler, **options):
        self.asked = options
        return handler


def test_traces_keep_neither_responses_nor_exception_messages(monkeypatch):
    # GIVEN tracing on, and a handler whose error message quotes an id
    tracer = RecordingTracer()
    monkeypatch.setattr(observability, "tracer", tracer)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    @observability.observed("test")
    def handler(event, context):
        raise ValueError(f"no item {event['media_id']}")

    # WHEN it fails
    with pytest.raises(ValueError):
        handler({"media_id": "m-123"}, None)
    # THEN the tracer was told to record neither the response nor the exception's message
    assert (tracer.asked.get("capture_response"), tracer.asked.get("capture_error")) == (False, False)


def test_the_docstring_names_no_template_parameter_that_does_not_exist():
    from mediaguard.local.template import load_template
    from tests.conftest import REPO

    parameters = load_template(REPO / "template.yaml")["Parameters"]
    assert "MetricsNamespace" not in parameters and "MetricsNamespace" not in (observability.__doc__ or "")
