"""The GPU paths, on a CUDA device: skipped where torch sees none (CI has none; the lent H100 machine has one).

Run them there with `PYTHONPATH=src python -m pytest -q tests/test_cuda.py` (about 2-3 minutes, most of it
torch.compile). They check what the CPU suite cannot: bf16 autocast training with channels_last and
torch.compile, nvJPEG decoding inside training (`--gpu-decode`), the optimized model on the GPU, and the bench.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

from _train_helpers import TINY, make_jpeg_folder
from inceptorch import create_model, optimize
from inceptorch.cli.main import main
from inceptorch.data.gpu_pipeline import decode_batch
from inceptorch.data.prefetch import prefetched
from inceptorch.fast.train_step import TrainStep
from inceptorch.train.metrics import read_metrics

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def test_train_on_cuda_with_bf16_channels_last_and_compile(tmp_path):
    data = make_jpeg_folder(tmp_path / "colours", per_class=8, size=40)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(data), "--batch-size", "6", "--device", "cuda", "--compile",
                 "--input-size", "32", "--epochs", "3", "--output", str(out)]) == 0
    rows = read_metrics(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all(math.isfinite(r["train_loss"]) for r in rows)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]  # it learns on the GPU too
    assert main(["eval", "--checkpoint", str(out), "--data", str(data), "--device", "cuda", "--json"]) == 0


def test_gpu_decode_training_decodes_on_the_device(tmp_path):
    data = make_jpeg_folder(tmp_path / "colours", per_class=8, size=40)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(data), "--batch-size", "6", "--device", "cuda", "--gpu-decode",
                 "--aug", "paper", "--input-size", "32", "--epochs", "2", "--output", str(out)]) == 0
    assert len(read_metrics(out / "metrics.csv")) == 2
    payload = torch.frombuffer(bytearray((data / "red" / "0.jpg").read_bytes()), dtype=torch.uint8)
    on_gpu, on_cpu = decode_batch([payload], CUDA)[0], decode_batch([payload], torch.device("cpu"))[0]
    assert on_gpu.device.type == "cuda"
    # nvJPEG and libjpeg-turbo may round the IDCT differently: a few levels, never more
    assert (on_gpu.cpu().int() - on_cpu.int()).abs().max() <= 3


@pytest.mark.parametrize("matmul_1x1", [False, True])
@pytest.mark.parametrize("name", ["googlenet_bn", "inception_v3", "inception_v4", "inception_resnet_v2"])
def test_optimized_model_on_the_gpu_equals_the_plain_one(name, matmul_1x1):
    torch.manual_seed(0)
    model = create_model(name, aux_logits=False) if name in ("googlenet_bn", "inception_v3") else create_model(name)
    model = model.to(CUDA).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.1, 0.1)
        bn.running_var.uniform_(0.5, 1.5)
    x = torch.randn(4, 3, 224 if name == "googlenet_bn" else 299, 224 if name == "googlenet_bn" else 299, device=CUDA)
    fast = optimize(model, matmul_1x1=matmul_1x1)
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 as fp32: TF32 would round both sides at 1e-3
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        ref, out = model(x), fast(x)
    scale = ref.abs().max().item()
    assert (out - ref).abs().max().item() <= 1e-4 * max(1.0, scale)  # fp32 without TF32; cuDNN picks other kernels


def test_compiled_train_step_on_cuda_matches_eager_closely():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 64, 64, device=CUDA), torch.randint(0, 10, (8,), device=CUDA)
    losses = []
    for compiled in (False, True):
        torch.manual_seed(1)
        model = create_model("googlenet_bn", num_classes=10, small_input=True, width=0.25).to(CUDA)
        step = TrainStep(model, precision="bf16", compile=compiled)
        losses.append([step(x, y).item() for _ in range(3)])
    assert all(math.isfinite(v) for v in losses[0] + losses[1])
    assert losses[1] == pytest.approx(losses[0], rel=0.05)  # bf16: the same trajectory, not the same bits


def test_bench_on_cuda_reports_memory_and_a_speedup(capsys):
    assert main(["bench", "--model", "googlenet_bn", "--device", "cuda", "--batch-size", "8", "--precision", "bf16",
                 "--warmup", "1", "--repeats", "2", "--iters", "2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["device"] == "cuda" and r["ours"]["peak_mem_mb"] > 0 and r["reference"]["peak_mem_mb"] > 0
    assert r["speedup"] == pytest.approx(r["reference"]["time_ms"] / r["ours"]["time_ms"])


def test_batches_made_on_a_side_stream_equal_the_inline_ones():
    """The producer's kernels run on its own stream; the consumer waits for them before reading."""
    def make():
        for i in range(6):
            x = torch.full((256, 3, 64, 64), float(i), device=CUDA)
            yield (x * 2 + 1).contiguous(memory_format=torch.channels_last), torch.tensor([i], device=CUDA)

    ahead = [(x.sum().item(), y.item()) for x, y in prefetched(make, CUDA, depth=2)]
    assert ahead == [(float((2 * i + 1) * 256 * 3 * 64 * 64), i) for i in range(6)]
