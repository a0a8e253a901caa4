"""torchrun + DDP on CPU (gloo): sharded training, exact distributed evaluation, one writer, elastic restarts."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from _train_helpers import TINY, make_jpeg_folder
from inceptorch.checkpoint import load_model_file
from inceptorch.data.datasets import build_dataset
from inceptorch.data.transforms import eval_transform
from inceptorch.train.engine import evaluate
from inceptorch.train.run import EpochSampler, read_metrics

pytestmark = pytest.mark.slow


def torchrun(*args: str, nproc: int = 2, max_restarts: int = 0, cwd: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           f"--max-restarts={max_restarts}", "-m", "inceptorch", "train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sampler_shards_every_image_once_per_epoch():
    shards = [list(EpochSampler(50, 4, 6, seed=3, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 24
    assert not set(shards[0]) & set(shards[1])
    single = list(EpochSampler(50, 8, 6, seed=3))  # the same global batches as one process with batch 8
    assert sorted(shards[0][:4] + shards[1][:4]) == sorted(single[:8])


def test_two_processes_train_and_evaluate_each_image_once(tmp_path):
    data = make_jpeg_folder(tmp_path / "data", per_class=9)  # 27 images: 5 in val, an odd count across 2 ranks
    proc = torchrun(*TINY, "--data", "data", "--epochs", "2", "--batch-size", "4", "--output", "run", cwd=tmp_path)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    run = tmp_path / "run"
    # One writer: one line per epoch, one metrics row per epoch, one set of files.
    assert out.count("epoch 1/2 ") == 1 and out.count("epoch 2/2 ") == 1, out
    assert "lr 0.01 x 2 = 0.02" in out  # the linear scaling rule
    assert [r["epoch"] for r in read_metrics(run / "metrics.csv")] == [1, 2]
    assert sorted(p.name for p in run.iterdir()) == ["best.safetensors", "config.yaml", "last.safetensors",
                                                     "last.state.pt", "metrics.csv", "verified_images.json"]
    # The distributed evaluation equals a single-process evaluation of the same weights.
    model, meta = load_model_file(run / "last.safetensors")
    val = build_dataset(data, "val")
    val.transform = eval_transform(model.default_cfg, meta["model_cfg"]["input_size"])
    single = evaluate(model, DataLoader(val, batch_size=2), torch.device("cpu"))
    last = read_metrics(run / "metrics.csv")[-1]
    assert single["count"] == len(val) == 5
    assert last["val_top1"] == pytest.approx(single["top1"], abs=1e-3)
    assert last["val_loss"] == pytest.approx(single["loss"], abs=1e-4)


def _worker_pid(run_dir: str, rank: int) -> int | None:
    """The pid of the torchrun worker of `rank` on its first attempt, found by its environment."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if run_dir.encode() in cmdline and f"RANK={rank}".encode() in environ \
                and b"TORCHELASTIC_RESTART_COUNT=0" in environ and b"-m" in cmdline:
            return int(pid)
    return None


def test_killed_worker_restarts_and_resumes_from_the_last_checkpoint(tmp_path):
    make_jpeg_folder(tmp_path / "data", per_class=40, size=32)
    run = tmp_path / "elastic-run"
    proc = torchrun(*TINY, "--data", "data", "--epochs", "6", "--batch-size", "4", "--checkpoint-every", "2",
                    "--output", str(run), max_restarts=1, cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not (run / "last.state.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = _worker_pid(str(run), rank=1)
    assert pid is not None and proc.poll() is None, "the run ended before a worker could be killed"
    os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "resuming at epoch" in out  # the restarted workers continued from the checkpoint
    assert [r["epoch"] for r in read_metrics(run / "metrics.csv")] == [1, 2, 3, 4, 5, 6]
    state = torch.load(run / "last.state.pt", weights_only=True)
    assert state["epoch"] == 6
