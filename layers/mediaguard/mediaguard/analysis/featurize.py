"""Bank-side features of a media file, computed exactly as the pipeline computes an upload's.

A still goes through ``ingest.prepare`` (its PDQ) and the classifier's draft decode
(its embedding); an animation or a video is cut into frames by ``video`` like the
frames stage does, and every frame gets a PDQ and an embedding. The first audio track
(of a video, or of an audio-only file) is rewritten and fingerprinted as the frames
stage does and banked as one more entry carrying only the fingerprint. A banked file and
its re-upload therefore hash alike, frame for frame and word for word.

When the CLIP tower is installed, every frame also gets CLIP's embedding (the detect
stage's ``SyntheticDetector.embed``, one image per run as that stage does: the INT8
tower is batch-sensitive), so the entry matches by ``clip`` too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from mediaguard.analysis.banks.errors import InvalidEntryError
from mediaguard.analysis.banks.model import Features, Featurizer
from mediaguard.settings import Settings
from mediaguard.signals import AudioSignal


def media_featurizer(settings: Settings | None = None, *, embeddings: bool = True,
                     clip: bool | None = None) -> Featurizer:
    """A featurizer for ``BankService.add_media`` / ``mediaguard bank add``.

    ``embeddings=False`` skips the models (PDQ only), for machines without onnxruntime.
    ``clip``: compute CLIP's embedding too; None (the default) does when the tower is
    installed (``synthetic.clip_available``), True requires it.
    """
    settings = settings or Settings()

    def featurize(data: bytes, declared: str | None) -> list[Features]:
        from mediaguard.ingress import audio, video
        from mediaguard.ingress.ingest import prepare
        from mediaguard.ingress.media import load_rgb, open_image

        limits = video.VideoLimits.from_settings(settings)
        fmt = audio.sniff_av(data)
        if isinstance(fmt, video.VideoFormat):
            with tempfile.TemporaryDirectory(prefix="mg-bank-") as tmp:
                src = Path(tmp) / "original"
                src.write_bytes(data)
                info = video.probe(src, limits)
                frameset = video.extract_frames(src, limits)
                plan = audio.video_audio_plan(info.container, info.audio_codec)
                track = None
                if plan != "drop":  # the served copy's track, as the frames stage fingerprints it
                    clean = Path(tmp) / "clean"
                    video.remux_clean(src, clean, timeout=limits.timeout_s, audio=plan)
                    track = _audio_features(clean, fmt.demuxer)
            features = _features([f.image for f in frameset.frames], video.pdq_frames(frameset))
            return features + ([track] if track else [])
        if fmt is not None:  # audio only
            alimits = audio.AudioLimits.from_settings(settings)
            with tempfile.TemporaryDirectory(prefix="mg-bank-") as tmp:
                src, clean = Path(tmp) / "original", Path(tmp) / "clean"
                src.write_bytes(data)
                audio.probe_audio(src, alimits)
                written = audio.remux_audio_clean(src, clean, timeout=alimits.timeout_s)
                track = _audio_features(clean, written.demuxer)
            if track is None:
                raise InvalidEntryError("the audio is too short to fingerprint (under ~2 s)")
            return [track]
        prepared = prepare(data, declared, settings, forensics=False)
        image = open_image(prepared.sanitized.data, settings.max_pixels)
        if getattr(image, "n_frames", 1) > 1:
            frameset = video.extract_animated_frames(prepared.sanitized.data, limits)
            return _features([f.image for f in frameset.frames], video.pdq_frames(frameset))
        fps = prepared.fingerprints
        rgb = load_rgb(open_image(prepared.sanitized.data, settings.max_pixels), min_side=256)

        def detect_view() -> Image.Image:
            # The detect stage decodes a still's frame at >= faces.MAX_SIDE before CLIP.
            from mediaguard.analysis.faces import MAX_SIDE
            return load_rgb(open_image(prepared.sanitized.data, settings.max_pixels), min_side=MAX_SIDE)

        return _features([rgb], [(fps.pdq, fps.pdq_quality)], detect_view)

    def _audio_features(path: Path, demuxer: str) -> Features | None:
        from mediaguard.ingress import audio

        words = audio.fingerprint(path, demuxer, max_seconds=settings.max_audio_seconds)
        return Features(audio=AudioSignal.format(words)) if len(words) else None

    def _features(images: list[Image.Image], hashes: list[tuple[str, int]],
                  detect_view: Callable[[], Image.Image] | None = None) -> list[Features]:
        vectors = [None] * len(images)
        clips = [None] * len(images)
        if embeddings and images:
            from mediaguard.analysis.classify import get_classifiers
            from mediaguard.analysis.synthetic import clip_available, synthetic_detector

            outputs = get_classifiers(settings)[0].classify_batch(images)
            vectors = [o.embedding for o in outputs]
            if clip or (clip is None and clip_available()):
                detector = synthetic_detector(settings.onnx_threads)
                views = [detect_view()] if detect_view is not None else images
                clips = [detector.embed(image) for image in views]
        return [Features(pdq=pdq, quality=quality, embedding=vec, clip=c)
                for (pdq, quality), vec, c in zip(hashes, vectors, clips, strict=True)]

    return featurize
