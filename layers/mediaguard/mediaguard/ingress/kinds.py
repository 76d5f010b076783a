"""The media kinds mediaguard accepts: names, content types, extensions, decoders.

Declarations only (no Pillow, no ffmpeg), so the upload API can say what it accepts
without loading a decoder; ``media`` and ``video`` sniff and decode them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaKind:
    name: str
    content_type: str
    extension: str
    # The one Pillow plugin allowed to open this kind (Image.open(formats=...)), so
    # bytes that passed the sniff can never reach any of Pillow's ~40 other decoders.
    pillow_format: str = ""
    # Other content types a client may declare for the same bytes.
    aliases: tuple[str, ...] = ()


# image/jpg and image/pjpeg: what older browsers, Windows and some apps still send.
JPEG = MediaKind("jpeg", "image/jpeg", "jpg", "JPEG", ("image/jpg", "image/pjpeg"))
PNG = MediaKind("png", "image/png", "png", "PNG", ("image/apng",))
WEBP = MediaKind("webp", "image/webp", "webp", "WEBP")
GIF = MediaKind("gif", "image/gif", "gif", "GIF")
HEIF = MediaKind(
    "heif", "image/heic", "heic", "HEIF", ("image/heif", "image/heic-sequence", "image/heif-sequence")
)
TIFF = MediaKind("tiff", "image/tiff", "tiff", "TIFF")
STILL_KINDS = (JPEG, PNG, WEBP, GIF, HEIF, TIFF)
# What a browser displays, hence what sanitize may serve: HEIF and TIFF are converted.
SERVED_KINDS = (JPEG, PNG, WEBP, GIF)


@dataclass(frozen=True)
class VideoFormat:
    name: str
    content_type: str
    extension: str
    demuxer: str  # ffmpeg -f for reading
    muxer: str  # ffmpeg -f for writing the cleaned copy
    aliases: tuple[str, ...] = ()


# MP4 and QuickTime are one family (ISO BMFF, one demuxer): a .mov renamed .mp4 (or the
# reverse) is declared by its extension, browsers declare .m4v video/x-m4v, phones .3gp
# video/3gpp. The bytes decide the format; any of these declarations is accepted.
_ISO_VIDEO = ("video/mp4", "video/quicktime", "video/x-m4v", "video/3gpp")
MP4 = VideoFormat("mp4", "video/mp4", "mp4", "mov", "mp4", tuple(t for t in _ISO_VIDEO if t != "video/mp4"))
MOV = VideoFormat("mov", "video/quicktime", "mov", "mov", "mov", tuple(t for t in _ISO_VIDEO if t != "video/quicktime"))
WEBM = VideoFormat("webm", "video/webm", "webm", "matroska", "webm")
VIDEO_FORMATS = (MP4, MOV, WEBM)


@dataclass(frozen=True)
class AudioFormat:
    """An audio-only container: read with ``demuxer``, rewritten (stream copy, no
    metadata) with ``muxer``; ``codecs`` are the codecs it may carry (ffmpeg names)."""

    name: str
    content_type: str
    extension: str
    demuxer: str
    muxer: str
    codecs: frozenset[str]
    aliases: tuple[str, ...] = ()


_PCM = frozenset({"pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_u8", "pcm_f32le", "pcm_f64le"})
MP3 = AudioFormat("mp3", "audio/mpeg", "mp3", "mp3", "mp3", frozenset({"mp3"}), ("audio/mp3",))
AAC = AudioFormat("aac", "audio/aac", "aac", "aac", "adts", frozenset({"aac"}), ("audio/x-aac",))
# "ipod" is ffmpeg's .m4a muxer: MP4 with the M4A brand, which iTunes and browsers expect.
M4A = AudioFormat("m4a", "audio/mp4", "m4a", "mov", "ipod", frozenset({"aac", "alac", "mp3"}),
                  ("audio/x-m4a", "audio/m4a"))
OGG = AudioFormat("ogg", "audio/ogg", "ogg", "ogg", "ogg", frozenset({"vorbis", "opus"}), ("audio/opus",))
WAV = AudioFormat("wav", "audio/wav", "wav", "wav", "wav", _PCM, ("audio/x-wav", "audio/wave", "audio/vnd.wave"))
FLAC = AudioFormat("flac", "audio/flac", "flac", "flac", "flac", frozenset({"flac"}), ("audio/x-flac",))
# A WebM with audio tracks only: what browsers record voice notes in (MediaRecorder).
WEBA = AudioFormat("weba", "audio/webm", "webm", "matroska", "webm", frozenset({"opus", "vorbis"}))
AUDIO_FORMATS = (MP3, AAC, M4A, OGG, WAV, FLAC, WEBA)
