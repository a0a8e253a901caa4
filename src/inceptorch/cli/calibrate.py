"""`inceptorch calibrate`: fit a temperature on the run's validation images and store it in the model file."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import UserError
from ._common import add_device_argument
from ._data_flags import add_outside_paths_argument, add_pixel_limit_argument, apply_data_flags


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="temperature scaling: probabilities that mean what they say, fitted on validation images",
        description="Divides the logits by one temperature fitted on validation images (Guo et al. 2017), which "
                    "changes no prediction and brings the probabilities in line with the accuracy. The temperature "
                    "is stored in the model file; eval, predict, serve and export use it from then on.")
    p.add_argument("--checkpoint", required=True, metavar="CKPT_OR_RUN_DIR", help="the model file or run folder")
    p.add_argument("--data", default=None,
                   help="validation images (default: the data the run trained on, its held-out split)")
    p.add_argument("--val-split", type=float, default=None, help="held-out fraction (default: the run's own)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--reset", action="store_true", help="remove a stored temperature instead of fitting one")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_device_argument(p)
    add_pixel_limit_argument(p)
    add_outside_paths_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..devices import resolve_device
    from ..evaluation import evaluate, load_eval_data, load_members
    from ..evaluation.calibration import fit_temperature, logits_from_probabilities
    from ..evaluation.scores import practitioner_scores
    from ..train.config import load_saved_config
    from ..weights.model_file import load_model_file, resolve_model_file, save_model_file
    from .eval import _run_split

    apply_data_flags(args)
    path = resolve_model_file(args.checkpoint)
    if path.name == "model.safetensors" and (path.parent / "config.json").is_file():
        raise UserError(f"{path.parent} is an exported folder; calibrate the run it came from, then export again")
    model, meta = load_model_file(path)
    if args.reset:
        meta.pop("calibration", None)
        save_model_file(model, path, meta)
        print(f"{path}: no temperature; probabilities are the model's own softmax again")
        return 0
    data = args.data
    if data is None:
        saved = load_saved_config(path.parent) if (path.parent / "config.yaml").is_file() else {}
        data = saved.get("data")
        if not data:
            raise UserError(f"{path} is not in a run folder: give --data with validation images")
    trained_on, run_val_split = _run_split(str(path), data)
    val_split = args.val_split if args.val_split is not None else run_val_split
    images, split = load_eval_data(data, "val" if trained_on else "auto", val_split)
    members = load_members([path], resolve_device(args.device))
    before_t = members[0].temperature
    result = evaluate(members, images, 1, args.batch_size, data_name=str(data))
    probs, targets = torch.from_numpy(result.probabilities), torch.from_numpy(result.targets)
    # log p is the logits / T0 up to a per-image constant, which the softmax ignores: fit on top of any T0.
    extra = fit_temperature(logits_from_probabilities(probs), targets)
    after_probs = (logits_from_probabilities(probs) / extra).softmax(dim=1)
    before = practitioner_scores(result.probabilities, result.targets, result.model_classes)
    after = practitioner_scores(after_probs.numpy(), result.targets, result.model_classes)
    nll_before = float(torch.nn.functional.nll_loss(probs.clamp_min(1e-12).log(), targets))
    nll_after = float(torch.nn.functional.nll_loss(after_probs.clamp_min(1e-12).log(), targets))
    temperature = before_t * extra
    meta["calibration"] = {"temperature": temperature, "ece_before": before.ece, "ece_after": after.ece,
                           "nll_before": nll_before, "nll_after": nll_after,
                           "fitted_on": {"data": str(data), "split": split, "images": len(targets)}}
    save_model_file(model, path, meta)
    picture = _reliability(result, after_probs, before.ece, after.ece, path)
    if args.json:
        print(json.dumps({"checkpoint": str(path), **meta["calibration"], "reliability_png": picture}, indent=1))
        return 0
    print(f"temperature {temperature:.3f} fitted on {len(targets)} images of {data} ({split}): calibration error "
          f"(ECE) {before.ece:.3f} -> {after.ece:.3f}, negative log-likelihood {nll_before:.4f} -> {nll_after:.4f}; "
          f"predictions unchanged")
    print(f"stored in {path}: eval, predict, serve and export use it (calibrate --reset removes it)")
    if picture:
        print(f"reliability diagram: {picture}")
    return 0


def _reliability(result, after_probs, ece_before: float, ece_after: float, path: Path) -> str | None:
    from ..evaluation.pictures import reliability_png
    from ..extras import MissingExtra

    out = path.parent / f"reliability_calibrated_{path.stem}.png"
    try:
        reliability_png(after_probs.numpy(), result.targets, ece_after, out,
                        title=f"after temperature scaling (ECE before: {ece_before:.3f})")
    except MissingExtra as exc:
        print(f"inceptorch calibrate: no reliability diagram: {exc}", file=sys.stderr)
        return None
    return str(out)
