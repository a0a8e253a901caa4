"""Running an exported ONNX classifier through ONNX Runtime, with the preprocessing its metadata describes.

`OnnxClassifier` takes the same preprocessed batch as the PyTorch model (N x 3 x H x W, normalised) and returns
the same things: logits, or softmax probabilities as a torch tensor, so `predict` can swap runtimes freely.
`OnnxLogits` puts a session behind the `nn.Module` call convention, which is how `predict --runtime onnxruntime`
runs it through the same crops, normalisation and averaging as a PyTorch checkpoint (evaluation/ensemble.py).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import UserError, first_line
from ..extras import require
from .preprocess import eval_transform

# What `predict` needs from the file to preprocess as the PyTorch path does (written by `export_onnx`).
REQUIRED_PREPROCESSING = ("input_size", "mean", "std", "crop_pct", "interpolation")


class OnnxClassifier:
    """An ONNX Runtime CPU session over a file written by `export_onnx`.

    Attributes: `class_names` (may be empty), `preprocessing` (the dict of `preprocess.preprocessing`), `meta`.
    `session_config`: ONNX Runtime session config entries, e.g. {"session.intra_op.allow_spinning": "0"} for workers
    that block when idle instead of busy-waiting for the next op (ORT's default).
    """

    def __init__(self, path: str | Path, threads: int | None = None, session_config: dict[str, str] | None = None):
        ort = require("onnxruntime", "running an ONNX model")
        path = Path(path)
        if not path.is_file():
            raise UserError(f"ONNX file not found: {path}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        # ORT's default level already, said explicitly: constant folding, Conv+BN/Add/Relu fusion, NCHWc layouts.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        for key, value in (session_config or {}).items():
            options.add_session_config_entry(key, value)
        options.log_severity_level = 3  # errors only: ORT's warnings are about its own graph rewrites
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types for unreadable or invalid files
            raise UserError(f"cannot load ONNX file {path}: {first_line(exc, 160)}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        self.meta = _json(props.get("inceptorch"), {})
        self.class_names: list[str] = list(_json(props.get("class_names"), self.meta.get("class_names", [])))
        self.preprocessing: dict = _json(props.get("preprocessing"), self.meta.get("preprocessing", {}))
        self.input_name = self.session.get_inputs()[0].name
        self.path = path

    @property
    def transform(self) -> Callable:
        """PIL image -> the normalised tensor this model expects (from the file's metadata)."""
        if not self.preprocessing:
            raise UserError(f"{self.path} carries no preprocessing metadata; it was not written by inceptorch")
        return eval_transform(self.preprocessing)

    def model_cfg(self) -> dict:
        """The preprocessing as a ModelCfg dict (input_size, mean, std, crop_pct, interpolation); a UserError naming
        what is missing when the file was not written by `export_onnx`."""
        missing = [k for k in REQUIRED_PREPROCESSING if k not in self.preprocessing]
        if missing:
            what = "no inceptorch metadata" if not (self.meta or self.preprocessing) else "incomplete metadata"
            raise UserError(f"{self.path} carries {what}: preprocessing {', '.join(missing)} missing (write the file "
                            "with `inceptorch export --format onnx`)")
        return {k: self.preprocessing[k] for k in REQUIRED_PREPROCESSING}

    def class_names_or_indices(self) -> list[str]:
        """The class names, or "0".."n-1" for a file exported without names (as for a PyTorch checkpoint)."""
        if self.class_names:
            return self.class_names
        n = self.meta.get("num_classes") or self.session.get_outputs()[0].shape[1]
        if not isinstance(n, int):
            raise UserError(f"{self.path} records no class names and its output size is not fixed")
        return [str(i) for i in range(n)]

    def logits(self, batch: Tensor | np.ndarray) -> Tensor:
        x = batch.detach().cpu().numpy() if isinstance(batch, Tensor) else np.asarray(batch)
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return torch.from_numpy(out)

    def predict_proba(self, batch: Tensor | np.ndarray) -> Tensor:
        """Softmax probabilities, N x classes, as the PyTorch path computes them."""
        return self.logits(batch).softmax(dim=1)

    __call__ = predict_proba


class OnnxLogits(nn.Module):
    """A session as a module: normalised N x 3 x H x W batch -> logits, on the CPU; it has no parameters."""

    def __init__(self, classifier: OnnxClassifier):
        super().__init__()
        self.classifier = classifier
        self.model_name = classifier.meta.get("model") or "onnx"  # what eval prints beside a member, as for a model

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier.logits(x)


def _json(text: str | None, default):
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default
