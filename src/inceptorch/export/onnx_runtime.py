"""Running an exported ONNX classifier through ONNX Runtime, with the preprocessing its metadata describes.

`OnnxClassifier` takes the same preprocessed batch as the PyTorch model (N x 3 x H x W, normalised) and returns
the same things: logits, or softmax probabilities as a torch tensor, so `predict` can swap runtimes freely.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from .preprocess import eval_transform


class OnnxClassifier:
    """An ONNX Runtime CPU session over a file written by `export_onnx`.

    Attributes: `class_names` (may be empty), `preprocessing` (the dict of `preprocess.preprocessing`), `meta`.
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise UserError(f"ONNX file not found: {path}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.log_severity_level = 3  # errors only: ORT's warnings are about its own graph rewrites
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types for unreadable or invalid files
            raise UserError(f"cannot load ONNX file {path}: {str(exc).splitlines()[0][:160]}") from None
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

    def logits(self, batch: Tensor | np.ndarray) -> Tensor:
        x = batch.detach().cpu().numpy() if isinstance(batch, Tensor) else np.asarray(batch)
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return torch.from_numpy(out)

    def predict_proba(self, batch: Tensor | np.ndarray) -> Tensor:
        """Softmax probabilities, N x classes, as the PyTorch path computes them."""
        return self.logits(batch).softmax(dim=1)

    __call__ = predict_proba


def _json(text: str | None, default):
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default
