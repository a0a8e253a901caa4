"""`inceptorch reproduce`: run the Inception articles' comparisons and set each result beside the article's claim.

    inceptorch reproduce list [--json]
    inceptorch reproduce NAME|all [--data digits|FOLDER] [--seeds N] [--epochs N] [--output DIR] [--device ...]

The experiments are data (`inceptorch.reproduce.experiments`); each trains its variants through the normal training
path over several seeds and writes table.md, table.json and plot.png in OUTPUT/NAME (and summary.md / summary.json
in OUTPUT for `all`).
"""
from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

from ..errors import UserError
from ._common import add_device_argument
from .train import parse_pairs


def register(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="rerun the articles' comparisons (several seeds) beside their claims")
    p.add_argument("target", metavar="list|all|NAME", help="`list` the experiments, run `all`, or run one by name")
    p.add_argument("--json", action="store_true", help="with `list`: print the experiments as JSON")
    p.add_argument("--data", default="digits", help="`digits` (embedded, the default) or an image folder / CSV list "
                                                    "as `inceptorch train` takes")
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant: 0..N-1 (default 3)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of every run (default: each experiment's own)")
    p.add_argument("--output", default="runs/reproduce", metavar="DIR", help="default runs/reproduce; runs already "
                                                                              "in it are reused, not trained again")
    add_device_argument(p, default="auto")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: these small models gain nothing from more on a shared CPU)")
    p.add_argument("--width-mult", type=float, default=1.0, metavar="M",
                   help="multiply the width of every variant whose model has one (a serious run: e.g. 4 or 8)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a recipe setting for every run, e.g. batch_size=128 (repeatable; the value is read as YAML)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch only)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..reproduce.experiments import EXPERIMENTS, get_experiment

    if args.target == "list":
        return _list(EXPERIMENTS, args.json)
    if args.json:
        raise UserError("--json goes with `list`; a run writes table.json in its output folder")
    experiments = list(EXPERIMENTS) if args.target == "all" else [get_experiment(args.target)]
    if args.seeds < 1 or (args.epochs is not None and args.epochs < 1) or args.threads < 1 or not args.width_mult > 0:
        raise UserError("--seeds, --epochs and --threads must be at least 1 and --width-mult positive")
    import torch

    from ..reproduce.report import collect, finite, print_table, summary_markdown, write_report
    from ..reproduce.runner import Budget, run_experiment
    from ..train.run import Interrupted

    torch.set_num_threads(args.threads)
    budget = Budget(data=args.data, seeds=args.seeds, epochs=args.epochs, device=args.device,
                    settings=parse_pairs(args.set, "--set"), width_mult=args.width_mult)
    output, tic, results = Path(args.output), time.perf_counter(), []
    for exp in experiments:
        try:
            folder = run_experiment(exp, budget, output, progress=not args.no_progress)
        except Interrupted as exc:
            print(f"inceptorch reproduce: {exc}; rerun the same command to continue")
            return exc.exit_code
        result = collect(exp, output, args.seeds)
        paths, no_plot = write_report(result, folder)
        print_table(result)
        print(f"table {paths['markdown']} and {paths['json']}, "
              + (f"plot {paths['plot']}\n" if no_plot is None else f"no plot.png: {no_plot}\n"))
        results.append(result)
    if len(experiments) > 1:
        (output / "summary.md").write_text(summary_markdown(results))
        (output / "summary.json").write_text(json.dumps(finite(results), indent=1, default=str))
        print(f"all experiments: {output / 'summary.md'} and {output / 'summary.json'}")
    print(f"done in {time.perf_counter() - tic:.0f}s")
    return 0


def _list(experiments, as_json: bool) -> int:
    rows = [{"name": e.name, "title": e.title, "claim": e.claim, "source": e.source, "kind": e.kind,
             "recipe": e.recipe, "overrides": e.overrides, "epochs": e.epochs,
             "variants": [{"name": v.name, "model": v.model, "model_kwargs": v.model_kwargs,
                           "overrides": v.overrides, "claim": v.claim, "versus": v.versus, "expect": v.expect}
                          for v in e.variants]} for e in experiments]
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    indent = " " * 19
    for r in rows:
        print(f"{r['name']:18s} {r['title']} ({len(r['variants'])} variants, {r['epochs']} epochs)")
        for label in ("claim", "source"):
            print(textwrap.fill(f"{label}: {r[label]}", 118, initial_indent=indent, subsequent_indent=indent + "  "))
        settings = "".join(f", {k}={v}" for k, v in r["overrides"].items())
        print(f"{indent}recipe: {r['recipe']}{settings}")
        for v in r["variants"]:
            options = ", ".join(f"{k}={val}" for k, val in {**v["model_kwargs"], **v["overrides"]}.items())
            print(f"{'':20s}- {v['name']}: {v['model']}({options})")
    return 0
