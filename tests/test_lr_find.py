"""The learning-rate range test: its rules on known curves, the sweep on a real model, and the command line."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from _cli import cli_in_process
from _train_helpers import TINY, make_jpeg_folder
from inceptorch.train import lr_find
from inceptorch.train.engine import ForwardLoss

pytestmark = pytest.mark.usefixtures("one_thread")


def _curve(lrs: list[float]) -> list[float]:
    """A range test's typical loss: flat at small lrs, falling between 1e-4 and 1e-2, exploding beyond 0.1."""
    out = []
    for lr in lrs:
        x = math.log10(lr)
        fall = 1 / (1 + math.exp(-3 * (x + 3)))  # half-way down at 1e-3
        out.append(2.0 - 1.5 * fall + (max(0.0, x + 1) ** 2) * 3)
    return out


def test_valley_picks_an_lr_before_the_steepest_fall_and_steepest_the_middle_of_it():
    lrs = lr_find.lr_schedule(1e-7, 10, 100)
    losses = _curve(lrs)
    # The longest fall runs from the flat start to the bottom at 0.05; the valley rule takes half-way along it (in
    # steps, so in log lr): a cautious lr, below the steepest point, far below the bottom and the explosion.
    assert 1e-5 < lr_find.valley(lrs, losses) < lr_find.steepest(lrs, losses)
    assert 5e-4 < lr_find.steepest(lrs, losses) < 2e-3
    result = lr_find.suggest(lrs, losses, losses, "reached lr 10")
    assert result.minimum == pytest.approx(lrs[losses.index(min(losses))] / 10)
    assert "suggested lr" in result.summary() and "steepest" in result.summary()


def test_range_test_stops_when_the_smoothed_loss_diverges_and_on_nan():
    seen = []

    def step(lr):
        seen.append(lr)
        return 1.0 if lr < 1e-2 else 1.0 + 1e4 * lr

    lrs, _, smoothed, why = lr_find.range_test(step, 1e-6, 10, 100)
    assert "diverged" in why and lrs[-1] < 10 and len(lrs) == len(seen) < 100
    assert smoothed[-1] > lr_find.DIVERGED * min(smoothed)
    lrs, _, _, why = lr_find.range_test(lambda lr: math.nan if lr > 1e-3 else 1.0, 1e-6, 1, 60)
    assert "nan" in why and all(lr <= 1e-3 for lr in lrs)


def test_sweep_restores_the_weights_and_optimizer_and_keeps_group_ratios():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))
    groups = [{"params": model[1].parameters(), "lr": 0.1}, {"params": model[3].parameters(), "lr": 1.0}]
    optimizer = torch.optim.AdamW(groups, lr=1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(8, 12, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(4)]
    used = []
    real_step = optimizer.step

    def spy_step(*args, **kwargs):
        used.append([group["lr"] for group in optimizer.param_groups])
        return real_step(*args, **kwargs)

    optimizer.step = spy_step
    result = lr_find.sweep(model, lr_find.repeat(data, lambda epoch: None), optimizer, ForwardLoss(model),
                           torch.device("cpu"), False, 1e-5, 1.0, 20)
    assert len(result.lrs) > 10
    assert all(small == pytest.approx(0.1 * large) for small, large in used)  # the trunk keeps lr x 0.1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not optimizer.state_dict()["state"]  # the moments it built during the sweep are gone
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 1.0]


def test_lr_find_command_writes_its_curve_and_suggests_an_lr(tmp_path):
    data = make_jpeg_folder(tmp_path / "colours", per_class=8)
    out = tmp_path / "lrf"
    done = cli_in_process("lr-find", *TINY, "--data", data, "--batch-size", "4", "--steps", "30", "--output", out)
    stdout = done.stdout
    assert done.returncode == 0, done.stderr
    assert "suggested lr" in stdout and "--lr" in stdout
    rows = (out / "lr_find.csv").read_text().splitlines()
    assert rows[0] == "step,lr,loss,smoothed_loss" and 10 < len(rows) <= 31
    suggested = float(stdout.split("suggested lr ")[1].split()[0])
    assert 1e-7 <= suggested <= 10
    assert (out / "lr_find.png").stat().st_size > 5000


@pytest.mark.parametrize("args, message", [
    (["--steps", "2"], "at least 5 steps"),
    (["--start-lr", "1", "--end-lr", "0.1"], "--start-lr < --end-lr"),
    (["--lr", "auto"], "drop --lr auto"),
])
def test_lr_find_bad_options_are_one_line(tmp_path, args, message):
    done = cli_in_process("lr-find", *TINY, "--data", "digits", "--output", tmp_path / "x", *args)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_train_lr_auto_runs_the_test_first_trains_at_its_suggestion_and_records_it(tmp_path):
    data = make_jpeg_folder(tmp_path / "colours", per_class=8)
    run = tmp_path / "run"
    done = cli_in_process("train", *TINY, "--data", data, "--batch-size", "4", "--epochs", "1", "--lr", "auto",
                          "--output", run, "--no-report")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("--lr auto: suggested lr"))
    chosen = float(line.split("training at lr ")[1].split()[0])
    import yaml

    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["lr"] == pytest.approx(chosen) and 1e-7 <= chosen <= 10
    assert (run / "lr_find.csv").is_file() and (run / "lr_find.png").is_file()
    # The run trains at that lr: the first epoch's end lr is the schedule's value at that base.
    from inceptorch.train.metrics import read_metrics

    assert read_metrics(run / "metrics.csv")[0]["lr"] <= chosen
    # A resume reads the lr from config.yaml and does not sweep again.
    done = cli_in_process("train", "--resume", run, "--epochs", "2", "--no-progress")
    assert done.returncode == 0 and "--lr auto" not in done.stdout
