"""Post-training static int8 quantization for x86 CPUs, with the accuracy and latency it costs.

torch 2.11-2.14 ship FX graph mode quantization (`torch.ao.quantization.quantize_fx`) with the x86 backend
(fbgemm + onednn kernels); PT2E's X86InductorQuantizer has moved to the separate torchao package, which we do
not depend on. Conv+BN+ReLU triples are fused, activations calibrated per tensor with histogram observers,
weights per channel (`get_default_qconfig_mapping("x86")`). The result is saved as a frozen TorchScript file that
carries our metadata (TorchScript loading rebuilds the graph without running pickled Python code).
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.fx.proxy import TraceError
from torch.utils.data import DataLoader

from ..errors import UserError, first_line
from ..fileio import atomic_write

EXTRA_FILE = "inceptorch.json"


def quant_engine() -> str:
    engines = torch.backends.quantized.supported_engines
    for engine in ("x86", "fbgemm"):
        if engine in engines:
            return engine
    raise UserError(f"this torch build has no x86 int8 kernels (engines: {', '.join(engines)})")


def quantize_int8(model: nn.Module, calibration: Iterable[Tensor], max_batches: int | None = None) -> nn.Module:
    """An int8 copy of `model` (eval graph), its activation ranges calibrated on the `calibration` batches."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = quant_engine()
    torch.backends.quantized.engine = engine
    batches = iter(calibration)
    first = next(batches, None)
    if first is None:
        raise UserError("no calibration images")
    name = getattr(model, "model_name", type(model).__name__)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices (see the module docstring)
        # FX graph mode traces the model symbolically: a forward that branches on tensor values or shapes cannot be
        # traced, and prints its partial graph to stdout on the way; a one-line refusal instead of a traceback.
        try:
            prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping(engine), (first,))
        except (TraceError, NotImplementedError, TypeError, RuntimeError) as exc:
            raise UserError(f"{name} cannot be quantized to int8: torch.fx cannot trace its forward "
                            f"({_first_line(exc)})") from None
        with torch.no_grad():
            prepared(first)
            for i, batch in enumerate(batches, start=2):
                if max_batches is not None and i > max_batches:
                    break
                prepared(batch)
        try:
            return convert_fx(prepared)
        except (NotImplementedError, TypeError, RuntimeError) as exc:
            raise UserError(f"{name} cannot be quantized to int8: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


def save_quantized(model: nn.Module, path: str | Path, input_size: int, meta: dict) -> Path:
    """Trace, freeze and save an int8 model as TorchScript with `meta` (model, classes, preprocessing) inside."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notices; it is still the int8 CPU format
        scripted = torch.jit.freeze(torch.jit.trace(model.eval(), torch.randn(1, 3, input_size, input_size)))
        atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp, _extra_files={EXTRA_FILE: json.dumps(meta)}))
    return Path(path)


def load_quantized(path: str | Path) -> tuple[nn.Module, dict]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"quantized model not found: {path}")
    extra = {EXTRA_FILE: ""}
    torch.backends.quantized.engine = quant_engine()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # noqa: BLE001 - TorchScript raises RuntimeError subclasses for unreadable archives
        raise UserError(f"cannot load {path}: {first_line(exc, 160)}") from None
    return module, json.loads(extra[EXTRA_FILE] or "{}")


@torch.no_grad()
def top1(model: nn.Module, loader: DataLoader) -> float:
    """Top-1 accuracy (a fraction) of `model` on the (images, labels) batches of `loader`."""
    correct = total = 0
    for images, labels in loader:
        correct += int((model(images).argmax(dim=1) == labels).sum())
        total += len(labels)
    if total == 0:
        raise UserError("no validation images")
    return correct / total
