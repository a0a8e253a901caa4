"""`inceptorch draw`: the generic walk (Branches -> parallel columns) and the SVG/PNG files it writes."""

import pytest
from torch import nn

from _cli import cli_in_process
from inceptorch import create_model
from inceptorch.analysis.draw import Box, Par, Seq, Stage, collapse_repeats, describe, draw_model, model_stages
from inceptorch.cli.main import main
from inceptorch.models.bn_inception import BN_INCEPTION, BNInceptionBlock

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _labels(par: Par) -> list[list[str]]:
    return [[item.label for item in branch.items] for branch in par.branches]


def test_googlenet_module_is_drawn_as_its_branches():
    node = describe(create_model("googlenet").inception3a)
    assert isinstance(node, Par) and node.out_chs == 256
    assert _labels(node) == [["1x1 conv, 64"], ["1x1 conv, 96", "3x3 conv, 128"], ["1x1 conv, 16", "5x5 conv, 32"],
                             ["3x3 max pool", "1x1 conv, 32"]]


def test_bn_inception_reduction_module_has_a_bare_pool_branch():
    row = next(r for r in BN_INCEPTION if r.name == "inception3c")
    node = describe(BNInceptionBlock(320, row))
    assert _labels(node) == [["1x1 conv, 128", "3x3 conv /2, 160"], ["1x1 conv, 64", "3x3 conv, 96", "3x3 conv /2, 96"],
                             ["3x3 max pool /2"]]
    assert node.out_chs == 576


def test_stages_carry_shapes_and_aux_notes():
    stages = {s.name: s for s in model_stages(create_model("googlenet"), input_size=112)}  # half size: cheap
    assert stages["inception3a"].shape == "14x14x256" and stages["fc"].shape == "1000"
    assert stages["conv1"].node == Box("7x7 conv /2, 64", "conv")
    assert any("aux1" in note for note in stages["inception4a"].notes)


def test_nested_splits_draw_as_parallel_columns_inside_a_branch():
    """Inception-v3's Figure 7 module: two branches end in a 1x3 | 3x1 split, a `Split` block inside the chain."""
    node = describe(create_model("inception_v3", width=0.25).Mixed_7b)
    assert [len(b.items) for b in node.branches] == [1, 2, 3, 2]
    split = node.branches[1].items[1]
    assert isinstance(split, Par) and _labels(split) == [["1x3 conv, 96"], ["3x1 conv, 96"]]
    assert node.out_chs == 80 + 2 * 96 + 2 * 96 + 48  # 2048 x 0.25: the splits count both halves


def test_repeated_blocks_are_drawn_once_with_a_count():
    par = Par([Seq([Box("1x1 conv, 4", "1x1")])], 4)
    stages = [Stage("b1", par, "8x8x4"), Stage("b2", par, "8x8x4"), Stage("b3", par, "8x8x4"),
              Stage("pool", Box("3x3 max pool /2", "pool"), "4x4x4"), Stage("b4", par, "4x4x4")]
    out = collapse_repeats(stages)
    assert [(s.name, s.repeat, s.last_name) for s in out] == [("b1", 3, "b3"), ("pool", 1, ""), ("b4", 1, "")]


def test_svg_names_kernels_and_branch_widths(tmp_path):
    path = draw_model(create_model("googlenet"), tmp_path / "googlenet.svg", input_size=112)
    svg = path.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and svg.rstrip().endswith("</svg>")
    # Text stays text (svg.fonttype none): inception3a's branches and widths are searchable.
    for text in ("inception3a", "14x14x256", "5x5 conv, 32", "3x3 conv, 128", "1x1 conv, 16",
                 "filter concatenation, 256", "inception5b"):
        assert text in svg, text


def test_png_is_a_png_of_a_sensible_size(tmp_path):
    path = draw_model(create_model("inception_naive"), tmp_path / "naive.png", dpi=60)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 200 < width < 2000 and 200 < height < 2000


def test_cli_draw(tmp_path, capsys):
    out = tmp_path / "nin.svg"
    assert main(["draw", "nin", "--output", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out and "mlpconv1" in out.read_text()


@pytest.mark.parametrize("args, message", [
    (["draw", "nin", "--output", "x.jpg"], "must end in .svg, .png, .pdf"),
    (["draw", "resnet50", "--output", "x.svg"], "unknown model 'resnet50'"),
    (["draw", "nin", "--output", "x.svg", "--small-input"], "does not take that option"),
])
def test_cli_errors_are_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_cli_bad_extension_exits_2_without_traceback(tmp_path):
    proc = cli_in_process("draw", "lenet5", "-o", str(tmp_path / "a.gif"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a.gif").exists()


def test_every_conv_of_a_model_is_drawn():
    """The walk loses nothing: one box per conv of bn_inception (the generic path over Branches/Sequential)."""
    model = create_model("bn_inception", width=0.125)
    boxes = []

    def walk(node):
        if isinstance(node, Box):
            boxes.append(node)
        for child in getattr(node, "items", []) + getattr(node, "branches", []):
            walk(child)

    for stage in model_stages(model, 80):
        walk(stage.node)
    n_convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert sum("conv" in b.label and "FC" not in b.label for b in boxes) == n_convs
