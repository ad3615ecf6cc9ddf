"""The model contract: a front-end, a network that scores a batch, and class names — whatever the framework.

Kinds:

- ``keras``: ``.keras`` files and legacy Keras-2 ``.hdf5`` checkpoints (fine-tunable);
- ``onnx``: an ``.onnx`` file run with onnxruntime (``pip install codecbench[onnx]``);
- ``python``: an entry point ``package.module:factory`` whose result has ``sample_rate``, ``class_names``
  and ``predict(batch) -> probabilities or logits`` (which one is declared by ``outputs``), so PyTorch or
  any other framework plugs in without codecbench importing it.

Every kind is wrapped as a :class:`ScoringModel`, which maps the model's classes onto the
dataset's by name (or through an explicit class map) and checks every batch of outputs: shape,
finiteness, and softmax applied where the model gives logits.
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from codecbench.errors import ModelError
from codecbench.signal.frontends import FrontEnd, parse_frontend

KINDS = ("keras", "onnx", "python")
OUTPUTS = ("probabilities", "logits")


@dataclasses.dataclass
class ScoringModel:
    """A model as codecbench evaluates it."""

    name: str
    kind: str
    frontend: FrontEnd
    class_names: list[str]
    #: ``batch (N, ...) -> scores (N, classes)`` in the order of :attr:`class_names`
    scorer: Callable[[np.ndarray], Any]
    outputs: str = "probabilities"
    sha256: str = ""
    meta: dict = dataclasses.field(default_factory=dict)
    #: model class -> dataset class, for models trained with other names
    class_map: dict = dataclasses.field(default_factory=dict)
    #: the Keras model, for kind "keras" (fine-tuning and input checks)
    keras_model: Any = None

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) in the model's class order; a wrong shape or non-finite output is an error."""
        if self.keras_model is None and self.kind != "onnx":
            # the evaluator's arrays are read-only and shared by every model; code of the user's own (a PyTorch
            # model normalising in place, say) gets its own writable copy
            batch = np.array(batch)
        try:
            scores = self.scorer(batch)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"model {self.name!r} ({self.kind}) failed on a batch of shape {tuple(batch.shape)}: "
                             f"{type(exc).__name__}: {exc}") from exc
        return self.probabilities(scores, len(batch))

    def probabilities(self, scores, n: int) -> np.ndarray:
        """Check raw outputs of ``n`` examples (shape, finite values) and turn logits into probabilities."""
        try:
            scores = np.asarray(scores, dtype=np.float64)
        except (TypeError, ValueError):
            raise ModelError(f"model {self.name!r}: predict returned {type(scores).__name__} "
                             f"{str(scores)[:40]!r}, expected an array of scores (batch x classes)") from None
        expected = (n, len(self.class_names))
        if scores.shape != expected:
            raise ModelError(f"model {self.name!r}: predict returned shape {scores.shape}, expected {expected} "
                             f"(batch x its {len(self.class_names)} classes)")
        if not np.all(np.isfinite(scores)):
            raise ModelError(f"model {self.name!r}: predict returned {int(np.sum(~np.isfinite(scores)))} NaN/Inf "
                             "values")
        if self.outputs == "logits":
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores /= scores.sum(axis=1, keepdims=True)
        return scores

    def dataset_order(self, dataset_classes: list[str]) -> np.ndarray:
        """Column indices that put this model's classes in the dataset's order; refuses other class sets."""
        mapped = [self.class_map.get(c, c) for c in self.class_names]
        if sorted(mapped) != sorted(dataset_classes) or len(set(mapped)) != len(mapped):
            raise ModelError(f"model {self.name!r} predicts classes {mapped}, the dataset has {list(dataset_classes)}; "
                             "they must be the same set (map them with import-model --class-map FILE)")
        return np.array([mapped.index(c) for c in dataset_classes])

    def check_input(self, sample: np.ndarray) -> None:
        """Refuse a front-end whose output the network cannot take (Keras: its input shape)."""
        if self.keras_model is None:
            return
        shape = tuple(self.keras_model.input_shape[1:])
        if self.frontend.on_device:  # a waveform: what the device front-end makes of it must fit the network
            from codecbench.models.frontend_layer import LogMelLayer

            if sample.ndim != 1:
                raise ModelError(f"model {self.name!r}: its front-end ({self.frontend.describe()}) takes waveforms, "
                                 f"got an input of shape {sample.shape}")
            sample = np.empty(LogMelLayer.from_frontend(self.frontend).compute_output_shape((1, len(sample)))[1:])
        if len(shape) != sample.ndim or any(s is not None and s != d for s, d in zip(shape, sample.shape)):
            raise ModelError(f"model {self.name!r} takes input {shape}, but its front-end "
                             f"({self.frontend.describe()}) gives {sample.shape}")


def from_keras(name: str, model, meta: dict, sha256: str = "") -> ScoringModel:
    from codecbench.models.predict import predict_proba

    classes = meta.get("class_names") or [str(i) for i in range(int(model.output_shape[-1]))]
    frontend = parse_frontend(meta.get("frontend"))
    scorer = (lambda x: predict_proba(model, x)) if not frontend.on_device else _on_device_scorer(model, frontend)
    return ScoringModel(name, "keras", frontend, list(classes), scorer, "probabilities", sha256, meta,
                        dict(meta.get("class_map") or {}), keras_model=model)


def _on_device_scorer(model, frontend: FrontEnd) -> Callable[[np.ndarray], Any]:
    """Scores of waveform batches by ``waveform -> LogMelLayer -> model`` (one wrapper per padded length, so the
    layer always sees a fixed number of samples)."""
    from codecbench.models.frontend_layer import with_frontend_layer
    from codecbench.models.predict import predict_proba

    wrapped: dict[int, Any] = {}

    def score(x: np.ndarray):
        samples = int(x.shape[1])
        if samples not in wrapped:
            wrapped[samples] = with_frontend_layer(model, frontend, samples)
        return predict_proba(wrapped[samples], x)
    return score


def load_onnx(name: str, path: Path, meta: dict, sha256: str = "") -> ScoringModel:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError(f"model {name!r} is an ONNX model, and onnxruntime is not installed: "
                         "pip install 'codecbench[onnx]' (or pip install onnxruntime)") from None
    try:
        session = ort.InferenceSession(str(path), providers=ort.get_available_providers())
    except Exception as exc:
        raise ModelError(f"model {name!r}: onnxruntime cannot load {path} ({exc})") from None
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelError(f"model {name!r}: {path} has {len(inputs)} inputs; codecbench feeds one (the front-end's)")
    spec = inputs[0]
    if spec.type != "tensor(float)":
        raise ModelError(f"model {name!r}: input {spec.name!r} is {spec.type}, expected tensor(float) (float32)")
    frontend = parse_frontend(meta.get("frontend"))
    classes = meta.get("class_names")
    if not classes:
        raise ModelError(f"model {name!r}: an ONNX model needs its class names (import-model --classes)")
    out_name = session.get_outputs()[0].name
    expected_rank = 2 if frontend.kind == "waveform" else 4
    fixed_batch = spec.shape[0] if spec.shape and isinstance(spec.shape[0], int) else None
    if fixed_batch is not None and fixed_batch != 1:
        raise ModelError(f"model {name!r}: input {spec.name!r} has a fixed batch of {fixed_batch} ({spec.shape}); "
                         "export it with a dynamic batch axis (torch.onnx.export(..., dynamic_axes={...: {0: "
                         "'batch'}})) or a batch of 1, which codecbench runs clip by clip")

    def run(batch: np.ndarray):
        return session.run([out_name], {spec.name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    def score(batch: np.ndarray):
        if batch.ndim != expected_rank or len(spec.shape) != batch.ndim or any(
                isinstance(s, int) and s != d for s, d in zip(spec.shape[1:], batch.shape[1:])):
            raise ModelError(f"model {name!r}: input {spec.name!r} has shape {spec.shape}, but its front-end "
                             f"({frontend.describe()}) gives batches of shape {tuple(batch.shape)}")
        if fixed_batch == 1:  # a PyTorch export's default: one clip at a time
            return np.concatenate([run(batch[i:i + 1]) for i in range(len(batch))])
        return run(batch)

    return ScoringModel(name, "onnx", frontend, list(classes), score, _outputs(name, meta), sha256, meta,
                        dict(meta.get("class_map") or {}))


def load_python(name: str, meta: dict, sha256: str = "") -> ScoringModel:
    entry = meta.get("entry_point", "")
    module_name, _, attr = entry.partition(":")
    if not module_name or not attr:
        raise ModelError(f"model {name!r}: entry point {entry!r} is not of the form package.module:factory")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"model {name!r}: cannot import {entry!r} ({type(exc).__name__}: {exc})") from None
    try:
        obj = factory(**meta.get("kwargs", {}))
    except Exception as exc:
        raise ModelError(f"model {name!r}: the factory {entry!r} raised {type(exc).__name__}: {exc}") from exc
    return from_object(obj, name=name, meta=meta, sha256=sha256)


def from_object(obj, *, name: str | None = None, meta: dict | None = None, sha256: str = "") -> ScoringModel:
    """Wrap any object with ``sample_rate``, ``class_names`` and ``predict(batch)`` (optionally ``outputs`` and
    ``frontend``); its front-end defaults to the waveform at its sample rate."""
    meta = dict(meta or {})
    name = name or getattr(obj, "name", None) or type(obj).__name__
    missing = [a for a in ("class_names", "predict") if not hasattr(obj, a)]
    if missing:
        raise ModelError(f"model {name!r}: the object lacks {', '.join(missing)}; a Python model needs sample_rate, "
                         "class_names and predict(batch)")
    frontend = meta.get("frontend") or getattr(obj, "frontend", None)
    if frontend is None:
        if not hasattr(obj, "sample_rate"):
            raise ModelError(f"model {name!r}: give it a sample_rate (waveform input) or a frontend")
        try:
            rate = int(obj.sample_rate)
        except (TypeError, ValueError):
            raise ModelError(f"model {name!r}: sample_rate {obj.sample_rate!r} is not a number of samples per "
                             "second") from None
        frontend = {"kind": "waveform", "sample_rate": rate}
    outputs = meta.get("outputs") or getattr(obj, "outputs", "probabilities")
    meta.setdefault("outputs", outputs)
    return ScoringModel(name, meta.get("kind", "python"), parse_frontend(frontend), list(obj.class_names),
                        obj.predict, _outputs(name, meta), sha256, meta, dict(meta.get("class_map") or {}))


def _outputs(name: str, meta: dict) -> str:
    outputs = meta.get("outputs", "probabilities")
    if outputs not in OUTPUTS:
        raise ModelError(f"model {name!r}: outputs {outputs!r}; expected one of {', '.join(OUTPUTS)}")
    return outputs


def validate(model: ScoringModel, dataset_classes: list[str] | None = None) -> None:
    """Run the model once on a second of silence through its front-end: it must give one finite score per class
    (and, with ``dataset_classes``, classes that map onto them)."""
    signal = np.zeros(44100, dtype=np.float32)
    signal[::441] = 0.01  # not all zeros: a constant clip normalises to zeros, fine, but exercise the path
    x = model.frontend(signal, 44100)[None]
    model.check_input(x[0])
    model.predict(x)
    if dataset_classes is not None:
        model.dataset_order(dataset_classes)
