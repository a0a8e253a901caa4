"""`inceptorch train`: train a model on a folder, a CSV list or an embedded data set, with a recipe."""
from __future__ import annotations

import sys

import yaml

from ..errors import UserError
from ..train.config import read_recipe, resolve
from ._data_flags import add_pixel_limit_argument, apply_pixel_limit


def add_train_options(p, with_model: bool = True) -> None:
    """Options shared by `train` and `compare`; None means "not given", so the recipe's value stands."""
    if with_model:
        p.add_argument("--model", default=None, help="a registered model name (see `inceptorch models`)")
    p.add_argument("--data", default=None, help="an ImageFolder tree (train/ val/), one folder of class folders, a "
                                                "CSV list of path,label rows, or `digits` (embedded)")
    p.add_argument("--config", default=None, help="a recipe: a bundled name (googlenet_paper, inception_v3_paper, "
                                                  "modern, demo) or a YAML file")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="base learning rate")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    p.add_argument("--pretrained", default=None, metavar="WEIGHTS_FILE",
                   help="fine-tune from a local weights file (ours, torchvision's or timm's); the classifier and "
                        "auxiliary classifiers are reset to the data's classes")
    p.add_argument("--aug", choices=("paper", "inception_v3", "light", "none"), default=None,
                   help="augmentation preset")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--workers", type=int, default=None,
                   help="data-loading processes (0: in the main process; default: 0 on the CPU, on a GPU one per "
                        "CPU core this process may use less one, at most 16)")
    p.add_argument("--gpu-decode", action="store_true", default=None,
                   help="decode JPEGs and augment on the device (nvJPEG on CUDA; on CPU the same code runs there); "
                        "workers only read files")
    p.add_argument("--val-split", type=float, default=None, help="validation fraction for one folder or a CSV list")
    p.add_argument("--accum-steps", type=int, default=None, help="gradient accumulation: batches per optimizer step")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                   help="also checkpoint every STEPS optimizer steps (epoch ends always checkpoint)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--input-size", type=int, default=None, help="square input size (default: the model's)")
    p.add_argument("--width", type=float, default=None, help="channel width multiplier (model option)")
    p.add_argument("--small-input", action="store_true", default=None,
                   help="GoogLeNet's small-input stem for 28-64 px images (model option)")
    p.add_argument("--aux", dest="aux_logits", action="store_true", default=None, help="build auxiliary heads")
    p.add_argument("--no-aux", dest="aux_logits", action="store_false", help="build no auxiliary heads")
    p.add_argument("--model-kwarg", action="append", default=[], metavar="KEY=VALUE",
                   help="another builder option, e.g. drop_rate=0.2 (repeatable; the value is read as YAML)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any recipe setting, e.g. weight_decay=1e-4 (repeatable; the value is read as YAML)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch only)")
    p.add_argument("--skip-bad-images", action="store_true", default=None,
                   help="leave out images that do not decode (each is logged and counted) instead of stopping")
    p.add_argument("--max-bad-fraction", type=float, default=None, metavar="F",
                   help="with --skip-bad-images, still stop if more than this fraction is bad (default: 0.01)")
    add_pixel_limit_argument(p)


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model with a recipe; checkpoints, metrics and curves in a folder")
    add_train_options(p)
    p.add_argument("--output", default=None, metavar="RUN_DIR", help="the run folder")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last checkpoint, exactly (flags may raise --epochs)")
    p.set_defaults(func=run)


def parse_pairs(pairs: list[str], flag: str) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} expects KEY=VALUE, not {pair!r}")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raise UserError(f"{flag} {pair!r}: the value is not valid YAML") from None
    return out


def overrides_from_args(args) -> dict:
    """Settings the command line gives, recipe keys -> values (None: not given)."""
    model_kwargs = {k: getattr(args, k) for k in ("width", "small_input", "aux_logits") if getattr(args, k) is not None}
    model_kwargs.update(parse_pairs(args.model_kwarg, "--model-kwarg"))
    over = parse_pairs(args.set, "--set")
    flags = {k: getattr(args, k, None) for k in ("model", "data", "epochs", "batch_size", "lr", "device", "pretrained",
                                                 "aug", "seed", "workers", "gpu_decode", "val_split", "accum_steps",
                                                 "checkpoint_every", "compile", "input_size", "output",
                                                 "skip_bad_images", "max_bad_fraction")}
    over.update({k: v for k, v in flags.items() if v is not None})
    if model_kwargs:
        over["model_kwargs"] = {**over.get("model_kwargs", {}), **model_kwargs}
    return over


def run(args) -> int:
    from ..train.config import load_saved_config
    from ..train.distributed import dist_env
    from ..train.run import Interrupted, train

    apply_pixel_limit(args)
    over = overrides_from_args(args)
    if args.resume:
        if args.config:
            raise UserError("--resume continues with the run's saved config.yaml; drop --config")
        if args.output and args.output != args.resume:
            raise UserError("--resume writes into its own run folder; drop --output")
        over["output"] = args.resume
        recipe, where = load_saved_config(args.resume), f"{args.resume}/config.yaml"
    else:
        recipe, where = (read_recipe(args.config), args.config) if args.config else ({}, "config")
    cfg = resolve(recipe, over, where)
    resume = bool(args.resume) or _elastic_restart(cfg.output)
    try:
        result = train(cfg, resume=resume, progress=not args.no_progress)
    except Interrupted as exc:
        print(f"inceptorch train: {exc}", file=sys.stderr)
        return exc.exit_code
    run_dir = result.run_dir
    if dist_env().is_main:
        print(f"best val top-1 {result.best_top1:.2f}% at epoch {result.best_epoch} ({result.seconds:.0f}s); "
              f"run folder {run_dir}: best.safetensors, last.safetensors, metrics.csv, curves.png")
    return 0


def _elastic_restart(output: str) -> bool:
    """torchrun --max-restarts re-runs the same command after a worker dies: continue from the last checkpoint."""
    from pathlib import Path

    from ..train.distributed import dist_env
    from ..train.state import STATE_NAME

    return bool(output) and dist_env().restart_count > 0 and (Path(output) / STATE_NAME).is_file()
