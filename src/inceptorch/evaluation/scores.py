"""The scores practitioners read beside accuracy, computed by torchmetrics (and scikit-learn's calibration curve):
per-class precision, recall, F1 and support; macro and weighted F1; one-vs-rest ROC-AUC and average precision;
expected calibration error. The same numbers as scikit-learn's `classification_report`, `roc_auc_score(...,
multi_class="ovr")` and `average_precision_score`.

Only the classes the data has images of are scored (a 1000-class ImageNet model scored on 3 folders has 3 rows);
the macro averages are over those classes, the weighted ones weigh each by its images.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..extras import require

CALIBRATION_BINS = 15  # the usual ECE binning (Guo et al. 2017, "On Calibration of Modern Neural Networks")


@dataclass
class ClassScores:
    name: str
    support: int
    precision: float
    recall: float
    f1: float
    roc_auc: float            # one-vs-rest; NaN when every image is of this class
    average_precision: float  # area under the precision-recall curve, one-vs-rest


@dataclass
class Scores:
    classes: list[ClassScores]
    macro_f1: float
    weighted_f1: float
    macro_roc_auc: float
    macro_average_precision: float
    ece: float  # expected calibration error of the top-1 confidence, 15 equal-width bins, in [0, 1]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["classes"] = {c.pop("name"): c for c in out["classes"]}
        return _finite(out)


def practitioner_scores(probabilities: np.ndarray, targets: np.ndarray, class_names: list[str]) -> Scores:
    """Scores of probabilities [images, classes] against target class indices, over the classes with images."""
    require("torchmetrics", "precision, F1, ROC-AUC and calibration scores")
    from torchmetrics.functional.classification import (
        multiclass_auroc,
        multiclass_average_precision,
        multiclass_calibration_error,
        multiclass_f1_score,
        multiclass_precision,
        multiclass_recall,
    )

    probs = torch.as_tensor(probabilities, dtype=torch.float32)
    target = torch.as_tensor(targets, dtype=torch.long)
    k = probs.shape[1]
    support = torch.bincount(target, minlength=k)
    present = (support > 0).nonzero().flatten()
    per_class = {name: fn(probs, target, num_classes=k, average="none").nan_to_num(0.0)
                 for name, fn in (("precision", multiclass_precision), ("recall", multiclass_recall),
                                  ("f1", multiclass_f1_score))}
    roc_auc = _one_vs_rest(multiclass_auroc, probs, target, k)
    average_precision = _one_vs_rest(multiclass_average_precision, probs, target, k)
    classes = [ClassScores(class_names[i], int(support[i]), float(per_class["precision"][i]),
                           float(per_class["recall"][i]), float(per_class["f1"][i]), roc_auc[i],
                           average_precision[i]) for i in present.tolist()]
    weights = support[present].double() / support.sum()
    f1 = per_class["f1"][present].double()
    ece = float(multiclass_calibration_error(probs, target, num_classes=k, n_bins=CALIBRATION_BINS, norm="l1"))
    return Scores(classes, float(f1.mean()), float((f1 * weights).sum()), _mean(c.roc_auc for c in classes),
                  _mean(c.average_precision for c in classes), ece)


def _one_vs_rest(metric, probs: torch.Tensor, target: torch.Tensor, k: int) -> list[float]:
    """Each class's one-vs-rest score; NaN for a class whose images are all or none of the data (torchmetrics
    warns about those and returns 0; their NaN says it better, and is left out of the macro average)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = metric(probs, target, num_classes=k, average="none")
    support = torch.bincount(target, minlength=k)
    return [float(v) if 0 < support[i] < len(target) else math.nan for i, v in enumerate(values.tolist())]


def _mean(values) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def reliability(probabilities: np.ndarray, targets: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """The reliability diagram's points: for each confidence bin with images, the mean top-1 confidence, the
    accuracy and the number of images (scikit-learn's `calibration_curve` on top-1 correctness)."""
    calibration_curve = require("sklearn.calibration", "the reliability diagram").calibration_curve
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == targets).astype(int)
    # The bins as calibration_curve draws them (uniform, searchsorted on the inner edges), to count their images.
    which = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], confidence)
    counts = np.bincount(which, minlength=bins)
    if correct.min() == correct.max():  # all right or all wrong: calibration_curve needs both outcomes
        accuracy = [float(correct[0])] * int((counts > 0).sum())
        mean_confidence = [float(confidence[which == b].mean()) for b in range(bins) if counts[b]]
    else:
        accuracy, mean_confidence = (a.tolist() for a in calibration_curve(correct, confidence, n_bins=bins))
    centers = (np.arange(bins) + 0.5) / bins
    return {"confidence": mean_confidence, "accuracy": accuracy, "count": [int(n) for n in counts if n],
            "bin_center": [float(c) for c, n in zip(centers, counts) if n]}


def _finite(value):
    """JSON has no NaN: undefined scores become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
