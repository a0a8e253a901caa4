"""`inceptorch draw MODEL --output FILE.svg|png|pdf`: the network as the paper draws it (arXiv:1409.4842 Fig. 2-3)."""
from __future__ import annotations

from ..analysis.options import DRAW_FORMATS
from ..errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("draw", help="draw a model's stages and Inception modules (SVG, PNG or PDF)")
    p.add_argument("model", help="a registered model name (see `inceptorch models`)")
    p.add_argument("--output", "-o", required=True, help=f"file to write, ending in {', '.join(DRAW_FORMATS)}")
    p.add_argument("--input-size", type=int, default=None, help="input size for the shapes (default: the model's)")
    p.add_argument("--no-aux", action="store_true", help="leave out the auxiliary classifiers' taps")
    p.add_argument("--small-input", action="store_true", help="the small-input stem of models that have one")
    p.add_argument("--expand", action="store_true", help="draw every block (default: runs of identical blocks once)")
    p.add_argument("--dpi", type=int, default=150, help="PNG resolution (default 150)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.draw import draw_model
    from ..analysis.summary import shape_model

    if not args.output.lower().endswith(DRAW_FORMATS):
        raise UserError(f"cannot draw to {args.output!r}: the file name must end in {', '.join(DRAW_FORMATS)}")
    if args.input_size is not None and args.input_size <= 0:
        raise UserError(f"--input-size must be positive, got {args.input_size}")
    if args.dpi <= 0:
        raise UserError(f"--dpi must be positive, got {args.dpi}")
    kwargs = {"aux_logits": False} if args.no_aux else {}
    if args.small_input:
        kwargs["small_input"] = True
    try:
        model = shape_model(args.model, **kwargs)  # a drawing needs shapes, not weights: no initialisation
    except TypeError as exc:  # an option the model does not have (e.g. --small-input)
        raise UserError(f"{args.model} does not take that option ({exc})") from None
    path = draw_model(model, args.output, input_size=args.input_size, dpi=args.dpi, expand=args.expand)
    print(f"wrote {path}")
    return 0
