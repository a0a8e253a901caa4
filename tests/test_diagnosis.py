"""What a run's log says about its curves (underfitting, overfitting), how long a run is by default, and which
score picks best.safetensors."""
from __future__ import annotations

import math
import shutil

import pytest

from _cli import cli_in_process
from _train_helpers import TINY, make_jpeg_folder
from inceptorch.train.best import BestSoFar
from inceptorch.train.config import resolve
from inceptorch.train.diagnosis import diagnose
from inceptorch.train.length import MAX_EPOCHS, MIN_EPOCHS, epochs_for_budget
from inceptorch.train.metrics import read_metrics

pytestmark = pytest.mark.usefixtures("one_thread")


def _rows(train_top1, train_loss, val_top1=None, val_loss=None):
    n = len(train_top1)
    val_top1 = val_top1 or train_top1
    val_loss = val_loss or [1.0] * n
    return [{"epoch": i + 1, "train_top1": a, "train_loss": b, "val_top1": c, "val_loss": d}
            for i, (a, b, c, d) in enumerate(zip(train_top1, train_loss, val_top1, val_loss))]


def test_train_accuracy_near_the_majority_share_is_underfitting():
    # The inspection data set of the bug report: 'ok' is 57.6% of the images, train top-1 stuck at 64-65%.
    rows = _rows([60.8, 64.4, 64.9], [1.81, 1.72, 1.70])
    finding = diagnose(rows, 0.576, "ok")
    assert finding.kind == "underfitting" and "'ok' (57.6%)" in finding.message and "lr-find" in finding.message
    assert diagnose(rows[:2], 0.576, "ok") is None  # too early to tell
    assert diagnose(_rows([60.8, 70.4, 80.9], [1.81, 1.5, 1.2]), 0.576, "ok") is None


def test_a_flat_training_loss_far_from_a_fit_is_underfitting_and_a_fitted_one_is_not():
    flat = _rows([70, 75, 78, 78.5, 79.0], [1.0, 0.71, 0.70, 0.69, 0.695])
    finding = diagnose(flat, 0.3, "a")
    assert finding.kind == "underfitting" and "fell 2.1% over the last 3 epochs" in finding.message
    fitted = _rows([90, 95, 98, 99, 99.5], [0.4, 0.3, 0.25, 0.248, 0.247])
    assert diagnose(fitted, 0.3, "a") is None


def test_train_far_above_val_with_a_rising_val_loss_is_overfitting():
    rows = _rows([80, 92, 97, 99.5], [0.8, 0.4, 0.2, 0.05], val_top1=[75, 80, 79, 78],
                 val_loss=[0.7, 0.6, 0.7, 0.9])
    finding = diagnose(rows, 0.3, "a")
    assert finding.kind == "overfitting" and "50% above its best (epoch 2)" in finding.message
    # The same gap with a val loss still at its best is a model that generalises less than it fits, not yet more.
    calm = _rows([80, 92, 97, 99.5], [0.8, 0.4, 0.2, 0.05], val_top1=[75, 80, 79, 78],
                 val_loss=[0.7, 0.6, 0.58, 0.57])
    assert diagnose(calm, 0.3, "a") is None


@pytest.mark.parametrize("steps_per_epoch, epochs", [(61, 50), (44, 69), (1000, MIN_EPOCHS), (2, MAX_EPOCHS)])
def test_the_default_length_is_a_budget_of_optimizer_steps(steps_per_epoch, epochs):
    got, note = epochs_for_budget(3000, steps_per_epoch)
    assert got == epochs and f"epochs: auto = {epochs}" in note
    assert ("(the least)" in note) == (epochs == MIN_EPOCHS) and ("(the most)" in note) == (epochs == MAX_EPOCHS)


def test_best_so_far_ranks_by_its_metric_and_breaks_ties_by_loss():
    best = BestSoFar(metric="balanced")
    first = {"top1": 80.0, "balanced": 40.0, "loss": 0.9}
    assert best.beaten_by(first)
    best.take(first, 1, "raw")
    assert not best.beaten_by({"top1": 90.0, "balanced": 39.0, "loss": 0.5})  # higher top-1 does not count
    assert best.beaten_by({"top1": 70.0, "balanced": 40.0, "loss": 0.8})  # a tie, lower loss
    restored = BestSoFar.from_state({"best": best.state_dict()}, "top1", averaged=False)
    assert restored == best
    legacy = BestSoFar.from_state({"best_top1": 80.0, "best_epoch": 3}, "top1", averaged=True)
    assert legacy.score == 80.0 and legacy.weights == "ema" and legacy.loss == math.inf


def test_auto_settings_parse_and_numbers_still_do():
    cfg = resolve({}, {"model": "lenet5", "data": "digits", "output": "x"})
    assert cfg.epochs == "auto" and cfg.best_metric == "auto" and cfg.lr == 5e-4
    cfg = resolve({"lr": "auto", "epochs": 12}, {"epochs": None})
    assert cfg.lr == "auto" and cfg.epochs == 12
    with pytest.raises(Exception, match="expects a number, not .fast., or auto"):
        resolve({"lr": "fast"}, {})


def test_an_underfitting_run_says_so_picks_best_by_balanced_and_resolves_its_length(tmp_path):
    """A tiny model at an lr far too low for 3 epochs on imbalanced data: the textbook underfit, in the log,
    in metrics.csv and in the last line; config.yaml records what `auto` resolved to."""
    data = make_jpeg_folder(tmp_path / "colours", per_class=6)
    for i in range(6, 30):  # red becomes 30 of 42 images: imbalanced
        shutil.copy(data / "red" / f"{i % 6}.jpg", data / "red" / f"{i}.jpg")
    run = tmp_path / "run"
    done = cli_in_process("train", *TINY, "--data", data, "--epochs", "3", "--batch-size", "4", "--lr", "1e-7",
                          "--output", run, "--set", "ema_decay=null")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "best.safetensors: the epoch with the best val balanced accuracy (the classes are imbalanced" in out
    assert "underfitting: after 3 epochs train top-1" in out and "'red'" in out
    summary = next(line for line in out.splitlines() if line.startswith("best val top-1"))
    assert "the last epoch shows underfitting" in summary
    assert read_metrics(run / "metrics.csv")[-1]["diagnosis"] == "underfitting"
    saved = (run / "config.yaml").read_text()
    assert "best_metric: balanced" in saved and "epochs: 3" in saved
