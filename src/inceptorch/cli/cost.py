"""`inceptorch cost`: the Inception articles' arithmetic for 1x1 reductions and kernel factorizations.

    inceptorch cost reduction --input 14x14x480 --kernel 5 --out 48 --reduce 16
    inceptorch cost factorize 5x5                  # two 3x3: 28% fewer multiply-adds
    inceptorch cost factorize 3x3 --into 2x2,2x2   # 11%
"""
from __future__ import annotations

import json

from ..analysis.cost import Comparison, factorize, parse_chain, parse_kernel, parse_shape, reduction
from ..errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("cost", help="multiply-adds and weights of a conv: 1x1 reductions, factorizations")
    sub = p.add_subparsers(dest="cost_command", required=True, metavar="KIND", parser_class=type(p))
    r = sub.add_parser("reduction", help="a kxk conv with and without a 1x1 reduction in front (Figure 2b)")
    r.add_argument("--input", required=True, help="input map HEIGHTxWIDTHxCHANNELS, e.g. 14x14x480")
    r.add_argument("--kernel", default="5", help="kernel of the conv, e.g. 5 or 5x5 (default 5)")
    r.add_argument("--out", type=int, required=True, help="output channels of the conv")
    r.add_argument("--reduce", type=int, required=True, help="channels of the 1x1 reduction")
    r.add_argument("--stride", type=int, default=1, help="stride of the conv (default 1, 'same' padding)")
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.set_defaults(func=run)
    f = sub.add_parser("factorize", help="a kxk conv against a chain of smaller convs with the same window")
    f.add_argument("kernel", help="the kernel to replace, e.g. 5x5, 3x3, 7x7")
    f.add_argument("--into", default=None,
                   help="comma-separated chain, e.g. 3x3,3x3 or 2x2,2x2 (default: 5x5 -> 3x3,3x3; nxn -> 1xn,nx1)")
    f.add_argument("--input", default=None,
                   help="input map HxWxC for absolute numbers (default: per output position and channel pair)")
    f.add_argument("--out", type=int, default=None, help="filters of every layer (default: the input channels)")
    f.add_argument("--json", action="store_true", help="machine-readable output")
    f.set_defaults(func=run)


def run(args) -> int:
    for name in ("out", "reduce", "stride"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise UserError(f"--{name} must be a positive integer, got {value}")
    if args.cost_command == "reduction":
        hw, chs = parse_shape(args.input)
        kernel = parse_kernel(args.kernel)
        result = reduction(hw, chs, kernel, args.out, args.reduce, args.stride)
        context = f"input {args.input}"
    else:
        kernel = parse_kernel(args.kernel)
        into = parse_chain(args.into) if args.into else None
        hw, chs = parse_shape(args.input) if args.input else ((1, 1), 1)
        result = factorize(kernel, into, hw, chs, args.out)
        context = (f"input {args.input}" if args.input else
                   "per output position and per input-output channel pair, the same number of filters")
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(format_comparison(result, context))
    return 0


def format_comparison(c: Comparison, context: str) -> str:
    lines = [f"{c.title} ({context})"]
    width = max(len(conv.label()) for conv in (*c.before, *c.after)) + 2

    def row(tag: str, label: str, macs: int, weights: int) -> str:
        return f"  {tag:7}{label:<{width}} MACs {macs:>15,} ({_human(macs):>6})   weights {weights:>13,}"

    for tag, chain in (("before", c.before), ("after", c.after)):
        for i, conv in enumerate(chain):
            lines.append(row(tag if i == 0 else "", conv.label(), conv.macs, conv.weights))
        if len(chain) > 1:
            lines.append(row("", "total", sum(x.macs for x in chain), sum(x.weights for x in chain)))
    (mb, ma), (wb, wa) = c.macs, c.weights
    lines.append(f"  saving: {c.mac_saving:.1%} of the multiply-adds ({mb / ma:.2f}x fewer), "
                 f"{1 - wa / wb:.1%} of the weights ({c.weight_ratio:.2f}x fewer)")
    lines.append("  MACs = multiply-adds; FLOPs = 2 x MACs; biases not counted")
    return "\n".join(lines)


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)
