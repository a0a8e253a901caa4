"""Accuracy of one model or an ensemble on a labelled dataset: top-1, top-5, per class, and a confusion matrix.

Data classes are matched to checkpoint classes by NAME, not index, so a folder with a subset of the classes, or
with its folders in another order, is scored correctly; a data class the checkpoint does not know is an error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.datasets import ImageList, build_dataset
from ..errors import UserError
from ..extras import require
from ..fileio import atomic_write
from .ensemble import Member, _few, ensemble_probabilities
from .options import PROTOCOLS, SPLITS
from .per_image import sample_names


@dataclass
class EvalResult:
    top1: float
    top5: float
    per_class: dict[str, float]           # top-1 accuracy (recall) of each data class
    class_counts: dict[str, int]          # images of each data class
    confusion: np.ndarray                 # [data classes, model classes]: rows true, columns predicted
    data_classes: list[str]
    model_classes: list[str]
    probabilities: np.ndarray             # [images, model classes], averaged over crops and models
    targets: np.ndarray                   # [images], indices into model_classes
    crops: int
    topk: int = 5                         # top-5 is top-min(5, classes)
    checkpoints: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # each image's file (or DATA#INDEX), in `targets` order

    @property
    def num_images(self) -> int:
        return len(self.targets)

    @property
    def balanced(self) -> float:
        """Balanced accuracy: the mean per-class recall over the classes with images (scikit-learn's
        `balanced_accuracy_score`), what always answering the majority class scores 1 / classes in."""
        present = [acc for name, acc in self.per_class.items() if self.class_counts.get(name)]
        return sum(present) / len(present) if present else float("nan")

    @property
    def topk_informative(self) -> bool:
        """Top-k says something only below the number of classes: top-3 of 3 classes is 100% for any model."""
        return self.topk < len(self.model_classes)

    @property
    def majority_share(self) -> float:
        """The largest class's share of the images: the top-1 of always answering that class."""
        return max(self.class_counts.values(), default=0) / max(self.num_images, 1)

    def scores(self):
        """Precision, recall, F1, ROC-AUC, average precision and calibration error (`scores.py`)."""
        from .scores import practitioner_scores

        return practitioner_scores(self.probabilities, self.targets, self.model_classes)

    def rows(self, k: int = 5) -> list[dict]:
        """One row per image (`per_image.py`)."""
        from .per_image import labelled_rows

        return labelled_rows(self.sources, self.probabilities, self.targets, self.model_classes, k)

    def to_dict(self) -> dict:
        # Top-k of k or fewer classes is 1.0 for any model: left out, as the text output leaves it out.
        topk = {"top5": self.top5, "topk": self.topk} if self.topk_informative else {}
        return {"top1": self.top1, **topk, "balanced_accuracy": self.balanced,
                "majority_class_share": self.majority_share, "per_class": self.per_class,
                "class_counts": self.class_counts,
                "num_images": self.num_images, "crops": self.crops, "checkpoints": self.checkpoints,
                "confusion_matrix": self.confusion.tolist()}


def load_eval_data(spec: str, split: str = "auto", val_split: float = 0.2, seed: int = 0) -> tuple[ImageList, str]:
    """The images to score and the split actually used.

    "auto" takes the held-out part where the data has one the training also knows: the `val/` folder of a
    train/val tree, or the deterministic val split of the embedded digits (same `val_split` and `seed` as
    training). A plain class folder or a CSV list is taken whole ("all"): pointing eval at a folder of held-out
    images should score all of them. `--split val` reproduces the training split of such a folder instead.
    """
    if split not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    if split == "auto":
        path = Path(spec)
        tree = path.is_dir() and (path / "train").is_dir() and (path / "val").is_dir()
        split = "val" if tree or not path.exists() else "all"
    if split != "all":
        return build_dataset(spec, split, val_split, seed), split
    train, val = build_dataset(spec, "train", val_split, seed), build_dataset(spec, "val", val_split, seed)
    return ImageList(train.samples + val.samples, train.class_names), split


class _CropViews(Dataset):
    """(crops for each distinct member transform, label); members with the same input geometry share crops."""

    def __init__(self, data: ImageList, transforms: list):
        self.data, self.transforms = data, transforms

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        image, label = self.data[index]
        return tuple(t(image) for t in self.transforms), label


def _collate(batch):
    views, labels = zip(*batch)
    return [torch.cat(parts) for parts in zip(*views)], torch.tensor(labels)


def evaluate(members: list[Member], dataset: ImageList, crops: int = 1, batch_size: int = 256,
             workers: int = 0, data_name: str = "data") -> EvalResult:
    """Score `members` (one model or an ensemble) on `dataset` with `crops` (1, 10 or 144) per image.

    `batch_size` counts crops per forward pass; images are batched so that about that many crops go at once.
    """
    if crops not in PROTOCOLS:
        raise UserError(f"--crops must be one of {', '.join(map(str, PROTOCOLS))}, not {crops}")
    model_classes = members[0].class_names
    index = {name: i for i, name in enumerate(model_classes)}
    unknown = [name for name in dataset.class_names if name not in index]
    if unknown:
        raise UserError(f"the data has {len(unknown)} class(es) the checkpoint does not know: {_few(unknown)} "
                        f"(checkpoint classes: {_few(model_classes)})")
    to_model = torch.tensor([index[name] for name in dataset.class_names])

    transforms, slot = [], []  # one transform per distinct geometry; slot[i] = which one member i uses
    for member in members:
        t = member.transform(crops)
        keys = [u.key() for u in transforms]
        if t.key() not in keys:
            transforms.append(t)
            keys.append(t.key())
        slot.append(keys.index(t.key()))
    loader = DataLoader(_CropViews(dataset, transforms), batch_size=max(1, batch_size // crops), shuffle=False,
                        num_workers=workers, collate_fn=_collate)
    probs, targets = [], []
    for views, labels in loader:
        probs.append(ensemble_probabilities(members, [views[s] for s in slot], crops, batch_size))
        targets.append(to_model[labels])
    return score(torch.cat(probs), torch.cat(targets), dataset.class_names, model_classes, crops,
                 [m.source for m in members], sample_names(dataset.samples, data_name))


def score(probs: torch.Tensor, targets: torch.Tensor, data_classes: list[str], model_classes: list[str],
          crops: int, checkpoints: list[str], sources: list[str] | None = None) -> EvalResult:
    """Metrics from averaged probabilities [images, model classes] and targets (model class indices)."""
    if len(targets) == 0:
        raise UserError("no images to evaluate")
    k = min(5, probs.shape[1])
    pred = probs.argmax(dim=1)
    top1_hit = pred == targets
    top5_hit = (probs.topk(k, dim=1).indices == targets[:, None]).any(dim=1)
    index = {name: i for i, name in enumerate(model_classes)}
    confusion = np.zeros((len(data_classes), len(model_classes)), dtype=np.int64)
    per_class, counts = {}, {}
    for row, name in enumerate(data_classes):
        mask = targets == index[name]
        counts[name] = int(mask.sum())
        per_class[name] = float(top1_hit[mask].float().mean()) if counts[name] else float("nan")
        confusion[row] = np.bincount(pred[mask].numpy(), minlength=len(model_classes))
    return EvalResult(top1=float(top1_hit.float().mean()), top5=float(top5_hit.float().mean()),
                      per_class=per_class, class_counts=counts, confusion=confusion, data_classes=list(data_classes),
                      model_classes=list(model_classes), probabilities=probs.numpy(), targets=targets.numpy(),
                      crops=crops, topk=k, checkpoints=checkpoints, sources=list(sources or []))


def _fit_width(fig) -> None:
    """Widen the figure to its widest text: a matrix of two or three classes is narrower than its title, and
    tight_layout fits axes and labels, not a title wider than the whole figure (which it leaves clipped)."""
    renderer = fig.canvas.get_renderer()
    margin = 0.2  # inches each side
    widest = max(t.get_window_extent(renderer).width for t in fig.texts) / fig.dpi + 2 * margin
    if widest > fig.get_figwidth():
        fig.set_figwidth(widest)
        fig.tight_layout()


def save_confusion_png(result: EvalResult, path: str | Path, title: str = "") -> Path:
    """The confusion matrix as a PNG, rows normalised to per-class rates; counts written in cells when few classes."""
    require("matplotlib", "the confusion matrix PNG")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = result.confusion
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    n_rows, n_cols = counts.shape
    side = min(16.0, max(4.0, 0.45 * max(n_rows, n_cols) + 2.5))
    # Wider than tall when the model has more classes than the data, but at most 20 inches: 3 ImageNet folders
    # against 1,000 outputs made a 29,000-pixel-wide PNG that took 10 s to draw.
    width = min(side * max(1.0, n_cols / max(n_rows, 1)) ** 0.5, max(side, 20.0))
    fig = Figure(figsize=(width, side))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if max(n_rows, n_cols) <= 40:  # beyond that, names and counts would overlap: keep only the colours
        ax.set_xticks(range(n_cols), result.model_classes, rotation=90 if n_cols > 10 else 0)
        ax.set_yticks(range(n_rows), result.data_classes)
    if max(n_rows, n_cols) <= 20:
        for r in range(n_rows):
            for c in range(n_cols):
                if counts[r, c]:
                    ax.text(c, r, str(counts[r, c]), ha="center", va="center", fontsize=8,
                            color="white" if rates[r, c] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    topk = f", top-{result.topk} {result.top5:.2%}" if result.topk_informative else ""
    fig.suptitle(title or f"top-1 {result.top1:.2%}{topk} "
                          f"({result.num_images} images, {result.crops} crop{'s' if result.crops > 1 else ''})")
    fig.tight_layout()
    _fit_width(fig)
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    return path
