"""Pictures of an evaluation: one-vs-rest precision-recall and ROC curves, and the reliability diagram."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..extras import require
from ..plotting import figure, save
from .scores import Scores, reliability

MAX_CURVES = 12  # beyond this many classes a legend is unreadable: the classes with the lowest AP are drawn


def curves_png(probabilities: np.ndarray, targets: np.ndarray, class_names: list[str], scores: Scores,
               path: str | Path, title: str = "") -> Path:
    """Precision-recall (left) and ROC (right) curves of each class against the rest (torchmetrics' curves)."""
    require("torchmetrics", "the precision-recall and ROC curves")
    from torchmetrics.functional.classification import binary_precision_recall_curve, binary_roc

    probs, target = torch.as_tensor(probabilities, dtype=torch.float32), torch.as_tensor(targets)
    index = {name: i for i, name in enumerate(class_names)}
    drawn = [c for c in scores.classes if 0 < c.support < len(targets)]
    if len(drawn) > MAX_CURVES:
        drawn = sorted(drawn, key=lambda c: c.average_precision)[:MAX_CURVES]
    fig, (pr, roc) = figure(11, 4.5, cols=2, what="the precision-recall and ROC curves")
    for c in drawn:
        i = index[c.name]
        is_class = (target == i).long()
        precision, recall, _ = binary_precision_recall_curve(probs[:, i], is_class)
        pr.plot(recall.numpy(), precision.numpy(), label=f"{c.name} (AP {c.average_precision:.3f})")
        fpr, tpr, _ = binary_roc(probs[:, i], is_class)
        roc.plot(fpr.numpy(), tpr.numpy(), label=f"{c.name} (AUC {c.roc_auc:.3f})")
    roc.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall, one class vs the rest", xlim=(0, 1),
           ylim=(0, 1.02))
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, one class vs the rest",
            xlim=(0, 1), ylim=(0, 1.02))
    for ax in (pr, roc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left" if ax is pr else "lower right")
    if title:
        fig.suptitle(title)
    save(fig, path)
    return Path(path)


def reliability_png(probabilities: np.ndarray, targets: np.ndarray, ece: float, path: str | Path,
                    title: str = "", ece_after: float | None = None) -> Path:
    """The reliability diagram: accuracy against top-1 confidence per bin (a calibrated model lies on the
    diagonal), with the images per bin below."""
    points = reliability(probabilities, targets)
    fig, (top, bottom) = figure(5.5, 6, rows=2, what="the reliability diagram")
    top.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1, label="calibrated")
    top.plot(points["confidence"], points["accuracy"], marker="o", color="C0", label="model")
    top.set(xlim=(0, 1), ylim=(0, 1), xlabel="top-1 confidence", ylabel="accuracy",
            title=f"reliability: ECE {ece:.3f}" + (f" (after temperature scaling {ece_after:.3f})"
                                                   if ece_after is not None else ""))
    top.grid(alpha=0.3)
    top.legend(fontsize=8, loc="upper left")
    bottom.bar(points["bin_center"], points["count"], width=0.9 / len(points["count"]) if len(points["count"]) > 15
               else 0.06, color="C0")
    bottom.set(xlim=(0, 1), xlabel="top-1 confidence", ylabel="images")
    bottom.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    save(fig, path)
    return Path(path)
