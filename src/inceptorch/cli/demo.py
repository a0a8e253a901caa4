"""`inceptorch demo`: train a small-input GoogLeNet on the embedded digits, evaluate it, predict a few images and
write its report.

Everything comes from the wheel (scikit-learn ships the digits); nothing is downloaded. The recipe is
`configs/demo.yaml`.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..text import count
from ..train.config import read_recipe, resolve


def register(subparsers) -> None:
    p = subparsers.add_parser("demo",
                              help="train GoogLeNet on the embedded digits, evaluate and predict (CPU, minutes)")
    p.add_argument("--output", default=None, metavar="DIR", help="run folder (default: runs/demo, or the next free "
                                                                 "runs/demo-N)")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (a quicker look)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _free_folder(base: Path) -> Path:
    if not (base / "last.state.pt").exists():
        return base
    n = 2
    while (base.parent / f"{base.name}-{n}" / "last.state.pt").exists():
        n += 1
    return base.parent / f"{base.name}-{n}"


def run(args) -> int:
    import torch

    from ..train.run import Interrupted, train
    from .eval import default_confusion_png
    from .main import main

    # One thread: this model's convolutions are too small to gain from a second one, and on a busy machine
    # OpenMP's spinning threads can slow a step down a hundredfold.
    torch.set_num_threads(1)
    tic = time.perf_counter()
    out = Path(args.output) if args.output else _free_folder(Path("runs/demo"))
    cfg = resolve(read_recipe("demo"), {"output": str(out), "epochs": args.epochs}, "recipe demo")
    print(f"[1/4] training {cfg.model} {cfg.model_kwargs} on {cfg.data} (recipe demo, {count(cfg.epochs, 'epoch')})")
    try:
        result = train(cfg, progress=not args.no_progress)
    except Interrupted as exc:
        print(f"inceptorch demo: {exc}")
        return exc.exit_code
    # Steps 2 and 3 are the user's own commands, run on the saved files: what the README shows is what they get.
    evaluate = ["eval", "--checkpoint", str(out), "--data", str(cfg.data), "--val-split", str(cfg.val_split),
                "--workers", "0", "--device", "cpu"]
    print(f"[2/4] inceptorch {' '.join(evaluate)}   (best epoch {result.best.epoch} of {cfg.epochs})")
    if rc := main(evaluate):
        return rc
    samples = _write_samples(out, cfg)
    predict = ["predict", "--checkpoint", str(out), str(samples), "--topk", "2", "--device", "cpu"]
    print(f"[3/4] inceptorch {' '.join(predict)}   (file names hold the true label)")
    if rc := main(predict):
        return rc
    report = ["report", str(out), "--device", "cpu"]
    print(f"[4/4] inceptorch {' '.join(report)}   (the worst mistakes with their heat maps, every score, one page)")
    if rc := main(report):
        return rc
    print(f"done in {time.perf_counter() - tic:.0f}s")
    print(f"  run folder:  {out}")
    print(f"  checkpoint:  {out / 'best.safetensors'}  (inceptorch eval/predict take it, or the folder)")
    confusion = default_confusion_png(str(out / "best.safetensors"), str(cfg.data), "val")  # step 2's picture
    for label, path in (("curves:", out / "curves.png"), ("confusion:", confusion),
                        ("report:", out / "report.html")):
        if path.is_file():  # without matplotlib (pip install 'inceptorch[plot]') there are no pictures
            print(f"  {label:12s} {path}")
    board = f"  (TensorBoard: tensorboard --logdir {out / 'tensorboard'})" if (out / "tensorboard").is_dir() else ""
    print(f"  metrics:     {out / 'metrics.csv'}{board}")
    return 0


def _write_samples(run_dir: Path, cfg, n: int = 5) -> Path:
    """n validation digits as PNG files, spread over the split, for `inceptorch predict` to classify as a user's."""
    from ..data.datasets import build_dataset

    samples = run_dir / "samples"
    samples.mkdir(exist_ok=True)
    val = build_dataset(cfg.data, "val", cfg.val_split)
    for i in range(n):
        image, label = val[i * (len(val) // n)]
        image.save(samples / f"val_{i}_label_{val.class_names[label]}.png")
    return samples
