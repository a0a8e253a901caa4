"""Post-training int8 quantization: a small trained model keeps its top-1 within 1 point of fp32."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import inceptorch
from _export_helpers import squares, write_image_folder
from inceptorch import UserError, create_model
from inceptorch.cli.main import main
from inceptorch.export import load_quantized, quantize_int8


def normalise(images: np.ndarray, model) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (model.default_cfg.mean, model.default_cfg.std))
    return (x - mean) / std


def train_tiny(steps: int = 20, seed: int = 0):
    """googlenet_bn (small-input stem, width 1/8) trained with Adam on coloured squares: seconds of CPU."""
    torch.manual_seed(seed)
    model = create_model("googlenet_bn", num_classes=3, small_input=True, width=0.125, aux_logits=False)
    images, labels = squares(steps * 16, seed=seed)
    x, y = normalise(images, model), torch.from_numpy(labels)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        batch = slice(16 * step, 16 * (step + 1))
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    # After so few steps BN's running averages still lag the weights: re-estimate them (cumulative average).
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        for start in range(0, min(len(x), 256), 64):
            model(x[start:start + 64])
    model.class_names = ["blue", "green", "red"]
    return model.eval()


@pytest.fixture(scope="module")
def trained():
    return train_tiny()


@pytest.mark.slow
def test_int8_top1_within_one_point_of_fp32(trained):
    images, labels = squares(300, seed=7)
    x, y = normalise(images, trained), torch.from_numpy(labels)
    calib, _ = squares(64, seed=8)
    qmodel = quantize_int8(trained, normalise(calib, trained).split(16))
    with torch.no_grad():
        fp32 = (trained(x).argmax(1) == y).float().mean().item()
        int8 = (qmodel(x).argmax(1) == y).float().mean().item()
        logits, qlogits = trained(x), qmodel(x)
    assert fp32 >= 0.9  # the model learned the task, so the comparison means something
    assert abs(fp32 - int8) <= 0.01
    assert ((qlogits - logits).norm() / logits.norm()) < 0.2  # int8 logits track fp32, not just the argmax
    kinds = {type(m).__module__ for m in qmodel.modules()}
    assert "torch.ao.nn.intrinsic.quantized.modules.conv_relu" in kinds  # fused int8 conv+bn+relu kernels


@pytest.mark.slow
def test_quantize_cli_reports_fp32_and_int8(trained, tmp_path, capsys):
    folder = inceptorch.save_pretrained(trained, tmp_path / "saved")
    data = tmp_path / "data"
    write_image_folder(data / "train", *squares(48, seed=3))
    write_image_folder(data / "val", *squares(120, seed=4))
    out = tmp_path / "int8.pt"
    assert main(["quantize", "--checkpoint", str(folder), "--calibration", str(data), "--output", str(out),
                 "--batch-size", "16", "--iters", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["val_images"] == 120 and report["calibration_images"] == 48
    assert report["fp32"]["top1"] >= 0.9 and abs(report["fp32"]["top1"] - report["int8"]["top1"]) <= 0.01
    assert report["int8"]["latency_ms_median"] > 0 and report["fp32"]["latency_ms_median"] > 0
    module, meta = load_quantized(out)
    assert meta["class_names"] == ["blue", "green", "red"] and meta["preprocessing"]["input_size"] == 32
    images, _ = squares(40, seed=5)
    x = normalise(images, trained)
    with torch.no_grad():
        agree = (module(x).argmax(1) == trained(x).argmax(1)).float().mean().item()
    assert agree >= 0.95


def test_quantize_cli_refuses_mismatched_classes(trained, tmp_path):
    folder = inceptorch.save_pretrained(trained, tmp_path / "saved")
    data = tmp_path / "data"
    for split in ("train", "val"):
        for name in ("cat", "dog", "eel"):
            (data / split / name).mkdir(parents=True)
            from PIL import Image

            Image.new("RGB", (32, 32)).save(data / split / name / "a.png")
    with pytest.raises(UserError, match="differ from the model's"):
        from inceptorch.cli import quantize

        quantize.run(_args(checkpoint=str(folder), calibration=str(data), output=str(tmp_path / "q.pt")))
    assert not (tmp_path / "q.pt").exists()


def _args(**kw):
    import argparse

    defaults = {"val": None, "calibration_batches": 8, "batch_size": 16, "threads": 2, "iters": 3, "json": True}
    return argparse.Namespace(**{**defaults, **kw})


# The 28-32 px ancestors convert in a second or two; the Inception models (75 px and up, three without a width
# option) take tens of seconds each to convert, trace and freeze on a shared 2-core CPU.
_QUICK = {"lenet5", "maxout", "nin", "inception_naive", "plain_conv"}


@pytest.mark.parametrize("name", [n if n in _QUICK else pytest.param(n, marks=pytest.mark.slow)
                                  for n in inceptorch.list_models()])
def test_every_registered_model_quantizes_to_a_working_int8_file(name, tmp_path):
    from _export_helpers import small_model, small_size, with_lively_weights
    from inceptorch.export import save_quantized

    model = with_lively_weights(small_model(name))
    size = small_size(model)
    gen = torch.Generator().manual_seed(0)
    calibration = [torch.randn(4, 3, size, size, generator=gen) for _ in range(2)]
    qmodel = quantize_int8(model, calibration)  # a model that cannot be traced is a one-line UserError instead
    x = torch.randn(3, 3, size, size, generator=gen)
    path = save_quantized(qmodel, tmp_path / "q.pt", size, {"model": name})
    module, meta = load_quantized(path)
    with torch.no_grad():
        ref, got, reloaded = model(x), qmodel(x), module(x)
    assert meta == {"model": name} and got.shape == ref.shape
    assert torch.equal(reloaded, got)  # the saved TorchScript file computes what was converted
    assert (got - ref).norm() / ref.norm() < 0.5  # int8 tracks fp32 (random weights: loose, yet far from noise)


def test_a_model_that_cannot_be_traced_is_refused_in_one_line():
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x  # control flow on values: torch.fx cannot trace it

    with pytest.raises(UserError) as info:
        quantize_int8(DataDependent(), [torch.randn(1, 3, 8, 8)])
    assert "\n" not in str(info.value) and "cannot be quantized" in str(info.value)
