"""Inception-v4 and Inception-ResNet v1/v2 (arXiv:1602.07261): timm parity, Table 1 widths, API, cost."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from _lively import lively
from inceptorch.cli.main import main
from inceptorch.models import ModelOutput, create_model, get_model_cfg
from inceptorch.models._inception_v4_blocks import REDUCTION_A, ReductionA
from inceptorch.weights.key_tables import CONVERTERS, rename_keys
from inceptorch.weights.pretrained import load_pretrained

timm = pytest.importorskip("timm")

# timm's published sizes: 42.68M and 55.84M parameters at 1000 classes.
PUBLISHED_PARAMS_M = {"inception_v4": 42.68, "inception_resnet_v2": 55.84}
SIZE = 107  # smallest input whose 8x8 stage is 2x2: the 1x3/3x1 side taps and the pool borders all see data


@pytest.fixture(scope="module", params=["inception_v4", "inception_resnet_v2"])
def pair(request):
    """(name, timm model with random weights and BN stats, our model loaded through the registered converter)."""
    name = request.param
    torch.manual_seed(0)
    theirs = lively(timm.create_model(name, pretrained=False), seed=1, weights=False)
    ours = create_model(name).eval()
    ours.load_state_dict(CONVERTERS[name]["timm"](theirs.state_dict()), strict=True)
    return name, theirs, ours


@pytest.fixture(scope="module")
def image():
    return torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))


@pytest.mark.parity
def test_timm_converter_gives_equal_outputs(pair, image):
    _, theirs, ours = pair
    with torch.no_grad():
        feats_theirs, feats_ours = theirs.forward_features(image), ours.forward_features(image)
        expected, got = theirs.forward_head(feats_theirs), ours(image)
    assert expected.abs().max() > 1e-3  # the comparison means something
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(feats_ours, feats_theirs, atol=1e-4, rtol=0)


@pytest.mark.parity
def test_parameter_counts_equal_timm(pair):
    name, theirs, ours = pair
    n_ours = sum(p.numel() for p in ours.parameters())
    assert n_ours == sum(p.numel() for p in theirs.parameters())
    assert round(n_ours / 1e6, 2) == PUBLISHED_PARAMS_M[name]


@pytest.mark.parity
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_load_pretrained_from_timm_files(pair, tmp_path, suffix):
    """A timm file on disk -> read safely -> converter -> our model: the same tensors as the tested conversion."""
    name, theirs, ours = pair
    path = tmp_path / f"{name}{suffix}"
    if suffix == ".pth":
        torch.save(theirs.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file(theirs.state_dict(), str(path))
    fresh = create_model(name)
    assert load_pretrained(fresh, path) == []
    expected = ours.state_dict()
    got = fresh.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_converter_rejects_foreign_keys():
    # fit_state_dict tries every converter and skips the ones that raise KeyError
    with pytest.raises(KeyError):
        CONVERTERS["inception_v4"]["timm"]({"conv1.conv.weight": torch.zeros(1)})
    with pytest.raises(KeyError):
        rename_keys({"b.weight": torch.zeros(1)}, [("a.", "x.")])


@pytest.fixture(scope="module")
def resnet_v1():
    torch.manual_seed(0)
    return create_model("inception_resnet_v1")


def test_reduction_a_widths_come_from_table_1(pair, resnet_v1):
    # Table 1 of arXiv:1602.07261, the one data table all three networks read
    assert REDUCTION_A == {"inception_v4": (192, 224, 256, 384), "inception_resnet_v1": (192, 192, 256, 384),
                           "inception_resnet_v2": (256, 256, 384, 384)}
    name, _, ours = pair
    for model_name, model in ((name, ours), ("inception_resnet_v1", resnet_v1)):
        block = model.reduction_a
        assert isinstance(block, ReductionA)
        k, l_, m = (unit.conv.out_channels for unit in block.branch3x3dbl)
        assert (k, l_, m, block.branch3x3.conv.out_channels) == REDUCTION_A[model_name]
        assert block.branch3x3.conv.stride == (2, 2) and block.branch3x3dbl[-1].conv.stride == (2, 2)
    # output channels: n + m + the input's (35x35 grid) channels
    expected = {"inception_v4": 384 + 256 + 384, "inception_resnet_v2": 384 + 384 + 320}
    assert ours.reduction_a.out_channels == expected[name]
    assert resnet_v1.reduction_a.out_channels == 384 + 256 + 256


def test_resnet_v1_trains_and_every_parameter_gets_a_gradient(resnet_v1):
    model = resnet_v1.train()
    x = torch.randn(1, 3, SIZE, SIZE)  # the 8x8 stage is 2x2 here, so BN has 4 values per channel
    out = model.forward_train(x)
    assert isinstance(out, ModelOutput) and out.aux_logits == () and out.logits.shape == (1, 1000)
    nn.functional.cross_entropy(out.logits, torch.tensor([1])).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []
    model.zero_grad(set_to_none=True)
    assert model.num_features == 1792 and sum(p.numel() for p in model.parameters()) == 22_756_328


def test_resnet_v1_follows_the_paper_figures(resnet_v1):
    m = resnet_v1
    assert [n for n in m.stage_names if n.startswith("block35_")] == [f"block35_{i}" for i in range(1, 6)]
    assert sum(n.startswith("block17_") for n in m.stage_names) == 10
    assert sum(n.startswith("block8_") for n in m.stage_names) == 5
    assert m.conv6.conv.stride == (2, 2) and m.conv6.conv.out_channels == 256  # Figure 14: 35x35x256
    assert m.block35_1.proj.out_channels == 256 and m.block17_1.proj.out_channels == 896  # Figures 10, 11
    assert m.block8_1.proj.out_channels == 1792 and m.reduction_b.out_channels == 1792     # Figures 12, 13
    assert (m.block35_1.scale, m.block17_1.scale, m.block8_5.scale) == (0.17, 0.10, 0.20)


def _check_feature_info(model: nn.Module, size: int) -> None:
    x = torch.randn(1, model.in_chans, size, size)
    maps = model.eval().forward_intermediates(x)
    info = model.feature_info
    assert [i["reduction"] for i in info] == [2, 4, 8, 16, 32]
    assert [tuple(f.shape[1:2]) for f in maps] == [(i["num_chs"],) for i in info]
    for f, i in zip(maps, info):
        assert -(-size // i["reduction"]) - 4 <= f.shape[-1] <= -(-size // i["reduction"])  # VALID convs trim a few
    assert info[-1]["num_chs"] == model.num_features
    torch.testing.assert_close(maps[-1], model.forward_features(x))


@torch.no_grad()
def test_feature_info_matches_forward_intermediates(pair):
    _check_feature_info(pair[2], 75)


@torch.no_grad()
def test_resnet_v1_feature_info_matches_forward_intermediates(resnet_v1):
    _check_feature_info(resnet_v1, 75)


@torch.no_grad()
def test_model_api(resnet_v1):
    cfg = get_model_cfg("inception_v4")
    for name in ("inception_v4", "inception_resnet_v1", "inception_resnet_v2"):
        c = get_model_cfg(name)
        assert (c.input_size, c.min_input_size, c.mean, c.std, c.crop_pct) == (299, 75, (0.5,) * 3, (0.5,) * 3, 0.875)
        assert "1602.07261" in c.paper
    assert cfg.aux_weight == 0.0
    assert resnet_v1.dropout.p == 0.2  # Figure 15: dropout (keep 0.8)
    model = create_model("inception_resnet_v1", num_classes=0, in_chans=1, drop_rate=0.5, aux_logits=False).eval()
    x = torch.randn(1, 1, 75, 75)  # the minimum input size
    assert model(x).shape == (1, 1792) and model.dropout.p == 0.5
    model.reset_classifier(7)
    assert model(x).shape == (1, 7)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (1, 1792)
    assert model.forward_train(x).logits.shape == (1, 7)
    with pytest.raises(ValueError, match="auxiliary"):
        create_model("inception_v4", aux_logits=True)


def test_summary_cli_reports_published_macs(capsys):
    assert main(["summary", "inception_v4", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["input_size"] == 299 and summary["total"]["params"] == 42_679_816
    assert abs(summary["total"]["macs"] / 12.28e9 - 1) < 0.03  # 12.28 GMACs at 299
    rows = {r["name"]: r for r in summary["rows"]}  # one row per block
    assert [n for n in rows if n.startswith("inception_")] == (
        [f"inception_a_{i}" for i in range(1, 5)] + [f"inception_b_{i}" for i in range(1, 8)]
        + [f"inception_c_{i}" for i in range(1, 4)])
    assert rows["reduction_a"]["output"] == [1024, 17, 17] and rows["inception_c_3"]["output"] == [1536, 8, 8]


def test_residual_scale_replaces_every_blocks_scale_and_nothing_else():
    default, unscaled = create_model("inception_resnet_small"), create_model("inception_resnet_small",
                                                                             residual_scale=1.0)

    def scales(m):
        return [b.scale for b in m.modules() if hasattr(b, "scale")]

    assert scales(default) == [0.17] * 3 + [0.10] * 3 + [0.20] * 3 and scales(unscaled) == [1.0] * 9
    assert {k: v.shape for k, v in default.state_dict().items()} == {k: v.shape for k, v in
                                                                       unscaled.state_dict().items()}
    assert set(scales(create_model("inception_resnet_v2", residual_scale=0.3))) == {0.3}
    assert sum(p.numel() for p in create_model("inception_resnet_v2").parameters()) == 55_843_464  # unchanged


def test_small_inception_resnet_width_scales_every_layer():
    narrow, wide = create_model("inception_resnet_small", width=0.25), create_model("inception_resnet_small", width=4)
    assert [i["num_chs"] for i in narrow.feature_info] == [16, 48, 104]
    assert wide.num_features == 1664  # past the paper's ~1000 filters, where unscaled residuals "died"
    with torch.no_grad():
        assert narrow.eval()(torch.randn(1, 3, 28, 28)).shape == (1, 1000)
@pytest.mark.parity
def test_our_weights_write_back_to_timms_layout_and_load_into_timm(pair, image):
    from inceptorch.weights.key_tables import to_reference_state_dict

    name, theirs, ours = pair
    written = to_reference_state_dict(ours, "timm")
    expected = theirs.state_dict()
    assert written.keys() == expected.keys() and all(torch.equal(written[k], expected[k]) for k in expected)
    fresh = timm.create_model(name, pretrained=False).eval()
    fresh.load_state_dict(written, strict=True)  # timm itself takes the file
    with torch.no_grad():
        torch.testing.assert_close(fresh(image), ours(image), atol=1e-4, rtol=0)
