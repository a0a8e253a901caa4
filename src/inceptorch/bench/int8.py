"""int8 on the CPU, side by side: what a user would deploy with ONNX Runtime's own tools against what we ship.

Sides, all with the same weights (a trained model file of ours; torchvision's GoogLeNet / Inception-v3 take a copy):
- `tv_ort_fp32`: torchvision's model -> `torch.onnx.export` -> ONNX Runtime, fp32;
- `tv_ort_int8`: that ONNX file -> `onnxruntime.quantization.quantize_static` (QDQ, per-channel, its default types,
  32 calibration images): the anchor a user gets from ONNX Runtime's documentation;
- `ours_ort_fp32`: `inceptorch export --format onnx` -> ONNX Runtime;
- `ours_ort_int8`: `inceptorch export --format onnx --int8` -> ONNX Runtime;
- `ours_fx_int8`: `inceptorch quantize` (PyTorch FX, x86 int8, TorchScript).
Each is timed in one process, interleaved, ONNX Runtime's intra-op spinning off (so that no side's idle threads
take the cores of the next), at each batch size; top-1 of every side is measured on `val` images at the model's
own input size, through the same preprocessing.
"""
from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from ..extras import require
from .hostinfo import environment
from .latency import torch_threads
from .timing import time_interleaved

SIDES = {"tv_ort_fp32": "torchvision -> ONNX Runtime fp32",
         "tv_ort_int8": "torchvision -> ORT quantize_static int8 (anchor)",
         "ours_ort_fp32": "inceptorch export -> ONNX Runtime fp32",
         "ours_ort_int8": "inceptorch export --int8 -> ONNX Runtime",
         "ours_fx_int8": "inceptorch quantize (FX int8, TorchScript)"}
ANCHOR_CALIBRATION_IMAGES = 32


def _images(data: str, split: str, size: int, cfg, count: int | None = None) -> torch.Tensor:
    """Normalised float images [N, 3, size, size] through the model's evaluation transform."""
    from ..data.datasets import build_dataset
    from ..data.transforms import eval_transform

    dataset = build_dataset(data, split)
    transform = eval_transform(cfg, size)
    n = len(dataset) if count is None else min(count, len(dataset))
    return torch.stack([transform(dataset[i][0]) for i in range(n)]), torch.tensor(dataset.targets[:n])


def _export_reference(reference: nn.Module, path: Path, size: int) -> Path:
    """torchvision's model exported as its documentation shows: `torch.onnx.export` with a dynamic batch."""
    example = torch.randn(2, 3, size, size)
    batch = torch.export.Dim("batch", min=1, max=1024)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
        warnings.simplefilter("ignore")
        program = torch.onnx.export(reference.eval(), (example,), dynamo=True, input_names=["input"],
                                    output_names=["logits"], dynamic_shapes=({0: batch},), verbose=False)
    program.save(str(path))
    return path


def _anchor_int8(fp32: Path, out: Path, calibration: torch.Tensor) -> Path:
    """ONNX Runtime's documented static quantization: pre-process, then QDQ with per-channel weights."""
    quantization = require("onnxruntime.quantization", "the int8 comparison")
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = out.with_name(out.stem + ".pre.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    name = onnx.load(str(fp32)).graph.input[0].name
    batches = iter([{name: b.numpy()} for b in calibration.split(8)])

    class Reader:
        def get_next(self):
            return next(batches, None)

    quantization.quantize_static(str(prepared), str(out), Reader(), quant_format=quantization.QuantFormat.QDQ,
                                 per_channel=True)
    return out


def _ort_session(path: Path, threads: int):
    onnxruntime = require("onnxruntime", "the int8 comparison")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def build_sides(model: nn.Module, calibration_data: str, size: int, work: Path, threads: int) -> dict:
    """Every side at input `size`, as a callable on a float32 numpy batch [N, 3, size, size] returning logits."""
    from ..export.onnx import export_onnx
    from ..export.onnx_int8 import quantize_onnx
    from ..export.quantize import quantize_int8
    from .runtimes import same_weights_reference

    calibration, _ = _images(calibration_data, "train", size, model.default_cfg, 128)
    sides = {}
    reference = same_weights_reference(model)
    if reference is not None:
        tv = _export_reference(reference, work / f"tv_{size}.onnx", size)
        sides["tv_ort_fp32"] = _ort_session(tv, threads)
        anchor = _anchor_int8(tv, work / f"tv_{size}_int8.onnx", calibration[:ANCHOR_CALIBRATION_IMAGES])
        sides["tv_ort_int8"] = _ort_session(anchor, threads)
    ours = export_onnx(model, work / f"ours_{size}.onnx", size)
    sides["ours_ort_fp32"] = _ort_session(ours, threads)
    ours_int8 = quantize_onnx(ours, work / f"ours_{size}_int8.onnx", [b.numpy() for b in calibration.split(16)])
    sides["ours_ort_int8"] = _ort_session(ours_int8, threads)
    fx = quantize_int8(model, calibration.split(16))
    with warnings.catch_warnings():  # TorchScript's deprecation notices: `inceptorch quantize` ships this format
        warnings.simplefilter("ignore")
        traced = torch.jit.freeze(torch.jit.trace(fx.eval(), torch.randn(1, 3, size, size)))

    def run_fx(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return traced(torch.from_numpy(x)).numpy()

    sides["ours_fx_int8"] = run_fx
    return sides


def top1(side, images: torch.Tensor, targets: torch.Tensor, batch: int = 32) -> float:
    hits = 0
    for x, y in zip(images.split(batch), targets.split(batch)):
        hits += int((torch.as_tensor(side(np.ascontiguousarray(x.numpy()))).argmax(1) == y).sum())
    return 100.0 * hits / len(targets)


def compare_int8(checkpoint: str, calibration: str, val: str | None = None, time_size: int = 224,
                 threads: int = 2, batch_sizes: tuple[int, ...] = (1, 8), warmup: int = 3, repeats: int = 15,
                 iters: int = 5) -> dict:
    """The sides' medians at each batch size (at `time_size`) and their top-1 on `val` (at the model's size)."""
    from ..export.folder import from_pretrained

    model = from_pretrained(checkpoint)
    if model.model_name not in ("googlenet_bn", "inception_v3"):
        raise UserError(f"the int8 comparison has torchvision's twin for googlenet_bn and inception_v3, not "
                        f"{model.model_name}")
    own = model.default_cfg.input_size
    out: dict = {"model": model.model_name, "checkpoint": str(checkpoint), "threads": threads, "time_size": time_size,
                 "eval_size": own, "batch_sizes": list(batch_sizes),
                 "sides": {k: {"name": v} for k, v in SIDES.items()}}
    with tempfile.TemporaryDirectory() as tmp, torch_threads(threads):
        work = Path(tmp)
        if val:
            images, targets = _images(val, "val", own, model.default_cfg)
            for name, side in build_sides(model, calibration, own, work, threads).items():
                out["sides"][name]["top1"] = top1(side, images, targets)
            out["val_images"] = len(targets)
        sides = build_sides(model, calibration, time_size, work, threads)
        for b in batch_sizes:
            x = np.random.default_rng(0).standard_normal((b, 3, time_size, time_size)).astype(np.float32)
            runs = {name: (lambda side=side, x=x: side(x)) for name, side in sides.items()}
            times = time_interleaved(runs, warmup, repeats, iters, pause_s=0.05)
            anchor = statistics.median(times["tv_ort_int8"]) if "tv_ort_int8" in times else None
            for name, t in times.items():
                median = statistics.median(t)
                out["sides"][name][f"batch{b}_ms"] = median * 1e3
                if anchor:
                    out["sides"][name][f"batch{b}_vs_anchor"] = anchor / median
    env = environment(torch.device("cpu"))
    env["onnxruntime"] = require("onnxruntime", "the int8 comparison").__version__
    out["environment"] = env
    return out


def format_int8(r: dict) -> str:
    cols = [f"batch {b} ms" for b in r["batch_sizes"]] + [f"b{b} vs anchor" for b in r["batch_sizes"]]
    lines = [f"{r['model']} int8 on {r['environment']['device']}, {r['threads']} threads, timed at {r['time_size']} "
             f"px" + (f"; top-1 on {r['val_images']} val images at {r['eval_size']} px" if "val_images" in r else ""),
             f"{'':52s}" + "".join(f"{c:>14s}" for c in cols) + f"{'top-1':>9s}"]
    for side in r["sides"].values():
        if f"batch{r['batch_sizes'][0]}_ms" not in side:
            continue
        row = [f"{side[f'batch{b}_ms']:14.2f}" for b in r["batch_sizes"]]
        row += [f"{side.get(f'batch{b}_vs_anchor', float('nan')):13.2f}x" for b in r["batch_sizes"]]
        top = f"{side['top1']:8.2f}%" if "top1" in side else f"{'-':>9s}"
        lines.append(f"{side['name']:52s}" + "".join(row) + top)
    return "\n".join(lines)
