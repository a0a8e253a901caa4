"""ONNX export: the eval graph (logits only) with a dynamic batch dimension and self-describing metadata.

We use torch's dynamo exporter (`torch.onnx.export(..., dynamo=True)`, built on torch.export and onnxscript) at
opset 18, its lowest native opset: asking it for 17 triggers a down-conversion that fails on Reduce* axes and
falls back to 18 anyway. Works the same on torch 2.11 and 2.14. The legacy TorchScript exporter (opset 17) is
used only when onnxscript is not installed; torch has deprecated it.
The file's `metadata_props` carry the class names and preprocessing (see `onnx_runtime.OnnxClassifier`).
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import UserError
from ..extras import require
from ..fileio import atomic_write
from ._deploy import inference_copy
from .parity import Parity, parity
from .preprocess import preprocessing

OPSET = 18
META_KEY = "inceptorch"
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def export_onnx(model: nn.Module, path: str | Path, input_size: int | None = None,
                class_names: list[str] | None = None, check: bool = True) -> Path:
    """Write `model`'s eval graph to `path` (input `input` [batch, 3, H, W] -> `logits` [batch, classes]).

    The model is put in eval mode (dropout off, BN running statistics) and must return one logits tensor.
    """
    onnx = require("onnx", "ONNX export")
    model = inference_copy(model)
    pre = preprocessing(model, input_size) if hasattr(model, "default_cfg") else {"input_size": input_size}
    size = pre["input_size"]
    if not size:
        raise UserError("export_onnx needs an input size for a model without default_cfg")
    example = torch.randn(2, getattr(model, "in_chans", 3), size, size)  # batch 2: 1 would be specialised
    with torch.no_grad():
        out = model(example)
    if not isinstance(out, Tensor):
        raise UserError(f"the model returns {type(out).__name__}, not a logits tensor; export needs eval logits")
    proto = _export_proto(calibrated(_batchnorm_folded(model)), example)
    names = list(class_names if class_names is not None else getattr(model, "class_names", None) or [])
    meta = {"model": getattr(model, "model_name", type(model).__name__),
            "model_kwargs": getattr(model, "model_kwargs", {}), "class_names": names, "preprocessing": pre,
            "num_classes": int(out.shape[1]), "opset": _opset(proto)}
    if getattr(model, "calibration", None):  # the graph's logits are divided already: readers must not again
        meta["calibration"] = {**model.calibration, "in_graph": True}
    for key, value in {META_KEY: meta, "class_names": names, "preprocessing": pre}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    proto.doc_string = f"inceptorch {meta['model']}: eval graph, logits only"
    if check:
        onnx.checker.check_model(proto, full_check=True)
    atomic_write(path, lambda tmp: onnx.save(proto, tmp))
    return Path(path)


class TemperatureScaled(nn.Module):
    """logits / T: a calibrated model's temperature (`evaluation/calibration.py`) inside the exported graph, so
    that every runtime's softmax gives the calibrated probabilities."""

    def __init__(self, model: nn.Module, temperature: float):
        super().__init__()
        self.model, self.temperature = model, float(temperature)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) / self.temperature


def calibrated(model: nn.Module) -> nn.Module:
    """`model`, divided by its recorded temperature when it has one."""
    calibration = getattr(model, "calibration", None)
    return TemperatureScaled(model, calibration["temperature"]) if calibration else model


def _batchnorm_folded(model: nn.Module) -> nn.Module:
    """A copy of `model` with each conv's BN folded into it (`fast.fold_all_batchnorms`); `model` if it has none.

    The exporter folds them too: the file has the same operators, node for node, and the same logits within fp32
    rounding. Tracing a graph without them takes about a third less time (BENCHMARKS.md).
    """
    from ..fast.optimize import fold_all_batchnorms

    folded = copy.deepcopy(model)
    return folded if fold_all_batchnorms(folded) else model


def _export_proto(model: nn.Module, example: Tensor):
    import onnx

    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's dependency)
    except ImportError:
        return _export_legacy(model, example)
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # deprecation chatter of torch.export internals, not the user's concern
        program = torch.onnx.export(model, (example,), dynamo=True, opset_version=OPSET, verbose=False,
                                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes=({0: batch},))
    return onnx.load_from_string(program.model_proto.SerializeToString())


def _export_legacy(model: nn.Module, example: Tensor):
    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=17,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    return onnx.load_from_string(buffer.getvalue())


def _opset(proto) -> int:
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)


def onnx_parity(model: nn.Module, path: str | Path, input_size: int, batch_sizes: tuple[int, ...] = (1, 4),
                seed: int = 0) -> dict[int, Parity]:
    """ONNX Runtime's logits against PyTorch's, per batch size: the largest difference and the logits' scale."""
    from .onnx_runtime import OnnxClassifier

    session = OnnxClassifier(path)
    gen = torch.Generator().manual_seed(seed)
    results = {}
    for b in batch_sizes:
        x = torch.randn(b, 3, input_size, input_size, generator=gen)
        with torch.no_grad():
            ref = calibrated(model.eval())(x)
        results[b] = parity(session.logits(x), ref)
    return results
