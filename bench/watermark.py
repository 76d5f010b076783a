"""How the genguard watermark and the own-generations bank survive what a re-upload goes through.

Each photo is marked (``genguard.watermark.embed`` with one generation's payload),
then transformed; the transformed copy is read with the pipeline's decoder at its own
size. Reported per transform, over all photos: mean bit accuracy against the payload,
how many copies gave the payload back (tag and CRC check pass with the right digest),
and the PDQ distance to the marked output (what ``verify`` falls back on; a match is
<= 31 bits). Also the embedding's PSNR.

Photos: the 11 that scikit-image ships (bench.corpus.PHOTOS; 2 are grey, which the
mark turns faintly coloured) and 3 from Debian's mate-backgrounds when installed,
fitted to 1024 px (a typical generator size).

    .venv/bin/python -m bench.watermark [--markdown]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from bench.corpus import PHOTOS, fit, photo
from mediaguard.genguard import watermark
from mediaguard.signals import PdqSignal

# Any key: the digest is keyed per stack (SigningMaterial.watermark_key); survival does not depend on it.
KEY = b"bench-watermark-key-any-32-bytes"
BACKGROUNDS = Path("/usr/share/backgrounds/mate/nature")


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)  # Pillow's default 4:2:0 chroma, as most re-saves
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _crop10(img: Image.Image) -> Image.Image:
    w, h = img.size
    return img.crop((round(w * 0.05), round(h * 0.05), round(w * 0.95), round(h * 0.95)))


TRANSFORMS = {
    "none (PNG)": lambda img: img,
    "JPEG q90": lambda img: _jpeg(img, 90),
    "JPEG q75": lambda img: _jpeg(img, 75),
    "JPEG q50": lambda img: _jpeg(img, 50),
    "resize 50 %": lambda img: img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS),
    "crop 10 %": _crop10,
}


def images() -> list[tuple[str, Image.Image]]:
    out = [(name, photo(name)) for name in PHOTOS]
    if BACKGROUNDS.is_dir():
        for path in sorted(BACKGROUNDS.glob("*.jpg"))[:3]:
            out.append((path.stem, fit(Image.open(path).convert("RGB"), 1024)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, bool, int]]] = {name: [] for name in TRANSFORMS}
    psnrs = []
    photos = images()
    for n, (name, img) in enumerate(photos):
        gid = f"bench-{n}-{name}"
        bits = watermark.payload_for(gid, KEY)
        original = np.asarray(img)
        marked = watermark.embed(original, bits)
        psnrs.append(10 * np.log10(255**2 / np.mean((marked.astype(float) - original) ** 2)))
        marked_img = Image.fromarray(marked)
        banked, _ = PdqSignal.hash_image(marked_img)
        for label, transform in TRANSFORMS.items():
            copy = transform(marked_img)
            reading = watermark.read(np.asarray(copy))
            pdq, _ = PdqSignal.hash_image(copy)
            recovered = reading.digest == watermark.generation_digest(gid, KEY).hex()
            rows[label].append((reading.bit_accuracy(bits), recovered, PdqSignal.distance(banked, pdq)))
    header = ("transform", "bit accuracy (mean, min)", "payload recovered", "PDQ distance (max)", "PDQ match <= 31")
    lines = []
    for label, results in rows.items():
        acc = [r[0] for r in results]
        lines.append((label, f"{np.mean(acc):.3f}, {min(acc):.3f}", f"{sum(r[1] for r in results)}/{len(results)}",
                      str(max(r[2] for r in results)), f"{sum(r[2] <= 31 for r in results)}/{len(results)}"))
    print(f"{len(photos)} photos; embedding PSNR {np.mean(psnrs):.1f} dB (min {min(psnrs):.1f})")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(len(header))]
        for line in [header, *lines]:
            print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))


if __name__ == "__main__":
    main()
