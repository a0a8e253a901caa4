"""`inceptorch demo` end to end, shortened to one epoch: it trains, evaluates the saved file, predicts image files
and says where everything is (issue 4's main job; the full demo's accuracy is measured in the README)."""
from __future__ import annotations

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
    top1 = float(re.search(r"val top-1 ([\d.]+)%", out).group(1))
    assert 0 <= top1 <= 100
    predictions = re.findall(r"(\S+\.png): predicted (\d) \(([\d.]+)%\), true (\d)", out)
    assert len(predictions) == 5
    for path, _, prob, true in predictions:
        assert Path(path).is_file() and f"label_{true}" in path and 0 < float(prob) <= 100
    for label in ("run folder:", "checkpoint:", "curves:"):
        path = Path(re.search(rf"{label}\s+(\S+)", out).group(1))
        assert path.exists(), label
