"""`inceptorch predict`: the most probable classes of images, from one checkpoint or an ensemble."""
from __future__ import annotations

import json
import sys

from ..text import count
from ._common import add_model_args, load_model_args, runtime_device
from ._data_flags import add_pixel_limit_argument, apply_data_flags


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="class names and probabilities for images or folders of images")
    add_model_args(p)
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders of images")
    p.add_argument("--topk", type=int, default=5, help="how many classes to show per image (default 5)")
    p.add_argument("--batch-size", type=int, default=256, help="crops per forward pass")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="leave out files that do not decode (each named on stderr) instead of stopping at the first")
    add_pixel_limit_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluation import collect_images, predict

    apply_data_flags(args)
    device = runtime_device(args)
    files = collect_images(args.images)  # before loading models: a typo in a path fails fast
    members = load_model_args(args, device, args.runtime)
    skipped = []

    def skip(exc) -> None:
        skipped.append(exc)
        print(f"inceptorch predict: skipping bad image {exc}", file=sys.stderr)

    predictions = predict(members, files, args.topk, args.crops, args.batch_size,
                          skip_bad=skip if args.skip_bad_images else None)
    if skipped:
        print(f"inceptorch predict: skipped {count(len(skipped), 'bad image')} of {len(files):,}", file=sys.stderr)
    if args.json:
        print(json.dumps([p.to_dict() for p in predictions], indent=1))
        return 0
    for p in predictions:
        print(p.image)
        for name, prob in p.classes:
            print(f"  {prob:7.2%}  {name}")
    return 0
