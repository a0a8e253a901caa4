"""Gather a run's report: evaluate its best weights on its validation images (or other data), then draw and
collect what the page shows. Files written beside the report: the per-image CSV and the pictures (the names eval
gives them), so the page links to the CSV and a reader can open each picture on its own."""
from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..errors import UserError
from ..extras import MissingExtra
from ..weights.model_file import resolve_model_file

TOP_LOSSES = 12  # mistakes shown, most confident first: heat maps only for these (the report's cost stays small)
CONFUSED_PAIRS = 6
NEIGHBOURS = 3


@dataclass
class Mistake:
    source: str
    label: str
    predicted: str
    probability: float        # of the predicted class
    label_probability: float
    loss: float
    picture: str = ""         # data URI: the crop and its heat map for the predicted class
    neighbours: list[tuple[str, str, float, str]] = field(default_factory=list)  # (source, label, similarity, URI)


@dataclass
class Report:
    title: str
    run_dir: Path
    command: str
    config: dict
    checkpoint: str
    data: str
    split: str
    result: object            # evaluation.EvalResult
    scores: object | None     # evaluation.scores.Scores
    pictures: dict[str, str]  # caption -> data URI
    predictions_csv: str      # relative to the report
    mistakes: list[Mistake]
    confused: list[tuple[str, str, int, float]]  # (true, predicted, images, share of the true class)
    notes: list[str]
    diagnosis: list[str]
    seconds: float
    path: Path | None = None  # where the page was written


def write_report(run_dir: str | Path, data: str | None = None, output: str | Path | None = None,
                 top_losses: int = TOP_LOSSES, neighbours: bool = False, device: str = "cpu") -> Report:
    """report.html (or `output`) for a run folder or a model file; returns what it holds, `path` set."""
    from ..fileio import atomic_write
    from .html import render

    report = gather(Path(run_dir), data, Path(output) if output else None, top_losses, neighbours, device)
    out = Path(output) if output else report.run_dir / "report.html"
    text = render(report)
    atomic_write(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    report.path = out
    return report


def gather(run_dir: Path, data: str | None, output: Path | None, top_losses: int, neighbours: bool,
           device: str) -> Report:
    from ..devices import resolve_device
    from ..evaluation import evaluate, load_eval_data, load_members, save_confusion_png
    from ..evaluation.per_image import write_csv
    from ..train.config import load_saved_config
    from ..train.metrics import read_metrics

    tic = time.perf_counter()
    checkpoint = resolve_model_file(run_dir)
    folder = checkpoint.parent
    config = load_saved_config(folder) if (folder / "config.yaml").is_file() else {}
    data = data or config.get("data")
    if not data:
        raise UserError(f"{run_dir} records no data (not a run folder): give --data")
    trained_on = str(data) == str(config.get("data"))
    images, split = load_eval_data(data, "val" if trained_on else "auto", float(config.get("val_split", 0.2)))
    member = load_members([checkpoint], resolve_device(device))[0]
    result = evaluate([member], images, 1, 256, data_name=str(data))
    out_dir = (output.parent if output else folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(str(data).rstrip('/')).stem or 'data'}_{split}"
    notes = []
    try:
        scores = result.scores()
    except MissingExtra as exc:
        scores = None
        notes.append(f"no precision, F1, ROC-AUC or calibration scores: {exc}")
    rows = result.rows()
    csv_path = out_dir / f"predictions_{stem}.csv"
    write_csv(rows, csv_path)
    pictures = {}
    if (folder / "curves.png").is_file():
        pictures["training curves"] = _uri(folder / "curves.png")
    try:
        from ..evaluation.pictures import curves_png, reliability_png

        pictures["confusion matrix"] = _uri(save_confusion_png(result, out_dir / f"confusion_{stem}.png"))
        if scores is not None:
            pictures["precision-recall and ROC curves"] = _uri(curves_png(
                result.probabilities, result.targets, result.model_classes, scores, out_dir / f"pr_roc_{stem}.png"))
            pictures["reliability diagram"] = _uri(reliability_png(
                result.probabilities, result.targets, scores.ece, out_dir / f"reliability_{stem}.png"))
    except MissingExtra as exc:
        notes.append(f"no pictures: {exc}")
    mistakes = _mistakes(rows, images, member, top_losses, notes)
    if neighbours and mistakes:
        _add_neighbours(mistakes, member, data, float(config.get("val_split", 0.2)), images, rows, notes)
    metrics = read_metrics(folder / "metrics.csv") if (folder / "metrics.csv").is_file() else []
    diagnosis = _diagnosis(metrics, result, config)
    command_file = folder / "command.txt"
    return Report(title=f"{config.get('model', member.model.model_name)} on {data}", run_dir=folder,
                  command=command_file.read_text().strip() if command_file.is_file() else "",
                  config=config, checkpoint=str(checkpoint), data=str(data), split=split, result=result,
                  scores=scores, pictures=pictures, predictions_csv=csv_path.name if not output else
                  str(Path(csv_path).resolve().relative_to(out_dir.resolve())),
                  mistakes=mistakes, confused=_confused_pairs(result), notes=notes, diagnosis=diagnosis,
                  seconds=time.perf_counter() - tic)


def _diagnosis(metrics: list[dict], result, config: dict) -> list[str]:
    """What the curves said: consecutive epochs with one finding as one range, then the last epoch's finding in the
    words the run logged, recomputed from metrics.csv (train/diagnosis.py). Its majority is the held-out images'
    largest class, which a stratified split shares with training, or an even share under the balancing sampler."""
    from ..train.diagnosis import diagnose

    spans: list[list] = []  # [kind, first epoch, last epoch]
    for row in metrics:
        kind, epoch = row.get("diagnosis"), int(row["epoch"])
        if kind and spans and spans[-1][0] == kind and spans[-1][2] == epoch - 1:
            spans[-1][2] = epoch
        elif kind:
            spans.append([kind, epoch, epoch])
    lines = [f"epoch {first}: {kind}" if first == last else f"epochs {first}-{last}: {kind}"
             for kind, first, last in spans]
    if metrics and metrics[-1].get("diagnosis") and result.class_counts:
        counts = result.class_counts
        even = config.get("class_balance") == "sampler"
        share = 1 / len(counts) if even else result.majority_share
        finding = diagnose(metrics, share, max(counts, key=counts.get))
        if finding is not None:
            lines.append(f"after the last epoch, {finding.message}")
    return lines


def _uri(path: Path | str) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _image_of(images, index: int) -> Image.Image:
    return images[index][0]


def _mistakes(rows: list[dict], images, member, top: int, notes: list[str]) -> list[Mistake]:
    """The `top` wrong answers with the highest loss (the most confident mistakes), each with its heat map."""
    wrong = sorted((i for i, r in enumerate(rows) if not r["correct"]), key=lambda i: -rows[i]["loss"])[:top]
    mistakes = [Mistake(rows[i]["path"], rows[i]["label"], rows[i]["predicted"], rows[i]["probability"],
                        rows[i]["label_probability"], rows[i]["loss"]) for i in wrong]
    if not mistakes:
        return []
    try:
        from ..explain.gradcam import explain_images, overlay

        index = {name: k for k, name in enumerate(member.class_names)}
        pictures = [_image_of(images, i) for i in wrong]
        maps = explain_images(member, pictures, [index[m.predicted] for m in mistakes])
        for mistake, (crop, heat) in zip(mistakes, maps):
            mistake.picture = _pair_uri(crop, overlay(crop, heat.map))
    except MissingExtra as exc:
        notes.append(f"no heat maps: {exc}")
    return mistakes


def _pair_uri(left: Image.Image, right: Image.Image, side: int = 160) -> str:
    """Two images side by side as one PNG data URI."""
    import io

    pair = Image.new("RGB", (2 * side + 4, side), "white")
    pair.paste(left.convert("RGB").resize((side, side)), (0, 0))
    pair.paste(right.convert("RGB").resize((side, side)), (side + 4, 0))
    buffer = io.BytesIO()
    pair.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _thumb_uri(image: Image.Image, side: int = 96) -> str:
    import io

    buffer = io.BytesIO()
    image.convert("RGB").resize((side, side)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _confused_pairs(result) -> list[tuple[str, str, int, float]]:
    """Off-diagonal cells of the confusion matrix, most images first."""
    pairs = []
    for r, true in enumerate(result.data_classes):
        total = result.confusion[r].sum()
        for c, predicted in enumerate(result.model_classes):
            n = int(result.confusion[r, c])
            if n and predicted != true:
                pairs.append((true, predicted, n, n / max(total, 1)))
    return sorted(pairs, key=lambda p: (-p[2], -p[3]))[:CONFUSED_PAIRS]


def _add_neighbours(mistakes: list[Mistake], member, data: str, val_split: float, val_images, rows,
                    notes: list[str]) -> None:
    """The training images closest to each shown mistake in the model's pre-logits space: a mistake beside
    training images of the class it was taken for often shows what misled the model (a mislabelled twin, a
    background shared by a class)."""
    from ..data.datasets import build_dataset
    from ..evaluation.embed import embed, nearest

    train = build_dataset(data, "train", val_split)
    train_images = [train[i][0] for i in range(len(train))]
    if not train_images:
        return
    pool = embed(member, train_images)
    by_source = {r["path"]: i for i, r in enumerate(rows)}
    queries = embed(member, [_image_of(val_images, by_source[m.source]) for m in mistakes])
    order, similarity = nearest(queries, pool, NEIGHBOURS)
    from ..evaluation.per_image import sample_names

    names = sample_names(train.samples, data)
    for mistake, idx, sim in zip(mistakes, order, similarity):
        mistake.neighbours = [(names[j], train.class_names[train.samples[j][1]], float(s),
                               _thumb_uri(train_images[j])) for j, s in zip(idx, sim)]

