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

from _ddp_ranks import nan_on_rank_1
from _train_helpers import TINY, make_jpeg_folder
from inceptorch.data.datasets import build_dataset
from inceptorch.data.transforms import eval_transform
from inceptorch.train.engine import evaluate
from inceptorch.train.metrics import read_metrics
from inceptorch.train.samplers import EpochSampler
from inceptorch.train.state import load_state
from inceptorch.weights.model_file import load_model_file

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


def test_two_processes_train_evaluate_each_image_once_and_restart_after_a_kill(tmp_path):
    """One torchrun run (two workers, an elastic restart allowed): rank 1 is killed after the first checkpoint, the
    restarted workers resume from it, and the finished run is what one writer and an exact evaluation leave."""
    data = make_jpeg_folder(tmp_path / "data", per_class=9)  # 27 images: 5 in val, an odd count across 2 ranks
    run = tmp_path / "run"
    # A checkpoint every 2 steps: the first lands in epoch 1, and the kill follows it at once.
    proc = torchrun(*TINY, "--data", "data", "--epochs", "2", "--batch-size", "4", "--lr", "0.01",
                    "--checkpoint-every", "2", "--output", str(run), "--no-report", max_restarts=1, cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not (run / "last.state.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = _worker_pid(str(run), rank=1)
    assert pid is not None and proc.poll() is None, "the run ended before a worker could be killed"
    os.kill(pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "resuming at epoch" in out  # the restarted workers continued from the checkpoint
    assert load_state(run / "last.state.pt")["epoch"] == 2
    # One writer: one line per epoch, one metrics row per epoch, one set of files.
    assert out.count("epoch 1/2 ") == 1 and out.count("epoch 2/2 ") == 1, out
    assert "lr 0.01 x 2 = 0.02" in out  # the linear scaling rule
    assert [r["epoch"] for r in read_metrics(run / "metrics.csv")] == [1, 2]
    assert sorted(p.name for p in run.iterdir()) == [".lock", "best.safetensors", "command.txt", "config.yaml",
                                                     "last.safetensors", "last.state.pt", "metrics.csv",
                                                     "verified_images.json"]
    assert len((run / "command.txt").read_text().splitlines()) == 2  # the start and the restart, rank 0 alone
    # The distributed evaluation equals a single-process evaluation of the same weights.
    model, meta = load_model_file(run / "last.safetensors")
    val = build_dataset(data, "val")
    val.transform = eval_transform(model.default_cfg, meta["model_cfg"]["input_size"])
    single = evaluate(model, DataLoader(val, batch_size=2), torch.device("cpu"))
    last = read_metrics(run / "metrics.csv")[-1]
    assert single["count"] == len(val) == 5
    assert last["val_top1"] == pytest.approx(single["top1"], abs=1e-3)
    assert last["val_loss"] == pytest.approx(single["loss"], abs=1e-4)


def test_a_nan_on_one_rank_stops_every_rank_before_the_step(tmp_path):
    """Rank 1 alone sees a NaN loss; DDP would spread its NaN gradients, so both ranks must stop before stepping."""
    import torch.multiprocessing as mp

    mp.spawn(nan_on_rank_1, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        # batch 1 stepped (finite on both ranks); batch 2 stopped on both, with the weights of batch 1's step
        assert (tmp_path / f"rank{rank}.txt").read_text() == "stopped at batch 2|True|True"
