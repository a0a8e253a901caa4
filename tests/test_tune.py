"""`inceptorch tune`: the search space as data, a real study of tiny trials, pruning, the report, resuming."""
from __future__ import annotations

import csv
import sqlite3

import pytest
import yaml

from _cli import cli_in_process
from _train_helpers import TINY, make_jpeg_folder
from inceptorch.tune.space import Dim, as_params, default_space, read_space, sample, without

pytestmark = pytest.mark.usefixtures("one_thread")


class _Trial:
    """A stand-in for optuna.Trial that answers each suggestion with the first choice or the lower bound."""

    def __init__(self):
        self.asked = {}

    def suggest_categorical(self, name, choices):
        self.asked[name] = choices
        return choices[0]

    def suggest_float(self, name, low, high, log=False):
        self.asked[name] = (low, high, log)
        return low

    def suggest_int(self, name, low, high):
        self.asked[name] = (low, high)
        return low


def test_conditional_dimensions_follow_the_optimizer_and_fixed_settings_leave_the_space():
    space = default_space(112)
    assert {d.setting for d in space} >= {"lr", "weight_decay", "optimizer", "aug", "input_size", "class_balance",
                                          "label_smoothing"}
    assert next(d for d in space if d.setting == "input_size").values == (112, 168)
    trial = _Trial()
    chosen = sample(trial, space, {})
    assert chosen["optimizer"] == "adamw" and "lr[adamw]" in trial.asked and "lr[sgd]" not in trial.asked
    assert trial.asked["lr[adamw]"][2] is True  # log scale
    fixed = {"optimizer": "sgd", "input_size": 112}
    narrowed = without(space, fixed)
    assert not any(d.setting in ("optimizer", "input_size") for d in narrowed)
    assert all(d.when is None or d.when[1] == "sgd" for d in narrowed)
    trial = _Trial()
    sample(trial, narrowed, fixed)
    assert "lr[sgd]" in trial.asked and "lr[adamw]" not in trial.asked


def test_the_recipes_own_values_become_the_first_trial_where_they_fall_inside_the_space():
    space = default_space(64)
    params = as_params({"optimizer": "adamw", "lr": 0.002, "weight_decay": 0.05, "aug": "small_data",
                        "class_balance": "none", "label_smoothing": 0.1, "input_size": 64}, space)
    assert params == {"optimizer": "adamw", "lr[adamw]": 0.002, "weight_decay[adamw]": 0.05, "aug": "small_data",
                      "class_balance": "none", "label_smoothing": 0.1, "input_size": 64}
    assert "lr[adamw]" not in as_params({"optimizer": "adamw", "lr": 5.0}, space)  # outside the range: sampled


def test_a_space_file_replaces_the_space_and_its_mistakes_are_one_line(tmp_path):
    good = tmp_path / "space.yaml"
    good.write_text("lr: {log: [1.0e-4, 1.0e-2]}\naug: {choice: [inspection, none]}\n")
    assert read_space(good) == (Dim("lr", "log", (1e-4, 1e-2)), Dim("aug", "choice", ("inspection", "none")))
    for text, message in (("lrr: {log: [1, 2]}", "not a recipe setting"), ("lr: {log: [0, 1]}", "low > 0"),
                          ("lr: {between: [1, 2]}", "needs one of"), ("- lr", "expected a mapping")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(Exception, match=message):
            read_space(bad)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_jpeg_folder(tmp_path_factory.mktemp("data") / "colours", per_class=8)


def test_a_study_runs_prunes_reports_and_continues(data, tmp_path):
    """Five tiny trials of two epochs; the report's files; the same command again adds trials to the same study."""
    out = tmp_path / "tune"
    space = tmp_path / "space.yaml"
    space.write_text("lr: {log: [1.0e-5, 0.05]}\nlabel_smoothing: {uniform: [0.0, 0.2]}\n")
    args = ["tune", *TINY, "--data", data, "--batch-size", "4", "--epochs", "2", "--space", space, "--output", out,
            "--pruner", "none"]
    done = cli_in_process(*args, "--trials", "3")
    assert done.returncode == 0, done.stderr
    assert "searching label_smoothing, lr" in done.stdout and "objective val" in done.stdout
    assert "trial 0: lr 0.0005, label_smoothing 0.1" in done.stdout  # the defaults first
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and {r["state"] for r in rows} == {"complete"}
    assert all(0 <= float(r["value"]) <= 100 and r["epochs_run"] == "2" for r in rows)
    best = max(rows, key=lambda r: float(r["value"]))
    recipe = yaml.safe_load((out / "best.yaml").read_text())
    assert recipe["lr"] == pytest.approx(float(best["lr"])) and recipe["epochs"] == 2 and recipe["model"] == \
        "googlenet_bn"
    assert (out / "best.yaml").read_text().startswith("# The best recipe of")
    assert (out / "history.png").stat().st_size > 5000
    # Only the best trial keeps its weights, and no trial keeps what only a resume would need.
    kept = sorted(p.parent.name for p in (out / "trials").glob("*/best.safetensors"))
    assert kept == [f"{int(best['trial']):04d}"] and not list((out / "trials").glob("*/last.state.pt"))
    # train --config takes the recipe as it is.
    run = tmp_path / "again"
    done = cli_in_process("train", "--config", out / "best.yaml", "--output", run, "--no-progress")
    assert done.returncode == 0, done.stderr
    # The same command with more trials continues the study.
    done = cli_in_process(*args, "--trials", "5")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(out / "study.db") as db:
        states = [s for (s,) in db.execute("select state from trials")]
    assert states.count("COMPLETE") == 5


def test_an_interrupted_trial_runs_again_when_the_study_continues(data, tmp_path, monkeypatch):
    from inceptorch.train import run as run_module

    out = tmp_path / "tune"
    args = ["tune", *TINY, "--data", data, "--batch-size", "4", "--epochs", "1", "--output", out, "--pruner", "none",
            "--set", "aug=none", "--set", "optimizer=adamw"]
    real = run_module.train
    calls = []

    def interrupted_second(cfg, **kwargs):
        calls.append(cfg.lr)
        if len(calls) == 2:
            raise run_module.Interrupted(2, "SIGINT at epoch 1 batch 1: saved a checkpoint")
        return real(cfg, **kwargs)

    monkeypatch.setattr(run_module, "train", interrupted_second)
    done = cli_in_process(*args, "--trials", "3")
    assert done.returncode == 130 and "the same command continues it" in done.stderr
    monkeypatch.setattr(run_module, "train", real)
    done = cli_in_process(*args, "--trials", "3")
    assert done.returncode == 0, done.stderr
    assert "1 interrupted trial(s) run again" in done.stdout
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and any(float(r["lr"]) == pytest.approx(calls[1]) for r in rows)


@pytest.mark.parametrize("extra, message", [
    (["--trials", "0"], "--trials must be at least 1"),
    (["--lr", "auto"], "tune searches the lr"),
    (["--space", "missing.yaml"], "--space missing.yaml"),
])
def test_bad_tune_options_are_one_line(data, tmp_path, extra, message):
    done = cli_in_process("tune", *TINY, "--data", data, "--output", tmp_path / "t", *extra)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
