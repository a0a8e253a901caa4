"""`inceptorch eval`: top-1, top-5 and per-class accuracy of a checkpoint or an ensemble, and a confusion PNG."""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from ..evaluation.options import SPLITS
from ..extras import MissingExtra
from ..text import count
from ._common import add_model_args, load_model_args, match_imagenet_ids, runtime_device
from ._data_flags import add_outside_paths_argument, add_pixel_limit_argument, apply_data_flags


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="accuracy of a checkpoint or an ensemble, with 1, 10 or 144 crops")
    add_model_args(p)
    p.add_argument("--data", required=True, help="train/val tree, class folder, CSV list, or 'digits'")
    p.add_argument("--split", choices=SPLITS, default="auto",
                   help="auto (default): val/ of a train/val tree, the val split of 'digits' and of the data the "
                        "run trained on; all images of any other class folder or CSV list")
    p.add_argument("--val-split", type=float, default=None,
                   help="held-out fraction for --split val/train (default: the run's own when --data is the data "
                        "the run trained on, else 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the deterministic val split")
    p.add_argument("--batch-size", type=int, default=256, help="crops per forward pass")
    p.add_argument("--workers", type=int, default=None,
                   help="data loading processes (default: 4, or 0 for fewer than 256 images)")
    p.add_argument("--confusion-png", default=None,
                   help="where to write the confusion matrix (default: confusion_DATA_SPLIT.png next to the "
                        "first checkpoint, e.g. confusion_photos_val.png; others end _last, _10crops, _ensemble_of_N)")
    p.add_argument("--predictions", default=None, metavar="FILE.csv",
                   help="also write one row per image: path, label, predicted, probability, the label's probability, "
                        "correct, loss, top-k (with --json, the rows are in the output too)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="score the images that decode, naming each one left out on stderr, instead of stopping at "
                        "the first bad file")
    add_pixel_limit_argument(p)
    add_outside_paths_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluation import evaluate, load_eval_data, save_confusion_png

    apply_data_flags(args)
    members = load_model_args(args, runtime_device(args), args.runtime)
    trained_on, run_val_split = _run_split(members[0].source, args.data)
    val_split = args.val_split if args.val_split is not None else run_val_split
    # The data the run trained on: by default only the images it held out, a score not mixed with the images it
    # learnt from (a folder the run never saw is scored whole).
    chosen = "val" if args.split == "auto" and trained_on else args.split
    data, split = load_eval_data(args.data, chosen, val_split, args.seed)
    if args.skip_bad_images:
        from ..data.checks import preflight

        data = preflight(data, skip_bad=True, max_bad_fraction=1.0,
                         warn=lambda line: print(f"inceptorch eval: {line}", file=sys.stderr))
    match_imagenet_ids(members, data.class_names)
    workers = args.workers if args.workers is not None else (0 if len(data) < 256 else min(4, os.cpu_count() or 1))
    result = evaluate(members, data, args.crops, args.batch_size, workers, data_name=str(args.data))
    png = Path(args.confusion_png) if args.confusion_png else default_confusion_png(members[0].source, args.data, split,
                                                                                      len(members), args.crops)
    try:
        save_confusion_png(result, png)
    except MissingExtra as exc:  # the accuracy stands without the picture
        print(f"inceptorch eval: no confusion matrix PNG: {exc}", file=sys.stderr)
        png = None
    scores, pictures = _scores_and_pictures(result, png)
    rows = result.rows() if args.predictions else None
    if rows is not None:
        from ..evaluation.per_image import write_csv

        write_csv(rows, args.predictions)
    if args.json:
        out = result.to_dict()
        del out["confusion_matrix"]  # in the PNG; a 1000x1000 list would drown the output
        out.update(confusion_matrix_png=str(png) if png else None, data=str(args.data), split=split,
                   scores=scores.to_dict() if scores else None, pictures={k: str(v) for k, v in pictures.items()})
        if rows is not None:
            out.update(predictions_csv=str(args.predictions), predictions=rows)
        print(json.dumps(_finite(out), indent=1))
        return 0
    k = result.topk
    for m in members:
        print(f"checkpoint: {m.source} ({m.model.model_name}, {count(len(m.class_names), 'class')}, "
              f"input {m.model_cfg['input_size']})")
    print(f"data: {args.data} (split {split}, {count(result.num_images, 'image')}, "
          f"{count(len(result.data_classes), 'class')}), "
          f"{result.crops} crop{'s' if result.crops > 1 else ''} per image"
          + (f", {len(members)}-model ensemble" if len(members) > 1 else ""))
    topk = f"top-{k} {result.top5:.2%}   " if result.topk_informative else ""  # top-3 of 3 classes: always 100%
    print(f"top-1 {result.top1:.2%}   {topk}balanced {result.balanced:.2%}   "
          f"(the largest class is {result.majority_share:.2%} of the images)")
    width = max(len("class"), *(len(n) for n in result.data_classes))
    if scores is None:
        print(f"{'class':<{width}}  images   recall")
    else:
        print(f"{'class':<{width}}  images   recall  precision      F1  ROC-AUC      AP")
    by_name = {c.name: c for c in scores.classes} if scores else {}
    for name in result.data_classes:
        acc = result.per_class[name]
        line = (f"{name:<{width}}  {result.class_counts[name]:>6}  {acc:>7.2%}" if not math.isnan(acc) else
                f"{name:<{width}}  {0:>6}      --")
        c = by_name.get(name)
        if c is not None:
            line += f"  {c.precision:>9.2%}  {c.f1:>6.2%}  {_score(c.roc_auc, 7)}  {_score(c.average_precision, 6)}"
        print(line)
    if scores is not None:
        print(f"macro F1 {scores.macro_f1:.2%}   weighted F1 {scores.weighted_f1:.2%}   macro ROC-AUC "
              f"{_score(scores.macro_roc_auc, 0)}   macro AP {_score(scores.macro_average_precision, 0)}   "
              f"calibration error (ECE) {scores.ece:.3f}")
    if png:
        print(f"confusion matrix: {png}")
    for name, path in pictures.items():
        print(f"{name}: {path}")
    if args.predictions:
        print(f"per-image results: {args.predictions}")
    return 0


def _score(value: float, width: int) -> str:
    return f"{'--':>{width}}" if math.isnan(value) else f"{value:>{width}.3f}"


def _scores_and_pictures(result, confusion_png: Path | None) -> tuple:
    """The practitioners' scores and their pictures beside the confusion matrix (pr_roc_*.png, reliability_*.png);
    without torchmetrics or matplotlib, one line says what is left out."""
    from ..evaluation.pictures import curves_png, reliability_png

    try:
        scores = result.scores()
    except MissingExtra as exc:
        print(f"inceptorch eval: no precision, F1, ROC-AUC or calibration scores: {exc}", file=sys.stderr)
        return None, {}
    pictures = {}
    if confusion_png is not None:
        stem = confusion_png.name.removeprefix("confusion_")
        try:
            pictures["precision-recall and ROC curves"] = curves_png(
                result.probabilities, result.targets, result.model_classes, scores,
                confusion_png.with_name(f"pr_roc_{stem}"))
            pictures["reliability diagram"] = reliability_png(result.probabilities, result.targets, scores.ece,
                                                              confusion_png.with_name(f"reliability_{stem}"))
        except MissingExtra as exc:
            print(f"inceptorch eval: no curve pictures: {exc}", file=sys.stderr)
    return scores, pictures


def default_confusion_png(checkpoint: str, data: str, split: str, members: int = 1, crops: int = 1) -> Path:
    """confusion_<data>_<split>.png next to `checkpoint` (an ensemble's first member): a run evaluated on other data,
    on another split, with other crops, from another of its files (last.safetensors), or as part of an ensemble
    keeps each picture instead of overwriting one."""
    name = Path(str(data).rstrip("/\\")).stem or "data"
    weights = Path(checkpoint).stem
    suffix = "".join([f"_{weights}" if weights != "best" else "", f"_{crops}crops" if crops > 1 else "",
                      f"_ensemble_of_{members}" if members > 1 else ""])
    return Path(checkpoint).parent / f"confusion_{name}_{split}{suffix}.png"


def _run_split(checkpoint: str, data: str) -> tuple[bool, float]:
    """Whether `data` is what the run that saved `checkpoint` trained on, and that run's held-out fraction then: the
    same validation images as its log, not another split of them (training's split seed is always 0, as eval's)."""
    from ..errors import UserError
    from ..train.config import load_saved_config

    folder = Path(checkpoint).parent
    try:
        saved = load_saved_config(folder) if (folder / "config.yaml").is_file() else {}
    except UserError:
        saved = {}
    same_data = saved.get("data") is not None and (
        str(saved["data"]) == str(data) or Path(str(saved["data"])).resolve() == Path(data).resolve())
    return same_data, float(saved.get("val_split", 0.2)) if same_data else 0.2


def _finite(out: dict) -> dict:
    """JSON has no NaN: a class with no images gets null accuracy."""
    out["per_class"] = {k: (None if math.isnan(v) else v) for k, v in out["per_class"].items()}
    return out
