"""The report as one HTML page: inline CSS, pictures as data URIs, nothing fetched from anywhere."""
from __future__ import annotations

import datetime
import html
import math

import yaml

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1150px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.meta { color: #666; font-size: 0.9em; }
.cards { display: flex; flex-wrap: wrap; gap: 1.2em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.8em; background: #fafafa; }
.big { font-size: 1.6em; font-weight: 600; } .small { font-size: 0.85em; color: #555; }
table { border-collapse: collapse; font-size: 0.9em; } th, td { padding: 0.25em 0.7em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) { background: #f8f8f8; }
img { max-width: 100%; } figure { margin: 1em 0; } figcaption { color: #666; font-size: 0.85em; }
.mistakes { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 1em; }
.warn { color: #a0441a; } pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.neighbours img { width: 72px; height: 72px; margin-right: 4px; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float) -> str:
    return "--" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2%}"


def _num(value: float, digits: int = 3) -> str:
    return "--" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def render(report) -> str:
    r = report.result
    where = (f"{_e(report.checkpoint)} &middot; {_e(report.data)} ({_e(report.split)} split, {r.num_images:,} "
             f"images) &middot; written {datetime.datetime.now():%Y-%m-%d %H:%M} in {report.seconds:.1f} s")
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(report.title)}</title>",
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{STYLE}</style></head><body>",
             f"<h1>{_e(report.title)}</h1>", f"<p class='meta'>{where}</p>"]
    parts.append(_summary(report))
    if report.diagnosis:
        parts.append("<h2>What the curves said</h2><ul>" + "".join(f"<li class='warn'>{_e(d)}</li>"
                                                                    for d in report.diagnosis[-6:]) + "</ul>")
    if "training curves" in report.pictures:
        parts.append(_figure(report.pictures["training curves"], "loss, accuracy and learning rate by epoch"))
    parts.append(_class_table(report))
    for caption, heading in (("confusion matrix", "Confusion matrix"),
                             ("precision-recall and ROC curves", "Precision-recall and ROC curves"),
                             ("reliability diagram", "Calibration")):
        if caption in report.pictures:
            parts.append(f"<h2>{heading}</h2>" + _figure(report.pictures[caption], caption))
    parts.append(_confused(report))
    parts.append(_mistakes(report))
    parts.append(f"<h2>Every image</h2><p>One row per image (path, label, prediction, probabilities, loss): "
                 f"<a href='{_e(report.predictions_csv)}'>{_e(report.predictions_csv)}</a></p>")
    parts.append(_config(report))
    if report.notes:
        parts.append("<h2>Left out</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary(report) -> str:
    r, s = report.result, report.scores
    cards = [("top-1", _pct(r.top1), f"always answering the largest class: {_pct(r.majority_share)}"),
             ("balanced accuracy", _pct(r.balanced), "mean per-class recall")]
    if s is not None:
        cards += [("macro F1", _pct(s.macro_f1), f"weighted F1 {_pct(s.weighted_f1)}"),
                  ("macro ROC-AUC", _num(s.macro_roc_auc), f"macro AP {_num(s.macro_average_precision)}"),
                  ("calibration error", _num(s.ece), "ECE of the top-1 confidence, 15 bins")]
    return "<div class='cards'>" + "".join(
        f"<div class='card'><div class='small'>{_e(name)}</div><div class='big'>{value}</div>"
        f"<div class='small'>{_e(note)}</div></div>" for name, value, note in cards) + "</div>"


def _figure(uri: str, caption: str) -> str:
    return f"<figure><img src='{uri}' alt='{_e(caption)}'><figcaption>{_e(caption)}</figcaption></figure>"


def _class_table(report) -> str:
    r, s = report.result, report.scores
    by_name = {c.name: c for c in s.classes} if s is not None else {}
    head = "<tr><th>class</th><th>images</th><th>recall</th>" + (
        "<th>precision</th><th>F1</th><th>ROC-AUC</th><th>AP</th>" if s is not None else "") + "</tr>"
    rows = []
    for name in r.data_classes:
        c = by_name.get(name)
        cells = [_e(name), f"{r.class_counts[name]:,}", _pct(r.per_class[name])]
        if s is not None:
            cells += [_pct(c.precision), _pct(c.f1), _num(c.roc_auc), _num(c.average_precision)] if c else \
                ["--"] * 4
        rows.append("<tr>" + "".join(f"<td>{v}</td>" for v in cells) + "</tr>")
    return "<h2>Per class</h2><table>" + head + "".join(rows) + "</table>"


def _confused(report) -> str:
    if not report.confused:
        return "<h2>Most confused pairs</h2><p>No image was confused with another class.</p>"
    rows = "".join(f"<tr><td>{_e(t)}</td><td>{_e(p)}</td><td>{n:,}</td><td>{share:.1%}</td></tr>"
                   for t, p, n, share in report.confused)
    return ("<h2>Most confused pairs</h2><table><tr><th>true class</th><th>taken for</th><th>images</th>"
            "<th>of the true class</th></tr>" + rows + "</table>")


def _mistakes(report) -> str:
    if not report.mistakes:
        return "<h2>Most confident mistakes</h2><p>No mistakes.</p>"
    cards = []
    for m in report.mistakes:
        picture = f"<img src='{m.picture}' alt='{_e(m.source)} and its heat map'>" if m.picture else ""
        neighbours = ""
        if m.neighbours:
            neighbours = "<div class='neighbours small'>nearest training images: " + "".join(
                f"<img src='{uri}' title='{_e(src)}: {_e(label)} (similarity {sim:.2f})' alt='{_e(label)}'>"
                for src, label, sim, uri in m.neighbours) + "<br>" + ", ".join(
                f"{_e(label)} ({sim:.2f})" for _, label, sim, _ in m.neighbours) + "</div>"
        cards.append(f"<div class='card'>{picture}<div>true <b>{_e(m.label)}</b>, taken for <b>{_e(m.predicted)}"
                     f"</b> at {m.probability:.1%} (true class {m.label_probability:.1%}; loss {m.loss:.2f})</div>"
                     f"<div class='small'>{_e(m.source)}</div>{neighbours}</div>")
    return ("<h2>Most confident mistakes</h2><p class='small'>The wrong answers with the highest loss; beside each "
            "image, its Grad-CAM heat map for the class it was taken for: where that evidence lies.</p>"
            "<div class='mistakes'>" + "".join(cards) + "</div>")


def _config(report) -> str:
    parts = ["<h2>How the run was made</h2>"]
    if report.command:
        parts.append(f"<pre>{_e(report.command)}</pre>")
    if report.config:
        text = yaml.safe_dump(report.config, sort_keys=False)
        parts.append(f"<details><summary>config.yaml</summary><pre>{_e(text)}</pre></details>")
    return "".join(parts)
