"""GoogLeNet against Table 1 of arXiv:1409.4842 and against torchvision's implementation."""
import pytest
import torch
import torchvision
from torch import nn

from _lively import lively
from inceptorch import create_model
from inceptorch.analysis import summarize
from inceptorch.models.googlenet import GOOGLENET, Inc

# Table 1 as printed: name -> (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj, output channels, params K, ops M)
TABLE_1 = {
    "inception3a": (64, 96, 128, 16, 32, 32, 256, 159, 128),
    "inception3b": (128, 128, 192, 32, 96, 64, 480, 380, 304),
    "inception4a": (192, 96, 208, 16, 48, 64, 512, 364, 73),
    "inception4b": (160, 112, 224, 24, 64, 64, 512, 437, 88),
    "inception4c": (128, 128, 256, 24, 64, 64, 512, 463, 100),
    "inception4d": (112, 144, 288, 32, 64, 64, 528, 580, 119),
    "inception4e": (256, 160, 320, 32, 128, 128, 832, 840, 170),
    "inception5a": (256, 160, 320, 32, 128, 128, 832, 1072, 54),
    "inception5b": (384, 192, 384, 48, 128, 128, 1024, 1388, 71),
}
# Rows whose printed figures recompute from the formulas (conv1, 4c, 5a and 5b do not).
CONSISTENT_ROWS = ("inception3a", "inception3b", "inception4a", "inception4b", "inception4d", "inception4e")


def test_spec_widths_equal_table_1():
    rows = {r.name: r for r in GOOGLENET if isinstance(r, Inc)}
    assert set(rows) == set(TABLE_1)
    for name, printed in TABLE_1.items():
        assert tuple(rows[name][1:]) == printed[:6], name


@pytest.fixture(scope="module")
def paper_summary():
    return summarize(create_model("googlenet", aux_logits=False), 224)


def test_paper_output_sizes_follow_table_1(paper_summary):
    shapes = {r.name: r.output for r in paper_summary.rows}
    assert shapes["conv1"] == (64, 112, 112)
    assert shapes["maxpool1"] == (64, 56, 56)
    assert shapes["conv3"] == (192, 56, 56)
    assert shapes["maxpool2"] == (192, 28, 28)
    assert shapes["maxpool3"] == (480, 14, 14)
    assert shapes["maxpool4"] == (832, 7, 7)
    for name, printed in TABLE_1.items():
        assert shapes[name][0] == printed[6], name
    assert shapes["avgpool"] == (1024, 1, 1)
    assert paper_summary.row("avgpool").patch_stride == "7x7/1"


def test_paper_rows_match_printed_params_and_ops(paper_summary):
    for name in CONSISTENT_ROWS:
        row = paper_summary.row(name)
        params_k, ops_m = TABLE_1[name][7], TABLE_1[name][8]
        assert row.weights / 1024 == pytest.approx(params_k, rel=0.02), name  # Table 1: K = 1024, weights only
        assert row.macs / 1e6 == pytest.approx(ops_m, rel=0.02), name
        assert row.depth == 2


def test_paper_totals_are_about_6_8m_weights_and_1_5g_macs(paper_summary):
    # Table 1's columns sum to 6,797.7K weights and 1,502M ops; recomputed, the network has ~6.99M and ~1.58G.
    assert paper_summary.weights == pytest.approx(6.8e6, rel=0.07)
    assert paper_summary.macs == pytest.approx(1.5e9, rel=0.07)
    conv1 = paper_summary.row("conv1")  # printed 2.7K / 34M, but 7x7x3x64 weights at 112x112 recompute as:
    assert (conv1.weights, conv1.macs) == (9408, 9408 * 112 * 112)


def test_paper_build_is_faithful():
    model = create_model("googlenet")
    block = model.inception3a
    assert block.branch3[1].conv.kernel_size == (5, 5)  # a true 5x5, unlike torchvision
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is not None for c in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    # ReLU after every conv, reductions and projections included
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == len(convs) + 2  # + the two aux FC-1024 ReLUs
    lrn = [n for n, m in model.named_children() if isinstance(m, nn.LocalResponseNorm)]
    assert model.stage_names[model.stage_names.index("maxpool1") + 1] == "lrn1"
    assert model.stage_names[model.stage_names.index("conv3") + 1] == "lrn2"
    assert lrn == ["lrn1", "lrn2"] and (model.lrn1.size, model.lrn1.alpha, model.lrn1.beta) == (5, 1e-4, 0.75)
    assert model.dropout.p == 0.4
    aux = model.aux1
    pools = [m for m in aux.pool.modules() if isinstance(m, nn.AvgPool2d)]
    assert (pools[0].kernel_size, pools[0].stride) == (5, 3)
    assert aux.conv.conv.out_channels == 128 and aux.fc1.out_features == 1024 and aux.dropout.p == 0.7


def test_paper_aux_head_pools_14x14_to_4x4_and_adds_3_19m_params():
    model = create_model("googlenet")
    x = torch.randn(1, 512, 14, 14)
    assert model.aux1.pool(x).shape[-2:] == (4, 4)
    assert torch.allclose(model.aux1.pool(x), nn.functional.avg_pool2d(x, 5, 3))  # adaptive step is identity
    head_params = sum(p.numel() for p in model.aux1.parameters())
    assert head_params == pytest.approx(3.19e6, rel=0.01)


def _torchvision_googlenet(aux: bool, transform_input: bool = False) -> nn.Module:
    return torchvision.models.googlenet(weights=None, aux_logits=aux, init_weights=True,
                                        transform_input=transform_input)


@pytest.mark.parity
@pytest.mark.parametrize("aux", [True, False])
def test_bn_build_has_torchvision_keys_and_shapes(aux):
    ours, theirs = create_model("googlenet_bn", aux_logits=aux).state_dict(), _torchvision_googlenet(aux).state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in theirs)


@pytest.mark.parity
def test_bn_build_parameter_count_is_torchvision_s():
    model = create_model("googlenet_bn", aux_logits=False)
    assert sum(p.numel() for p in model.parameters()) == 6_624_904


@pytest.mark.parity
@pytest.mark.parametrize("transform_input", [False, True])
def test_bn_build_outputs_equal_torchvision(transform_input):
    reference = lively(_torchvision_googlenet(True, transform_input), seed=1, weights=False)
    ours = create_model("googlenet_bn", transform_input=transform_input).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(x), atol=1e-5, rtol=0)
        # torchvision returns aux outputs in training mode only; compare the heads directly through forward_train
        ours.train(), reference.train()
        torch.manual_seed(3)
        theirs_train = reference(x)
        torch.manual_seed(3)
        ours_train = ours.forward_train(x)
    assert torch.allclose(ours_train.logits, theirs_train.logits, atol=1e-5, rtol=0)
    assert torch.allclose(ours_train.aux_logits[0], theirs_train.aux_logits1, atol=1e-5, rtol=0)
    assert torch.allclose(ours_train.aux_logits[1], theirs_train.aux_logits2, atol=1e-5, rtol=0)


@pytest.mark.parity
def test_bn_build_without_aux_loads_torchvision_no_aux_state_dict():
    reference = lively(_torchvision_googlenet(False), seed=1, weights=False)
    ours = create_model("googlenet_bn", aux_logits=False).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(x), atol=1e-5, rtol=0)


def test_small_input_stem_keeps_resolution():
    model = create_model("googlenet_bn", small_input=True, num_classes=10, width=0.25)
    maps = model.forward_intermediates(torch.randn(1, 3, 32, 32))
    assert [m.shape[-1] for m in maps] == [32, 32, 16, 8, 4]
    assert model.default_cfg.input_size == 32 and model.default_cfg.min_input_size == 28
    assert model.inception3a.branch1.conv.out_channels == 16  # 64 x 0.25


@pytest.mark.parametrize("init, conv_std", [(None, lambda fan_out: 0.01),
                                             ("kaiming_fan_out", lambda fan_out: (2 / fan_out) ** 0.5)])
def test_bn_build_init_is_torchvision_s_or_the_one_chosen(init, conv_std):
    # torchvision's std 0.01 by default; `init=kaiming_fan_out` (ResNet's He init) turns the convs more slowly
    # under Adam, which lets the full-width network fit small gray data without augmentation.
    torch.manual_seed(0)
    model = create_model("googlenet_bn", num_classes=4, **({"init": init} if init else {}))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.numel() > 20_000]
    assert len(convs) > 20
    for conv in convs:
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        assert conv.weight.std().item() == pytest.approx(conv_std(fan_out), rel=0.1), conv
    assert model.fc.weight.std().item() == pytest.approx(0.01, rel=0.1)  # the classifier always starts small


def test_aux_loss_weights_each_head():
    from inceptorch import ModelOutput, aux_loss

    target = torch.tensor([0, 1])
    main, a1, a2 = (torch.randn(2, 3) for _ in range(3))
    ce = nn.functional.cross_entropy
    expected = ce(main, target) + 0.3 * ce(a1, target) + 0.3 * ce(a2, target)
    assert torch.allclose(aux_loss(ModelOutput(main, (a1, a2)), target, 0.3), expected)


def test_fc_head_classifies_the_whole_last_map_and_keeps_the_default():
    """head="fc" (the section 5 ablation): a linear layer over the 4x4 map at 32 px; the default is unchanged."""
    kwargs = {"small_input": True, "width": 0.125, "num_classes": 10}
    avg, fc = create_model("googlenet_bn", **kwargs), create_model("googlenet_bn", head="fc", **kwargs)
    assert avg.head == "avg" and avg.fc.in_features == avg.num_features == 128
    assert fc.fc.in_features == 128 * 4 * 4 and fc.num_features == 128
    assert set(fc.state_dict()) == set(avg.state_dict())  # same keys, only fc.weight's shape differs
    assert sum(p.numel() for p in fc.parameters()) - sum(p.numel() for p in avg.parameters()) == 128 * 15 * 10
    x = torch.randn(2, 3, 48, 48)  # another size: pooled to the 4x4 grid first
    assert fc.eval()(x).shape == (2, 10) and fc.forward_head(fc.forward_features(x), pre_logits=True).shape == (2, 2048)
    fc.reset_classifier(3)
    assert fc.fc.in_features == 2048 and fc(x).shape == (2, 3)
    assert create_model("googlenet", head="fc").fc.in_features == 1024 * 7 * 7  # Table 1's 7x7 map at 224
    with pytest.raises(ValueError, match="head must be one of"):
        create_model("googlenet", head="max")


def test_modules_without_reductions_keep_table_1_widths_at_a_higher_cost():
    """reduce=False: the 3x3 and 5x5 convs read the whole block input (Figure 2a's cost), outputs unchanged."""
    with_red = summarize(create_model("googlenet", aux_logits=False), 224)
    without = summarize(create_model("googlenet", aux_logits=False, reduce=False), 224)
    assert [r.output for r in without.rows] == [r.output for r in with_red.rows]
    block = create_model("googlenet", reduce=False).inception4a
    assert len(block.branch2) == len(block.branch3) == 1 and block.branch3[0].conv.in_channels == 480
    # 4a's 5x5 branch: 5x5 x 480 -> 48 at 14x14 without the 16-map reduction, the seed arithmetic's 112.9M MACs
    assert block.branch3[0].conv.weight.numel() * 14 * 14 == 112_896_000
    assert without.macs > 2.5 * with_red.macs and create_model("googlenet").inception4a.branch3[0].conv.kernel_size \
        == (1, 1)
