"""What a study leaves in its output folder: trials.csv, history.png, importance.png and best.yaml, the best trial as
a recipe that `inceptorch train --config OUTPUT/best.yaml` takes."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import yaml

from ..extras import MissingExtra, require
from ..fileio import atomic_write
from ..train.config import FIELDS, resolve
from .space import Dim

COLUMNS = ("trial", "state", "value", "top1", "balanced", "best_epoch", "epochs_run", "seconds", "stopped", "diagnosis")


def trial_rows(study, space: tuple[Dim, ...]) -> list[dict]:
    """One row per trial that ended: its outcome, then its settings (by recipe name)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state.name not in ("COMPLETE", "PRUNED"):
            continue
        reported = t.intermediate_values
        value = t.value if t.value is not None else (max(reported.values()) if reported else math.nan)
        row = {"trial": t.number, "state": t.state.name.lower(), "value": value,
               "top1": t.user_attrs.get("top1", ""), "balanced": t.user_attrs.get("balanced", ""),
               "best_epoch": t.user_attrs.get("best_epoch", max(reported, key=reported.get) if reported else ""),
               "epochs_run": len(reported), "seconds": t.user_attrs.get("seconds", ""),
               "stopped": t.user_attrs.get("stopped", ""), "diagnosis": t.user_attrs.get("diagnosis", "")}
        for dim in space:
            if dim.name in t.params:
                row[dim.setting] = t.params[dim.name]
        rows.append(row)
    return rows


def write_table(rows: list[dict], path: Path) -> None:
    fields = list(COLUMNS) + sorted({k for r in rows for k in r} - set(COLUMNS))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r["trial"]):
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write(path, lambda tmp: Path(tmp).write_text(buffer.getvalue()))


def print_table(rows: list[dict], metric: str, top: int = 10) -> None:
    """The best `top` trials, best first."""
    from rich.console import Console
    from rich.table import Table

    settings = sorted({k for r in rows for k in r} - set(COLUMNS))
    table = Table(title=f"best trials by val {'balanced accuracy' if metric == 'balanced' else 'top-1'}")
    for name in ("trial", "value", "top-1", "balanced", "epochs", "state", *settings):
        table.add_column(name, justify="right" if name in ("trial", "value", "top-1", "balanced", "epochs") else "left")
    ranked = sorted(rows, key=lambda r: -r["value"] if not math.isnan(r["value"]) else math.inf)[:top]
    for r in ranked:
        table.add_row(str(r["trial"]), f"{r['value']:.2f}%", _pct(r["top1"]), _pct(r["balanced"]),
                      str(r["epochs_run"]), r["state"] + (f" ({r['stopped']})" if r["stopped"] else ""),
                      *(_short(r.get(k, "")) for k in settings))
    Console(width=200).print(table)


def _pct(value) -> str:
    return f"{value:.2f}%" if isinstance(value, float) else "-"


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def importances(study) -> dict[str, float]:
    """Each searched parameter's share of the objective's variance (Optuna's fANOVA, Hutter et al. 2014), over
    the completed trials; empty when there are too few of them to tell."""
    optuna = require("optuna", "parameter importances")
    completed = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(completed) < 3 or len({t.value for t in completed}) < 2:
        return {}
    try:
        return optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):  # too few distinct parameter values among completed trials
        return {}


def plot_history(rows: list[dict], path: Path, metric: str) -> None:
    """Each trial's value in order, completed and pruned apart, with the best so far (Optuna's history plot)."""
    from ..plotting import figure, save

    fig, ax = figure(7, 4, what="the search's history plot")
    rows = sorted(rows, key=lambda r: r["trial"])
    for state, marker, color in (("complete", "o", "C0"), ("pruned", "x", "0.6")):
        chosen = [r for r in rows if r["state"] == state]
        ax.scatter([r["trial"] for r in chosen], [r["value"] for r in chosen], marker=marker, color=color,
                   label=f"{state} ({len(chosen)})")
    best, running = [], -math.inf
    for r in rows:
        if r["state"] == "complete":
            running = max(running, r["value"])
        best.append(running if running > -math.inf else math.nan)
    ax.plot([r["trial"] for r in rows], best, color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"val {'balanced accuracy' if metric == 'balanced' else 'top-1'} (%)")
    ax.set_title("recipe search")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)


def plot_importance(weights: dict[str, float], path: Path) -> None:
    from ..plotting import figure, save

    names = list(weights)[::-1]
    fig, ax = figure(6, 0.5 + 0.4 * len(names), what="the parameter-importance plot")
    ax.barh(names, [weights[n] for n in names], color="C0")
    ax.set_xlabel("share of the objective's variance (fANOVA)")
    ax.set_title("which settings mattered")
    ax.grid(alpha=0.3, axis="x")
    save(fig, path)


def best_recipe(study, recipe: dict, fixed: dict, space: tuple[Dim, ...], metric: str, command: str) -> str:
    """best.yaml: the base recipe, the fixed settings and the best trial's, as one recipe with a header that says
    where it came from and what it reached (the recipe files' convention)."""
    trial = study.best_trial
    chosen = {dim.setting: trial.params[dim.name] for dim in space if dim.name in trial.params}
    settings = {**recipe, **{k: v for k, v in fixed.items() if k in FIELDS and k not in ("output",)}, **chosen}
    settings["epochs"] = trial.user_attrs.get("epochs", settings.get("epochs"))
    settings.pop("output", None)
    resolve(settings, {"output": "-"})  # what train --config will check, checked now
    name = "balanced accuracy" if metric == "balanced" else "top-1"
    reached = (f"trial {trial.number} of {len(study.trials)}: val {name} {trial.value:.2f}% at epoch "
               f"{trial.user_attrs.get('best_epoch', '?')} (top-1 {trial.user_attrs.get('top1', math.nan):.2f}%, "
               f"balanced {trial.user_attrs.get('balanced', math.nan):.2f}%), {trial.user_attrs.get('seconds', '?')} s")
    header = [f"# The best recipe of `{command}`", f"#   {reached}",
              "#   inceptorch train --config THIS_FILE --output runs/best",
              "# A search's best trial flatters it a little (the best of many noisy runs): expect a bit less."]
    return "\n".join(header) + "\n" + yaml.safe_dump(_plain(settings), sort_keys=False)


def _plain(settings: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()}


def write_report(study, search, metric: str, command: str) -> list[str]:
    """Every file of the report; returns lines saying what was written (or left out, without matplotlib)."""
    out = search.output
    rows = trial_rows(study, search.space)
    lines = []
    if not rows:
        return ["no trial has ended yet"]
    write_table(rows, out / "trials.csv")
    lines.append(f"trials: {out / 'trials.csv'}")
    if any(r["state"] == "complete" for r in rows):
        text = best_recipe(study, search.recipe, search.fixed, search.space, metric, command)
        atomic_write(out / "best.yaml", lambda tmp: Path(tmp).write_text(text))
        lines.append(f"best recipe: {out / 'best.yaml'}  (inceptorch train --config {out / 'best.yaml'} "
                     "--output runs/best)")
    try:
        plot_history(rows, out / "history.png", metric)
        lines.append(f"history: {out / 'history.png'}")
        weights = importances(study)
        if weights:
            plot_importance(weights, out / "importance.png")
            lines.append(f"importance: {out / 'importance.png'}  ("
                         + ", ".join(f"{k} {v:.2f}" for k, v in list(weights.items())[:4]) + ")")
    except MissingExtra as exc:
        lines.append(f"no plots: {exc}")
    return lines
