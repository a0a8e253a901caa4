"""`inceptorch models`: every registered model with its input size, params, MACs and paper."""
from __future__ import annotations

import json

from .summary import human


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'inception*'")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..analysis.summary import shape_model, summarize
    from ..models import get_model_cfg, list_models

    rows = []
    for name in list_models(args.pattern):
        cfg = get_model_cfg(name)
        s = summarize(shape_model(name))  # rows are the inference network: aux heads are never counted
        rows.append({"model": name, "input_size": cfg.input_size, "params": s.params, "macs": s.macs,
                     "paper": cfg.paper})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    table = Table(title="inceptorch models (params and MACs at the default input size, without aux heads)")
    for col in ("model", "input", "params", "MACs", "paper"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["model"], str(r["input_size"]), human(r["params"]), human(r["macs"]),
                      r["paper"])
    Console(width=200).print(table)
    return 0

