"""`inceptorch embed`: the pre-logits features of images, for retrieval and clustering."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UserError
from ._common import add_device_argument
from ._data_flags import add_pixel_limit_argument, apply_data_flags


def register(subparsers) -> None:
    p = subparsers.add_parser("embed", help="pre-logits features of images (.npy) with their paths (.csv)")
    p.add_argument("--checkpoint", required=True, metavar="CKPT_OR_RUN_DIR", help="the model file or run folder")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders of images")
    p.add_argument("--output", required=True, metavar="FILE",
                   help="FILE.npy gets the features [images, features], FILE.csv the row of each image")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--skip-bad-images", action="store_true", help="leave out files that do not decode")
    add_device_argument(p)
    add_pixel_limit_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from ..data.io import BadImageError, load_image
    from ..devices import resolve_device
    from ..evaluation import collect_images, load_members
    from ..evaluation.embed import embed
    from ..fileio import atomic_write

    apply_data_flags(args)
    files = collect_images(args.images)
    member = load_members([args.checkpoint], resolve_device(args.device))[0]
    kept, images = [], []
    for f in files:
        try:
            images.append(load_image(f))
            kept.append(f)
        except BadImageError as exc:
            if not args.skip_bad_images:
                raise
            print(f"inceptorch embed: skipping bad image {exc}", file=sys.stderr)
    if not images:
        raise UserError("no image decoded")
    features = embed(member, images, args.batch_size)
    base = Path(args.output)
    base = base.with_suffix("") if base.suffix in (".npy", ".csv") else base
    def write_npy(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: given a name, np.save would append .npy to the temporary one
            np.save(f, features)

    atomic_write(base.with_suffix(".npy"), write_npy)
    lines = ["row,path"] + [f"{i},{_csv_field(str(f))}" for i, f in enumerate(kept)]
    atomic_write(base.with_suffix(".csv"), lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    print(f"{features.shape[0]} images x {features.shape[1]} features ({member.model.model_name} pre-logits): "
          f"{base.with_suffix('.npy')}, paths in {base.with_suffix('.csv')}")
    return 0


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text
