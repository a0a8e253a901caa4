"""`inceptorch demo`: train a small-input GoogLeNet on the embedded digits, evaluate it, predict a few images.

Everything comes from the wheel (scikit-learn ships the digits); nothing is downloaded. The recipe is
`configs/demo.yaml`.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..train.config import read_recipe, resolve


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="train GoogLeNet on the embedded digits, evaluate and predict (CPU, minutes)")
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
    from ..train.run import Interrupted, train

    import torch

    # One thread: this model's convolutions are too small to gain from a second one, and on a busy machine
    # OpenMP's spinning threads can slow a step down a hundredfold.
    torch.set_num_threads(1)
    tic = time.perf_counter()
    out = Path(args.output) if args.output else _free_folder(Path("runs/demo"))
    cfg = resolve(read_recipe("demo"), {"output": str(out), "epochs": args.epochs}, "recipe demo")
    print(f"[1/3] training {cfg.model} {cfg.model_kwargs} on {cfg.data} (recipe demo, {cfg.epochs} epochs)")
    try:
        result = train(cfg, progress=not args.no_progress)
    except Interrupted as exc:
        print(f"inceptorch demo: {exc}")
        return exc.exit_code
    print(f"[2/3] evaluating {out / 'best.safetensors'}")
    top1 = _evaluate(out, cfg)
    print(f"      val top-1 {top1:.2f}% (best epoch {result.best_epoch} of {cfg.epochs})")
    print("[3/3] predicting a few validation images")
    _predict_samples(out, cfg)
    print(f"done in {time.perf_counter() - tic:.0f}s")
    print(f"  run folder:  {out}")
    print(f"  checkpoint:  {out / 'best.safetensors'}  (inceptorch eval/predict take it, or the folder)")
    print(f"  curves:      {out / 'curves.png'}")
    print(f"  metrics:     {out / 'metrics.csv'}  (TensorBoard: tensorboard --logdir {out / 'tensorboard'})")
    return 0


def _evaluate(run_dir: Path, cfg) -> float:
    """Top-1 of the saved best model, rebuilt from its file alone (what `inceptorch eval` does)."""
    import torch
    from torch.utils.data import DataLoader

    from ..checkpoint import load_model_file
    from ..data.datasets import build_dataset
    from ..data.transforms import eval_transform
    from ..train.engine import evaluate

    model, _ = load_model_file(run_dir / "best.safetensors")
    val = build_dataset(cfg.data, "val", cfg.val_split)
    val.transform = eval_transform(model.default_cfg)
    return evaluate(model, DataLoader(val, batch_size=128), torch.device("cpu"))["top1"]


def _predict_samples(run_dir: Path, cfg, n: int = 5) -> None:
    """Write n validation digits as PNG files, then classify the files as a user's images would be."""
    import torch

    from ..checkpoint import load_model_file
    from ..data.datasets import build_dataset
    from ..data.io import load_image
    from ..data.transforms import eval_transform

    model, meta = load_model_file(run_dir / "best.safetensors")
    model.eval()
    transform = eval_transform(model.default_cfg)
    samples = run_dir / "samples"
    samples.mkdir(exist_ok=True)
    val = build_dataset(cfg.data, "val", cfg.val_split)
    for i in range(n):
        image, label = val[i * (len(val) // n)]
        path = samples / f"val_{i}_label_{meta['class_names'][label]}.png"
        image.save(path)
        with torch.no_grad():
            probs = model(transform(load_image(path))[None]).softmax(1)[0]
        p, k = probs.max(0)
        print(f"      {path}: predicted {meta['class_names'][int(k)]} ({100 * float(p):.1f}%), "
              f"true {meta['class_names'][label]}")
