"""`inceptorch bench`: our model against the reference implementation of the same architecture.

Both sides are built here with the same input size and the auxiliary heads off, warmed up, and then timed in
alternating order inside one process (`timing.time_interleaved`), so that a slow moment of a shared machine hits both
sides; the reported time is the median over repeats. A speed-up above 1 means ours is faster.
"""
from __future__ import annotations

import contextlib
import copy
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..devices import prefers_channels_last, resolve_device
from ..errors import UserError
from ..fast.compiled import CAN_SKIP_GUARDS, compile_for_inference, inference_compile_options
from ..fast.optimize import PointwiseConvAsMatmul, drop_aux_heads, fold_all_batchnorms, optimize
from ..fast.train_step import TrainStep
from ..fast.winograd import WinogradConv2d
from ..models import create_model
from ..precision import PRECISIONS, torch_dtype
from .hostinfo import environment
from .references import build_reference
from .timing import time_interleaved


@dataclass
class BenchConfig:
    model: str
    compare: str | None = None  # library of the reference; None: the first one REFERENCES lists
    mode: str = "infer"  # "infer" or "train" (forward + backward + optimizer step)
    device: str = "cpu"
    batch_size: int = 1
    precision: str = "fp32"
    compile: bool = False  # torch.compile ours
    compile_reference: bool = True  # ... and the reference, when compile is on (False: ours compiled vs eager)
    compile_mode: str | None = None  # torch.compile mode for every compiled side (None: inductor's default)
    input_size: int | None = None  # default: the model's
    num_classes: int = 1000
    threads: int | None = None  # torch.set_num_threads; None leaves torch's default
    warmup: int = 3
    repeats: int = 10
    iters: int = 5  # timed calls per repeat
    optimize: bool = True  # infer: ours through fast.optimize; train: the layout train uses (the step is train's own)
    merge: bool = True  # with optimize, infer: merge the sibling 1x1 convs (False: BN folding and channels_last only)
    matmul_1x1: bool | None = None  # with optimize, infer: 1x1 convs as GEMMs (None: optimize's default, Intel CPU)
    winograd: bool | None = None  # with optimize, infer: compiled 3x3 convs as Winograd (None: on the CPU)
    reference_channels_last: bool = True  # the reference as a user would run it fast: NHWC eager
    model_kwargs: dict = field(default_factory=dict)  # extra builder options for ours (tests use tiny widths)


@dataclass
class Side:
    name: str
    time_ms: float  # median seconds per call, in ms (per step in train mode)
    min_ms: float
    images_per_s: float
    peak_mem_mb: float | None  # CUDA: max_memory_allocated during one call; CPU: not measured (None)
    times_ms: list[float]


def build_ours(cfg: BenchConfig) -> nn.Module:
    kwargs = {"num_classes": cfg.num_classes, "aux_logits": False, **cfg.model_kwargs}
    try:
        return create_model(cfg.model, **kwargs)
    except TypeError:  # a family without auxiliary heads has no aux_logits option
        kwargs.pop("aux_logits")
        return create_model(cfg.model, **kwargs)


def optimize_unmerged(model: nn.Module, matmul_1x1: bool | None = None, winograd: bool | None = None) -> nn.Module:
    """`optimize` without merging the sibling 1x1 convs (BN folded, the CPU paths, channels_last): what merging gives
    is the difference. `optimize` merges only units whose BN is folded; folding here, before it, keeps them apart."""
    model = copy.deepcopy(model).eval()
    drop_aux_heads(model)
    fold_all_batchnorms(model)
    return optimize(model, fold_bn=False, inplace=True, matmul_1x1=matmul_1x1, winograd=winograd)


def _peak_memory_mb(run: Callable[[], object], device: torch.device) -> float | None:
    if device.type != "cuda":
        return None  # the CPU allocator keeps no peak statistics; an RSS delta would mostly measure the allocator
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def _infer_runner(model: nn.Module, x: Tensor, dtype: torch.dtype, compile_: bool, compile_mode: str | None = None,
                  ours: bool = False) -> Callable[[], object]:
    """One side's forward; compiled, ours goes through `compile_for_inference` (what our users call), the
    reference through plain `torch.compile` under the same inductor settings (`inference_compile_config`)."""
    model = model.to(dtype=dtype).eval()
    if compile_:
        fn = compile_for_inference(model, compile_mode) if ours else torch.compile(model, mode=compile_mode)
    else:
        fn = model

    def run() -> Tensor:
        with torch.inference_mode():
            return fn(x)

    return run


def _reference_train_runner(model: nn.Module, x: Tensor, y: Tensor, cfg: BenchConfig,
                            device: torch.device) -> Callable[[], object]:
    """The reference trained the way its own docs show: eager (or compiled) step, default SGD, autocast if asked."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    dtype = torch_dtype(cfg.precision)
    forward = torch.compile(model, mode=cfg.compile_mode) if cfg.compile and cfg.compile_reference else model

    def run() -> Tensor:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            out = forward(x)
            logits = out if isinstance(out, Tensor) else out[0]
            loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return run


def inference_compile_config(enabled: bool, device: torch.device):
    """`fast.compiled`'s inductor settings (freezing; the C++ wrapper on CPU) for every side compiled inside,
    scoped so the process-wide config is left alone: the reference gets the same compiler settings as ours."""
    if not enabled:
        return contextlib.nullcontext()
    import torch._inductor.config as inductor_config

    return inductor_config.patch(inference_compile_options(device))


def run_bench(cfg: BenchConfig) -> dict:
    """Build, warm up and time both sides; the JSON-ready result (`ours`, `reference`, `speedup`, settings)."""
    if cfg.mode not in ("infer", "train"):
        raise UserError(f"--mode must be infer or train, not {cfg.mode!r}")
    if cfg.precision not in PRECISIONS:
        raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, not {cfg.precision!r}")
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ours = build_ours(cfg)
    size = cfg.input_size or ours.default_cfg.input_size
    reference, ref_label = build_reference(cfg, size)
    ours, reference = ours.to(device), reference.to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(cfg.batch_size, 3, size, size, generator=g).to(device)
    x_ref = x.contiguous(memory_format=torch.channels_last) if cfg.reference_channels_last else x
    if cfg.reference_channels_last:
        reference = reference.to(memory_format=torch.channels_last)
    dtype = torch_dtype(cfg.precision)
    if cfg.mode == "infer":
        # Plain ours runs in the reference's memory format: then the two differ only in implementation.
        ours_cl = cfg.optimize or cfg.reference_channels_last
        ours_label = ("ours (optimized)" if cfg.merge else "ours (optimized, unmerged)") if cfg.optimize else \
            f"ours ({'channels_last' if ours_cl else 'nchw'})"
        if cfg.optimize:
            ours = (optimize if cfg.merge else optimize_unmerged)(ours, matmul_1x1=cfg.matmul_1x1,
                                                                  winograd=cfg.winograd)
        elif ours_cl:
            ours = ours.to(memory_format=torch.channels_last)
        x_ours = x.contiguous(memory_format=torch.channels_last) if ours_cl else x
        runs = {ours_label: _infer_runner(ours, x_ours.to(dtype), dtype, cfg.compile, cfg.compile_mode, ours=True),
                ref_label: _infer_runner(reference, x_ref.to(dtype), dtype, cfg.compile and cfg.compile_reference,
                                         cfg.compile_mode)}
    else:
        y = torch.randint(0, cfg.num_classes, (cfg.batch_size,), generator=g).to(device)
        ours_label = "ours (fast step)" if cfg.optimize else "ours"
        # The memory format `inceptorch train` would use for this model on this device.
        ours_cl = cfg.optimize and prefers_channels_last(device, ours.default_cfg)
        step = TrainStep(ours, precision=cfg.precision, channels_last=ours_cl, compile=cfg.compile,
                         compile_mode=cfg.compile_mode)
        # Each step gets its batch in its own format: a conversion inside a step would time (and hold) a copy.
        x_ours = x.contiguous(memory_format=torch.channels_last) if ours_cl else x
        runs = {ours_label: lambda: step(x_ours, y),
                ref_label: _reference_train_runner(reference, x_ref, y, cfg, device)}
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    with inference_compile_config(cfg.compile and cfg.mode == "infer", device):
        times = time_interleaved(runs, cfg.warmup, cfg.repeats, cfg.iters, sync)
        sides = []
        for label, run in runs.items():
            med = statistics.median(times[label])
            sides.append(Side(label, med * 1e3, min(times[label]) * 1e3, cfg.batch_size / med,
                              _peak_memory_mb(run, device), [t * 1e3 for t in times[label]]))
    result = {k: v for k, v in asdict(cfg).items() if k != "model_kwargs"}
    # What optimize chose for `matmul_1x1` / `winograd: None`, and whether our compiled calls skipped dynamo's guard
    # check (compile_for_inference, where this torch can), so that a recorded figure says which path it timed.
    result.update(matmul_1x1=any(isinstance(m, PointwiseConvAsMatmul) for m in ours.modules()),
                  winograd=any(isinstance(m, WinogradConv2d) for m in ours.modules()),
                  skip_guards=cfg.mode == "infer" and cfg.compile and CAN_SKIP_GUARDS, input_size=size,
                  threads=torch.get_num_threads(), reference_impl=ref_label,
                  reference_memory_format="channels_last" if cfg.reference_channels_last else "nchw",
                  ours=asdict(sides[0]), reference=asdict(sides[1]), speedup=sides[1].time_ms / sides[0].time_ms,
                  environment=environment(device))
    return result


def _compiled(r: dict) -> str:
    if not r["compile"]:
        return "eager"
    how = "both compiled" if r["compile_reference"] else "ours compiled, reference eager"
    return f"{how} (mode {r['compile_mode']})" if r.get("compile_mode") else how


def format_result(r: dict) -> str:
    """The human-readable report: one line per side, then the speed-up."""
    unit = "latency ms" if r["mode"] == "infer" else "ms/step"
    head = (f"{r['model']} {r['mode']} on {r['environment']['device']} ({r['device']}, {r['threads']} threads), "
            f"{r['precision']}, batch {r['batch_size']}, {r['input_size']}x{r['input_size']}, "
            f"{_compiled(r)}; median of {r['repeats']} x {r['iters']} interleaved calls")
    lines = [head, f"{'':40s}{unit:>12s}{'min ms':>10s}{'images/s':>11s}{'peak MiB':>10s}"]
    for side in (r["ours"], r["reference"]):
        name = side["name"] if side is r["ours"] else f"{side['name']} ({r['reference_memory_format']})"
        mem = f"{side['peak_mem_mb']:.0f}" if side["peak_mem_mb"] is not None else "n/a"
        lines.append(f"{name:40s}{side['time_ms']:12.2f}{side['min_ms']:10.2f}{side['images_per_s']:11.1f}{mem:>10s}")
    lines.append(f"speed-up of ours over the reference: {r['speedup']:.2f}x")
    return "\n".join(lines)

