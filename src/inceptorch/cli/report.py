"""`inceptorch report`: one self-contained HTML page on a run: how it trained and where its model is wrong."""
from __future__ import annotations

from ._common import add_device_argument
from ._data_flags import add_outside_paths_argument, add_pixel_limit_argument, apply_data_flags


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="an HTML report of a run: curves, per-class scores, pictures, the most confident mistakes",
        description="Evaluates the run's best weights on its held-out images (or --data) and writes one HTML file "
                    "with everything embedded: the command and config, the curves, precision/recall/F1/ROC-AUC "
                    "per class, the confusion matrix, PR/ROC and reliability pictures, the most confident mistakes "
                    "with their Grad-CAM heat maps, the most confused pairs, and a link to the per-image CSV.")
    p.add_argument("run", metavar="RUN_DIR_OR_CKPT", help="a run folder (or a model file)")
    p.add_argument("--data", default=None, help="images to score (default: the run's held-out split)")
    p.add_argument("--output", default=None, metavar="FILE.html", help="where the page goes (default RUN/report.html)")
    p.add_argument("--top-losses", type=int, default=12, metavar="N",
                   help="how many of the most confident mistakes to show with heat maps (default 12)")
    p.add_argument("--neighbours", action="store_true",
                   help="show each mistake's nearest training images (embeds the training set: one more pass)")
    add_device_argument(p)
    add_pixel_limit_argument(p)
    add_outside_paths_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..devices import resolve_device
    from ..report import write_report

    apply_data_flags(args)
    report = write_report(args.run, args.data, args.output, args.top_losses, args.neighbours,
                          str(resolve_device(args.device)))
    print(f"report: {report.path}")
    return 0
