"""Optional dependencies: without an extra, a command stops in one line naming its `pip install`, or runs without
the picture or log it would have written. The venv has every extra, so each test blocks the module it removes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from _train_helpers import make_jpeg_folder
from inceptorch.cli.main import main
from inceptorch.extras import MissingExtra, require


def block(monkeypatch, *modules: str) -> None:
    """Make `import m` (and of every `m.sub`) raise ModuleNotFoundError, as if the package were not installed."""
    for name in list(sys.modules):
        if any(name == m or name.startswith(f"{m}.") for m in modules):
            monkeypatch.setitem(sys.modules, name, None)
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def test_require_names_the_extra(monkeypatch):
    block(monkeypatch, "sklearn")
    with pytest.raises(MissingExtra, match=r"^the digits needs scikit-learn, which is not installed: "
                                           r"pip install 'inceptorch\[demo\]'$"):
        require("sklearn.datasets", "the digits")
    assert require("json", "anything").dumps([1]) == "[1]"  # an installed module is simply returned


def test_export_onnx_without_onnx_is_one_line_before_anything_is_built(tmp_path):
    """A fresh interpreter whose `import onnx` fails, as after a plain `pip install inceptorch`."""
    code = ("import sys\nsys.modules['onnx'] = None\nfrom inceptorch.cli.main import main\nrc = main(sys.argv[1:])\n"
            "print('torch imported' if 'torch' in sys.modules else 'no torch')\nraise SystemExit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "export", "--model", "googlenet", "--format", "onnx",
                           "--output", str(tmp_path / "m.onnx")], check=False, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stdout.strip() == "no torch"
    assert proc.stderr.strip() == ("inceptorch export: error: --format onnx needs onnx, which is not installed: "
                                   "pip install 'inceptorch[onnx]'")
    assert not (tmp_path / "m.onnx").exists()


def test_onnxruntime_missing(monkeypatch, tmp_path):
    from inceptorch.export.onnx_runtime import OnnxClassifier

    block(monkeypatch, "onnxruntime")
    with pytest.raises(MissingExtra, match=r"needs onnxruntime, .* pip install 'inceptorch\[onnx\]'"):
        OnnxClassifier(tmp_path / "model.onnx")


def test_draw_without_matplotlib(monkeypatch, tmp_path, capsys):
    block(monkeypatch, "matplotlib")
    assert main(["draw", "lenet5", "--output", str(tmp_path / "a.svg")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("inceptorch draw: error: drawing a model needs matplotlib, which is not installed: "
                   "pip install 'inceptorch[plot]'")
    assert not (tmp_path / "a.svg").exists()


def test_digits_without_scikit_learn(monkeypatch):
    from inceptorch.data.datasets import build_dataset

    block(monkeypatch, "sklearn")
    with pytest.raises(MissingExtra, match=r"pip install 'inceptorch\[demo\]'"):
        build_dataset("digits", "val", 0.2)


@pytest.mark.slow
def test_train_and_eval_without_matplotlib_and_tensorboard(monkeypatch, tmp_path, capsys):
    """Training writes its checkpoints and metrics and says in one line each that it left out curves.png and the
    TensorBoard logs; eval reports its accuracy and leaves out the confusion PNG, in one line."""
    data = make_jpeg_folder(tmp_path / "colours", per_class=4)
    block(monkeypatch, "matplotlib", "tensorboard", "torch.utils.tensorboard")
    run = tmp_path / "run"
    assert main(["train", "--model", "googlenet_bn", "--small-input", "--width", "0.0625", "--no-progress",
                 "--data", str(data), "--epochs", "1", "--batch-size", "4", "--output", str(run)]) == 0
    out = capsys.readouterr().out
    assert (run / "metrics.csv").is_file() and (run / "best.safetensors").is_file()
    assert not (run / "curves.png").exists() and not (run / "tensorboard").exists()
    lines = out.splitlines()
    assert "no curves.png: curves.png needs matplotlib, which is not installed: pip install 'inceptorch[plot]'" in lines
    assert any("pip install 'inceptorch[tensorboard]'" in line for line in lines)

    assert main(["eval", "--checkpoint", str(run), "--data", str(data), "--split", "all", "--workers", "0"]) == 0
    captured = capsys.readouterr()
    assert "top-1 " in captured.out and "confusion matrix:" not in captured.out
    assert captured.err.strip() == ("inceptorch eval: no confusion matrix PNG: the confusion matrix PNG needs "
                                    "matplotlib, which is not installed: pip install 'inceptorch[plot]'")
    assert not list(Path(run).glob("*.png"))


def test_reproduce_without_matplotlib_writes_its_tables_and_says_in_one_line_it_has_no_plot(monkeypatch, tmp_path,
                                                                                            capsys):
    """Its plot imported matplotlib unchecked: a ModuleNotFoundError traceback after every run had finished."""
    data = make_jpeg_folder(tmp_path / "colours", per_class=4)
    block(monkeypatch, "matplotlib")
    out = tmp_path / "out"
    assert main(["reproduce", "inception_module", "--data", str(data), "--seeds", "1", "--epochs", "1",
                 "--set", "batch_size=8", "--no-progress", "--output", str(out)]) == 0
    folder = out / "inception_module"
    assert (folder / "table.md").is_file() and (folder / "table.json").is_file()
    assert not (folder / "plot.png").exists()
    lines = capsys.readouterr().out.splitlines()
    assert (f"table {folder / 'table.md'} and {folder / 'table.json'}, no plot.png: the reproduce plot needs "
            "matplotlib, which is not installed: pip install 'inceptorch[plot]'") in lines


def test_compare_without_matplotlib_writes_its_table(monkeypatch, tmp_path, capsys):
    data = make_jpeg_folder(tmp_path / "colours", per_class=4)
    block(monkeypatch, "matplotlib")
    out = tmp_path / "cmp"
    assert main(["compare", "lenet5", "nin", "--data", str(data), "--epochs", "1", "--no-progress",
                 "--set", "tensorboard=false", "--output", str(out)]) == 0
    assert (out / "compare.csv").is_file() and not (out / "compare.png").exists()
    assert (f"table {out / 'compare.csv'}; no plot: the comparison plot needs matplotlib, which is not installed: "
            "pip install 'inceptorch[plot]'") in capsys.readouterr().out.splitlines()
