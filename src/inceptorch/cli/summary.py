"""`inceptorch summary MODEL`: the model as the paper's Table 1, per layer params and multiply-adds."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    from ..analysis.summary import Summary


def register(subparsers) -> None:
    p = subparsers.add_parser("summary", help="per-layer table of a model: output sizes, params, MACs")
    p.add_argument("model", help="a registered model name (see `inceptorch models`)")
    p.add_argument("--input-size", type=int, default=None, help="square input size (default: the model's)")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--small-input", action="store_true", help="GoogLeNet's small-input stem (28-64 px images)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.summary import summarize
    from ..models import create_model, get_model_cfg

    kwargs = {"num_classes": args.num_classes, "aux_logits": False}
    if args.small_input:
        kwargs["small_input"] = True
    model = create_model(args.model, **kwargs)
    size = args.input_size or model.default_cfg.input_size
    if size < model.default_cfg.min_input_size:
        raise UserError(f"input size {size} is below {args.model}'s minimum of {model.default_cfg.min_input_size}")
    summary = summarize(model, size)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=1))
    else:
        print_table(summary, get_model_cfg(args.model).paper)
    return 0


def print_table(summary: Summary, paper: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary.model} at {summary.input_size}x{summary.input_size}", caption=paper)
    # The branch-width columns are whatever the model's blocks report (Table 1's for GoogLeNet), in first-seen order.
    columns = list(dict.fromkeys(c for r in summary.rows for c in r.columns))
    for col in ("layer", "type", "patch/stride", "output", "depth", *columns, "params", "MACs"):
        table.add_column(col, justify="left" if col in ("layer", "type") else "right")
    for r in summary.rows:
        out = "x".join(str(d) for d in (*r.output[1:], r.output[0])) if r.output else ""
        table.add_row(r.name, r.type, r.patch_stride, out, str(r.depth) if r.depth else "",
                      *(str(r.columns.get(c, "")) for c in columns), human(r.params), human(r.macs))
    table.add_row("total", "", "", "", "", *("" for _ in columns), human(summary.params), human(summary.macs))
    console = Console(width=200)
    console.print(table)
    console.print(f"params {summary.params:,} (conv/linear weights {summary.weights:,}); "
                  f"MACs {summary.macs:,} = {summary.macs / 1e9:.3f} G multiply-adds "
                  f"(FLOPs = 2 x MACs = {2 * summary.macs / 1e9:.3f} G)")


def human(n: int) -> str:
    if n == 0:
        return ""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)
