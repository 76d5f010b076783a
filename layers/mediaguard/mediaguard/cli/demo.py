"""``mediaguard demo``: a small, real sample set through the full local pipeline.

Photos come from scikit-image's bundled data (public domain / CC0, see
``skimage/data/README.txt``); the project derives edited copies, metadata-laden
files and broken files from them at run time, so nothing is downloaded.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from PIL import Image

from mediaguard.cli.scan import run_scan


def _photo(name: str) -> Image.Image:
    try:
        from skimage import data
    except ImportError as exc:  # pragma: no cover - dev extra missing
        raise SystemExit("the demo needs the sample photos from scikit-image: pip install 'mediaguard[dev]'") from exc
    return Image.fromarray(getattr(data, name)()).convert("RGB")


def _exif_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "DemoCam"          # Make
    exif[0x0110] = "DemoCam X1"       # Model
    exif[0xA431] = "SN-0042-1337"     # BodySerialNumber (EXIF IFD tag, stored here for brevity)
    gps = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    exif[0x8825] = gps
    return exif.tobytes()


def build_samples(folder: Path) -> tuple[Path, Path, list[Path]]:
    """Write the bank sources and the files to scan; returns (block bank, flag bank, scan files)."""
    bank_block, bank_flag, scan = folder / "bank-ncii", folder / "bank-deepfakes", folder / "scan"
    for d in (bank_block, bank_flag, scan):
        d.mkdir(parents=True, exist_ok=True)
    astronaut, chelsea, coffee, rocket = (_photo(n) for n in ("astronaut", "chelsea", "coffee", "rocket"))
    microscopy = _photo("immunohistochemistry")

    # Bank sources: a victim-submitted image (block) and a known deepfake (flag).
    astronaut.save(bank_block / "victim-0001.png")
    chelsea.save(bank_flag / "deepfake-0001.png")

    # Re-upload of the banked image: smaller, re-compressed, with GPS and a serial number.
    astronaut.resize((384, 384)).save(scan / "01-reupload-of-banked.jpg", quality=70, exif=_exif_with_gps())
    # The known deepfake, re-encoded as WebP.
    chelsea.save(scan / "02-known-deepfake.webp", quality=80)
    # Ordinary photos, one with location metadata and an embedded comment.
    coffee.save(scan / "03-coffee.jpg", quality=90, exif=_exif_with_gps(), comment=b"taken at home")
    rocket.save(scan / "04-rocket.png", pnginfo=_png_text({"parameters": "a rocket, 8k, masterpiece"}))
    microscopy.save(scan / "05-microscopy.jpg", quality=90)
    # Hostile input: a truncated JPEG and a text file pretending to be a JPEG.
    buf = io.BytesIO()
    coffee.save(buf, "JPEG", quality=90)
    (scan / "06-truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (scan / "07-not-an-image.jpg").write_bytes(b"this is a text file, not a JPEG\n" * 10)
    # A known deepfake video (banked frame by frame) and its re-encode at another resolution.
    scenes = [_photo(n) for n in ("hubble_deep_field", "retina", "camera", "moon")]
    _clip(scenes, (640, 360), 23, bank_flag / "deepfake-clip.mp4")
    _clip(scenes, (426, 240), 32, scan / "08-reencoded-deepfake-clip.mp4")
    return bank_block, bank_flag, sorted(scan.iterdir())


def _clip(scenes: list[Image.Image], size: tuple[int, int], crf: int, out: Path) -> None:
    """One second per scene, H.264, made with the ffmpeg the frames stage uses (imageio-ffmpeg)."""
    import subprocess

    from mediaguard.ingress.video import ffmpeg_exe

    w, h = size
    frames = b"".join(img.resize(size).tobytes() * 25 for img in scenes)
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                    "-r", "25", "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
                    "-pix_fmt", "yuv420p", str(out)], input=frames, check=True, timeout=120)


def _png_text(chunks: dict[str, str]):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    return info


def run_demo(out) -> int:
    with tempfile.TemporaryDirectory(prefix="mediaguard-demo-") as tmp:
        bank_block, bank_flag, files = build_samples(Path(tmp))
        out.line(f"mediaguard demo: {len(files)} files, banks: ncii-demo (block, 1 image), "
                 "deepfakes-demo (flag, 1 image + 1 video)")
        return run_scan(files, [f"ncii-demo:block={bank_block}", f"deepfakes-demo:flag={bank_flag}"],
                        out, as_json=False, log_level="WARNING")
