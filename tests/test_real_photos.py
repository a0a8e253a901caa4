"""From scratch on real photographs through the command line, as a user trains on a folder of their own: crops of
scikit-learn's two sample photographs (which ship in its wheel), a small GoogLeNet, the default recipe."""
from __future__ import annotations

import pytest
import torch

from _real_data import sample_photos
from inceptorch.cli.main import main
from inceptorch.data.datasets import build_dataset
from inceptorch.data.transforms import eval_transform
from inceptorch.train.metrics import read_metrics
from inceptorch.weights.model_file import load_model_file


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return sample_photos(tmp_path_factory.mktemp("data") / "photos")


def test_short_run_on_real_photos_learns_and_its_eval_logits_do_not_collapse(photos, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", "googlenet_bn", "--width", "0.125", "--small-input", "--input-size", "48",
                 "--data", str(photos), "--epochs", "3", "--batch-size", "16", "--output", str(run), "--workers", "0",
                 "--no-progress", "--set", "tensorboard=false"]) == 0
    out = capsys.readouterr().out
    # The log as a user reads it: parameters with and without the training-only heads, no top-5 of 2 classes.
    assert "(89,418 params + 68,452 in auxiliary heads (training only))" in out and "3 epochs x 8 steps" in out
    assert "top5" not in out and "ema val loss" in out and "balanced" in out
    rows = read_metrics(run / "metrics.csv")
    best = max(max(r["val_top1"], r["ema_val_top1"]) for r in rows)
    assert best >= 95.0, out
    # best.safetensors says which weights it holds, and holds the best score's weights.
    model, meta = load_model_file(run / "best.safetensors")
    assert meta["train"]["weights"] in ("raw", "ema") and meta["train"]["val_top1"] == pytest.approx(best, abs=1e-3)
    # Eval mode, as `inceptorch eval` runs it: the logits differ from image to image and both classes are answered.
    val = build_dataset(str(photos), "val")
    val.transform = eval_transform(model.default_cfg, meta["model_cfg"]["input_size"])
    images = torch.stack([val[i][0] for i in range(len(val))])
    labels = torch.tensor(val.targets)
    with torch.no_grad():
        logits = model.eval()(images)
    margin = logits[:, 1] - logits[:, 0]
    assert margin.std() > 0.3 * margin.abs().mean() and margin.std() > 0.1
    assert (logits.argmax(1) == labels).float().mean() >= 0.95
    assert len(rows) == 3 and "curves.png" in {p.name for p in run.iterdir()}
