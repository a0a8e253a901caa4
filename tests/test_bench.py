"""`inceptorch bench`: a tiny CPU smoke of the CLI and checks of the timing logic (no timing assertions)."""
from __future__ import annotations

import json
import sys

import pytest

from _cli import cli_in_process
from inceptorch.bench import BenchConfig, build_reference, time_interleaved
from inceptorch.cli.main import main
from inceptorch.errors import UserError

pytestmark = pytest.mark.usefixtures("onnx_registry_built_once")

TINY = ["--input-size", "64", "--warmup", "1", "--repeats", "2", "--iters", "1", "--threads", "2"]


def bench_json(capsys, *args: str) -> dict:
    assert main(["bench", "--model", "googlenet_bn", *TINY, "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("mode", ["infer", pytest.param("train", marks=pytest.mark.slow)])
def test_bench_json_fields_and_speedup(capsys, mode):
    r = bench_json(capsys, "--mode", mode, "--batch-size", "2")
    assert r["mode"] == mode and r["batch_size"] == 2 and r["input_size"] == 64 and r["device"] == "cpu"
    assert r["reference_impl"] == "torchvision googlenet" and r["reference_memory_format"] == "channels_last"
    for side in (r["ours"], r["reference"]):
        assert len(side["times_ms"]) == 2 and all(t > 0 for t in side["times_ms"])
        assert side["time_ms"] == pytest.approx(sum(side["times_ms"]) / 2)  # median of two
        assert side["images_per_s"] == pytest.approx(2 / (side["time_ms"] / 1e3))
        assert side["peak_mem_mb"] is None  # CPU: not measured, never a made-up number
    assert r["speedup"] == pytest.approx(r["reference"]["time_ms"] / r["ours"]["time_ms"])
    assert r["ours"]["name"] == ("ours (optimized)" if mode == "infer" else "ours (fast step)")
    assert {"torch", "torchvision", "date", "device"} <= set(r["environment"])
    assert r["skip_guards"] is False  # eager: no dynamo guards to skip


def test_bench_text_output(capsys):
    assert main(["bench", "--model", "googlenet", *TINY, "--no-optimize", "--reference-nchw"]) == 0
    out = capsys.readouterr().out
    assert "torchvision googlenet (nchw)" in out and out.splitlines()[2].startswith("ours (nchw)")
    assert "speed-up of ours over the reference:" in out


def test_time_interleaved_alternates_order():
    calls = []
    runs = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = time_interleaved(runs, warmup=1, repeats=3, iters=2)
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] + ["b", "b", "a", "a"] + ["a", "a", "b", "b"]
    assert [len(v) for v in times.values()] == [3, 3]


@pytest.mark.parametrize("model, compare, message", [
    ("googlenet", "timm", "timm has no googlenet; compare with torchvision"),
    ("inception_v4", "torchvision", "torchvision has no inception_v4; compare with timm"),
    ("vgg16", None, "no reference implementation is known for 'vgg16'"),
])
def test_reference_errors_are_user_errors(model, compare, message):
    with pytest.raises(UserError, match=message):
        build_reference(BenchConfig(model=model, compare=compare), 224)


def test_missing_reference_library_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    with pytest.raises(UserError, match=r"needs the timm package \(pip install timm\)"):
        build_reference(BenchConfig(model="inception_resnet_v2"), 299)


def test_timm_reference_builds_without_download():
    model, label = build_reference(BenchConfig(model="inception_v4", num_classes=7), 299)
    assert label == "timm inception_v4" and model.get_classifier().out_features == 7


def test_cli_error_exits_2_without_traceback():
    proc = cli_in_process("bench", "--model", "googlenet", "--compare", "timm")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "inceptorch bench: error: timm has no googlenet; compare with torchvision"


# ---------------------------------------------------------------------------------------------------------------
# `--runtime onnxruntime`: ONNX Runtime vs eager vs optimized PyTorch (CPU fp32); structure and outputs, not timing.

ORT_TINY = ["--runtime", "onnxruntime", "--input-size", "80", "--warmup", "1", "--repeats", "2", "--iters", "1"]


def test_bench_onnxruntime_json(capsys):
    assert main(["bench", "--model", "googlenet_bn", *ORT_TINY, "--json"]) == 0  # 80 px: googlenet_bn's minimum
    r = json.loads(capsys.readouterr().out)
    assert r["runtime"] == "onnxruntime" and r["model"] == "googlenet_bn" and r["threads"] == 2  # the mode's default
    assert r["onnxruntime_spinning"] is True and r["pause_s"] > 0  # ORT defaults; idle threads let go between blocks
    assert (r["device"], r["precision"], r["batch_size"], r["input_size"]) == ("cpu", "fp32", 1, 80)
    # googlenet_bn shares torchvision's keys: torchvision's eager model with the same weights is timed alongside
    assert list(r["runtimes"]) == ["onnxruntime", "torch_eager", "torch_optimized", "reference_eager"]
    assert r["runtimes"]["reference_eager"]["max_abs_diff_vs_eager"] < 1e-5
    assert r["runtimes"]["reference_eager"]["speedup_vs_reference"] == 1.0
    eager = r["runtimes"]["torch_eager"]
    assert eager["speedup_vs_eager"] == 1.0 and eager["max_abs_diff_vs_eager"] == 0.0
    assert r["eager_logits_max_abs"] > 0.1  # calibrated BN: logits of a trained model's scale, not ~1e-12
    for side in r["runtimes"].values():
        assert len(side["times_ms"]) == 2 and side["time_ms"] == pytest.approx(sum(side["times_ms"]) / 2)
        assert side["speedup_vs_eager"] == pytest.approx(eager["time_ms"] / side["time_ms"])
        ref_ms = r["runtimes"]["reference_eager"]["time_ms"]
        assert side["speedup_vs_reference"] == pytest.approx(ref_ms / side["time_ms"])
        assert side["max_abs_diff_vs_eager"] < 1e-4  # ONNX Runtime's and optimize's logits equal eager's
    assert {"torch", "onnxruntime", "device", "date", "load_average_1min"} <= set(r["environment"])


def test_compare_runtimes_outputs_agree_on_lively_weights():
    """A module (not a name) is used as given: random BN statistics, logits of std ~3, so 1e-4 is a real bound."""
    from _export_helpers import small_model, small_size, with_lively_weights
    from inceptorch.bench.runtimes import compare_runtimes, format_runtimes

    model = with_lively_weights(small_model("googlenet_bn"))
    r = compare_runtimes(model, small_size(model), threads=2, warmup=0, repeats=1, iters=1)
    assert r["model"] == "googlenet_bn" and r["eager_logits_max_abs"] > 1.0
    assert "reference_eager" not in r["runtimes"]  # a module is not matched to torchvision's build by its name
    assert all(side["max_abs_diff_vs_eager"] < 1e-4 for side in r["runtimes"].values())
    text = format_runtimes(r).splitlines()
    assert text[2].startswith("ONNX Runtime") and text[3].startswith("PyTorch eager") and "1.00x" in text[3]


@pytest.mark.parametrize("flags, message", [
    (["--mode", "train"], "--mode train does not apply"),
    (["--precision", "bf16", "--compare", "timm"], "--compare, --precision bf16 does not apply"),
    (["--input-size", "32"], "input size 32 is below googlenet_bn's minimum of 80"),
    (["--matmul-1x1", "off"], "--matmul-1x1 off does not apply"),
    (["--winograd", "off"], "--winograd off does not apply"),
])
def test_bench_onnxruntime_errors(capsys, flags, message):
    assert main(["bench", "--model", "googlenet_bn", "--runtime", "onnxruntime", *flags]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_bench_onnxruntime_compile_adds_the_compiled_path(capsys):
    """`--compile` adds ours optimized + torch.compile (inductor, freezing, C++ wrapper); logits still equal eager's.

    LeNet-5: the compiled path is the same code for every model, and inductor's C++ code generation costs a 2-core
    machine about 40 s for GoogLeNet-BN against about 8 s here (GoogLeNet-BN's compile is timed by the optimize tests).
    """
    tiny = ["--runtime", "onnxruntime", "--input-size", "32", "--warmup", "1", "--repeats", "2", "--iters", "1"]
    assert main(["bench", "--model", "lenet5", *tiny, "--compile", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert list(r["runtimes"]) == ["onnxruntime", "torch_eager", "torch_optimized", "torch_compiled"]
    assert r["eager_logits_max_abs"] > 0.05  # logits big enough for the tolerance below to mean something
    assert r["runtimes"]["torch_compiled"]["max_abs_diff_vs_eager"] < 1e-5
    assert main(["bench", "--model", "lenet5", *tiny, "--compile", "ours"]) == 2
    assert "--compile ours does not apply" in capsys.readouterr().err


def test_bench_no_merge_keeps_the_1x1_convs_apart(capsys):
    r = bench_json(capsys, "--no-merge")
    assert r["merge"] is False and r["ours"]["name"] == "ours (optimized, unmerged)"
    assert bench_json(capsys)["merge"] is True


def test_bench_matmul_1x1_auto_follows_the_cpu_vendor_and_can_be_forced(capsys):
    from inceptorch.fast.cpuinfo import cpu_vendor

    assert bench_json(capsys)["matmul_1x1"] is (cpu_vendor() == "GenuineIntel")
    assert bench_json(capsys, "--matmul-1x1", "off")["matmul_1x1"] is False
    assert bench_json(capsys, "--matmul-1x1", "on")["matmul_1x1"] is True


def test_bench_winograd_auto_is_on_for_the_cpu_and_can_be_turned_off(capsys):
    assert bench_json(capsys)["winograd"] is True
    assert bench_json(capsys, "--winograd", "off")["winograd"] is False
