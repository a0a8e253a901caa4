"""An experiment's table and plot, read back from its run folders (nothing else: a table can be rebuilt any time).

Per run: the last row of `metrics.csv` gives the final validation top-1 (`val_top1`), its first row the top-1
after one epoch, and the columns `train_loss` / `val_loss` / `val_top1` the curves; `reproduce.json` gives how the
run ended and its `RunResult` (best top-1); the `epoch_time_s` column the time taken. Per variant: parameters and
multiply-adds (MACs, as `inceptorch summary` counts them: inference, auxiliary heads left out) of the model a run
saved.

Spread is the sample standard deviation across seeds. A claimed difference is judged "not resolved" when it is no
larger than that spread (the larger of the two rows'), and nothing is judged from a single seed.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from ..train.metrics import read_metrics
from .experiments import Experiment
from .runner import RECORD


def describe(values: list[float]) -> dict:
    """Mean and spread (sample standard deviation; None below two values) of `values`."""
    n = len(values)
    return {"mean": statistics.fmean(values) if n else None, "std": statistics.stdev(values) if n > 1 else None,
            "n": n, "values": values}


def read_run(folder: Path) -> dict | None:
    """One run's outcome from its folder, or None when it has not ended (no reproduce.json)."""
    if not (folder / RECORD).is_file():
        return None
    record = json.loads((folder / RECORD).read_text())
    rows = read_metrics(folder / "metrics.csv") if (folder / "metrics.csv").is_file() else []
    finished = record["status"] == "finished" and bool(rows)
    return {"folder": str(folder), "status": record["status"], "message": record.get("message", ""),
            "epochs": [int(r["epoch"]) for r in rows],
            "train_loss": [r["train_loss"] for r in rows], "val_loss": [r["val_loss"] for r in rows],
            "val_top1": [r["val_top1"] for r in rows],
            "final_top1": rows[-1]["val_top1"] if finished else None,
            "epoch1_top1": rows[0]["val_top1"] if rows else None,
            "final_train_loss": rows[-1]["train_loss"] if finished else None,
            "best_top1": record.get("best_top1"), "seconds": _training_seconds(rows, record)}


def _training_seconds(rows: list[dict], record: dict) -> float | None:
    """Seconds spent training and validating, summed over the epochs in metrics.csv: a run that was interrupted and
    resumed counts all of its epochs, where its `RunResult.seconds` covers the last process only."""
    times = [r.get("epoch_time_s") for r in rows]
    if rows and all(isinstance(t, (int, float)) for t in times):
        return float(sum(times))
    return record.get("seconds")


def model_cost(folders: list[Path]) -> dict:
    """Parameters and MACs of the model that a run of this variant saved (or would build, if none saved one)."""
    from ..analysis.summary import summarize
    from ..weights.model_file import load_model_file

    for folder in folders:
        for name in ("best.safetensors", "last.safetensors"):
            if (folder / name).is_file():
                model, meta = load_model_file(folder / name)
                summary = summarize(model, meta["model_cfg"]["input_size"])
                return {"params": summary.params, "macs": summary.macs, "input_size": summary.input_size}
    return _cost_from_config(folders[0]) if folders else {"params": None, "macs": None, "input_size": None}


def _cost_from_config(folder: Path) -> dict:
    """When every run diverged before its first checkpoint: the model its config.yaml describes."""
    from ..analysis.summary import summarize
    from ..data.datasets import build_dataset
    from ..models import create_model
    from ..train.config import load_saved_config

    if not (folder / "config.yaml").is_file():
        return {"params": None, "macs": None, "input_size": None}
    cfg = load_saved_config(folder)
    classes = build_dataset(cfg["data"], "train", cfg.get("val_split", 0.2)).class_names
    model = create_model(cfg["model"], **cfg.get("model_kwargs", {}), num_classes=len(classes))
    summary = summarize(model, cfg.get("input_size") or model.default_cfg.input_size)
    return {"params": summary.params, "macs": summary.macs, "input_size": summary.input_size}


def collect(exp: Experiment, output: str | Path, seeds: int) -> dict:
    """The experiment's rows, each variant's seeds 0..seeds-1 read from its run folders."""
    folder = Path(output) / exp.name
    rows = []
    for variant in exp.variants:
        folders = [folder / variant.name / f"seed-{s}" for s in range(seeds)]
        runs = [r for r in (read_run(f) for f in folders) if r is not None]
        done = [r for r in runs if r["status"] == "finished" and r["final_top1"] is not None]
        rows.append({
            "variant": variant.name, "model": variant.model, "model_kwargs": variant.model_kwargs,
            "overrides": variant.overrides, "claim": variant.claim, "versus": variant.versus,
            "expect": variant.expect, "runs": runs, "seeds": seeds, "ended": len(runs),
            "diverged": sum(r["status"] == "diverged" for r in runs),
            "top1": describe([r["final_top1"] for r in done]),
            "epoch1_top1": describe([r["epoch1_top1"] for r in done]),
            "best_top1": describe([r["best_top1"] for r in done]),
            "final_train_loss": describe([r["final_train_loss"] for r in done]),
            "seconds": describe([r["seconds"] for r in done]),
            **model_cost([f for f in folders if f.is_dir()]),
        })
    settings = _settings(folder, exp)
    # Runs cut short (--epochs below the experiment's own) test less than the claim: every verdict says so.
    ran = settings.get("epochs")
    short = f"runs of {ran} of the experiment's {exp.epochs} epochs" if ran is not None and ran < exp.epochs else ""
    by_name = {r["variant"]: r for r in rows}
    for row in rows:
        ref = by_name.get(row["versus"]) if row["versus"] else None
        row["macs_vs"] = (row["macs"] / ref["macs"] - 1) if ref and row["macs"] and ref["macs"] else None
        row["verdict"] = verdict(row, ref) if ref and row["expect"] else ""
        if row["verdict"] and short:
            row["verdict"] += f" ({short})"
        row["within_spread"] = within_spread(row, ref) if ref and row["expect"] else None
    return {"experiment": exp.name, "title": exp.title, "claim": exp.claim, "source": exp.source,
            "recipe": exp.recipe, "settings": settings, "kind": exp.kind, "seeds": seeds,
            "epochs": ran, "experiment_epochs": exp.epochs,
            "units": {"top1": "validation top-1 (%) at the last epoch, mean and sample std over seeds",
                      "macs": "multiply-adds per image (FLOPs = 2 x MACs)", "seconds": "RunResult.seconds"},
            "rows": rows}


def _settings(folder: Path, exp: Experiment) -> dict:
    """The shared settings of the runs (epochs, data, recipe values), from the first run's config.yaml."""
    from ..train.config import load_saved_config

    for variant in exp.variants:
        first = folder / variant.name / "seed-0"
        if (first / "config.yaml").is_file():
            cfg = load_saved_config(first)
            return {k: cfg.get(k) for k in ("data", "epochs", "batch_size", "optimizer", "lr", "schedule",
                                            "weight_decay", "aug", "device")}
    return {}


def within_spread(row: dict, ref: dict) -> bool | None:
    """Whether the difference of the claim's metric is no larger than the spread across seeds (None: not measured)."""
    if row["expect"] == "stabler":
        return None
    key = "epoch1_top1" if row["expect"] == "higher early" else "top1"
    a, b = row[key], ref[key]
    if a["std"] is None or b["std"] is None:
        return None
    return abs(a["mean"] - b["mean"]) <= max(a["std"], b["std"])


def verdict(row: dict, ref: dict) -> str:
    """The measured outcome of `row`'s claim against `ref`, in words; honest about seed noise."""
    name, expect = ref["variant"], row["expect"]
    if expect == "stabler":
        a, b, n_a, n_b = row["diverged"], ref["diverged"], row["ended"], ref["ended"]
        counts = f"{a}/{n_a} diverged vs {b}/{n_b} for {name}"
        if a == b == 0:
            return f"{counts}: no run diverged, so stability is not tested at this size"
        return f"{counts}: " + ("agrees" if a < b else "no difference" if a == b else "disagrees")
    key = "epoch1_top1" if expect == "higher early" else "top1"
    a, b = row[key], ref[key]
    what = "top-1 after epoch 1" if key == "epoch1_top1" else "top-1"
    if not a["n"] or not b["n"]:
        return f"no finished runs to compare {what}"
    diff = a["mean"] - b["mean"]
    head = f"{what} {diff:+.2f} points vs {name}"
    if a["n"] < 2 or b["n"] < 2:
        return f"{head}; one seed, no spread: not judged"
    spread = max(a["std"], b["std"])
    if abs(diff) <= spread:
        if expect == "not lower":
            return f"{head}, within the spread across seeds (±{spread:.2f}): no loss measured, as claimed"
        return f"{head}, smaller than the spread across seeds (±{spread:.2f}): not resolved"
    if expect == "not lower":
        return f"{head}, beyond the spread (±{spread:.2f}): " + ("agrees (higher)" if diff > 0 else "disagrees")
    return f"{head}, beyond the spread (±{spread:.2f}): " + ("agrees" if diff > 0 else "disagrees")


# ---- writing -------------------------------------------------------------------------------------------------------

COLUMNS = ("variant", "val top-1 (%)", "after epoch 1", "params", "MACs", "time (s)", "diverged", "claim",
           "measured")
STABILITY_COLUMN = "final train loss"  # after "after epoch 1", in stability experiments only


def columns(result: dict) -> list[str]:
    cols = list(COLUMNS)
    if result["kind"] == "stability":
        cols.insert(3, STABILITY_COLUMN)
    return cols


def _pm(d: dict, digits: int = 2) -> str:
    if d["mean"] is None:
        return "-"
    return f"{d['mean']:.{digits}f}" + (f" ± {d['std']:.{digits}f}" if d["std"] is not None else "")


def table_rows(result: dict) -> list[list[str]]:
    out = []
    for r in result["rows"]:
        macs = "-" if r["macs"] is None else f"{r['macs'] / 1e6:.2f}M"
        if r["macs_vs"] is not None:
            macs += f" ({r['macs_vs']:+.0%})"
        claim = r["claim"] + (f" [vs {r['versus']}]" if r["versus"] else "")
        # After a single epoch the first epoch is the last: its column would repeat the one before.
        row = [r["variant"], _pm(r["top1"]), "-" if result.get("epochs") == 1 else _pm(r["epoch1_top1"]),
               "-" if r["params"] is None else f"{r['params']:,}", macs, _pm(r["seconds"], 0),
               f"{r['diverged']}/{r['ended']}", claim, r["verdict"]]
        if result["kind"] == "stability":
            row.insert(3, _pm(r["final_train_loss"], 4))
        out.append(row)
    return out


def notes(result: dict) -> list[str]:
    """Lines under the table: what was run, and every claim the seed spread leaves open."""
    s = result["settings"]
    settings = ", ".join(f"{k} {v}" for k, v in s.items() if k not in ("data", "device"))
    runs = (f"Runs: {result['seeds']} seed(s) per variant; recipe {result['recipe']} ({settings}); data "
            f"{s.get('data')}; device {s.get('device')}. Top-1 is the last epoch's, mean ± sample std.")
    lines = [f"Claim: {result['claim']}", f"Source: {result['source']}", runs]
    ran, full = result.get("epochs"), result.get("experiment_epochs")
    if ran is not None and full is not None and ran < full:
        lines.append(f"Shortened: these runs trained {ran} of the {full} epochs this experiment runs (--epochs "
                     f"{ran}); their verdicts say what so short a training shows, not whether the claim holds."
                     + (" After one epoch the last epoch is the first: \"after epoch 1\" is left empty."
                        if ran == 1 else ""))
    unresolved = [f"{r['variant']} vs {r['versus']}" for r in result["rows"] if r["within_spread"]]
    if unresolved:
        lines.append(f"The spread across seeds is larger than the difference being tested for: "
                     f"{', '.join(unresolved)}. These runs do not settle those claims; more seeds or a larger data "
                     "set would.")
    missing = [f"{r['variant']} ({r['ended']}/{r['seeds']})" for r in result["rows"] if r["ended"] < r["seeds"]]
    if missing:
        lines.append(f"Unfinished runs, left out: {', '.join(missing)}.")
    return lines


def markdown(result: dict) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    cols = columns(result)
    lines = [f"### {result['title']} (`{result['experiment']}`)", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table_rows(result)]
    return "\n".join(lines + [""] + [f"{n}  " for n in notes(result)]) + "\n"


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['title']} ({result['experiment']})", show_lines=True)
    for col in columns(result):
        table.add_column(col, justify="left" if col in ("variant", "claim", "measured") else "right",
                         overflow="fold")
    for row in table_rows(result):
        table.add_row(*row)
    console = Console(width=160)
    console.print(table)
    for line in notes(result):
        console.print(line, markup=False)


def write_report(result: dict, folder: str | Path) -> tuple[dict[str, Path], str | None]:
    """table.md, table.json and plot.png in the experiment's folder: their paths, and why there is no plot.png
    (None when there is one). The tables have every number; without matplotlib the plot is left out."""
    from ..extras import MissingExtra

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": folder / "table.md", "json": folder / "table.json", "plot": folder / "plot.png"}
    paths["markdown"].write_text(markdown(result))
    paths["json"].write_text(json.dumps(finite(result), indent=1, default=str))
    try:
        plot(result, paths["plot"])
    except MissingExtra as exc:
        del paths["plot"]
        return paths, str(exc)
    return paths, None


def finite(value):
    """`value` with every NaN or infinity replaced by None: strict JSON (a diverging run's last losses)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def plot(result: dict, path: str | Path) -> None:
    """Bars of final top-1 with seed-spread error bars (dots: single seeds), and by kind: top-1 against MACs,
    training-loss curves (a cross where a run diverged), or validation top-1 curves."""
    from ..plotting import figure, save

    fig, (ax_bar, ax_side) = figure(12, 4.2, 1, 2, what="the reproduce plot")
    rows = result["rows"]
    colors = [f"C{i}" for i in range(len(rows))]
    x = range(len(rows))
    means = [r["top1"]["mean"] if r["top1"]["mean"] is not None else 0.0 for r in rows]
    errs = [r["top1"]["std"] or 0.0 for r in rows]
    ax_bar.bar(x, means, yerr=errs, capsize=6, color=colors, alpha=0.75)
    for i, r in enumerate(rows):
        ax_bar.plot([i] * len(r["top1"]["values"]), r["top1"]["values"], "k.", ms=5)
    done = [v for r in rows for v in r["top1"]["values"]]
    if done:  # zoom on the values: a bar from 0 would hide differences of a point
        low = min(min(done), min(m - e for m, e in zip(means, errs) if m))
        high = max(max(done), max(m + e for m, e in zip(means, errs)))
        ax_bar.set_ylim(max(0.0, low - 2.0), min(100.0, high + 1.0))
    ax_bar.set_xticks(list(x), [r["variant"] for r in rows], rotation=20, ha="right")
    ax_bar.set_ylabel("validation top-1 (%), last epoch")
    ax_bar.set_title(f"mean ± std over {result['seeds']} seed(s); dots: seeds")
    ax_bar.grid(axis="y", alpha=0.3)
    if result["kind"] == "cost":
        for r, c in zip(rows, colors):
            if r["macs"] and r["top1"]["mean"] is not None:
                ax_side.errorbar(r["macs"] / 1e6, r["top1"]["mean"], yerr=r["top1"]["std"] or 0.0, fmt="o",
                                 color=c, capsize=4, label=r["variant"])
        ax_side.set_xlabel("MACs per image (millions)")
        ax_side.set_ylabel("validation top-1 (%)")
        ax_side.set_title("accuracy against cost")
    else:
        key, label = ("train_loss", "training loss") if result["kind"] == "stability" else ("val_top1", "val top-1 (%)")
        for r, c in zip(rows, colors):
            for i, run in enumerate(r["runs"]):
                ax_side.plot(run["epochs"], run[key], color=c, alpha=0.7, marker=".",
                             label=r["variant"] if i == 0 else None)
                if run["status"] == "diverged" and run["epochs"]:
                    ax_side.plot(run["epochs"][-1], run[key][-1], "x", color=c, ms=10, mew=2)
        ax_side.set_xlabel("epoch")
        ax_side.set_ylabel(label)
        ax_side.set_title(f"{label} per run" + ("; x: diverged after this epoch" if key == "train_loss" else ""))
    ax_side.grid(alpha=0.3)
    if ax_side.get_legend_handles_labels()[0]:
        ax_side.legend(fontsize=8)
    fig.suptitle(result["title"], fontsize=10)
    save(fig, path)


def summary_markdown(results: list[dict]) -> str:
    """One Markdown document for several experiments (what `reproduce all` writes as summary.md)."""
    return "\n".join(markdown(r) for r in results)

