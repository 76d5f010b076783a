"""Synthetic face swaps made from photos that scikit-image ships (no download), and the
matching real controls, for the face-manipulation cues (``mediaguard.analysis.facecues``).

A swap is made the way a face-swap tool finishes its work: a donor face is resized to the
target's face box, its colours are matched to the target face, it is blended in through a
feathered ellipse (or a Laplacian-pyramid blend, the cheap cousin of Poisson blending),
and the whole picture is saved again as JPEG, optionally resized first. The target was a
JPEG before (as a phone photo is). A control is the same target taken through the same
re-saves without the swap: the pair differs only by the swap.

Donors: the astronaut's and the cameraman's faces, the 100 Labeled-Faces-in-the-Wild
crops scikit-image ships (25x25 grey, ``data.lfw_subset``), and a "re-render" of the
target's own face at a generator's output size (downscaled, then upscaled back: what a
128 px swap model's output looks like once pasted onto a larger face).

Targets: the two human faces (astronaut, cameraman) and face-sized boxes on other photos
(a cat's face, a coffee cup, a rocket, a motorcycle): the cues compare a box with its
surroundings and know nothing of what the box shows.

Shared by ``bench/facecues.py`` and ``tests/unit/test_facecues.py``; it lives in bench,
like ``bench/corpus.py``, because bench must not import tests.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from bench.corpus import photo

Box = tuple[int, int, int, int]

# Face boxes read off the photos by eye, framed as a face detector frames them (brow to
# chin, ear to ear).
FACES: dict[str, Box] = {"astronaut": (168, 50, 108, 124), "camera": (172, 72, 86, 110)}

# Face-sized boxes on photos without a human face (x, y, w, h).
OTHER_BOXES: dict[str, tuple[Box, ...]] = {
    "chelsea": ((150, 60, 150, 170),),
    "coffee": ((220, 120, 130, 150), (60, 40, 110, 130)),
    "rocket": ((230, 170, 110, 130), (40, 250, 110, 130)),
    "motorcycle_left": ((300, 150, 130, 150), (100, 250, 120, 140)),
}

TARGETS: tuple[tuple[str, Box], ...] = tuple(FACES.items()) + tuple(
    (name, box) for name, boxes in OTHER_BOXES.items() for box in boxes)


@cache
def _photo(name: str) -> Image.Image:
    if name == "motorcycle_left":
        from skimage import data

        return Image.fromarray(data.stereo_motorcycle()[0]).convert("RGB")
    return photo(name)


def target_photo(name: str) -> Image.Image:
    return _photo(name).copy()


def face_crop(name: str) -> Image.Image:
    x, y, w, h = FACES[name]
    return _photo(name).crop((x, y, x + w, y + h))


@cache
def _lfw() -> np.ndarray:
    from skimage import data

    # The first 100 of the 200 crops are faces (scikit-image's documentation).
    return data.lfw_subset()[:100]


def lfw_face(i: int) -> Image.Image:
    grey = np.clip(_lfw()[i] * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def ellipse_alpha(w: int, h: int, feather: float, scale: float = 0.92) -> np.ndarray:
    """1 inside an ellipse inscribed in the box (semi-axes ``scale`` x half the box), 0 outside,
    with a smoothstep ramp ``feather`` (a fraction of the radius) wide inside the border."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rho = np.hypot((xx + 0.5 - w / 2) / (scale * w / 2), (yy + 0.5 - h / 2) / (scale * h / 2))
    t = np.clip((1.0 - rho) / max(feather, 1e-3), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _match_colour(src: np.ndarray, ref: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Per-channel mean and spread of ``src`` moved to those of ``ref`` under the mask (Reinhard-style)."""
    m = alpha > 0.5
    out = np.empty_like(src)
    for c in range(3):
        s, r = src[..., c][m], ref[..., c][m]
        out[..., c] = (src[..., c] - s.mean()) * (r.std() / max(s.std(), 1.0)) + r.mean()
    return out


def _pyramid_blend(a: np.ndarray, b: np.ndarray, alpha: np.ndarray, levels: int = 4) -> np.ndarray:
    """Burt-Adelson Laplacian-pyramid blend of ``a`` into ``b``: low frequencies mix over a wide
    band, fine detail over a narrow one, as seamless-cloning tools do. Pillow does the scaling."""
    def down(x: np.ndarray) -> np.ndarray:
        h, w = x.shape[:2]
        return _resize(x, (max(1, w // 2), max(1, h // 2)))

    def up(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return _resize(x, size)

    ga, gb, gm = [a], [b], [alpha]
    for _ in range(levels):
        ga.append(down(ga[-1]))
        gb.append(down(gb[-1]))
        gm.append(down(gm[-1]))
    out = ga[-1] * gm[-1][..., None] + gb[-1] * (1 - gm[-1][..., None])
    for i in range(levels - 1, -1, -1):
        size = (ga[i].shape[1], ga[i].shape[0])
        la = ga[i] - up(ga[i + 1], size)
        lb = gb[i] - up(gb[i + 1], size)
        out = up(out, size) + la * gm[i][..., None] + lb * (1 - gm[i][..., None])
    return out


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if x.ndim == 2:
        return np.asarray(Image.fromarray(x.astype(np.float32), "F").resize(size, Image.Resampling.BILINEAR))
    return np.stack([_resize(x[..., c], size) for c in range(x.shape[2])], axis=-1)


@dataclass(frozen=True)
class Recipe:
    """How one swap (or its control) is made and saved."""

    target: str
    box: Box
    donor: str = "self:128"  # "astronaut", "camera", "lfw:<i>", "self:<generator px>"
    blend: str = "feather"  # "feather", "hard" or "pyramid"
    prejpeg: int | None = 90  # the target's own JPEG quality before the swap
    scale: float = 1.0  # resize after the swap
    quality: int | None = 80  # the final re-save; None keeps it lossless


def _donor(recipe: Recipe, target: Image.Image) -> Image.Image:
    x, y, w, h = recipe.box
    kind, _, arg = recipe.donor.partition(":")
    if kind == "self":
        side = int(arg)
        small = target.crop((x, y, x + w, y + h)).resize(
            (max(8, round(side * w / max(w, h))), max(8, round(side * h / max(w, h)))), Image.Resampling.BICUBIC)
        return small
    if kind == "lfw":
        return lfw_face(int(arg))
    return face_crop(kind)


def make(recipe: Recipe, swap: bool = True) -> tuple[Image.Image, Box]:
    """The swapped picture (or, with ``swap=False``, its control) and the face box in its pixels."""
    img = target_photo(recipe.target)
    if recipe.prejpeg:
        img = jpeg(img, recipe.prejpeg)
    x, y, w, h = recipe.box
    if swap:
        base = np.asarray(img, dtype=np.float32)
        region = base[y:y + h, x:x + w]
        donor = np.asarray(_donor(recipe, img).convert("RGB").resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
        feather = {"hard": 0.04, "feather": 0.25, "pyramid": 0.1}[recipe.blend]
        alpha = ellipse_alpha(w, h, feather)
        donor = _match_colour(donor, region, alpha)
        if recipe.blend == "pyramid":
            mixed = _pyramid_blend(donor, region, alpha)
        else:
            mixed = donor * alpha[..., None] + region * (1 - alpha[..., None])
        out = base.copy()
        out[y:y + h, x:x + w] = mixed
        img = Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))
    if recipe.scale != 1.0:
        img = img.resize((round(img.width * recipe.scale), round(img.height * recipe.scale)), Image.Resampling.LANCZOS)
        x, y, w, h = (round(v * recipe.scale) for v in (x, y, w, h))
    if recipe.quality:
        img = jpeg(img, recipe.quality)
    return img, (x, y, w, h)


# Photos for extra real controls: face-sized boxes slid across each one (edges, sky, fur,
# texture), so the false-positive side is not only the few swap targets.
CONTROL_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "motorcycle_left", "coins", "moon")


def control_recipes(qualities: tuple[int | None, ...] = (95, 80, 60), scales: tuple[float, ...] = (1.0, 0.75),
                    per_side: int = 3) -> list[Recipe]:
    """Real controls: a ``per_side`` x ``per_side`` grid of face-sized boxes (a quarter of the
    shorter side, 1.15 times as tall as wide) on each control photo, re-saved like the swaps."""
    out = []
    for name in CONTROL_PHOTOS:
        img_w, img_h = _photo(name).size
        w = min(img_w, img_h) // 4
        h = round(w * 1.15)
        for i in range(per_side):
            for j in range(per_side):
                x = round(w * 0.6 + i * (img_w - 2.2 * w) / max(per_side - 1, 1))
                y = round(h * 0.6 + j * (img_h - 2.2 * h) / max(per_side - 1, 1))
                for q in qualities:
                    for s in scales:
                        out.append(Recipe(name, (x, y, w, h), prejpeg=90, scale=s, quality=q))
    return out


def recipes(donors_per_target: int = 6, qualities: tuple[int | None, ...] = (95, 80, 60),
            blends: tuple[str, ...] = ("feather", "pyramid", "hard"),
            scales: tuple[float, ...] = (1.0, 0.75)) -> list[Recipe]:
    """Every target x donor x blend x final quality x scale; a target is never its own donor
    except as a re-render. ``donors_per_target`` bounds the LFW donors (the first n)."""
    out = []
    for target, box in TARGETS:
        donors = ["self:128", "self:64"] + [f for f in FACES if f != target]
        donors += [f"lfw:{i}" for i in range(donors_per_target)]
        for donor in donors:
            for blend in blends:
                for q in qualities:
                    for s in scales:
                        out.append(Recipe(target, box, donor, blend, 90, s, q))
    return out
