"""`inceptorch compare`: train several models with the same recipe and data; their curves on one plot.

Like the seed article's convergence figures: validation top-1 and training loss against epochs, one line per model,
with a table of best accuracy, parameters, multiply-adds (MACs) and wall time.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..errors import UserError
from ..extras import MissingExtra, require
from ..train.config import read_recipe, resolve
from .train import add_train_options, overrides_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="train several models with one recipe; curves on one plot + a table")
    p.add_argument("models", nargs="+", metavar="MODEL", help="registered model names")
    add_train_options(p, with_model=False)
    p.add_argument("--output", default="runs/compare", metavar="DIR", help="one run folder per model under DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.summary import summarize
    from ..checkpoint import load_model_file
    from ..train.run import Interrupted, read_metrics, train

    if len(set(args.models)) != len(args.models):
        raise UserError("each model may appear once")
    recipe = read_recipe(args.config) if args.config else {}
    out = Path(args.output)
    rows = []
    for name in args.models:
        over = {**overrides_from_args(args), "model": name, "output": str(out / name)}
        cfg = resolve(recipe, over, args.config or "config")
        print(f"== {name}")
        try:
            result = train(cfg, progress=not args.no_progress)
        except Interrupted as exc:
            print(f"inceptorch compare: {exc}")
            return exc.exit_code
        model, meta = load_model_file(out / name / "best.safetensors")
        summary = summarize(model, meta["model_cfg"]["input_size"])
        rows.append({"model": name, "best_val_top1": result.best_top1, "best_epoch": result.best_epoch,
                     "params": summary.params, "macs": summary.macs, "seconds": result.seconds,
                     "metrics": read_metrics(out / name / "metrics.csv")})
    _table(rows, out)
    try:
        _plot(rows, out / "compare.png", args.data)
        print(f"plot {out / 'compare.png'}, table {out / 'compare.csv'}")
    except MissingExtra as exc:  # the table has the numbers
        print(f"table {out / 'compare.csv'}; no plot: {exc}")
    return 0


def _table(rows: list[dict], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="same recipe, same data")
    for col in ("model", "best val top-1", "epoch", "params", "MACs", "time"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(r["model"], f"{r['best_val_top1']:.2f}%", str(r["best_epoch"]), f"{r['params']:,}",
                      f"{r['macs'] / 1e6:.1f}M", f"{r['seconds']:.0f}s")
    Console(width=120).print(table)
    with open(out / "compare.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "best_val_top1", "best_epoch", "params", "macs", "seconds"])
        for r in rows:
            writer.writerow([r["model"], f"{r['best_val_top1']:.2f}", r["best_epoch"], r["params"], r["macs"],
                             f"{r['seconds']:.1f}"])


def _plot(rows: list[dict], path: Path, data: str | None) -> None:
    matplotlib = require("matplotlib", "the comparison plot")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_top1) = plt.subplots(1, 2, figsize=(11, 4))
    for r in rows:
        epochs = [m["epoch"] for m in r["metrics"]]
        ax_loss.plot(epochs, [m["train_loss"] for m in r["metrics"]], marker=".", label=r["model"])
        ax_top1.plot(epochs, [m["val_top1"] for m in r["metrics"]], marker=".", label=r["model"])
    for ax, title in ((ax_loss, "training loss"), (ax_top1, "validation top-1 (%)")):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"convergence on {data}" if data else "convergence")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
