"""BN-Inception and the ancestors (LeNet-5, maxout, NIN, the naive Inception module and its plain baseline)."""
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inceptorch import create_model, get_model_cfg
from inceptorch.analysis.summary import summarize
from inceptorch.cli.main import main
from inceptorch.models.ancestors import MaxoutConv

ANCESTORS = ["lenet5", "maxout", "nin", "inception_naive", "plain_conv"]
CASES = [(name, {}, size, in_chans) for name in ANCESTORS for size in (28, 32) for in_chans in (1, 3)]
# BN-Inception, narrow (the cost is in its 9 modules): with its small-input stem and with the paper's stem.
CASES += [("bn_inception", {"width": 0.125, "small_input": True}, 28, 1), ("bn_inception", {"width": 0.25}, 32, 3)]


@pytest.mark.parametrize("name, kwargs, size, in_chans", CASES,
                         ids=[f"{n}-{'-'.join(map(str, k.values()))}-{s}px-{c}ch" for n, k, s, c in CASES])
def test_forward_backward_small_images_reach_every_parameter(name, kwargs, size, in_chans):
    model = create_model(name, num_classes=10, in_chans=in_chans, **kwargs).train()
    out = model.forward_train(torch.randn(2, in_chans, size, size))
    assert out.logits.shape == (2, 10) and out.aux_logits == ()
    F.cross_entropy(out.logits, torch.tensor([1, 7])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
               or not p.grad.abs().sum() > 0]
    assert not missing, missing[:5]


@pytest.mark.parametrize("name", ANCESTORS)
def test_config_for_digits(name):
    cfg = get_model_cfg(name)
    assert (cfg.input_size, cfg.min_input_size) == (32, 28) and cfg.mean[0] == pytest.approx(0.1307)
    assert cfg.paper and create_model(name).aux_taps == {}


# --- BN-Inception ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bn_summary():
    return summarize(create_model("bn_inception"), 224)


def test_bn_inception_params_and_macs_match_the_caffe_port(bn_summary):
    s = bn_summary
    assert abs(s.params / 11.3e6 - 1) < 0.02, s.params    # 11,285,224 measured
    assert abs(s.macs / 2.05e9 - 1) < 0.03, s.macs        # 2,032,600,064 measured


def test_bn_inception_follows_figure_5(bn_summary):
    s = bn_summary
    outputs = {r.name: r.output for r in s.rows}
    # Figure 5's output column, except 4c/4d/4e whose printed widths disagree with their own columns.
    assert outputs["inception3a"] == (256, 28, 28) and outputs["inception3b"] == (320, 28, 28)
    assert outputs["inception3c"] == (576, 14, 14) and outputs["inception4a"] == (576, 14, 14)
    assert outputs["inception4c"] == (608, 14, 14) and outputs["inception4e"] == (1056, 7, 7)
    assert outputs["inception5b"] == (1024, 7, 7)
    model = create_model("bn_inception")
    assert all(isinstance(m, nn.BatchNorm2d) for m in [model.conv1.bn, model.inception5b.branch3x3dbl[2].bn])
    assert not any(isinstance(m, nn.Conv2d) and m.kernel_size == (5, 5) for m in model.modules())
    assert not hasattr(model.inception3c, "branch1x1") and isinstance(model.inception3c.branch_pool, nn.MaxPool2d)
    assert isinstance(model.inception4a.branch_pool[0], nn.AvgPool2d)
    assert isinstance(model.inception5b.branch_pool[0], nn.MaxPool2d)


def test_bn_inception_aux_heads_are_optional_and_off():
    x = torch.randn(2, 3, 80, 80)  # the minimum size: 5x5 at 4a and 4d for the heads' 5x5/3 pool
    assert create_model("bn_inception", width=0.125).train().forward_train(x).aux_logits == ()
    on = create_model("bn_inception", width=0.125, aux_logits=True, num_classes=5).train()
    assert [a.shape for a in on.forward_train(x).aux_logits] == [(2, 5), (2, 5)]


# --- the ancestors -----------------------------------------------------------------------------------------------

def test_lenet5_layers_and_parameter_count():
    model = create_model("lenet5", in_chans=1)
    # C1 6x(25+1), C3 16x(6x25+1) (fully connected C3), C5 120x(16x25+1), F6 84x(120+1), output 10x(84+1)
    assert sum(p.numel() for p in model.parameters()) == 156 + 2416 + 48120 + 10164 + 850
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():  # a 28x28 digit is read as the paper's zero-padded 32x32 image
        assert torch.allclose(model(x), model(F.pad(x, (2, 2, 2, 2))))
        assert model.forward_intermediates(x)[-1].shape == (1, 84, 1, 1)


def test_maxout_takes_the_max_over_k_pieces():
    unit = MaxoutConv(3, units=4, pieces=3, kernel=3, padding=1)
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        y = unit.conv(x)
        expected = torch.stack([y[:, j * 3:(j + 1) * 3].max(dim=1).values for j in range(4)], dim=1)
        assert torch.equal(unit(x), expected)


def test_maxout_cifar10_config_and_pieces_option():
    model = create_model("maxout")
    convs = [m.conv for m in model.modules() if isinstance(m, MaxoutConv)]
    assert [(c.out_channels, c.kernel_size[0]) for c in convs] == [(192, 8), (384, 8), (384, 5), (2500, 4)]
    three = create_model("maxout", pieces=3, width=0.25)
    assert [m.pieces for m in three.modules() if isinstance(m, MaxoutConv)] == [3, 3, 3, 3]


def test_nin_cifar10_mlpconvs_and_classifier_commutes_with_global_pooling():
    model = create_model("nin").eval()
    widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [192, 160, 96, 192, 192, 192, 192, 192] and model.fc.out_features == 10
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # fc after GAP == the paper's 1x1 conv to class maps, then GAP
        maps = F.conv2d(model.forward_features(x), model.fc.weight[:, :, None, None], model.fc.bias)
        assert torch.allclose(model(x), maps.mean(dim=(2, 3)), atol=1e-5)


def test_naive_inception_widths_and_plain_baseline():
    naive = create_model("inception_naive")                      # 4 maps per branch, the pool passes 16 through
    assert naive.inception1.out_channels == 3 * 4 + 16 == naive.num_features
    reduced = create_model("inception_naive", reduce=True)       # the notes' narrow module: 4 x 4 maps
    plain = create_model("plain_conv")
    assert reduced.num_features == plain.num_features == 16
    two = create_model("inception_naive", num_modules=2, branch_chs=8)
    assert two.num_features == 3 * 8 + (3 * 8 + 16)
    assert [m.kernel_size for m in naive.inception1.modules() if isinstance(m, nn.Conv2d)] == [(1, 1), (3, 3), (5, 5)]


@pytest.mark.parametrize("name", ANCESTORS)
def test_summary_cli_works(name, capsys):
    assert main(["summary", name, "--json", "--num-classes", "10"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"]["macs"] > 0 and data["rows"][-1]["output"] == [10]


# --- the factorization family (arXiv:1512.00567 section 3) --------------------------------------------------------

def _block_macs(factorization: str) -> int:
    s = summarize(create_model("factorized_net", factorization=factorization, num_classes=10), 32)
    return s.row("block1_1").macs


@pytest.mark.parametrize("factorization, replaces, saving", [
    ("3x3+3x3", "5x5", 1 - 18 / 25),   # section 3.1: 28% cheaper
    ("1x5+5x1", "5x5", 1 - 10 / 25),
    ("1x3+3x1", "3x3", 1 - 6 / 9),     # section 3.2: 33% cheaper
])
def test_factorized_blocks_save_what_the_paper_says(factorization, replaces, saving):
    assert 1 - _block_macs(factorization) / _block_macs(replaces) == pytest.approx(saving)


def test_factorized_net_keeps_depth_and_width():
    nets = {f: create_model("factorized_net", factorization=f) for f in ("5x5", "3x3+3x3", "1x3+3x1")}
    assert {n.num_features for n in nets.values()} == {32}
    assert {tuple(n.stage_names) for n in nets.values()} == {("stem", "pool1", "block1_1", "block1_2", "pool2",
                                                              "block2_1", "block2_2")}
    assert nets["1x3+3x1"].block1_1[0].conv.kernel_size == (1, 3) and nets["1x3+3x1"].block1_1[1].conv.kernel_size \
        == (3, 1)
    with pytest.raises(ValueError, match="factorization must be one of"):
        create_model("factorized_net", factorization="7x7")
