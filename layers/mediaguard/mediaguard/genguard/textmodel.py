"""The text-classifier slot: a platform plugs its own prompt classifier in, as ONNX.

mediaguard ships no text model: the one candidate that ships inside a package
(``en-prompt-nsfw-pipeline-*``) is UNLICENSED. The rules in ``screen`` are the floor; a
model here can only add refusals.

**Configuration** mirrors the image slot (``analysis.classify``): a JSON file (env
``MEDIAGUARD_TEXT_MODELS_CONFIG``), model paths relative to it, optional sha256 pins::

    {"models": [{"id": "ncii-text", "path": "ncii-text.onnx", "dim": 4096, "ngram": [3, 5],
                 "labels": ["ok", "ncii"], "refuse_label": "ncii", "threshold": 0.8,
                 "softmax": true}]}

**Input.** A tokeniser does not travel inside an ONNX file portably, so the slot feeds a
vocabulary-free representation every framework can learn from: the prompt normalised as the
rules read it (``screen.views``, leetspeak undone), framed by spaces, cut into character
n-grams (``ngram`` sizes, inclusive), each hashed with BLAKE2b (8 bytes, little-endian)
modulo ``dim``, counted and L2-normalised: float32 ``[N, dim]``. Train on
:func:`features` so training and serving agree exactly. **Output**: ``[N, len(labels)]``
scores (softmaxed here if ``softmax``); the request is refused when ``refuse_label``'s score
is at or above ``threshold`` (reason ``classifier.<id>``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mediaguard.analysis.classify import _ort_errors
from mediaguard.errors import MediaguardError
from mediaguard.genguard.screen import TextScore, views


class TextModelConfigError(MediaguardError):
    """A text classifier cannot be loaded as configured (file, JSON, or a model that disagrees with it)."""

    reason = "model_config_invalid"


class TextModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    path: str = Field(min_length=1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    input: str | None = None  # default: the model's first input
    output: str | int = 0
    dim: int = Field(default=4096, ge=16, le=1 << 20)
    ngram: tuple[int, int] = (3, 5)
    labels: list[str] = Field(min_length=2, max_length=100)
    refuse_label: str
    threshold: float = Field(gt=0.0, le=1.0)
    softmax: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> TextModelSpec:
        if self.refuse_label not in self.labels:
            raise ValueError("refuse_label must be one of labels")
        low, high = self.ngram
        if not 1 <= low <= high <= 8:
            raise ValueError("ngram must be [min, max] with 1 <= min <= max <= 8")
        return self


class TextModelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[TextModelSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_unique(self) -> TextModelsConfig:
        ids = [m.id for m in self.models]
        if len(set(ids)) != len(ids):
            raise ValueError("model ids must be unique")
        return self


def features(prompt: str, dim: int, ngram: tuple[int, int] = (3, 5)) -> np.ndarray:
    """The slot's input row for one prompt: hashed character n-grams, L2-normalised (float32 ``[dim]``).

    >>> features("a cat", 64).shape
    (64,)
    """
    text = f" {views(prompt)[-1]} "
    row = np.zeros(dim, dtype=np.float32)
    for n in range(ngram[0], ngram[1] + 1):
        for i in range(len(text) - n + 1):
            digest = hashlib.blake2b(text[i:i + n].encode(), digest_size=8).digest()
            row[int.from_bytes(digest, "little") % dim] += 1.0
    norm = float(np.linalg.norm(row))
    return row / norm if norm else row


class TextClassifier:
    """One configured model with its own onnxruntime session (created once, reused warm)."""

    def __init__(self, spec: TextModelSpec, model: bytes, threads: int = 1) -> None:
        import onnxruntime as ort  # heavy: only a process with a text model configured pays for it

        self.spec = spec
        self.sha256 = hashlib.sha256(model).hexdigest()
        if spec.sha256 and spec.sha256 != self.sha256:
            raise TextModelConfigError(f"text model {spec.id!r}: file sha256 {self.sha256} is not the pinned {spec.sha256}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except _ort_errors() as exc:
            raise TextModelConfigError(f"text model {spec.id!r} cannot be loaded: {exc}") from exc
        inputs = {i.name: i for i in self._session.get_inputs()}
        self._input = spec.input or self._session.get_inputs()[0].name
        if self._input not in inputs:
            raise TextModelConfigError(f"text model {spec.id!r} has no input {self._input!r}")
        shape = inputs[self._input].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != spec.dim):
            raise TextModelConfigError(f"text model {spec.id!r}: input shape {shape} is not [N, {spec.dim}]")
        outputs = self._session.get_outputs()
        if isinstance(spec.output, int):
            if not 0 <= spec.output < len(outputs):
                raise TextModelConfigError(f"text model {spec.id!r} has no output #{spec.output}")
            self._output = outputs[spec.output].name
        elif spec.output in {o.name for o in outputs}:
            self._output = spec.output
        else:
            raise TextModelConfigError(f"text model {spec.id!r} has no output {spec.output!r}")
        self._column = spec.labels.index(spec.refuse_label)
        self._lock = threading.Lock()

    def score(self, prompt: str) -> TextScore:
        row = features(prompt, self.spec.dim, self.spec.ngram)[None, :]
        with self._lock:
            raw = np.asarray(self._session.run([self._output], {self._input: row})[0], dtype=np.float64).reshape(1, -1)
        if raw.shape[1] != len(self.spec.labels):
            raise TextModelConfigError(f"text model {self.spec.id!r} returned {raw.shape[1]} columns "
                                       f"for {len(self.spec.labels)} labels")
        if self.spec.softmax:
            raw = np.exp(raw - raw.max(axis=1, keepdims=True))
            raw /= raw.sum(axis=1, keepdims=True)
        return TextScore(model=self.spec.id, score=float(raw[0, self._column]), threshold=self.spec.threshold,
                         sha256=self.sha256)


def load_text_models(path: str | Path, threads: int = 1) -> list[TextClassifier]:
    """Every model of a config file, loaded; ``TextModelConfigError`` for anything wrong with it."""
    path = Path(path)
    try:
        config = TextModelsConfig.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError, ValidationError) as exc:
        raise TextModelConfigError(f"text models config {path.name}: {exc}") from exc
    out = []
    for spec in config.models:
        file = (path.parent / spec.path).resolve()
        if not file.is_file():
            raise TextModelConfigError(f"text model {spec.id!r}: file {spec.path!r} not found beside {path.name}")
        out.append(TextClassifier(spec, file.read_bytes(), threads))
    return out


_lock = threading.Lock()


@lru_cache(maxsize=4)
def _cached(path: str, threads: int) -> tuple[TextClassifier, ...]:
    return tuple(load_text_models(path, threads))


def text_scorer(path: str, threads: int = 1):
    """A function scoring a prompt with every configured model (sessions made once per process)."""
    with _lock:
        models = _cached(path, threads)
    return lambda prompt: [m.score(prompt) for m in models]
