"""Typed errors. Their class names are the ``errorType`` Step Functions matches in
Retry/Catch, so renaming one is a change to ``statemachine/pipeline.asl.json`` too."""

from __future__ import annotations

from typing import Any, ClassVar


class MediaguardError(Exception):
    """Base class. ``reason`` is a stable, machine-readable code for the item and the audit trail."""

    reason = "internal_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class MediaRejectedError(MediaguardError):
    """The upload itself is unacceptable. Caught by the state machine and recorded as ``rejected``."""

    reason = "rejected"


class UnsupportedMediaError(MediaRejectedError):
    reason = "unsupported_media_type"


class ContentTypeMismatchError(MediaRejectedError):
    reason = "content_type_mismatch"


class CorruptMediaError(MediaRejectedError):
    reason = "corrupt_media"


class EmptyMediaError(MediaRejectedError):
    reason = "empty_file"


class DecompressionBombError(MediaRejectedError):
    reason = "decompression_bomb"


class MediaTooLargeError(MediaRejectedError):
    reason = "too_large"


class TooManyFramesError(DecompressionBombError):
    """An animation or multi-page file with more frames than ``max_frames``."""

    reason = "too_many_frames"


class DimensionsTooLargeError(DecompressionBombError):
    """A side longer than ``max_side``, even when the pixel count is within limits (1 x 40M)."""

    reason = "dimensions_too_large"


class PolyglotError(MediaRejectedError):
    """The image also carries another format's file (ZIP, PDF, HTML/script, executable)
    in its trailing data or metadata: valid as an image, hostile as an upload."""

    reason = "polyglot"


class VideoTooLongError(MediaTooLargeError):
    """A video longer than ``max_video_seconds`` (header duration or demuxed packets)."""

    reason = "video_too_long"


class AudioTooLongError(MediaTooLargeError):
    """An audio-only upload longer than ``max_audio_seconds`` (header or demuxed packets)."""

    reason = "audio_too_long"


class VideoTimeoutError(DecompressionBombError):
    """Decoding a video's keyframes did not finish within ``video_timeout_seconds``:
    a file that cheap to upload and that costly to decode is treated as a bomb."""

    reason = "video_timeout"


class SupersededRunError(MediaguardError):
    """This execution is not (or no longer) the item's current run: a duplicate of an
    ambiguous StartExecution, or one a re-drive replaced. The state machine ends it
    quietly (``Superseded``): the current run owns the item."""

    reason = "superseded_run"


class ObjectMissingError(MediaguardError):
    """The object (or the exact version) an event names no longer exists: deleted or
    expired between the write and the event's delivery. Retrying cannot bring it back."""

    reason = "object_missing"


class RedriveRefusedError(MediaguardError):
    """The item is not in a state a re-drive may restart (e.g. already done, or moved on
    while the re-drive was being prepared)."""

    reason = "redrive_refused"


# Names the state machine catches as rejections; kept here so a test can compare
# them with the ASL file and the two never drift.
REJECTION_ERRORS: tuple[type[MediaRejectedError], ...] = (
    MediaRejectedError,
    UnsupportedMediaError,
    ContentTypeMismatchError,
    CorruptMediaError,
    EmptyMediaError,
    DecompressionBombError,
    MediaTooLargeError,
    TooManyFramesError,
    DimensionsTooLargeError,
    PolyglotError,
    VideoTooLongError,
    VideoTimeoutError,
    AudioTooLongError,
)


# --- HTTP answers (both APIs; mediaguard.api.errors renders them) -------------------------------


class ApiError(MediaguardError):
    """An answer to the caller: an HTTP status, a stable reason code and a safe message."""

    status: ClassVar[int] = 400
    reason = "bad_request"

    def __init__(self, message: str, *, reason: str | None = None, media_id: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.media_id = media_id

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"reason": self.reason, "message": str(self)}
        if self.media_id is not None:
            body["media_id"] = self.media_id
        return body


class InvalidRequestError(ApiError):
    status = 400
    reason = "invalid_request"


class UnauthorizedError(ApiError):
    status = 401
    reason = "unauthorized"


class ForbiddenError(ApiError):
    status = 403
    reason = "forbidden"


class NotFoundError(ApiError):
    status = 404
    reason = "not_found"


class ConflictError(ApiError):
    status = 409
    reason = "conflict"
