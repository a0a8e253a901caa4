"""`inceptorch demo` end to end, shortened to one epoch: it trains, evaluates the saved file, predicts image files
and says where everything is (the full demo's accuracy is measured in the README)."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch

from inceptorch.cli.main import main


@pytest.mark.slow
def test_demo_one_epoch(tmp_path, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["demo", "--output", str(tmp_path / "demo"), "--epochs", "1", "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    top1 = float(re.search(r"^top-1 ([\d.]+)%", out, re.MULTILINE).group(1))  # `inceptorch eval`'s report
    with open(tmp_path / "demo" / "metrics.csv", newline="") as f:
        trained = max(float(row["val_top1"]) for row in csv.DictReader(f))
    images = int(re.search(r"\(split val, (\d+) images", out).group(1))
    # `inceptorch eval` on the saved best.safetensors gets what the training loop measured on the same held-out split
    # (two preprocessing paths, one answer: 16.71% after this one epoch, on an AMD EPYC), as a count of images.
    assert images == 359 and top1 == pytest.approx(trained, abs=0.006)
    assert top1 / 100 * images == pytest.approx(round(top1 / 100 * images), abs=0.02)
    # `inceptorch predict`'s report: each file, then its top-2 classes with probabilities.
    predictions = re.findall(r"^(\S+\.png)\n\s+([\d.]+)%\s+(\d)\n\s+([\d.]+)%\s+(\d)$", out, re.MULTILINE)
    assert len(predictions) == 5
    for path, p1, _, p2, _ in predictions:
        assert Path(path).is_file() and re.search(r"label_\d\.png$", path)
        assert 100 >= float(p1) >= float(p2) >= 0
    for label in ("run folder:", "checkpoint:", "curves:", "confusion:"):
        path = Path(re.search(rf"{label}\s+(\S+)", out).group(1))
        assert path.exists(), label
