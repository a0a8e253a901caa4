"""`inceptorch compare`: per-model builder options (`--model-kwarg MODEL:KEY=VALUE`), recipe options a model does not
take left out with a note, and parameter counts that say whether the auxiliary heads are in them."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from _train_helpers import make_jpeg_folder
from inceptorch.analysis.summary import summarize
from inceptorch.cli.main import main
from inceptorch.models import create_model

QUICK = ["--epochs", "1", "--batch-size", "4", "--workers", "0", "--device", "cpu", "--no-progress",
         "--set", "tensorboard=false", "--set", "plot=false"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> tuple[Path, str]:
    """The seed's comparison under the demo recipe (whose small_input only googlenet_bn takes), with an option
    for every model that has it (reduce) and one for one model only (plain_conv's out_chs)."""
    root = tmp_path_factory.mktemp("compare")
    data = make_jpeg_folder(root / "colours")
    out = root / "cmp"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(["compare", "inception_naive", "plain_conv", "googlenet_bn", "--config", "demo", "--data", str(data),
                   "--output", str(out), "--model-kwarg", "reduce=true", "--model-kwarg", "plain_conv:out_chs=8",
                   *QUICK])
    assert rc == 0, printed.getvalue()
    return out, printed.getvalue()


def _saved_kwargs(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())["model_kwargs"]


def test_each_model_gets_the_options_it_takes(compared):
    out, printed = compared
    assert _saved_kwargs(out / "inception_naive") == {"width": 0.125, "reduce": True}
    assert _saved_kwargs(out / "plain_conv") == {"width": 0.125, "out_chs": 8}
    # GoogLeNet takes `reduce` too (its modules with or without the 1x1 reductions).
    assert _saved_kwargs(out / "googlenet_bn") == {"small_input": True, "width": 0.125, "reduce": True}
    assert "== inception_naive (leaving out small_input: not an option of inception_naive)" in printed
    assert "== plain_conv (leaving out reduce, small_input: not options of plain_conv)" in printed
    assert "== googlenet_bn\n" in printed


def test_compare_counts_params_with_and_without_aux_heads_and_says_which(compared):
    out, printed = compared
    rows = {r["model"]: r for r in csv.DictReader((out / "compare.csv").open())}
    bn = create_model("googlenet_bn", num_classes=3, small_input=True, width=0.125)
    assert int(rows["googlenet_bn"]["params"]) == summarize(bn, 32).params  # the inference network
    assert int(rows["googlenet_bn"]["params_with_aux"]) == sum(p.numel() for p in bn.parameters())
    assert int(rows["googlenet_bn"]["params_with_aux"]) > int(rows["googlenet_bn"]["params"])
    for name in ("inception_naive", "plain_conv"):  # no aux heads: one count
        assert rows[name]["params"] == rows[name]["params_with_aux"]
    assert "params (no aux)" in printed and "params with aux" in printed


@pytest.mark.parametrize("kwarg, message", [
    ("lenet5:width=1", "--model-kwarg lenet5:width=1: lenet5 is not one of the compared models"),
    ("plain_conv:reduce=true", "plain_conv takes no option 'reduce'"),
    ("reduse=true", "--model-kwarg reduse=true: no compared model takes 'reduse'"),
    (":width=1", "--model-kwarg expects KEY=VALUE or MODEL:KEY=VALUE"),
])
def test_bad_per_model_options_are_one_line_before_training(tmp_path, capsys, kwarg, message):
    out = tmp_path / "cmp"
    assert main(["compare", "inception_naive", "plain_conv", "--data", "digits", "--output", str(out),
                 "--model-kwarg", kwarg, *QUICK]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_train_takes_the_per_model_syntax_for_its_own_model(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "plain_conv", "--data", "digits", "--output", str(out),
                 "--model-kwarg", "inception_naive:reduce=true", *QUICK]) == 2
    assert "this run trains plain_conv" in capsys.readouterr().err and not out.exists()
