"""`inceptorch train`: train a model on a folder, a CSV list or an embedded data set, with a recipe."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from ..errors import UserError
from ..train.config import AUGMENTATIONS, CLASS_BALANCE, read_recipe, resolve
from ._common import add_device_argument
from ._data_flags import add_outside_paths_argument, add_pixel_limit_argument, apply_data_flags


def add_train_options(p, with_model: bool = True) -> None:
    """Options shared by `train` and `compare`; None means "not given", so the recipe's value stands."""
    if with_model:
        p.add_argument("--model", default=None, help="a registered model name (see `inceptorch models`)")
    p.add_argument("--data", default=None, help="an ImageFolder tree (train/ val/), one folder of class folders, a "
                                                "CSV list of path,label rows, or `digits` (embedded)")
    p.add_argument("--config", default=None, help="a recipe: a bundled name (finetune, googlenet_paper, "
                                                  "inception_v3_paper, modern, demo) or a YAML file; without it, "
                                                  "the defaults for training a small data set from scratch")
    p.add_argument("--epochs", type=int_or_auto, default=None, metavar="N|auto",
                   help="the run's length (default auto: about step_budget optimizer steps, 3000, at least 10 "
                        "epochs)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float_or_auto, default=None, metavar="LR|auto",
                   help="base learning rate (default 5e-4 for batch 32); auto: run the learning-rate range test "
                        "(inceptorch lr-find) first and train at its suggestion")
    add_device_argument(p)
    p.add_argument("--pretrained", default=None, metavar="imagenet|TAG|FILE",
                   help="fine-tune from the model's public ImageNet weights (imagenet, or a tag from `inceptorch "
                        "weights list`, fetched once) or a weights file (ours, torchvision's or timm's); the "
                        "classifier and auxiliary classifiers are reset to the data's classes. A model file or run "
                        "folder of ours also gives the model and its builder options (--model, --width, ...)")
    p.add_argument("--aug", choices=AUGMENTATIONS, default=None,
                   help="augmentation preset (default small_data: crops keeping 25-100%% of the image, flips; "
                        "inspection: quarter turns, both flips, crops keeping 64-100%% for images without an 'up'; "
                        "paper: GoogLeNet's ImageNet crops of 8-100%%; light: small shifts for digit-like images)")
    p.add_argument("--class-balance", choices=CLASS_BALANCE, default=None,
                   help="imbalanced classes: sampler draws every class equally often, loss weighs each class's "
                        "examples by n / (classes x class size); default none")
    p.add_argument("--freeze-epochs", type=int, default=None, metavar="N",
                   help="with --pretrained: train only the new classifiers for the first N epochs")
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
    p.add_argument("--model-kwarg", action="append", default=[], metavar="[MODEL:]KEY=VALUE",
                   help="another builder option, e.g. drop_rate=0.2, or for one model only, e.g. "
                        "inception_naive:reduce=true (repeatable; the value is read as YAML)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any recipe setting, e.g. weight_decay=1e-4 (repeatable; the value is read as YAML)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch only)")
    p.add_argument("--skip-bad-images", action="store_true", default=None,
                   help="leave out images that do not decode (each is logged and counted) instead of stopping")
    p.add_argument("--max-bad-fraction", type=float, default=None, metavar="F",
                   help="with --skip-bad-images, still stop if more than this fraction is bad (default: 0.01)")
    add_pixel_limit_argument(p)
    add_outside_paths_argument(p)


def int_or_auto(text: str):
    return _or_auto(text, int)


def float_or_auto(text: str):
    return _or_auto(text, float)


def _or_auto(text: str, kind: type):
    if text == "auto":
        return text
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r} (or auto)") from None


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model with a recipe; checkpoints, metrics and curves in a folder")
    add_train_options(p)
    p.add_argument("--output", default=None, metavar="RUN_DIR", help="the run folder")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last checkpoint, exactly (flags may raise --epochs)")
    p.add_argument("--no-report", action="store_true",
                   help="no RUN_DIR/report.html at the end (it evaluates the best weights once more, draws the "
                        "pictures and the heat maps of the worst mistakes)")
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


def per_model_kwargs(args) -> dict[str, dict]:
    """The `--model-kwarg MODEL:KEY=VALUE` options: model name -> {key: value}."""
    out: dict[str, dict] = {}
    for key, value in parse_pairs(args.model_kwarg, "--model-kwarg").items():
        model, sep, option = key.partition(":")
        if sep:
            if not model.strip() or not option.strip():
                raise UserError(f"--model-kwarg expects KEY=VALUE or MODEL:KEY=VALUE, not {key!r}")
            out.setdefault(model.strip(), {})[option.strip()] = value
    return out


def overrides_from_args(args) -> dict:
    """Settings the command line gives, recipe keys -> values (None: not given). model_kwargs holds the options
    for every model: the builder flags and `--model-kwarg KEY=VALUE` (see `per_model_kwargs` for the others)."""
    model_kwargs = {k: getattr(args, k) for k in ("width", "small_input", "aux_logits") if getattr(args, k) is not None}
    per_model_kwargs(args)  # a malformed MODEL:KEY is an error whichever command reads the options
    model_kwargs.update({k: v for k, v in parse_pairs(args.model_kwarg, "--model-kwarg").items() if ":" not in k})
    over = parse_pairs(args.set, "--set")
    flags = {k: getattr(args, k, None) for k in ("model", "data", "epochs", "batch_size", "lr", "device", "pretrained",
                                                 "aug", "seed", "workers", "gpu_decode", "val_split", "accum_steps",
                                                 "checkpoint_every", "compile", "input_size", "output",
                                                 "skip_bad_images", "max_bad_fraction", "class_balance",
                                                 "freeze_epochs")}
    given = {k: v for k, v in flags.items() if v is not None}
    for key in sorted(set(over) & set(given)):  # `--epochs 1 --set epochs=1.5`: which one was meant?
        if str(over[key]) != str(given[key]):
            raise UserError(f"--set {key}={over[key]} and --{key.replace('_', '-')} {given[key]} disagree: "
                            "give one of them")
    over.update(given)
    if model_kwargs:
        over["model_kwargs"] = {**over.get("model_kwargs", {}), **model_kwargs}
    return over


def run(args) -> int:
    from ..devices import resolve_device
    from ..train.config import RESUME_SETTINGS, from_model_file, left_out_note, load_saved_config
    from ..train.distributed import dist_env
    from ..train.run import Interrupted, train

    apply_data_flags(args)
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
        # A model file of our own brings its architecture (a resumed run has it in its config.yaml already).
        recipe, over, notes = from_model_file(recipe, over, f"recipe {where}")
    cfg = resolve(recipe, over, where)
    if args.resume:
        saved = resolve(recipe, {"output": args.resume}, where)
        changed = [key for key in over if key not in RESUME_SETTINGS and getattr(cfg, key) != getattr(saved, key)]
        if changed:
            raise UserError(f"--resume continues {args.resume} as its config.yaml says; it cannot change "
                            f"{', '.join(changed)} (train longer with --epochs N; for other settings start a new "
                            f"run, e.g. --pretrained {args.resume}/last.safetensors --output NEW_DIR)")
    own = per_model_kwargs(args)
    if own:  # MODEL:KEY=VALUE: only for the model this run trains
        other = next((m for m in own if m != cfg.model), None)
        if other is not None:
            raise UserError(f"--model-kwarg {other}:...: this run trains {cfg.model}, not {other}")
        over["model_kwargs"] = {**over.get("model_kwargs", {}), **own[cfg.model]}
        cfg = resolve(recipe, over, where)
    resolve_device(cfg.device)  # a GPU this machine lacks stops the run before its folder is made
    if not args.resume and dist_env().is_main:
        for note in [*notes, left_out_note(recipe, cfg, f"recipe {where}")]:
            if note:
                print(note)
    resume = bool(args.resume) or _elastic_restart(cfg.output)
    try:
        result = train(cfg, resume=resume, progress=not args.no_progress, command=_command_line())
    except Interrupted as exc:
        print(f"inceptorch train: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # a second Ctrl-C stops at once, without the checkpoint the first one asked for
        saved = (Path(cfg.output) / "last.state.pt").is_file()
        print("inceptorch train: interrupted twice: stopped without saving; "
              + (f"--resume {cfg.output} continues from its last checkpoint" if saved else
                 "there was no checkpoint yet"), file=sys.stderr)
        return 130
    if dist_env().is_main:
        print(run_summary(result))
        if not args.no_report and result.best.epoch > 0:
            _report(result)
    return 0


def _command_line() -> str:
    """This command as typed, for the run folder's command.txt (the report shows it)."""
    import shlex

    return "inceptorch " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _report(result) -> None:
    """The run's report, and the scores it found on the best weights, in one line each; a report that cannot be
    made (an extra missing) says why and leaves the run as it is."""
    from ..devices import resolve_device
    from ..report import write_report

    try:
        report = write_report(result.run_dir, device=str(resolve_device(result.config.device)))
    except UserError as exc:
        print(f"no report: {exc}")
        return
    s = report.scores
    scores = (f"macro F1 {s.macro_f1:.2%}, weighted F1 {s.weighted_f1:.2%}, macro ROC-AUC {s.macro_roc_auc:.3f}, "
              f"calibration error {s.ece:.3f}; " if s is not None else "")
    print(f"best.safetensors on {report.result.num_images} val images: {scores}report {report.path} "
          f"({report.seconds:.0f}s; --no-report skips it)")

def run_summary(result) -> str:
    """The line that ends a run: the best epoch's scores, which weights, the last diagnosis, the files."""
    best = result.best
    ranked = "" if best.metric == "top1" else ", ranked by balanced accuracy"
    diagnosis = f"; the last epoch shows {result.diagnosis} (see above)" if result.diagnosis else ""
    return (f"best val top-1 {best.top1:.2f}% (balanced {best.balanced:.2f}%, {best.weights} weights{ranked}) at "
            f"epoch {best.epoch} ({result.seconds:.0f}s){diagnosis}; run folder {result.run_dir}: best.safetensors, "
            "last.safetensors, metrics.csv, curves.png")


def _elastic_restart(output: str) -> bool:
    """torchrun --max-restarts re-runs the same command after a worker dies: continue from the last checkpoint."""
    from ..train.distributed import dist_env
    from ..train.state import STATE_NAME

    return bool(output) and dist_env().restart_count > 0 and (Path(output) / STATE_NAME).is_file()
