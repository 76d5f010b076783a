"""Live-stream adapters: the streams table (pynamodb), Amazon IVS, the classify/detect
functions (Lambda Invoke) and the ``mediaguard.stream`` events (EventBridge)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PutError

from mediaguard.adapters import tables
from mediaguard.decisions.events import SOURCE, EventDeliveryError
from mediaguard.decisions.live import Stream
from mediaguard.errors import MediaguardError
from mediaguard.models import ClassifyInput, ClassifyResult, DetectInput, DetectResult
from mediaguard.ports import LivePorts, StreamRecord
from mediaguard.settings import Settings

STREAM_DETAIL_TYPE = "mediaguard.stream"
# The channel tag a platform sets on a verified streamer's channel (IVS TagResource).
VERIFIED_TAG = "mediaguard:verified"


class DynamoStreamStore:
    """``ports.StreamStore`` over ``tables.StreamItem`` (optimistic lock on ``version``)."""

    def __init__(self, settings: Settings) -> None:
        tables.bind(settings)

    def get(self, stream_id: str) -> StreamRecord | None:
        try:
            item = tables.StreamItem.get(stream_id, consistent_read=True)
        except tables.StreamItem.DoesNotExist:
            return None
        return self._record(item)

    def by_state(self, state: str, limit: int) -> list[StreamRecord]:
        items = tables.StreamItem.by_state.query(state, scan_index_forward=False, limit=limit)
        return [self._record(item) for item in items]

    @staticmethod
    def _record(item: tables.StreamItem) -> StreamRecord:
        stream = Stream(stream_id=item.stream_id, state=item.state, verified=bool(item.verified),  # type: ignore[arg-type]
                        overlays=tuple(item.overlays or ()), clean_seconds=float(item.clean_seconds or 0),
                        segments=int(item.segments or 0), severity=item.severity,  # type: ignore[arg-type]
                        cause_segment=int(item.cause_segment) if item.cause_segment is not None else None)
        return StreamRecord(stream=stream, channel_arn=item.channel_arn, origin_s=item.origin_s, last=item.last,
                            version=item.version)

    def put(self, record: StreamRecord) -> bool:
        s = record.stream
        item = tables.StreamItem(s.stream_id, channel_arn=record.channel_arn, state=s.state, verified=s.verified,
                                 overlays=list(s.overlays) or None, clean_seconds=round(s.clean_seconds, 3),
                                 segments=s.segments, severity=s.severity, cause_segment=s.cause_segment,
                                 origin_s=record.origin_s, last=record.last, updated_at=datetime.now(UTC))
        if record.version is not None:  # save() checks it (absent: the item must not exist) and increments it
            item.version = record.version
        try:
            item.save()
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        record.version = item.version
        return True


class IvsLiveControl:
    """``ports.LiveControl`` over the IVS API. The role may call these only on the
    platform's channels (template parameter ``LiveChannelArns``)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def verified(self, channel_arn: str) -> bool:
        tags = self.client.get_channel(arn=channel_arn)["channel"].get("tags") or {}
        return tags.get(VERIFIED_TAG) == "true"

    def put_metadata(self, channel_arn: str, payload: str) -> None:
        try:
            self.client.put_metadata(channelArn=channel_arn, metadata=payload)
        except ClientError as exc:
            # The broadcast may have ended between the segment and this call: nothing to tell.
            if exc.response.get("Error", {}).get("Code") != "ChannelNotBroadcasting":
                raise

    def stop(self, channel_arn: str) -> None:
        try:
            self.client.stop_stream(channelArn=channel_arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ChannelNotBroadcasting":
                raise
        # IVS has no "disable": deleting the key is what keeps the streamer from starting
        # again; the platform issues a new key if a person later reinstates them.
        for key in self.client.list_stream_keys(channelArn=channel_arn).get("streamKeys", []):
            self.client.delete_stream_key(arn=key["arn"])


class LiveInvokeError(MediaguardError):
    """The classify or detect function failed on a live segment's frames."""

    reason = "analysis_failed"


class LambdaFrameAnalysis:
    """``ports.FrameAnalysis``: the upload pipeline's Classify and Detect functions, invoked
    synchronously. They carry the models (each within Lambda's 250 MB), the segment function
    carries ffmpeg: the three together would not fit one function."""

    def __init__(self, client: Any, classify_function: str, detect_function: str) -> None:
        self.client = client
        self.functions = {"classify": classify_function, "detect": detect_function}

    def _invoke(self, which: str, payload: dict) -> dict:
        response = self.client.invoke(FunctionName=self.functions[which], Payload=json.dumps(payload).encode())
        body = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise LiveInvokeError(f"{which} failed: {body.get('errorType') if isinstance(body, dict) else 'unknown'}")
        return body

    def classify(self, request: ClassifyInput) -> ClassifyResult:
        return ClassifyResult.model_validate(self._invoke("classify", request.model_dump()))

    def detect(self, request: DetectInput) -> DetectResult:
        return DetectResult.model_validate(self._invoke("detect", request.model_dump()))


class EventBridgeStreamSink:
    """``ports.StreamEventSink``: one ``mediaguard.stream`` event per transition on the decision bus."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self.client = client
        self.bus_name = bus_name

    def publish(self, stream_id: str, detail: dict[str, Any]) -> None:
        entry = {"Source": SOURCE, "DetailType": STREAM_DETAIL_TYPE, "EventBusName": self.bus_name,
                 "Detail": json.dumps({"schema_version": 1, "stream_id": stream_id, **detail}, sort_keys=True)}
        try:
            response = self.client.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as exc:
            raise EventDeliveryError(f"put_events failed: {type(exc).__name__}") from exc
        if response.get("FailedEntryCount"):
            raise EventDeliveryError(f"EventBridge refused the event: {response['Entries'][0].get('ErrorCode')}")


def live_ports(settings: Settings, *, analysis: bool = True) -> LivePorts:
    """The segment stage's ports; ``analysis=False``: without the classify/detect functions,
    for the review API, where people clear or block streams but nothing is analysed."""
    if not settings.streams_table or (analysis and not (settings.classify_function and settings.detect_function)):
        raise MediaguardError("live streams need STREAMS_TABLE and the classify/detect function names",
                              reason="misconfigured")
    events = EventBridgeStreamSink(boto3.client("events", region_name=settings.region), settings.event_bus_name) \
        if settings.event_bus_name else None
    frames = LambdaFrameAnalysis(boto3.client("lambda", region_name=settings.region), settings.classify_function,
                                 settings.detect_function) if analysis else None
    return LivePorts(streams=DynamoStreamStore(settings),
                     control=IvsLiveControl(boto3.client("ivs", region_name=settings.region)),
                     analysis=frames, events=events)
