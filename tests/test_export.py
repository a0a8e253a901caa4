"""Export and deploy: ONNX parity with ONNX Runtime for every model, torch.export round trips,
saved-model folders, and the ONNX Runtime classifier used by `predict --runtime onnxruntime`."""
from __future__ import annotations

import contextlib
import io
import json
import socket
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

import inceptorch
from _cli import cli_in_process
from _export_helpers import small_model, small_size, squares, with_lively_weights, write_image_folder
from inceptorch import UserError, create_model, list_models
from inceptorch.bench import bench_onnxruntime
from inceptorch.cli.main import main
from inceptorch.export import (
    OnnxClassifier,
    eval_transform,
    export_onnx,
    export_program,
    load_program,
    preprocessing,
)
from inceptorch.weights.model_file import load_model_file, model_metadata, save_model_file

pytestmark = pytest.mark.usefixtures("onnx_registry_built_once")


@pytest.fixture(scope="module")
def tiny():
    """googlenet_bn, small-input stem, width 1/8, three classes, non-trivial weights."""
    model = with_lively_weights(create_model("googlenet_bn", num_classes=3, small_input=True, width=0.125))
    model.class_names = ["blue", "green", "red"]
    return model


@pytest.fixture(scope="module")
def tiny_onnx(tiny, tmp_path_factory):
    """`tiny` saved as a folder, then exported by the CLI from that folder: (onnx path, what the CLI printed)."""
    root = tmp_path_factory.mktemp("onnx")
    folder = inceptorch.save_pretrained(tiny, root / "saved")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["export", "--checkpoint", str(folder), "--format", "onnx", "--output", str(root / "m.onnx")]) == 0
    return root / "m.onnx", out.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_onnx_matches_pytorch_for_every_model(name, tmp_path):
    import onnx

    model = with_lively_weights(small_model(name))
    size = small_size(model)
    path = export_onnx(model, tmp_path / f"{name}.onnx", size)  # runs onnx.checker (full_check)
    proto = onnx.load(path)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (inp,), (out,) = proto.graph.input, proto.graph.output  # one input, logits only: never a tuple
    assert inp.type.tensor_type.shape.dim[0].dim_param  # symbolic (dynamic) batch dimension
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == [3, size, size]
    assert out.name == "logits" and out.type.tensor_type.shape.dim[1].dim_value == 3
    session = OnnxClassifier(path)
    for batch in (1, 4):
        x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            ref = model(x)
        assert ref.std() > 0.5  # logits big enough for the tolerance to mean something
        got = session.logits(x)
        assert got.shape == ref.shape
        assert (got - ref).abs().max() < 1e-4


def test_onnx_metadata_describes_the_model(tiny, tiny_onnx):
    session = OnnxClassifier(tiny_onnx[0])
    assert session.class_names == ["blue", "green", "red"]
    assert session.preprocessing == preprocessing(tiny)
    assert session.preprocessing["input_size"] == 32 and session.preprocessing["mean"] == list(tiny.default_cfg.mean)
    assert session.meta["model"] == "googlenet_bn"
    assert session.meta["model_kwargs"] == {"num_classes": 3, "small_input": True, "width": 0.125}


def test_onnx_predict_equals_pytorch_predict(tiny, tiny_onnx, tmp_path):
    """Same images, each runtime's own preprocessing (ONNX: from the file's metadata): same probabilities."""
    images, _ = squares(6, seed=1, size=48)  # not 32 px: the resize and crop are exercised
    folder = write_image_folder(tmp_path / "imgs", images, [0] * 6)
    files = sorted(folder.rglob("*.png"))
    from inceptorch.data.io import load_image

    session = OnnxClassifier(tiny_onnx[0])
    onnx_batch = torch.stack([session.transform(load_image(f)) for f in files])
    torch_batch = torch.stack([eval_transform(preprocessing(tiny))(load_image(f)) for f in files])
    assert onnx_batch.shape == (6, 3, 32, 32) and torch.equal(onnx_batch, torch_batch)
    with torch.no_grad():
        ref = tiny(torch_batch).softmax(dim=1)
    got = session.predict_proba(onnx_batch)
    assert torch.allclose(got.sum(dim=1), torch.ones(6))
    assert (got - ref).abs().max() < 1e-5
    assert torch.equal(got.argmax(dim=1), ref.argmax(dim=1))


def test_bench_onnxruntime_reports_latency(tiny_onnx):
    stats = bench_onnxruntime(tiny_onnx[0], threads=2, iters=5, warmup=1)
    assert stats.runtime == "onnxruntime" and stats.threads == 2 and stats.batch_size == 1 and stats.iters == 5
    assert 0 < stats.min_ms <= stats.median_ms <= stats.p90_ms


@pytest.mark.slow
def test_torch_export_round_trip(tiny, tmp_path):
    path = export_program(tiny, tmp_path / "tiny.pt2")
    program, meta = load_program(path)
    assert meta["model"] == "googlenet_bn" and meta["class_names"] == ["blue", "green", "red"]
    assert tiny.has_aux and not any(k.startswith("aux") for k in program.state_dict)  # training-only heads dropped
    for batch in (1, 3):  # dynamic batch: not specialised to the example's 2
        x = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(program.module()(x), tiny(x))

    # The same archive with a pickled entry that would run code on load is refused before torch.export.load.
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if "/sample_inputs/" in item.filename:
                buffer = io.BytesIO()
                torch.save(_Payload(), buffer)
                data = buffer.getvalue()
            dst.writestr(item, data)
    with pytest.raises(UserError, match="unsafe"):
        load_program(evil)


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_folder_round_trip_offline(tiny, tmp_path, monkeypatch):
    folder = inceptorch.save_pretrained(tiny, tmp_path / "saved")
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "googlenet_bn" and config["class_names"] == ["blue", "green", "red"]
    assert config["model_kwargs"] == {"num_classes": 3, "small_input": True, "width": 0.125}
    assert config["preprocessing"] == preprocessing(tiny) and config["num_classes"] == 3
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]

    def no_network(*args, **kwargs):
        raise AssertionError("from_pretrained touched the network")

    monkeypatch.setattr(socket, "socket", no_network)
    again = inceptorch.from_pretrained(folder)
    assert not again.training and again.class_names == ["blue", "green", "red"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(again(x), tiny(x))
    # config.json is what describes the folder: editing it changes what is loaded.
    config["class_names"] = ["b", "g", "r"]
    (folder / "config.json").write_text(json.dumps(config))
    assert load_model_file(folder)[1]["class_names"] == ["b", "g", "r"]
    assert load_model_file(folder / "model.safetensors")[1]["class_names"] == ["b", "g", "r"]


def test_from_pretrained_accepts_run_folders(tiny, tmp_path):
    """A training run folder (best.safetensors, its description in the safetensors metadata) still loads."""
    meta = model_metadata(tiny, tiny.model_kwargs, ["x", "y", "z"])
    save_model_file(tiny, tmp_path / "run" / "best.safetensors", meta)
    model = inceptorch.from_pretrained(tmp_path / "run")
    assert model.class_names == ["x", "y", "z"]
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), tiny(x))


@pytest.mark.slow
def test_export_cli_model_to_folder(tmp_path, capsys):
    folder = tmp_path / "saved"
    assert main(["export", "--model", "googlenet_bn", "--small-input", "--num-classes", "4", "--format", "folder",
                 "--output", str(folder)]) == 0
    assert "reloaded vs original max |diff| 0.00e+00" in capsys.readouterr().out
    assert json.loads((folder / "config.json").read_text())["model_kwargs"] == {"num_classes": 4,
                                                                                "small_input": True}
    model = inceptorch.from_pretrained(folder)
    assert model.num_classes == 4 and model.default_cfg.input_size == 32


def test_export_cli_onnx_from_checkpoint(tiny_onnx):
    path, printed = tiny_onnx
    assert "ONNX Runtime vs PyTorch at batch sizes 1, 4: max |diff|" in printed
    assert float(printed.split("relative to the largest logit: ")[1].split()[0]) < 1e-4
    assert OnnxClassifier(path).class_names == ["blue", "green", "red"]


def test_export_cli_errors_are_one_line(tmp_path):
    result = cli_in_process("export", "--checkpoint", str(tmp_path / "missing"), "--format", "onnx",
                            "--output", str(tmp_path / "m.onnx"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "not found" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("fmt, name", [("onnx", "m.pt2"), ("pt2", "m.onnx"), ("weights", "w.pth")])
def test_export_output_is_named_for_its_format(tmp_path, capsys, fmt, name):
    """An ONNX file written as m.pt2 overwrote a user's program, then predict refused it by its name."""
    existing = tmp_path / name
    existing.write_bytes(b"the user's file")
    assert main(["export", "--model", "lenet5", "--format", fmt, "--output", str(existing)]) == 2
    err = capsys.readouterr().err
    assert f"--format {fmt} writes a" in err and err.count("\n") == 1
    assert existing.read_bytes() == b"the user's file"


def test_onnx_classifier_refuses_bad_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        OnnxClassifier(tmp_path / "none.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(UserError, match="cannot load ONNX file"):
        OnnxClassifier(tmp_path / "bad.onnx")


# ---------------------------------------------------------------------------------------------------------------
# `inceptorch predict --runtime onnxruntime`: the exported file against the folder it was exported from.

def _predict(capsys, *argv: str) -> str:
    assert main(["predict", *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("crops", [1, 10])
def test_predict_cli_onnxruntime_equals_torch(tiny_onnx, tmp_path, capsys, crops):
    """Same images through both runtimes: same top-k classes, probabilities within 1e-4 (absolute), text and JSON."""
    path = tiny_onnx[0]
    images, labels = squares(5, seed=2, size=48)  # 48 px, not 32: each runtime's resize and crop is exercised
    folder = write_image_folder(tmp_path / "imgs", images, labels)
    common = [str(folder), "--topk", "2", "--crops", str(crops)]
    torch_json = json.loads(_predict(capsys, "--checkpoint", str(path.parent / "saved"), *common, "--json"))
    onnx_json = json.loads(_predict(capsys, "--runtime", "onnxruntime", "--checkpoint", str(path), *common, "--json"))
    assert len(onnx_json) == len(torch_json) == 5
    spread = []
    for t, o in zip(torch_json, onnx_json):
        assert o["image"] == t["image"] and len(o["predictions"]) == 2
        assert [p["class"] for p in o["predictions"]] == [p["class"] for p in t["predictions"]]
        for pt, po in zip(t["predictions"], o["predictions"]):
            assert po["probability"] == pytest.approx(pt["probability"], abs=1e-4)
        spread.append(t["predictions"][0]["probability"])
    assert max(spread) - min(spread) > 0.05  # the images get different answers: the comparison means something

    torch_text = _predict(capsys, "--checkpoint", str(path.parent / "saved"), *common).splitlines()
    onnx_text = _predict(capsys, "--runtime", "onnxruntime", "--checkpoint", str(path), *common).splitlines()
    assert len(onnx_text) == len(torch_text) == 5 * 3  # per image: its path, then one line per class
    for t, o in zip(torch_text, onnx_text):
        if not t.startswith("  "):
            assert o == t
            continue
        (tp, tname), (op, oname) = t.split(), o.split()
        assert oname == tname and float(op.rstrip("%")) == pytest.approx(float(tp.rstrip("%")), abs=0.011)


def test_eval_cli_onnxruntime_equals_torch(tiny_onnx, tmp_path, capsys):
    """`eval --runtime onnxruntime` scores an exported file on a folder as eval scores the model it came from."""
    path = tiny_onnx[0]
    images, labels = squares(12, seed=5, size=40)
    folder = write_image_folder(tmp_path / "imgs", images, labels)
    common = ["--data", str(folder), "--json", "--confusion-png", str(tmp_path / "cm.png")]
    assert main(["eval", "--checkpoint", str(path.parent / "saved"), *common]) == 0
    by_torch = json.loads(capsys.readouterr().out)
    assert main(["eval", "--runtime", "onnxruntime", "--checkpoint", str(path), *common]) == 0
    by_onnx = json.loads(capsys.readouterr().out)
    assert by_onnx["num_images"] == by_torch["num_images"] == 12
    assert by_onnx["top1"] == by_torch["top1"] and by_onnx["per_class"] == by_torch["per_class"]
    assert main(["eval", "--runtime", "onnxruntime", "--checkpoint", str(path), *common[:2]]) == 0  # the text form
    assert f"checkpoint: {path} (googlenet_bn, 3 classes, input 32)" in capsys.readouterr().out
    # Without --runtime an .onnx file is still run by ONNX Runtime: every model file runs in every command.
    assert main(["eval", "--checkpoint", str(path), *common]) == 0
    assert json.loads(capsys.readouterr().out)["top1"] == by_onnx["top1"]


def _rewrite_metadata(src: Path, dst: Path, edit) -> Path:
    import onnx

    proto = onnx.load(src)
    props = {p.key: json.loads(p.value) for p in proto.metadata_props}
    del proto.metadata_props[:]
    for key, value in edit(props).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(proto, dst)
    return dst


def _without_mean(props: dict) -> dict:
    pre = {k: v for k, v in props["preprocessing"].items() if k != "mean"}
    return {**props, "preprocessing": pre, "inceptorch": {**props["inceptorch"], "preprocessing": pre}}


def test_predict_cli_runtime_errors_are_one_line(tiny_onnx, tmp_path, capsys):
    path = tiny_onnx[0]
    image = tmp_path / "x.png"
    Image.fromarray(squares(1, seed=3)[0][0]).save(image)
    bare = _rewrite_metadata(path, tmp_path / "bare.onnx", lambda props: {})
    no_mean = _rewrite_metadata(path, tmp_path / "no_mean.onnx", _without_mean)
    cases = [
        (["--runtime", "onnxruntime", "--checkpoint", str(path.parent / "saved")], "needs an .onnx file"),
        (["--runtime", "onnxruntime", "--checkpoint", str(bare)],
         "carries no inceptorch metadata: preprocessing input_size, mean, std, crop_pct, interpolation missing"),
        (["--runtime", "onnxruntime", "--checkpoint", str(no_mean)], "carries incomplete metadata: preprocessing mean"),
        (["--runtime", "onnxruntime", "--checkpoint", str(tmp_path / "none.onnx")], "ONNX file not found"),
        (["--runtime", "onnxruntime", "--device", "cuda", "--checkpoint", str(path)], "runs on the CPU"),
    ]
    for argv, message in cases:
        assert main(["predict", *argv, str(image)]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def _scaled(scale: float):
    """plain_conv (3k parameters) whose logits are about `scale`: fresh inits give 1e-12 to 1e10 in practice.
    Seed 4 draws weights whose largest logit on the parity check's inputs is 5.4 times `scale` (1.6e10 at 3e9)."""
    model = with_lively_weights(create_model("plain_conv", num_classes=3), seed=4)
    with torch.no_grad():
        model.fc.weight.mul_(scale)
        model.fc.bias.mul_(scale)
    model.class_names = ["a", "b", "c"]
    return model


def test_onnx_parity_is_judged_against_the_logits_scale(tmp_path, capsys):
    # Logits of 1e10: a relative error of 1e-7 is 1e3 in absolute terms, and the file is right.
    big = inceptorch.save_pretrained(_scaled(3e9), tmp_path / "big")
    assert main(["export", "--checkpoint", str(big), "--format", "onnx", "--output", str(tmp_path / "big.onnx")]) == 0
    printed = capsys.readouterr().out
    relative = float(printed.split("relative to the largest logit: ")[1].split()[0])
    assert relative < 1e-5 and "largest |logit| 1." in printed and "e+10" in printed


def test_a_wrong_onnx_file_with_tiny_logits_fails_the_parity_check(tmp_path, capsys, monkeypatch):
    # Logits of 1e-12: ONNX Runtime's answer 1% off is 1e-14 in absolute terms, under any absolute tolerance.
    tiny = inceptorch.save_pretrained(_scaled(3e-13), tmp_path / "tiny")
    real = OnnxClassifier.logits
    monkeypatch.setattr(OnnxClassifier, "logits", lambda self, x: real(self, x) * 1.01)
    assert main(["export", "--checkpoint", str(tiny), "--format", "onnx", "--output", str(tmp_path / "t.onnx")]) == 2
    err = capsys.readouterr().err
    assert "ONNX Runtime disagrees with PyTorch" in err and "of the largest logit" in err and err.count("\n") == 1
