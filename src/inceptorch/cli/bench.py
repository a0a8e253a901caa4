"""`inceptorch bench --model NAME`: our model against torchvision's / timm's implementation, timed interleaved.

`--runtime onnxruntime` times one model's CPU inference paths instead: ONNX Runtime, eager PyTorch and ours optimized.
"""
from __future__ import annotations

import json

from ..bench.references import REFERENCES
from ..errors import UserError
from ..precision import PRECISIONS
from ._common import add_device_argument

AUTO = {"auto": None, "on": True, "off": False}  # --matmul-1x1 / --winograd -> optimize's argument


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="time our model against the reference implementation (speed-up > 1: ours"
                                            " is faster)")
    p.add_argument("--model", default=None,
                   help=f"one of: {', '.join(REFERENCES)} (--runtime onnxruntime: any registered model)")
    p.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch",
                   help="torch: ours vs the reference library; onnxruntime: ONNX Runtime vs eager vs optimized "
                        "PyTorch, CPU fp32 inference (--threads defaults to 2)")
    p.add_argument("--compare", choices=("torchvision", "timm"), default=None,
                   help="library of the reference (default: torchvision where it has the model, else timm)")
    p.add_argument("--mode", choices=("infer", "train"), default="infer",
                   help="infer: forward only; train: forward + backward + optimizer step")
    add_device_argument(p, default="cpu")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32",
                   help="infer: both models cast to it; train: autocast to it")
    p.add_argument("--compile", nargs="?", const="both", choices=("both", "ours"), default=None,
                   help="torch.compile both sides, or only ours (`--compile ours`); inference compiles with freezing")
    p.add_argument("--compile-mode", default=None,
                   choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
                   help="torch.compile mode for every compiled side (default: inductor's default)")
    p.add_argument("--input-size", type=int, default=None, help="square input size (default: the model's)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per side before timing")
    p.add_argument("--repeats", type=int, default=10, help="timed rounds; the median is reported")
    p.add_argument("--iters", type=int, default=5, help="calls per side per round")
    p.add_argument("--no-merge", action="store_true",
                   help="inference: optimize without merging the sibling 1x1 convs (BN folding, channels_last only)")
    p.add_argument("--matmul-1x1", choices=("auto", "on", "off"), default="auto",
                   help="inference: run the 1x1 convs as matrix products over the NHWC view (auto: on an Intel CPU "
                        "only, where it was measured faster)")
    p.add_argument("--winograd", choices=("auto", "on", "off"), default="auto",
                   help="inference, compiled: 3x3 stride-1 convs on 14x14 to 56x56 maps as Winograd F(2x2, 3x3) "
                        "(auto: on the CPU)")
    p.add_argument("--no-optimize", action="store_true",
                   help="time our plain model (no BN folding / branch merging / fast training step)")
    p.add_argument("--reference-nchw", action="store_true",
                   help="run the reference in NCHW (default: channels_last, its faster eager layout)")
    p.add_argument("--json", action="store_true", help="machine-readable output: fields ours, reference, speedup")
    int8 = p.add_argument_group("int8 on the CPU (--runtime onnxruntime --int8)")
    int8.add_argument("--int8", action="store_true",
                      help="time torchvision -> ORT fp32 and int8 (ORT's quantize_static, the anchor) against our "
                           "ONNX fp32, our int8 ONNX and our FX int8, with the same weights; top-1 of each on --val")
    int8.add_argument("--checkpoint", default=None, help="with --int8: the trained model file or run folder")
    int8.add_argument("--calibration", default=None, metavar="DATA", help="with --int8: calibration images")
    int8.add_argument("--val", default=None, metavar="DATA", help="with --int8: images to score each side on")
    int8.add_argument("--batch-sizes", default="1,8", help="with --int8: comma-separated (default 1,8)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bench.speedup import BenchConfig, format_result, run_bench

    if args.int8:
        return run_int8(args)
    if (args.checkpoint or args.calibration or args.val) and not args.int8:
        raise UserError("--checkpoint, --calibration and --val go with --runtime onnxruntime --int8")
    if not args.model:
        raise UserError("give --model (or --runtime onnxruntime --int8 --checkpoint RUN)")
    if args.runtime == "onnxruntime":
        return run_onnxruntime(args)
    cfg = BenchConfig(model=args.model, compare=args.compare, mode=args.mode, device=args.device,
                      batch_size=args.batch_size, precision=args.precision, compile=args.compile is not None,
                      compile_reference=args.compile == "both", compile_mode=args.compile_mode,
                      input_size=args.input_size, threads=args.threads, warmup=args.warmup, repeats=args.repeats,
                      iters=args.iters, optimize=not args.no_optimize, merge=not args.no_merge,
                      matmul_1x1=AUTO[args.matmul_1x1], winograd=AUTO[args.winograd],
                      reference_channels_last=not args.reference_nchw)
    result = run_bench(cfg)
    print(json.dumps(result, indent=1) if args.json else format_result(result))
    return 0


def run_int8(args) -> int:
    from ..bench.int8 import compare_int8, format_int8

    if args.runtime != "onnxruntime" or not args.checkpoint or not args.calibration:
        raise UserError("--int8 goes with --runtime onnxruntime --checkpoint RUN --calibration DATA")
    try:
        sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    except ValueError:
        raise UserError(f"--batch-sizes takes numbers like 1,8, not {args.batch_sizes!r}") from None
    result = compare_int8(args.checkpoint, args.calibration, args.val, args.input_size or 224, args.threads or 2,
                          sizes, args.warmup, args.repeats, args.iters)
    print(json.dumps(result, indent=1) if args.json else format_int8(result))
    return 0


def run_onnxruntime(args) -> int:
    from ..bench.runtimes import compare_runtimes, format_runtimes

    # The comparison is fixed to CPU fp32 inference with each runtime's own defaults; say so instead of ignoring.
    off = {"--compare": args.compare is not None, "--mode train": args.mode != "infer",
           f"--device {args.device}": args.device != "cpu", f"--precision {args.precision}": args.precision != "fp32",
           "--compile ours": args.compile == "ours", "--compile-mode": args.compile_mode is not None,
           "--no-optimize": args.no_optimize, "--no-merge": args.no_merge,
           f"--matmul-1x1 {args.matmul_1x1}": args.matmul_1x1 != "auto",
           f"--winograd {args.winograd}": args.winograd != "auto",
           "--reference-nchw": args.reference_nchw}
    given = [flag for flag, on in off.items() if on]
    if given:
        raise UserError(f"--runtime onnxruntime times CPU fp32 inference; {', '.join(given)} does not apply")
    result = compare_runtimes(args.model, args.input_size, args.threads or 2, args.batch_size, args.warmup,
                              args.repeats, args.iters, compile=args.compile is not None)
    print(json.dumps(result, indent=1) if args.json else format_runtimes(result))
    return 0
