"""One row per image: what the model answered, how sure it was, and, with the truth, whether it was right and its
loss. `eval --predictions FILE.csv` and `predict --csv FILE.csv` write these rows; `--json` carries them too."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..fileio import atomic_write

LABELLED = ("path", "label", "predicted", "probability", "label_probability", "correct", "loss", "topk")
UNLABELLED = ("path", "predicted", "probability", "topk")


def labelled_rows(paths: list[str], probabilities: np.ndarray, targets: np.ndarray, class_names: list[str],
                  k: int = 5) -> list[dict]:
    """Rows for scored images: `probabilities` [images, classes] (averaged over crops and models), `targets` the
    true class indices. The loss is the cross-entropy of the averaged probabilities, -log p(label)."""
    k = min(k, len(class_names))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    rows = []
    for path, probs, target, top in zip(paths, probabilities, targets, order):
        label_p = float(probs[target])
        rows.append({"path": path, "label": class_names[target], "predicted": class_names[top[0]],
                     "probability": float(probs[top[0]]), "label_probability": label_p,
                     "correct": int(top[0] == target), "loss": float(-np.log(max(label_p, 1e-12))),
                     "topk": [{"class": class_names[j], "probability": float(probs[j])} for j in top]})
    return rows


def unlabelled_rows(paths: list[str], classes: list[list[tuple[str, float]]]) -> list[dict]:
    """Rows for predictions without a truth: each image's (class, probability) pairs, most probable first."""
    return [{"path": path, "predicted": pairs[0][0], "probability": pairs[0][1],
             "topk": [{"class": c, "probability": p} for c, p in pairs]} for path, pairs in zip(paths, classes)]


def write_csv(rows: list[dict], path: str | Path) -> None:
    """The rows as CSV; the top-k as one column, `class:probability` pairs joined by `|`."""
    fields = LABELLED if rows and "label" in rows[0] else UNLABELLED
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        flat = {**row, "topk": "|".join(f"{t['class']}:{t['probability']:.6g}" for t in row["topk"])}
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in flat.items()})
    atomic_write(path, lambda tmp: Path(tmp).write_text(buffer.getvalue(), encoding="utf-8"))


def sample_names(samples: list, data: str) -> list[str]:
    """What identifies each image in a row: its file, or `DATA#INDEX` for an embedded data set's in-memory image
    (the index into that data set's split, which `--data DATA` rebuilds the same way)."""
    return [str(source) if isinstance(source, (str, Path)) else f"{data}#{i}" for i, (source, _) in
            enumerate(samples)]
