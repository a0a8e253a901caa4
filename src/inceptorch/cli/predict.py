"""`inceptorch predict`: the most probable classes of images, from one checkpoint or an ensemble."""
from __future__ import annotations

import json
import sys

from ..errors import UserError
from ..text import count
from ._common import add_model_args, load_model_args, runtime_device
from ._data_flags import add_pixel_limit_argument, apply_data_flags


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="class names and probabilities for images or folders of images")
    add_model_args(p, images_follow=True)
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders of images")
    p.add_argument("--topk", type=int, default=5, help="how many classes to show per image (default 5)")
    p.add_argument("--batch-size", type=int, default=256, help="crops per forward pass")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--csv", default=None, metavar="FILE.csv",
                   help="also write one row per image: path, predicted, probability, top-k")
    p.add_argument("--explain", default=None, metavar="DIR",
                   help="write each image with its Grad-CAM heat map for the predicted class into DIR")
    p.add_argument("--explain-class", default=None, metavar="CLASS",
                   help="with --explain: the heat map of this class instead of the predicted one")
    p.add_argument("--layer", default=None,
                   help="with --explain: the layer the heat map is taken at (default: the last Inception block)")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="leave out files that do not decode (each named on stderr) instead of stopping at the first")
    add_pixel_limit_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluation import collect_images, predict
    from ..evaluation.per_image import unlabelled_rows, write_csv

    apply_data_flags(args)
    device = runtime_device(args)
    _no_checkpoints_among_images(args.images)
    files = collect_images(args.images)  # before loading models: a typo in a path fails fast
    members = load_model_args(args, device, args.runtime)
    skipped = []

    def skip(exc) -> None:
        skipped.append(exc)
        print(f"inceptorch predict: skipping bad image {exc}", file=sys.stderr)

    names = members[0].class_names
    if args.explain_class is not None and args.explain_class not in names:
        raise UserError(f"--explain-class {args.explain_class!r} is not a class of the model "
                        f"({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})")
    if (args.explain_class or args.layer) and not args.explain:
        raise UserError("--explain-class and --layer go with --explain DIR")
    predictions = predict(members, files, args.topk, args.crops, args.batch_size,
                          skip_bad=skip if args.skip_bad_images else None)
    if skipped:
        print(f"inceptorch predict: skipped {count(len(skipped), 'bad image')} of {len(files):,}", file=sys.stderr)
    rows = unlabelled_rows([p.image for p in predictions], [p.classes for p in predictions])
    if args.csv:
        write_csv(rows, args.csv)
    explained = _explain(members[0], predictions, args) if args.explain else {}
    if args.json:
        print(json.dumps([{**p.to_dict(), **({"heat_map": explained[p.image]} if p.image in explained else {})}
                          for p in predictions], indent=1))
        return 0
    for p in predictions:
        print(p.image)
        for name, prob in p.classes:
            print(f"  {prob:7.2%}  {name}")
        if p.image in explained:
            print(f"  heat map: {explained[p.image]}")
    if args.csv:
        print(f"per-image results: {args.csv}")
    return 0


def _explain(member, predictions, args) -> dict[str, str]:
    """Each image's heat map for its predicted class (or --explain-class), as DIR/<name>_gradcam.png."""
    from pathlib import Path

    from ..data.io import load_image
    from ..explain.gradcam import explain_images, save_overlay

    out = Path(args.explain)
    out.mkdir(parents=True, exist_ok=True)
    index = {name: i for i, name in enumerate(member.class_names)}
    targets = [index[args.explain_class or p.classes[0][0]] for p in predictions]
    images = [load_image(p.image) for p in predictions]
    written, used = {}, set()
    for p, target, (crop, heat) in zip(predictions, targets, explain_images(member, images, targets, args.layer)):
        name = Path(p.image).stem
        while name in used:  # two folders may hold files of the same name
            name += "_"
        used.add(name)
        probability = dict(p.classes).get(member.class_names[target])
        caption = f"{Path(p.image).name}: {member.class_names[target]}" + (
            f" ({probability:.1%})" if probability is not None else "")
        written[p.image] = str(save_overlay(crop, heat, out / f"{name}_gradcam.png", caption))
    return written


def _no_checkpoints_among_images(paths: list[str]) -> None:
    """`predict --checkpoint A B photo.jpg` (eval's spelling of an ensemble) reads B as images: a run folder's
    curves.png and confusion PNGs would be classified. A model file or a run or saved-model folder among the images
    is refused, with the spelling that works."""
    from pathlib import Path

    for path in map(Path, paths):
        model = path.suffix == ".safetensors" or path.is_dir() and any(
            (path / name).is_file() for name in ("best.safetensors", "last.safetensors", "model.safetensors"))
        if model:
            raise UserError(f"{path} is a model, not images: for an ensemble repeat --checkpoint (--checkpoint A "
                            f"--checkpoint {path}); the images follow")
