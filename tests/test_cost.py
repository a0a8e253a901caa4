"""The articles' cost arithmetic, as library calls and as CLI output."""
import json
import subprocess
import sys

import pytest

from inceptorch.analysis.cost import factorize, parse_chain, parse_kernel, parse_shape, reduction
from inceptorch.cli.main import main
from inceptorch.errors import UserError


def test_reduction_example_14x14x480():
    """5x5 conv to 48 maps over 14x14x480: 112.9M multiply-adds; behind a 16-channel 1x1: 1.5M + 3.8M = 5.3M."""
    c = reduction((14, 14), 480, 5, 48, 16)
    before, after = c.macs
    assert round(before / 1e6, 1) == 112.9
    assert [round(conv.macs / 1e6, 1) for conv in c.after] == [1.5, 3.8]
    assert round(after / 1e6, 1) == 5.3
    assert before == (14 * 14 * 48) * (5 * 5 * 480)  # the article's own formula
    assert c.after[0].macs == (14 * 14 * 16) * (1 * 1 * 480) and c.after[1].macs == (14 * 14 * 48) * (5 * 5 * 16)


def test_reduction_example_100x100x128_weights_about_4x_fewer():
    c = reduction((100, 100), 128, 5, 256, 32)
    before, after = c.weights
    assert before == 128 * 5 * 5 * 256 and after == 128 * 1 * 1 * 32 + 32 * 5 * 5 * 256
    assert round(c.weight_ratio) == 4 and 3.8 < c.weight_ratio < 4.0


@pytest.mark.parametrize("kernel, into, percent", [
    ((5, 5), None, 28),                        # two 3x3 (arXiv:1512.00567 Figure 1)
    ((3, 3), None, 33),                        # 1x3 then 3x1 (Figure 3)
    ((3, 3), ((2, 2), (2, 2)), 11),            # two 2x2
])
def test_factorization_savings(kernel, into, percent):
    c = factorize(kernel, into)
    assert round(100 * c.mac_saving) == percent
    assert round(100 * (1 - c.weights[1] / c.weights[0])) == percent


def test_factorization_on_a_real_map_saves_the_same_fraction_with_equal_widths():
    per_position = factorize((5, 5))
    real = factorize((5, 5), None, (35, 35), 64, 64)
    assert real.macs[0] == 35 * 35 * 64 * 25 * 64
    assert real.mac_saving == pytest.approx(per_position.mac_saving)
    assert [conv.kernel for conv in real.after] == [(3, 3), (3, 3)]


def test_factorization_must_keep_the_receptive_field():
    with pytest.raises(UserError, match="3x3 window, not 5x5"):
        factorize((5, 5), ((3, 3),))
    assert [c.kernel for c in factorize((7, 7)).after] == [(1, 7), (7, 1)]


@pytest.mark.parametrize("text", ["14x14", "14x14x0", "axbxc", "", "14x14x480x2"])
def test_bad_shapes_are_user_errors(text):
    with pytest.raises(UserError, match="bad input shape"):
        parse_shape(text)


def test_parsers():
    assert parse_shape("14x14x480") == ((14, 14), 480) and parse_shape("100 X 100 x 128") == ((100, 100), 128)
    assert parse_kernel("5") == (5, 5) and parse_kernel("1x3") == (1, 3)
    assert parse_chain("3x3,3x3") == ((3, 3), (3, 3))
    with pytest.raises(UserError):
        parse_kernel("0x3")


def test_cli_reduction_prints_labelled_macs_and_weights(capsys):
    assert main(["cost", "reduction", "--input", "14x14x480", "--kernel", "5", "--out", "48", "--reduce", "16"]) == 0
    out = capsys.readouterr().out
    assert "112,896,000 (112.9M)" in out and "1,505,280 (  1.5M)" in out and "3,763,200 (  3.8M)" in out
    assert "5,268,480 (  5.3M)" in out and "multiply-adds" in out and "weights" in out and "FLOPs = 2 x MACs" in out


@pytest.mark.parametrize("args, percent", [(["5x5"], "28.0%"), (["3x3"], "33.3%"), (["3x3", "--into", "2x2,2x2"],
                                                                                     "11.1%")])
def test_cli_factorize(args, percent, capsys):
    assert main(["cost", "factorize", *args]) == 0
    assert f"saving: {percent} of the multiply-adds" in capsys.readouterr().out


def test_cli_json(capsys):
    assert main(["cost", "reduction", "--input", "100x100x128", "--out", "256", "--reduce", "32", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["before"]["weights"] == 819_200 and data["after"]["weights"] == 208_896
    assert data["units"]["macs"] == "multiply-adds"


@pytest.mark.parametrize("args, message", [
    (["reduction", "--input", "14x14", "--out", "48", "--reduce", "16"], "bad input shape '14x14'"),
    (["reduction", "--input", "14x14x480", "--out", "0", "--reduce", "16"], "--out must be a positive integer"),
    (["factorize", "5x5", "--into", "3x3"], "sees a 3x3 window, not 5x5"),
    (["factorize", "2x2"], "no default factorization of 2x2"),
])
def test_cli_errors_are_one_line(args, message, capsys):
    assert main(["cost", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_cli_bad_input_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "inceptorch", "cost", "reduction", "--input", "14by14", "--out",
                           "48", "--reduce", "16"], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "bad input shape" in proc.stderr
