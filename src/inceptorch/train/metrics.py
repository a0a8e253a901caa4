"""A run's per-epoch numbers: metrics.csv (one row per epoch) and curves.png drawn from it.

Columns: `val_*` score the raw weights, `ema_val_*` the averaged (EMA) weights when the recipe keeps an average;
`*_balanced` is balanced accuracy (the mean per-class recall) and `*_recall_<class>` each class's recall, so that
a top-1 equal to the majority class's share shows as what it is; `diagnosis` is "underfitting", "overfitting" or
empty (`diagnosis.py`).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

BASE_FIELDS = ("epoch", "step", "lr", "train_loss", "train_top1")
EVAL_FIELDS = ("loss", "top1", "top5", "balanced")
TIMING_FIELDS = ("images_per_s", "epoch_time_s")


def metric_fields(class_names: list[str], ema: bool) -> list[str]:
    prefixes = ("val", "ema_val") if ema else ("val",)
    fields = [*BASE_FIELDS, *(f"{p}_{k}" for p in prefixes for k in EVAL_FIELDS), "best_weights", *TIMING_FIELDS,
              "diagnosis"]
    return fields + [f"{p}_recall_{name}" for p in prefixes for name in class_names]


def eval_columns(prefix: str, result: dict, class_names: list[str]) -> dict:
    """The columns of one evaluation (`engine.evaluate`'s result) under `prefix` ("val" or "ema_val")."""
    row = {f"{prefix}_{k}": result[k] for k in EVAL_FIELDS}
    row.update({f"{prefix}_recall_{name}": r for name, r in zip(class_names, result["recall"])})
    return row


def append_row(path: Path, row: dict, fields: list[str]) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def read_metrics(path: str | Path) -> list[dict]:
    """metrics.csv rows, numbers as floats (an empty or non-numeric cell stays a string); a resumed epoch's row
    replaces the interrupted attempt's."""
    rows: dict[int, dict] = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows[int(r["epoch"])] = {k: _number(v) for k, v in r.items()}
    return [rows[e] for e in sorted(rows)]


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def plot_curves(metrics: str | Path, out: str | Path, title: str = "") -> None:
    """curves.png: loss, accuracy (top-1 and balanced) and learning rate against epochs, raw and EMA labelled."""
    from ..plotting import figure, save

    fig, axes = figure(14, 3.8, 1, 3, what="curves.png")
    from matplotlib.ticker import MaxNLocator  # after figure(): without matplotlib, its one-line MissingExtra

    rows = read_metrics(metrics)
    epochs = [r["epoch"] for r in rows]
    has_ema = any(isinstance(r.get("ema_val_top1"), float) for r in rows)
    curves = [("train_loss", "train", 0, "-"), ("val_loss", "val (raw weights)", 0, "-"),
              ("train_top1", "train top-1", 1, "-"), ("val_top1", "val top-1 (raw)", 1, "-"),
              ("val_balanced", "val balanced (raw)", 1, ":")]
    if has_ema:
        curves += [("ema_val_loss", "val (EMA weights)", 0, "--"), ("ema_val_top1", "val top-1 (EMA)", 1, "--"),
                   ("ema_val_balanced", "val balanced (EMA)", 1, "-.")]
    for key, label, panel, style in curves:
        values = [r.get(key) for r in rows]
        if any(isinstance(v, float) and not math.isnan(v) for v in values):
            axes[panel].plot(epochs, [v if isinstance(v, float) else math.nan for v in values], style, marker=".",
                             label=label)
    axes[2].plot(epochs, [r["lr"] for r in rows], marker=".")
    for ax, name in zip(axes, ("loss", "accuracy (%)", "learning rate (end of epoch)")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs: a 3-epoch run showed 1.25, 1.75
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    save(fig, out)


def class_share_note(targets: list[int], class_names: list[str]) -> str | None:
    """A line naming the majority class's share of the validation set, when it is far from an even share: that
    share is the top-1 of a model that always answers that class."""
    if not targets or len(class_names) < 2:
        return None
    counts = torch.bincount(torch.tensor(targets), minlength=len(class_names))
    top = int(counts.argmax())
    share = float(counts[top]) / len(targets)
    if share < 1.5 / len(class_names):
        return None
    return (f"imbalanced classes: '{class_names[top]}' is {share:.1%} of the val images, so always answering it "
            f"scores {share:.1%} top-1; balanced accuracy (mean per-class recall) is the fairer score")


def missing_classes_note(targets: list[int], class_names: list[str]) -> str | None:
    """A warning naming the classes without a validation image: their recall is never measured, and balanced
    accuracy is the mean over the others (a class of one or two images often ends up with none in a split)."""
    counts = torch.bincount(torch.tensor(targets, dtype=torch.long), minlength=len(class_names)) if targets else None
    missing = [name for i, name in enumerate(class_names) if counts is None or counts[i] == 0]
    if not missing or len(missing) == len(class_names):
        return None
    shown = ", ".join(repr(n) for n in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    return (f"warning: no validation images of {shown} ({len(missing)} of {len(class_names)} classes): "
            f"{'its' if len(missing) == 1 else 'their'} recall is not measured, and balanced accuracy is the mean "
            f"over the other {len(class_names) - len(missing)}")


def prediction_note(result: dict, class_names: list[str], which: str) -> str | None:
    """A warning when the validated model answers one class for every image, or, on imbalanced validation data,
    never answers half the classes: its top-1 then says little, its balanced accuracy says how little."""
    predicted, present = result.get("predicted_per_class") or [], result.get("images_per_class") or []
    total = sum(predicted)
    if len(class_names) < 2 or not total:
        return None
    top = max(range(len(predicted)), key=predicted.__getitem__)
    if predicted[top] == total:
        return (f"warning: the {which} weights answer '{class_names[top]}' for every val image: top-1 is that "
                f"class's share, the model has not learned to tell the classes apart (yet)")
    imbalanced = present and max(present) >= 1.5 * sum(present) / len(present)
    never = [name for name, n, m in zip(class_names, predicted, present or predicted) if n == 0 and m > 0]
    if imbalanced and len(never) >= len(class_names) / 2:
        return (f"warning: the {which} weights never answer {len(never)} of {len(class_names)} classes "
                f"(e.g. '{never[0]}'); balanced accuracy {result['balanced']:.2f}%: the model answers mostly the "
                "majority classes (try --class-balance sampler)")
    return None
