"""What several stages share: the media bucket's key layout and required settings."""

from __future__ import annotations

from mediaguard.errors import MediaguardError


def require(value: str | None, name: str) -> str:
    """A setting the stage cannot run without (a template/wiring mismatch, never user input)."""
    if not value:
        raise MediaguardError(f"setting {name} is not configured", reason="misconfigured")
    return value


# The media bucket holds what the pipeline derives from an upload, under ``media/{id}/``;
# the original stays where the upload grant put it (``ingress.grant.upload_key``).
def sanitized_key(media_id: str, extension: str) -> str:
    return f"media/{media_id}/sanitized.{extension}"


def frame_key(media_id: str, index: int) -> str:
    return f"media/{media_id}/frames/{index:05d}.jpg"


def embeddings_key(media_id: str, batch: int) -> str:
    return f"media/{media_id}/embeddings/{batch:04d}.npy"


def clip_embeddings_key(media_id: str, batch: int) -> str:
    return f"media/{media_id}/embeddings-clip/{batch:04d}.npy"
