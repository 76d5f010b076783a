"""The largest honest labelled set this machine's packages give, run through ``mediaguard eval``.

What goes in (nothing downloaded; every label is what the file really is):

* ``real``: photographs scikit-image ships (everyday photos: astronaut, camera,
  chelsea, coffee, rocket, both motorcycle views, coins, moon, clock; scientific:
  hubble_deep_field, retina, immunohistochemistry, cell; textures: grass, gravel,
  brick) and, when Debian's ``mate-backgrounds`` is installed (``apt-get install
  mate-backgrounds``, GPL-2+), its 12 ``nature/`` photos.
* ``benign``: non-photographic images: scikit-image's page, text, logo, colorwheel,
  horse silhouette and MATE's abstract/desktop wallpapers (the Elephants illustration
  once, not its three sizes).
* ``swap``: crude face composites made here: the astronaut's face feather-blended into
  each everyday scikit-image photo but the astronaut and each MATE nature photo. That
  is manipulated media, but far cruder than a real face swap.

The ``group`` is the source (``skimage`` or ``mate``; a swap takes its target's), so the
per-group rows show whether a signal behaves differently on the two collections.
* No ``ai`` and no ``nsfw``: no package checked ships AI-generated pixels (sd-parsers'
  test images are 1x1 crops kept for their metadata), and NSFW material is not built.

    .venv/bin/python -m bench.eval_set [--out DIR] [--keep DIR] [--target-fpr 0.01]

Prints the eval report (text) and writes ``DIR/report.html`` + ``results.jsonl``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from bench.corpus import jpeg_bytes, photo

MATE = Path("/usr/share/backgrounds/mate")
SKIMAGE_GROUPS = {
    "skimage-photo": ("astronaut", "camera", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
                      "coins", "moon", "clock"),
    "skimage-science": ("hubble_deep_field", "retina", "immunohistochemistry", "cell"),
    "skimage-texture": ("grass", "gravel", "brick"),
}
SKIMAGE_GRAPHICS = ("page", "text", "logo", "colorwheel", "horse")
MATE_GRAPHICS = ("abstract/Elephants.jpg", "abstract/Flow.png", "abstract/Gulp.png", "abstract/Silk.png",
                 "abstract/Spring.png", "abstract/Waves.png", "abstract/Arc-Colors-Transparent-Wallpaper.png",
                 "desktop/Float-into-MATE.png", "desktop/GreenTraditional.jpg", "desktop/MATE-Stripes-Dark.png",
                 "desktop/MATE-Stripes-Light.png", "desktop/Stripes.png", "desktop/Ubuntu-Mate-Cold-no-logo.png",
                 "desktop/Ubuntu-Mate-Dark-no-logo.png", "desktop/Ubuntu-Mate-Radioactive-no-logo.png",
                 "desktop/Ubuntu-Mate-Warm-no-logo.png")
# The astronaut's face (x0, y0, x1, y1) in scikit-image's 512 x 512 picture.
FACE_BOX = (150, 60, 270, 200)


def skimage_image(name: str) -> Image.Image:
    from skimage import data

    if name.startswith("motorcycle_"):  # stereo_motorcycle() returns (left, right, disparity)
        left, right, _ = data.stereo_motorcycle()
        return Image.fromarray(left if name.endswith("left") else right).convert("RGB")
    return photo(name)


def paste_face(target: Image.Image, scale: float = 1.0) -> Image.Image:
    """A crude face swap: the astronaut's face, feather-blended (elliptic mask, blurred edge)
    into ``target`` a third of the way down, ``scale`` times its own size."""
    face = photo("astronaut").crop(FACE_BOX)
    if scale != 1.0:
        face = face.resize((round(face.width * scale), round(face.height * scale)))
    mask = Image.new("L", face.size, 0)
    ImageDraw.Draw(mask).ellipse((8, 8, face.width - 8, face.height - 8), fill=255)
    out = target.convert("RGB").copy()
    out.paste(face, ((out.width - face.width) // 2, (out.height - face.height) // 3),
              mask.filter(ImageFilter.GaussianBlur(6)))
    return out


def assemble(root: Path) -> Path:
    """Write every file and ``labels.csv`` (path,label,group) under ``root``; returns the CSV."""
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    rows = ["path,label,group"]

    def add(name: str, data: bytes, label: str, group: str) -> None:
        (media / name).write_bytes(data)
        rows.append(f"media/{name},{label},{group}")

    colour_photos: list[tuple[str, Image.Image, str]] = []
    for group, names in SKIMAGE_GROUPS.items():
        for name in names:
            img = skimage_image(name)
            add(f"{group}-{name}.jpg", jpeg_bytes(img), "real", "skimage")
            if name != "astronaut" and group == "skimage-photo":
                colour_photos.append((name, img, "skimage"))
    for name in SKIMAGE_GRAPHICS:
        add(f"skimage-graphic-{name}.png", _png(skimage_image(name)), "benign", "skimage")
    if MATE.is_dir():
        for path in sorted((MATE / "nature").glob("*.jpg")):
            add(f"mate-nature-{path.name}", path.read_bytes(), "real", "mate")
            colour_photos.append((f"mate-{path.stem}", Image.open(path), "mate"))
        for rel in MATE_GRAPHICS:
            path = MATE / rel
            if path.is_file():
                add(f"mate-graphic-{path.name}", path.read_bytes(), "benign", "mate")
    for name, img, source in colour_photos:
        # Scale the face with the picture, so a 2 MP wallpaper does not get a 120 px stamp.
        scale = max(1.0, min(img.size) / 512)
        add(f"swap-{name}.jpg", jpeg_bytes(paste_face(img, scale)), "swap", source)
    csv = root / "labels.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def _png(img: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-eval-report"), help="report folder")
    parser.add_argument("--keep", type=Path, help="assemble the set here (default: a temporary folder)")
    parser.add_argument("--target-fpr", default="0.01")
    parser.add_argument("--json", action="store_true", help="print eval's JSON instead of its table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        csv = assemble(root)
        sys.stderr.write(f"labelled set: {len(csv.read_text().splitlines()) - 1} files in {root}\n")
        command = [sys.executable, "-m", "mediaguard.cli", "eval", "--out", str(args.out), "--target-fpr",
                   args.target_fpr, *(["--json"] if args.json else []), str(csv)]
        return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
