"""`inceptorch compare`: train several models with the same recipe and data; their curves on one plot.

Like the GoogLeNet articles' convergence figures: validation top-1 and training loss against epochs, one line per model,
with a table of best accuracy, parameters, multiply-adds (MACs) and wall time.

Builder options differ between models: the recipe's `model_kwargs` and the options given for every model
(`--width`, `--small-input`, `--model-kwarg KEY=VALUE`) go to each model that takes them and are left out, with a
note, for the others; `--model-kwarg MODEL:KEY=VALUE` is for one model only. An option for every model that none of
them takes is a typo, and an error.
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..devices import resolve_device
from ..errors import UserError
from ..extras import MissingExtra
from ..train.config import read_recipe, resolve
from ._data_flags import apply_data_flags
from .train import add_train_options, overrides_from_args, per_model_kwargs


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="train several models with one recipe; curves on one plot + a table")
    p.add_argument("models", nargs="+", metavar="MODEL", help="registered model names")
    add_train_options(p, with_model=False)
    p.add_argument("--output", default="runs/compare", metavar="DIR", help="one run folder per model under DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.summary import summarize
    from ..train.metrics import read_metrics
    from ..train.run import Interrupted, train
    from ..weights.model_file import load_model_file

    apply_data_flags(args)
    if len(set(args.models)) != len(args.models):
        raise UserError("each model may appear once")
    recipe = read_recipe(args.config) if args.config else {}
    out = Path(args.output)
    configs = _configs(args, recipe)  # every model's, checked before the first one trains
    rows = []
    for name in args.models:
        cfg, left_out = configs[name]
        print(f"== {name}" + (f" (leaving out {', '.join(left_out)}: "
                              f"{'not an option' if len(left_out) == 1 else 'not options'} of {name})"
                              if left_out else ""))
        try:
            result = train(cfg, progress=not args.no_progress)
        except Interrupted as exc:
            print(f"inceptorch compare: {exc}")
            return exc.exit_code
        model, meta = load_model_file(out / name / "best.safetensors")
        summary = summarize(model, meta["model_cfg"]["input_size"])  # the inference network: no aux heads
        rows.append({"model": name, "best_val_top1": result.best.top1, "best_epoch": result.best.epoch,
                     "params": summary.params, "params_with_aux": sum(p.numel() for p in model.parameters()),
                     "macs": summary.macs, "seconds": result.seconds,
                     "metrics": read_metrics(out / name / "metrics.csv")})
    _table(rows, out)
    try:
        _plot(rows, out / "compare.png", args.data)
        print(f"plot {out / 'compare.png'}, table {out / 'compare.csv'}")
    except MissingExtra as exc:  # the table has the numbers
        print(f"table {out / 'compare.csv'}; no plot: {exc}")
    return 0


def _configs(args, recipe: dict) -> dict[str, tuple]:
    """Each model's TrainConfig and the shared options it does not take (see the module docstring)."""
    from ..models._options import model_options

    over = overrides_from_args(args)
    shared_flags = over.pop("model_kwargs", {})
    shared = {**(recipe.get("model_kwargs") or {}), **shared_flags}
    given = {pair.partition("=")[0].strip(): f"--model-kwarg {pair}" for pair in args.model_kwarg}
    own = per_model_kwargs(args)
    stranger = next((m for m in own if m not in args.models), None)
    if stranger is not None:
        pair = next(v for k, v in given.items() if k.startswith(f"{stranger}:"))
        raise UserError(f"{pair}: {stranger} is not one of the compared models")
    options = {name: model_options(name) for name in args.models}
    typo = next((k for k in shared_flags if not any(k in opts for opts in options.values())), None)
    if typo is not None:
        raise UserError(f"{given.get(typo, '--' + typo.replace('_', '-'))}: no compared model takes {typo!r}")
    configs = {}
    for name in args.models:
        kwargs = {k: v for k, v in shared.items() if k in options[name]}
        kwargs.update(own.get(name, {}))  # checked against the model's options by resolve: a wrong one is an error
        # Given as the command line's, so that resolve checks every one against this model's options.
        cfg = resolve({**recipe, "model_kwargs": {}},
                      {**over, "model": name, "model_kwargs": kwargs, "output": str(Path(args.output) / name)},
                      args.config or "config")
        resolve_device(cfg.device)  # a GPU this machine lacks stops here, before a run folder is made
        configs[name] = cfg, sorted(set(shared) - set(options[name]))
    return configs


def _table(rows: list[dict], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    # Two parameter counts, each labelled: the inference network (what `inceptorch models` and `summary` count,
    # what an export holds) and the trained model with its auxiliary heads (what the optimizer updates).
    table = Table(title="same recipe, same data", caption="no aux: the inference network; with aux: as trained")
    for col in ("model", "best val top-1", "epoch", "params (no aux)", "params with aux", "MACs", "time"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(r["model"], f"{r['best_val_top1']:.2f}%", str(r["best_epoch"]), f"{r['params']:,}",
                      f"{r['params_with_aux']:,}", f"{r['macs'] / 1e6:.1f}M", f"{r['seconds']:.0f}s")
    Console(width=140).print(table)
    with open(out / "compare.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "best_val_top1", "best_epoch", "params", "macs", "seconds", "params_with_aux"])
        for r in rows:
            writer.writerow([r["model"], f"{r['best_val_top1']:.2f}", r["best_epoch"], r["params"], r["macs"],
                             f"{r['seconds']:.1f}", r["params_with_aux"]])


def _plot(rows: list[dict], path: Path, data: str | None) -> None:
    from ..plotting import figure, save

    fig, (ax_loss, ax_top1) = figure(11, 4, 1, 2, what="the comparison plot")
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
    save(fig, path)
