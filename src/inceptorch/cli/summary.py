"""`inceptorch summary MODEL` (or `--checkpoint FILE`): the model as the paper's Table 1, per layer params and
multiply-adds."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    from ..analysis.summary import Summary


def register(subparsers) -> None:
    p = subparsers.add_parser("summary", help="per-layer table of a model: output sizes, params, MACs")
    p.add_argument("model", nargs="?", default=None, help="a registered model name (see `inceptorch models`)")
    p.add_argument("--checkpoint", default=None, metavar="CKPT_OR_RUN_DIR",
                   help="instead of MODEL: the model a file or run folder holds, as it was trained (its width, "
                        "classes, stem and input size)")
    p.add_argument("--input-size", type=int, default=None,
                   help="square input size (default: the model's, or the size the checkpoint was trained at)")
    p.add_argument("--num-classes", type=int, default=None, help="classes of the head (default: 1000)")
    p.add_argument("--width", type=float, default=None, help="channel width multiplier, for models that take one")
    p.add_argument("--small-input", action="store_true", help="GoogLeNet's small-input stem (28-64 px images)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.summary import summarize
    from ..models import get_model_cfg

    model, trained_size = _checkpoint_model(args) if args.checkpoint else (_named_model(args), None)
    name = model.model_name
    size = args.input_size or trained_size or model.default_cfg.input_size
    if size < model.default_cfg.min_input_size:
        raise UserError(f"input size {size} is below {name}'s minimum of {model.default_cfg.min_input_size}")
    summary = summarize(model, size)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=1))
    else:
        print_table(summary, get_model_cfg(name).paper)
    return 0


def _named_model(args):
    from ..models import create_model
    from ..models._options import check_model_kwargs

    if args.model is None:
        raise UserError("give a model name (see `inceptorch models`) or --checkpoint FILE_OR_RUN_DIR")
    given = {key: value for key, value in (("small_input", args.small_input or None), ("width", args.width))
             if value is not None}
    try:  # "lenet5 takes no option 'width'", not a TypeError traceback
        given = check_model_kwargs(args.model, given, "options")
    except UserError as exc:
        raise UserError(str(exc).removeprefix("options: ")) from None
    return create_model(args.model, num_classes=args.num_classes or 1000, aux_logits=False, **given)


def _checkpoint_model(args):
    """The trained model, without its training-only auxiliary heads, and the input size it was trained at."""
    from ..export._deploy import inference_copy
    from ..weights.model_file import load_model_file

    given = [flag for flag, value in (("MODEL", args.model), ("--num-classes", args.num_classes),
                                      ("--width", args.width), ("--small-input", args.small_input)) if value]
    if given:
        raise UserError(f"--checkpoint describes the model as it was trained; drop {', '.join(given)}")
    model, meta = load_model_file(args.checkpoint)
    return inference_copy(model), meta.get("model_cfg", {}).get("input_size")


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
