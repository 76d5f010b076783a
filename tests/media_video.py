"""Test clips made from real photos: the builders live in ``bench/clips.py`` (the frames
benchmark uses them too, and bench must not import tests); tests import them from here."""

from bench.clips import SCENE_PHOTOS, animated_gif, ffmpeg, photos, reencode, slideshow  # noqa: F401
