"""`inceptorch reproduce`: every experiment end to end at a toy size, tables read back from the runs' own files,
honest verdicts about seed noise, divergence counted rather than raised, and finished runs reused."""
from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from _train_helpers import make_jpeg_folder
from inceptorch.analysis.summary import summarize
from inceptorch.cli.main import main
from inceptorch.models import create_model
from inceptorch.reproduce import EXPERIMENTS, get_experiment
from inceptorch.reproduce.experiments import EXPECTATIONS, KINDS
from inceptorch.reproduce.report import collect, read_run
from inceptorch.train.metrics import read_metrics
from inceptorch.weights.model_file import load_model_file

# Toy size: 14 train / 4 val images of 3 classes, one epoch of two batches, as few seeds as each test needs.
TOY = ["--epochs", "1", "--set", "batch_size=8", "--no-progress"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_jpeg_folder(tmp_path_factory.mktemp("data") / "colours")


@pytest.fixture(scope="module")
def all_runs(folder, tmp_path_factory) -> Path:
    """`reproduce all` once, one seed, plus a second seed of the cheapest experiment (for the spread)."""
    out = tmp_path_factory.mktemp("reproduce")
    assert main(["reproduce", "all", "--data", str(folder), "--seeds", "1", "--output", str(out), *TOY]) == 0
    assert main(["reproduce", "inception_module", "--data", str(folder), "--seeds", "2", "--output", str(out),
                 *TOY]) == 0
    return out


def test_experiments_are_well_formed_data():
    assert len(EXPERIMENTS) >= 8 and len({e.name for e in EXPERIMENTS}) == len(EXPERIMENTS)
    for exp in EXPERIMENTS:
        assert exp.claim and exp.source and exp.kind in KINDS and len(exp.variants) >= 2
        names = [v.name for v in exp.variants]
        assert len(set(names)) == len(names), exp.name
        for v in exp.variants:
            assert v.expect in (None, *EXPECTATIONS) and (v.versus is None or v.versus in names), (exp.name, v.name)
            create_model(v.model, num_classes=10, **v.model_kwargs)  # every variant builds


def test_list_json_names_every_experiment(capsys):
    assert main(["reproduce", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in listed] == [e.name for e in EXPERIMENTS]
    aux = next(e for e in listed if e["name"] == "aux_classifiers")
    assert [v["overrides"]["aux_weight"] for v in aux["variants"]] == [0.0, 0.3]


def test_every_experiment_runs_end_to_end_and_writes_table_and_plot(all_runs):
    summary = json.loads((all_runs / "summary.json").read_text())
    assert [r["experiment"] for r in summary] == [e.name for e in EXPERIMENTS]
    for exp in EXPERIMENTS:
        folder = all_runs / exp.name
        table = json.loads((folder / "table.json").read_text())
        assert [r["variant"] for r in table["rows"]] == [v.name for v in exp.variants]
        assert (folder / "plot.png").stat().st_size > 10_000
        md = (folder / "table.md").read_text()
        assert all(f"| {v.name} |" in md for v in exp.variants) and exp.source in md
        for row in table["rows"]:
            assert row["ended"] == row["seeds"] and row["params"] > 0 and row["macs"] > 0, (exp.name, row)


def test_a_configuration_shared_by_experiments_is_trained_once(all_runs):
    """The demo's GoogLeNet is the baseline of gap_head, aux_classifiers, reductions and label_smoothing: trained
    for the first, copied for the others (runs are deterministic), each copy with its own config.yaml."""
    first = all_runs / "gap_head" / "avg_pool_head" / "seed-0"
    assert "same_as" not in json.loads((first / "reproduce.json").read_text())
    for copy in (all_runs / "aux_classifiers" / "aux_0.3" / "seed-0", all_runs / "reductions" / "reductions" / "seed-0",
                 all_runs / "label_smoothing" / "smoothing_0" / "seed-0"):
        record = json.loads((copy / "reproduce.json").read_text())
        assert record["same_as"] == str(first) and record["config"]["output"] == str(copy)
        assert (copy / "metrics.csv").read_bytes() == (first / "metrics.csv").read_bytes()
        assert f"output: {copy}" in (copy / "config.yaml").read_text()
    other = json.loads((all_runs / "aux_classifiers" / "aux_off" / "seed-0" / "reproduce.json").read_text())
    assert "same_as" not in other  # aux weight 0: other settings, trained


def _final_top1(run: Path) -> float:
    return read_metrics(run / "metrics.csv")[-1]["val_top1"]


def test_table_numbers_come_from_the_runs_own_files(all_runs):
    exp = get_experiment("inception_module")
    table = json.loads((all_runs / exp.name / "table.json").read_text())
    for row, variant in zip(table["rows"], exp.variants):
        runs = [all_runs / exp.name / variant.name / f"seed-{s}" for s in range(2)]
        finals = [_final_top1(r) for r in runs]
        assert row["top1"]["values"] == finals
        assert row["top1"]["mean"] == pytest.approx(statistics.fmean(finals))
        assert row["top1"]["std"] == pytest.approx(statistics.stdev(finals))
        epoch_times = [sum(m["epoch_time_s"] for m in read_metrics(r / "metrics.csv")) for r in runs]
        assert row["seconds"]["values"] == pytest.approx(epoch_times)  # every epoch's time, resumed runs' too
        model, meta = load_model_file(runs[0] / "best.safetensors")
        assert row["params"] == summarize(model, meta["model_cfg"]["input_size"]).params
        config = (runs[0] / "config.yaml").read_text()
        assert f"model: {variant.model}" in config and "optimizer: adamw" in config  # the pinned demo recipe


def _set_final_top1(run: Path, value: float) -> None:
    path = run / "metrics.csv"
    rows = list(csv.DictReader(path.open()))
    rows[-1]["val_top1"] = str(value)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_verdict_is_honest_about_the_spread_across_seeds(all_runs, tmp_path):
    """Edit the runs' metrics.csv: the table follows, and says when seed noise exceeds the difference."""
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(all_runs / "inception_module", out / "inception_module")
    exp, base = get_experiment("inception_module"), out / "inception_module"
    # spread 10 points, difference 1 point: not resolved
    for name, values in (("plain_conv_16", (50.0, 60.0)), ("inception_2b", (51.0, 61.0))):
        for seed, value in enumerate(values):
            _set_final_top1(base / name / f"seed-{seed}", value)
    row = next(r for r in collect(exp, out, 2)["rows"] if r["variant"] == "inception_2b")
    assert row["top1"]["mean"] == 56.0 and "+1.00 points" in row["verdict"] and "not resolved" in row["verdict"]
    # difference 20 points, spread 1.4: agrees
    for seed, value in enumerate((75.0, 77.0)):
        _set_final_top1(base / "inception_2b" / f"seed-{seed}", value)
    result = collect(exp, out, 2)
    row = next(r for r in result["rows"] if r["variant"] == "inception_2b")
    assert "+21.00 points" in row["verdict"] and row["verdict"].endswith(
        f"agrees (runs of 1 of the experiment's {exp.epochs} epochs)")
    # Runs of the experiment's own length: the verdict stands alone.
    config = base / "plain_conv_16" / "seed-0" / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 1\n", f"epochs: {exp.epochs}\n"))
    row = next(r for r in collect(exp, out, 2)["rows"] if r["variant"] == "inception_2b")
    assert row["verdict"].endswith("beyond the spread (±7.07): agrees")
    # one seed: nothing is judged
    row = next(r for r in collect(exp, out, 1)["rows"] if r["variant"] == "inception_2b")
    assert row["top1"]["std"] is None and "not judged" in row["verdict"]


def test_verdicts_of_shortened_runs_say_so(all_runs):
    """`--epochs 1` against the experiments' 8-12: every verdict names the cut, a note under the table says what it
    means, and the "after epoch 1" column, which would repeat the last epoch's, is left empty."""
    for exp in EXPERIMENTS:
        table = json.loads((all_runs / exp.name / "table.json").read_text())
        assert (table["epochs"], table["experiment_epochs"]) == (1, exp.epochs)
        judged = [r["verdict"] for r in table["rows"] if r["verdict"]]
        assert judged and all(v.endswith(f"(runs of 1 of the experiment's {exp.epochs} epochs)") for v in judged)
        md = (all_runs / exp.name / "table.md").read_text()
        assert f"Shortened: these runs trained 1 of the {exp.epochs} epochs this experiment runs (--epochs 1)" in md
        rows = [line.split(" | ") for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]
        assert rows and all(cells[2] == "-" for cells in rows)  # "after epoch 1"


def test_markdown_says_when_the_spread_exceeds_the_difference(all_runs):
    table = json.loads((all_runs / "inception_module" / "table.json").read_text())
    md = (all_runs / "inception_module" / "table.md").read_text()
    for row in table["rows"][1::2]:  # the two Inception rows, each against its plain conv
        ref = table["rows"][[r["variant"] for r in table["rows"]].index(row["versus"])]
        diff, spread = row["top1"]["mean"] - ref["top1"]["mean"], max(row["top1"]["std"], ref["top1"]["std"])
        assert f"{diff:+.2f} points vs {ref['variant']}" in row["verdict"]
        assert ("not resolved" in row["verdict"]) == row["within_spread"] == (abs(diff) <= spread)
    unresolved = [f"{r['variant']} vs {r['versus']}" for r in table["rows"] if r["within_spread"]]
    note = "The spread across seeds is larger than the difference being tested for"
    assert (note in md) == bool(unresolved) and all(pair in md for pair in unresolved)


def test_divergence_is_counted_not_raised(folder, tmp_path, capsys):
    """At a learning rate of 1e30 the second step's loss is non-finite: each run is recorded as diverged."""
    out = tmp_path / "out"
    assert main(["reproduce", "residual_scaling", "--data", str(folder), "--seeds", "1", "--output", str(out),
                 *TOY, "--set", "batch_size=4", "--set", "lr=1.0e+30", "--set", "warmup_epochs=0",
                 "--set", "optimizer=sgd"]) == 0
    table = json.loads((out / "residual_scaling" / "table.json").read_text())
    assert [r["diverged"] for r in table["rows"]] == [1, 1, 1]
    assert all(r["top1"]["n"] == 0 for r in table["rows"])
    assert "1/1 diverged vs 1/1 for scale_1.0: no difference" in table["rows"][1]["verdict"]
    run = read_run(out / "residual_scaling" / "scale_1.0" / "seed-0")
    assert run["status"] == "diverged" and "training diverged" in run["message"]
    assert "1/1" in capsys.readouterr().out


def test_finished_runs_are_reused_and_other_settings_refused(all_runs, folder, capsys):
    run = all_runs / "gap_head" / "fc_head" / "seed-0"
    before = (run / "metrics.csv").read_text()
    capsys.readouterr()
    assert main(["reproduce", "gap_head", "--data", str(folder), "--seeds", "1", "--output", str(all_runs),
                 *TOY]) == 0
    assert "not run again" in capsys.readouterr().out and (run / "metrics.csv").read_text() == before
    assert main(["reproduce", "gap_head", "--data", str(folder), "--seeds", "1", "--output", str(all_runs),
                 "--epochs", "2", "--set", "batch_size=8", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other settings" in err and "epochs 1 there, 2 now" in err


@pytest.mark.parametrize("args, message", [
    (["no_such_experiment"], "no experiment 'no_such_experiment'"),
    (["gap_head", "--seeds", "0"], "--seeds"),
    (["gap_head", "--set", "model=lenet5"], "not a recipe setting here"),
    (["all", "--json"], "--json goes with `list`"),
])
def test_bad_input_is_one_line(args, message, tmp_path, capsys):
    assert main(["reproduce", *args, "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
