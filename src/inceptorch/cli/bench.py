"""`inceptorch bench --model NAME`: our model against torchvision's / timm's implementation, timed interleaved."""
from __future__ import annotations

import json

from ..bench import DTYPES, REFERENCES, BenchConfig, format_result, run_bench


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="time our model against the reference implementation (speed-up > 1: ours"
                                            " is faster)")
    p.add_argument("--model", required=True, help=f"one of: {', '.join(REFERENCES)}")
    p.add_argument("--compare", choices=("torchvision", "timm"), default=None,
                   help="library of the reference (default: torchvision where it has the model, else timm)")
    p.add_argument("--mode", choices=("infer", "train"), default="infer",
                   help="infer: forward only; train: forward + backward + optimizer step")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--precision", choices=tuple(DTYPES), default="fp32",
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
    p.add_argument("--no-optimize", action="store_true",
                   help="time our plain model (no BN folding / branch merging / fast training step)")
    p.add_argument("--reference-nchw", action="store_true",
                   help="run the reference in NCHW (default: channels_last, its faster eager layout)")
    p.add_argument("--json", action="store_true", help="machine-readable output: fields ours, reference, speedup")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = BenchConfig(model=args.model, compare=args.compare, mode=args.mode, device=args.device,
                      batch_size=args.batch_size, precision=args.precision, compile=args.compile is not None,
                      compile_reference=args.compile == "both", compile_mode=args.compile_mode,
                      input_size=args.input_size, threads=args.threads, warmup=args.warmup, repeats=args.repeats,
                      iters=args.iters, optimize=not args.no_optimize, reference_channels_last=not args.reference_nchw)
    result = run_bench(cfg)
    print(json.dumps(result, indent=1) if args.json else format_result(result))
    return 0
