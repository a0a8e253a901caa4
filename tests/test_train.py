"""`inceptorch train` end to end on generated data: run folder contents, exact resume, aux-loss weighting,
fine-tuning, divergence, signals and failing writes."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from _cli import cli_in_process
from _train_helpers import TINY, make_jpeg_folder
from inceptorch.cli.main import main
from inceptorch.models import create_model
from inceptorch.train import engine
from inceptorch.train.metrics import read_metrics
from inceptorch.train.state import load_state
from inceptorch.weights.model_file import load_model_file, read_metadata

SRC = str(Path(__file__).resolve().parents[1] / "src")
# The long-ish runs (resume, signals) all use these settings; 29 train images -> 14 steps an epoch at batch 2.
LONG = [*TINY, "--epochs", "2", "--batch-size", "2", "--lr", "0.02", "--set", "ema_decay=0.9",
        "--set", "schedule=step", "--set", "step_gamma=0.5", "--set", "warmup_epochs=0"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_jpeg_folder(tmp_path_factory.mktemp("data") / "colours")


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory) -> Path:
    return make_jpeg_folder(tmp_path_factory.mktemp("data") / "colours12", per_class=12)


@pytest.fixture(scope="module")
def reference(big_folder, tmp_path_factory) -> Path:
    """An uninterrupted 2-epoch run of LONG with a checkpoint every 3 steps."""
    run = tmp_path_factory.mktemp("runs") / "reference"
    assert main(["train", *LONG, "--data", str(big_folder), "--output", str(run), "--checkpoint-every", "3"]) == 0
    return run


def _weights(run: Path) -> dict:
    return load_file(str(run / "last.safetensors"))


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
    sa, sb = load_state(a / "last.state.pt"), load_state(b / "last.state.pt")
    assert all(torch.equal(sa["ema"][k], sb["ema"][k]) for k in sa["ema"])
    assert sa["step"] == sb["step"] and sa["epoch"] == sb["epoch"] == 2


def test_train_on_jpeg_folder_writes_a_complete_run_folder(folder, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["train", "--model", "googlenet_bn", "--small-input", "--width", "0.0625", "--no-progress",
               "--data", str(folder), "--epochs", "2", "--batch-size", "4", "--output", str(run)])
    out = capsys.readouterr().out
    assert rc == 0, out
    for name in ("config.yaml", "last.safetensors", "best.safetensors", "last.state.pt", "metrics.csv",
                 "curves.png"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    rows = read_metrics(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(0 <= r["val_top1"] <= 100 and r["lr"] > 0 and r["images_per_s"] > 0 for r in rows)
    assert "epoch 2/2" in out and "val loss" in out
    # The weights file alone rebuilds the model with the data's classes (what eval/predict rely on).
    model, meta = load_model_file(run)
    assert meta["class_names"] == ["blue", "green", "red"]
    assert model.fc.out_features == 3 and meta["model_kwargs"]["small_input"] is True
    best = max(r["val_top1"] for r in rows)
    assert read_metadata(run / "best.safetensors")["train"]["val_top1"] == pytest.approx(best)
    # The training state holds plain tensors and containers only.
    state = torch.load(run / "last.state.pt", weights_only=True)
    assert state["epoch"] == 2 and state["step"] == rows[-1]["step"] and "optimizer" in state and "rng" in state
    saved = (run / "config.yaml").read_text()
    assert "model: googlenet_bn" in saved and "epochs: 2" in saved


def test_train_on_csv_list(folder, tmp_path, capsys):
    lines = ["path,label"] + [f"{p.relative_to(folder)},{p.parent.name}" for p in sorted(folder.rglob("*.jpg"))]
    (folder / "list.csv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(folder / "list.csv"), "--epochs", "1", "--batch-size", "4",
                 "--output", str(run), "--val-split", "0.25"]) == 0
    _, meta = load_model_file(run / "last.safetensors")
    assert meta["class_names"] == ["blue", "green", "red"]
    assert "on 14 train / 4 val images" in capsys.readouterr().out  # 18 rows, 25% held out


def test_resume_continues_exactly(big_folder, reference, tmp_path):
    """1 epoch, then --resume to 2 epochs: bitwise the same weights, EMA and step as 2 epochs straight."""
    run = tmp_path / "run"
    assert main(["train", *LONG, "--data", str(big_folder), "--output", str(run), "--epochs", "1"]) == 0
    assert load_state(run / "last.state.pt")["epoch"] == 1
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    _assert_same_weights(run, reference)
    assert [r["epoch"] for r in read_metrics(run / "metrics.csv")] == [1, 2]


def test_training_loss_adds_weighted_aux_losses():
    torch.manual_seed(0)
    model = create_model("googlenet_bn", num_classes=4, small_input=True, width=0.0625).eval()  # eval: no dropout
    x, y = torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 3])
    loss, _ = engine.compute_loss(model, x, y, aux_weight=0.3)
    out = model.forward_train(x)
    ce = torch.nn.functional.cross_entropy
    by_hand = ce(out.logits, y) + 0.3 * ce(out.aux_logits[0], y) + 0.3 * ce(out.aux_logits[1], y)
    assert len(out.aux_logits) == 2
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert loss.item() > ce(out.logits, y).item() * 1.1  # the heads really contribute
    plain, _ = engine.compute_loss(model, x, y, aux_weight=0.0)
    assert plain.item() == pytest.approx(ce(model(x), y).item(), rel=1e-6)
    smoothed, _ = engine.compute_loss(model, x, y, aux_weight=0.0, label_smoothing=0.1)
    assert smoothed.item() == pytest.approx(ce(model(x), y, label_smoothing=0.1).item(), rel=1e-6)


def test_fine_tune_from_torchvision_layout_googlenet_bn(folder, tmp_path, capsys):
    """A torchvision GoogLeNet state dict (1000 classes) loads into a 3-class model: all but the classifiers."""
    from torchvision.models import googlenet as tv_googlenet

    from inceptorch.train.config import resolve
    from inceptorch.train.run import build_model

    tv = tv_googlenet(weights=None, aux_logits=True, init_weights=True, num_classes=1000)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    cfg = resolve({}, {"model": "googlenet_bn", "pretrained": str(tmp_path / "tv.pth")})
    model, kwargs, fresh = build_model(cfg, num_classes=3, log=lambda s: None)
    assert fresh and all(k.startswith(("fc.", "aux1.fc2.", "aux2.fc2.")) for k in fresh)
    ours, theirs = model.state_dict(), tv.state_dict()
    assert kwargs["num_classes"] == 3 and model.fc.out_features == 3
    assert torch.equal(ours["conv1.conv.weight"], theirs["conv1.conv.weight"])
    assert torch.equal(ours["inception5b.branch1.conv.weight"], theirs["inception5b.branch1.conv.weight"])
    assert model.aux1.fc2.out_features == 3 if hasattr(model.aux1, "fc2") else True
    # End to end with the CLI: a tiny model's torchvision-layout .pth with 7 classes, fine-tuned on 3.
    small = create_model("googlenet_bn", num_classes=7, small_input=True, width=0.0625)
    torch.save(small.state_dict(), tmp_path / "small.pth")
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(folder), "--epochs", "1", "--batch-size", "4", "--lr", "1e-9",
                 "--output", str(run), "--pretrained", str(tmp_path / "small.pth")]) == 0
    assert "fine-tuning from" in capsys.readouterr().out
    tuned, meta = load_model_file(run)
    assert tuned.fc.out_features == 3 and meta["model_kwargs"]["num_classes"] == 3
    # lr 1e-9: the backbone is still (almost exactly) the file's.
    assert torch.allclose(tuned.conv1.conv.weight, small.conv1.conv.weight, atol=1e-6)


def test_non_finite_loss_stops_and_keeps_last_checkpoint(folder, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(folder), "--epochs", "1", "--batch-size", "4", "--output",
                 str(run)]) == 0
    before = {n: (run / n).read_bytes() for n in ("last.safetensors", "last.state.pt", "best.safetensors")}
    real, calls = engine.compute_loss, []

    def explode_on_third_batch(*args, **kwargs):
        loss, logits = real(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), logits

    monkeypatch.setattr(engine, "compute_loss", explode_on_third_batch)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "diverged" in err and "nan" in err and "epoch 2" in err
    assert {n: (run / n).read_bytes() for n in before} == before
    diverged = torch.load(run / "diverged.state.pt", weights_only=True)
    assert diverged["epoch"] == 1 and diverged["step"] == load_state(run / "last.state.pt")["step"] + 2


def test_full_disk_is_one_line_and_leaves_the_previous_checkpoint_readable(folder, tmp_path):
    """`ulimit -f` makes every write past a few kB fail with EFBIG, as a full disk fails with ENOSPC: torch's own
    file writer reported only "unexpected pos" in a traceback."""
    import resource

    run = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(folder), "--epochs", "1", "--batch-size", "4", "--output",
                 str(run)]) == 0
    before = {name: (run / name).read_bytes() for name in ("last.state.pt", "last.safetensors")}

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    proc = subprocess.run([sys.executable, "-m", "inceptorch", "train", "--resume", str(run), "--epochs", "2",
                           "--no-progress"], env={**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"},
                          preexec_fn=limit, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "File too large: the disk is full or the file size limit is reached" in lines[0]
    assert "previous checkpoint is intact" in lines[0]
    assert {name: (run / name).read_bytes() for name in before} == before
    assert load_state(run / "last.state.pt")["epoch"] == 1
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    load_model_file(run / "last.safetensors")  # still readable


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "inceptorch", "train", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(proc: subprocess.Popen, path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.005)


@pytest.mark.slow
def test_sigterm_saves_and_resume_finishes_the_same(big_folder, reference, tmp_path):
    run = tmp_path / "run"
    proc = _start([*LONG, "--data", str(big_folder), "--output", str(run), "--checkpoint-every", "3"])
    _wait_for_checkpoint(proc, run / "last.state.pt")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "SIGTERM" in err and f"--resume {run}" in err
    state = load_state(run / "last.state.pt")
    assert state["epoch"] * 14 + state["batch"] // 2 < 28  # stopped before the end
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    _assert_same_weights(run, reference)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(big_folder, reference, tmp_path):
    run = tmp_path / "run"
    proc = _start([*LONG, "--data", str(big_folder), "--output", str(run), "--checkpoint-every", "3"])
    _wait_for_checkpoint(proc, run / "last.state.pt")
    proc.kill()
    proc.communicate(timeout=60)
    state = load_state(run / "last.state.pt")
    assert state["epoch"] * 14 + state["batch"] // 2 < 28  # killed before the end (in practice, mid-epoch 1)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    _assert_same_weights(run, reference)


def test_existing_run_folder_needs_resume(folder, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", *TINY, "--data", str(folder), "--epochs", "1", "--batch-size", "4", "--output", str(run)]
    assert main(args) == 0
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_of_a_finished_run_says_so_and_trains_nothing(folder, tmp_path, capsys):
    """It printed "resuming at epoch 2 ... 1 epoch" and went on to the final line as if it had trained."""
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(folder), "--epochs", "1", "--batch-size", "4", "--output",
                 str(run)]) == 0
    state = (run / "last.state.pt").read_bytes()
    assert "warming up" in capsys.readouterr().out  # the default 1-epoch warm-up is cut to 10% of the run
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{run} has trained all its 1 epoch: nothing to resume" in out and "--epochs N, with N > 1" in out
    assert "resuming at" not in out and "epoch 2/" not in out
    assert "warming up" not in out  # the recipe's notes belong to a run that trains
    assert (run / "last.state.pt").read_bytes() == state and len(read_metrics(run / "metrics.csv")) == 1
    # Repeating a setting as it was is no change: allowed
    proc = cli_in_process("train", "--resume", run, "--epochs", "1", "--data", folder, "--no-progress")
    assert proc.returncode == 0 and f"{run} has trained all its 1 epoch" in proc.stdout


def test_resume_refuses_settings_that_would_change_the_run(folder, tmp_path):
    """`--resume RUN --lr 0.1` trained on at the old lr while config.yaml said 0.1; `--data OTHER` mixed two
    validation sets in one metrics.csv. A resume changes how long and where a run goes on, nothing else."""
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(folder), "--epochs", "2", "--batch-size", "4", "--output",
                 str(run)]) == 0
    config, state = (run / "config.yaml").read_text(), (run / "last.state.pt").read_bytes()
    other = make_jpeg_folder(tmp_path / "other", per_class=4)
    for flags, names in [(["--lr", "0.1"], "lr"), (["--data", str(other)], "data"),
                         (["--set", "aug=none", "--batch-size", "8"], "aug, batch_size"),
                         (["--model", "inception_v3"], "model")]:
        proc = cli_in_process("train", "--resume", run, "--epochs", "3", *flags, "--no-progress")
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert f"it cannot change {names} (train longer with --epochs N" in proc.stderr, proc.stderr
    assert (run / "config.yaml").read_text() == config and (run / "last.state.pt").read_bytes() == state
    proc = cli_in_process("train", "--resume", run, "--epochs", "1", "--no-progress")
    assert proc.returncode == 0
    assert f"{run} has trained 2 epochs already, more than --epochs 1: nothing to resume" in proc.stdout
    assert "with N > 2" in proc.stdout


def test_a_set_that_disagrees_with_a_flag_is_one_line(folder, tmp_path):
    """`--epochs 1 --set epochs=1.5` trained 1 epoch and never looked at the --set value."""
    proc = cli_in_process("train", *TINY, "--data", folder, "--epochs", "1", "--set", "epochs=1.5", "--output",
                          tmp_path / "run")
    assert proc.returncode == 2 and "--set epochs=1.5 and --epochs 1 disagree: give one of them" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_second_ctrl_c_says_what_was_not_saved_and_what_was(folder, tmp_path, monkeypatch):
    from inceptorch.train import run as run_module

    def interrupted_twice(cfg, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(run_module, "train", interrupted_twice)
    proc = cli_in_process("train", *TINY, "--data", folder, "--epochs", "1", "--output", tmp_path / "run")
    assert proc.returncode == 130
    assert proc.stderr.strip() == ("inceptorch train: interrupted twice: stopped without saving; there was no "
                                   "checkpoint yet")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.state.pt").write_bytes(b"")
    proc = cli_in_process("train", *TINY, "--data", folder, "--epochs", "1", "--output", tmp_path / "run")
    assert f"--resume {tmp_path / 'run'} continues from its last checkpoint" in proc.stderr


@pytest.mark.parametrize("flags, message", [
    (["--val-split", "0.999"], "--val-split 0.999 holds out all 18 images of "),
    (["--input-size", "100000"], "input_size must be between 1 and 2048 px, not 100000"),
])
def test_settings_that_leave_nothing_to_train_or_no_memory_are_one_line(folder, tmp_path, flags, message):
    """Both reached the training loop: an empty sampler's traceback, and 24 GB asked of the machine."""
    proc = cli_in_process("train", *TINY, "--data", folder, "--epochs", "1", *flags, "--output", tmp_path / "run")
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
        proc.stderr
    assert not (tmp_path / "run").exists()


def test_on_a_tie_the_best_checkpoint_is_the_epoch_with_the_lower_val_loss(folder, tmp_path):
    """A small validation set often scores 100% from epoch 1 on: the first such epoch was kept, the least trained."""
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(folder), "--epochs", "3", "--batch-size", "4", "--lr", "0.02",
                 "--set", "ema_decay=null", "--set", "warmup_epochs=0", "--output", str(run)]) == 0
    rows = read_metrics(run / "metrics.csv")
    best = max(rows, key=lambda r: (r["val_top1"], -r["val_loss"]))
    assert len({r["val_top1"] for r in rows}) < len(rows), "no tie: the test needs one"
    assert load_state(run / "last.state.pt")["best"]["epoch"] == best["epoch"]
    assert read_metadata(run / "best.safetensors")["train"]["epoch"] == best["epoch"]


def test_compare_trains_each_model_and_plots(folder, tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = main(["compare", "googlenet_bn", "googlenet", "--small-input", "--width", "0.0625", "--no-progress",
               "--data", str(folder), "--epochs", "1", "--batch-size", "4", "--output", str(out),
               "--set", "tensorboard=false"])
    assert rc == 0
    assert (out / "compare.png").is_file()
    table = (out / "compare.csv").read_text().splitlines()
    assert table[0].startswith("model,best_val_top1") and [r.split(",")[0] for r in table[1:]] == \
        ["googlenet_bn", "googlenet"]
    params = [int(r.split(",")[3]) for r in table[1:]]
    assert params[0] != params[1] and all(p > 1000 for p in params)


def test_gradient_accumulation_steps_every_k_batches(folder, tmp_path):
    run = tmp_path / "run"
    # 14 train images at batch 2: 7 batches -> 3 optimizer steps of 2 batches (the odd batch is left out).
    assert main(["train", *TINY, "--data", str(folder), "--epochs", "1", "--batch-size", "2", "--accum-steps", "2",
                 "--output", str(run), "--val-split", "0.25"]) == 0
    assert load_state(run / "last.state.pt")["step"] == 3


def test_bad_image_stops_before_epoch_1_unless_skipped(tmp_path, capsys):
    data = make_jpeg_folder(tmp_path / "data", per_class=8)
    (data / "red" / "broken.jpg").write_bytes(b"")  # zero bytes
    run = tmp_path / "run"
    args = [*TINY, "--data", str(data), "--epochs", "1", "--batch-size", "4", "--output", str(run)]
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "--skip-bad-images" in err and len(err.strip().splitlines()) == 1
    assert not (run / "last.safetensors").exists()  # stopped before any training
    assert main(["train", *args, "--skip-bad-images"]) == 2  # 1 of 25 is over the default 1%
    assert "more than --max-bad-fraction" in capsys.readouterr().err
    assert main(["train", *args, "--skip-bad-images", "--max-bad-fraction", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "skipping bad image" in out and "broken.jpg" in out and "skipped 1 bad image" in out
    assert (run / "last.safetensors").is_file()


def test_the_bad_fraction_counts_the_whole_data_set_not_the_split_a_file_landed_in(tmp_path, capsys):
    """1 bad file in 120 (0.8%) is under the default 1%; counted in the 24-image val split alone (4.2%) it was
    refused, while 2 bad files in the train split passed."""
    from inceptorch.data.datasets import build_dataset

    data = make_jpeg_folder(tmp_path / "data", per_class=40, size=8)
    val_file = Path(build_dataset(data, "val").samples[0][0])
    val_file.write_bytes(b"")
    args = [*TINY, "--data", str(data), "--epochs", "1", "--batch-size", "16", "--output", str(tmp_path / "run"),
            "--skip-bad-images"]
    assert main(["train", *args]) == 0
    out = capsys.readouterr().out
    assert f"skipping bad image {val_file}" in out and "on 96 train / 23 val images" in out


def test_workers_hand_over_uint8_batches_that_are_normalised_in_the_main_process(folder, tmp_path, monkeypatch,
                                                                                   capsys):
    """a quarter of the bytes cross from the workers; train and val batches are normalised after."""
    from inceptorch.data import uint8_batches
    seen, normalize = [], uint8_batches.DeviceNormalize.__call__

    def spy(self, images):
        out = normalize(self, images)
        seen.append((images.dtype, out.dtype, float(out.mean())))
        return out

    monkeypatch.setattr(uint8_batches.DeviceNormalize, "__call__", spy)
    assert main(["train", *TINY, "--data", str(folder), "--epochs", "1", "--batch-size", "4", "--workers", "1",
                 "--output", str(tmp_path / "run")]) == 0
    # The thread count (one_thread) is in the log: another count rounds the kernels' sums otherwise.
    assert "device cpu (1 thread), 1 loader worker;" in capsys.readouterr().out
    assert len(seen) >= 4 and all(i == torch.uint8 and o == torch.float32 for i, o, _ in seen)
    assert any(abs(mean) > 0.1 for *_, mean in seen)  # normalised colour images, not zeros


@pytest.mark.parametrize(("cores", "local_world", "expected"), [(16, 1, 15), (16, 8, 1), (64, 1, 16), (2, 4, 1)])
def test_default_loader_workers_on_a_gpu_share_the_cores(cores, local_world, expected, monkeypatch):
    from inceptorch.train.loaders import loader_workers
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local_world))
    assert loader_workers(None, torch.device("cuda")) == expected
    assert loader_workers(None, torch.device("cpu")) == 0  # the training step already uses every core
    assert loader_workers(3, torch.device("cuda")) == 3 and loader_workers(0, torch.device("cuda")) == 0


def test_output_that_is_a_file_is_one_line(folder, tmp_path, capsys):
    target = tmp_path / "a_file.txt"
    target.write_text("mine")
    assert main(["train", *TINY, "--data", str(folder), "--epochs", "1", "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1
    assert target.read_text() == "mine"


def test_a_second_run_into_a_busy_folder_stops_and_a_killed_runs_lock_does_not_block_resume(folder, tmp_path):
    """Two runs into one --output: the second stops at once with one line. The lock is the OS's: after kill -9
    of its holder, --resume proceeds."""
    from inceptorch.train.run_folder import RunFolderLock

    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", ("import sys, time; from pathlib import Path; "
                               "from inceptorch.train.run_folder import RunFolderLock; "
                               "lock = RunFolderLock(Path(sys.argv[1])); print('locked', flush=True); time.sleep(600)"),
                               str(run)], env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = cli_in_process("train", *TINY, "--data", str(folder), "--epochs", "1", "--batch-size", "4",
                              "--output", str(run))
        assert proc.returncode == 2 and f"process {holder.pid}" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not (run / "metrics.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    RunFolderLock(run).release()  # free again: the killed process left its lock file, not its lock
    assert main(["train", *TINY, "--data", str(folder), "--epochs", "1", "--batch-size", "4",
                 "--output", str(run)]) == 0


def test_a_log_that_is_not_a_terminal_gets_progress_lines(folder, tmp_path, monkeypatch, capsys):
    from inceptorch.train import progress

    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    run = tmp_path / "run"
    args = ["train", *[a for a in TINY if a != "--no-progress"], "--data", str(folder), "--epochs", "1",
            "--batch-size", "4", "--output", str(run)]
    assert main(args) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " batch " in line]
    assert lines and lines[0].startswith("epoch 1/1  batch 1/3  loss ") and "img/s" in lines[0]


def test_freeze_epochs_train_only_the_new_classifiers_then_all(folder, tmp_path):
    """--freeze-epochs 1 of 2: after epoch 1 the pretrained trunk (weights and BN statistics) is untouched and the
    classifier has moved; after epoch 2 the trunk has moved too, at lr x trunk_lr_scale."""
    small = create_model("googlenet_bn", num_classes=7, small_input=True, width=0.0625)
    torch.save(small.state_dict(), tmp_path / "small.pth")
    start = small.state_dict()
    run = tmp_path / "run"
    args = ["train", *TINY, "--data", str(folder), "--epochs", "1", "--batch-size", "4", "--lr", "0.01",
            "--output", str(run), "--pretrained", str(tmp_path / "small.pth"), "--freeze-epochs", "1",
            "--set", "trunk_lr_scale=0.1", "--set", "ema_decay=null", "--set", "precise_bn=never"]
    assert main(args) == 0
    after1 = load_file(str(run / "last.safetensors"))
    trunk = [k for k in start if not k.startswith(("fc.", "aux1.fc2.", "aux2.fc2."))]
    assert all(torch.equal(after1[k], start[k]) for k in trunk if "num_batches_tracked" not in k)
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    after2 = load_file(str(run / "last.safetensors"))
    assert not torch.equal(after2["conv1.conv.weight"], start["conv1.conv.weight"])
    assert not torch.equal(after2["conv1.bn.running_mean"], start["conv1.bn.running_mean"])


@pytest.mark.parametrize("model_args, settings, expected", [
    (["--small-input"], [], True),  # the layout with 1.1-2.1x faster CPU steps (BENCHMARKS.md)
    (["--small-input"], ["--set", "channels_last=false"], False),
    (["--model", "maxout"], [], False),  # maxout's 8x8 convs are faster in NCHW: its default_cfg says so
])
def test_cpu_training_runs_in_channels_last_where_that_is_faster(folder, tmp_path, monkeypatch, model_args,
                                                                 settings, expected):
    """What the training loop gets on the CPU: the flag, weights and every batch in the chosen memory format."""
    from inceptorch.train import run as run_module

    seen = []

    def spy(forward_loss, batches, *args, **kwargs):
        def watched():
            for images, labels in batches:
                seen.append(images.is_contiguous(memory_format=torch.channels_last))
                yield images, labels
        weights = [p for p in forward_loss.model.parameters() if p.dim() == 4]
        seen.append(all(w.is_contiguous(memory_format=torch.channels_last) for w in weights))
        return engine.train_one_epoch(forward_loss, watched(), *args, **kwargs)

    monkeypatch.setattr(run_module, "train_one_epoch", spy)
    args = ["train", "--model", "googlenet_bn", "--width", "0.0625", *model_args, "--no-progress",
            "--set", "tensorboard=false", "--set", "plot=false", "--data", str(folder), "--epochs", "1",
            "--batch-size", "4", "--output", str(tmp_path / "run"), *settings]
    assert main(args) == 0
    assert len(seen) > 2 and set(seen) == {expected}


@pytest.mark.parametrize("layout, message", [
    (["only/0.jpg", "only/1.jpg"], "one class, 'only'; training needs at least 2 classes"),
    (["train/a/0.jpg", "train/b/0.jpg"], "one class, 'train'; training needs at least 2 classes (a train/val tree"),
    (["Train/a/0.jpg", "Val/a/0.jpg"], "the class folders Train, Val look like data splits"),
])
def test_data_a_classifier_cannot_learn_from_is_one_line(tmp_path, capsys, layout, message):
    """A train/ without val/, or Train/ + Val/, made one or two "classes" of splits and trained to 100%."""
    from PIL import Image

    data = tmp_path / "data"
    for i, rel in enumerate(layout):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (24, 24), (i * 60, 0, 0)).save(data / rel)
    assert main(["train", *TINY, "--data", str(data), "--epochs", "1", "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_an_output_inside_the_data_folder_is_refused(folder, capsys):
    """Its curves.png would be a training image of the next run, its tensorboard/ an empty class."""
    out = folder / "red" / "run"
    assert main(["train", *TINY, "--data", str(folder), "--epochs", "1", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is inside the data folder" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_eval_of_a_run_scores_the_validation_images_the_run_held_out(folder, tmp_path, capsys):
    """A run trained with --val-split 0.5: eval of its folder on the same data uses that split, not eval's 0.2."""
    run = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(folder), "--epochs", "1", "--val-split", "0.5", "--output",
                 str(run)]) == 0
    held_out = int(re.search(r"/ (\d+) val images", capsys.readouterr().out).group(1))
    png = ["--confusion-png", str(tmp_path / "cm.png"), "--json"]
    assert main(["eval", "--checkpoint", str(run), "--data", str(folder), "--split", "val", *png]) == 0
    assert json.loads(capsys.readouterr().out)["num_images"] == held_out == 9
    assert main(["eval", "--checkpoint", str(run), "--data", str(folder), "--split", "val", "--val-split", "0.2",
                 *png]) == 0
    assert json.loads(capsys.readouterr().out)["num_images"] < held_out  # given on the command line: that split
    # Without --split the run's own data is scored on what it held out (all 18 images would include the 9 it
    # learnt from); another folder is scored whole.
    assert main(["eval", "--checkpoint", str(run), "--data", str(folder), *png]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "val" and out["num_images"] == held_out
    assert main(["eval", "--checkpoint", str(run), "--data", str(folder), "--split", "all", *png]) == 0
    assert json.loads(capsys.readouterr().out)["num_images"] == 18
    other = make_jpeg_folder(tmp_path / "other", per_class=2)
    assert main(["eval", "--checkpoint", str(run), "--data", str(other), *png]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "all" and out["num_images"] == 6
