"""Inception v2 / v3 (arXiv:1512.00567): torchvision and timm parity, weights, the paper's Table 1, the model API."""
import json

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from _lively import lively
from inceptorch import ModelOutput, create_model, get_model_cfg
from inceptorch.cli.main import main
from inceptorch.models._registry import IMAGENET_MEAN, IMAGENET_STD
from inceptorch.models.inception_v3 import V2
from inceptorch.weights.key_tables import CONVERTERS, flat_key_table, from_torchvision, rename_keys
from inceptorch.weights.model_file import META_KEY, load_model_file, model_metadata
from inceptorch.weights.pretrained import load_pretrained

TV_PARAMS_WITH_AUX = 27_161_264  # torchvision's Inception_V3_Weights meta
V3_MACS_AT_299 = 5.73e9  # Inception-v3 multiply-adds at 299


def tv_v3(aux_logits: bool = True, transform_input: bool = False) -> nn.Module:
    return torchvision.models.inception_v3(weights=None, aux_logits=aux_logits, init_weights=False,
                                           transform_input=transform_input)


@pytest.fixture(scope="module")
def tv_state():
    """A torchvision inception_v3 state dict (aux head included) with random, non-default weights."""
    return lively(tv_v3(), seed=1).state_dict()


@pytest.fixture(scope="module")
def ours():
    return create_model("inception_v3")


@pytest.fixture(scope="module")
def small():
    """Narrow builds (a quarter of every width) for the API tests."""
    return {name: create_model(name, num_classes=7, width=0.25, aux_logits=True)
            for name in ("inception_v3", "inception_v2")}


@pytest.mark.parametrize("aux_logits", [True, False])
def test_torchvision_keys_convert_one_to_one_onto_ours(aux_logits, ours):
    model = ours if aux_logits else create_model("inception_v3", aux_logits=False)
    theirs = tv_v3(aux_logits).state_dict()
    mine, converted = model.state_dict(), from_torchvision(theirs)
    assert len(converted) == len(theirs)  # no two of their keys land on one of ours
    assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in mine.items()}
    assert any(k.startswith("AuxLogits.") for k in mine) == aux_logits


def test_param_count_with_aux_equals_torchvision(ours):
    assert sum(p.numel() for p in ours.parameters()) == TV_PARAMS_WITH_AUX
    assert sum(p.numel() for p in tv_v3().parameters()) == TV_PARAMS_WITH_AUX


def test_torchvision_state_dicts_load_strictly(tv_state):
    model = create_model("inception_v3")
    model.load_state_dict(from_torchvision(tv_state), strict=True)
    split = model.Mixed_7b.branch3x3[1]  # Figure 7's 1x3 | 3x1 pair: torchvision's branch3x3_2a / _2b
    assert torch.equal(split.branch1x3.conv.weight, tv_state["Mixed_7b.branch3x3_2a.conv.weight"])
    assert torch.equal(split.branch3x1.conv.weight, tv_state["Mixed_7b.branch3x3_2b.conv.weight"])
    no_aux = {k: v for k, v in tv_state.items() if not k.startswith("AuxLogits.")}
    off = create_model("inception_v3", aux_logits=False)
    off.load_state_dict(from_torchvision(no_aux), strict=True)  # torchvision's aux-less state dict
    assert torch.equal(off.fc.weight, tv_state["fc.weight"])


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_load_pretrained_reads_torchvision_files(tmp_path, tv_state, suffix):
    path = tmp_path / f"inception_v3{suffix}"
    if suffix == ".pth":
        torch.save(tv_state, path)
    else:
        save_file({k: v.contiguous() for k, v in tv_state.items()}, str(path))
    model = create_model("inception_v3", pretrained=str(path))
    converted = from_torchvision(tv_state)
    assert all(torch.equal(v, converted[k]) for k, v in model.state_dict().items())
    off = create_model("inception_v3", aux_logits=False)  # aux on or off is independent of the file
    assert load_pretrained(off, path) == []
    assert torch.equal(off.Mixed_6e.branch7x7dbl[4].bn.running_var, tv_state["Mixed_6e.branch7x7dbl_5.bn.running_var"])


@pytest.mark.parametrize("transform_input", [False, True])
def test_outputs_equal_torchvision_in_eval_mode(tv_state, transform_input):
    theirs = tv_v3(transform_input=transform_input)
    theirs.load_state_dict(tv_state)
    model = create_model("inception_v3", transform_input=transform_input)
    model.load_state_dict(from_torchvision(tv_state))
    x = torch.randn(2, 3, 107, 107)  # torchvision's minimum is 75; at 107 the 8x8 grid is still 2x2
    with torch.no_grad():
        mine, ref = model.eval()(x), theirs.eval()(x)
    assert ref.abs().max() > 0.1 and (ref[0] - ref[1]).abs().max() > 1e-3  # a meaningful, input-dependent output
    assert (mine - ref).abs().max() <= 1e-5
    model.transform_input = not transform_input
    with torch.no_grad():
        assert (model(x) - ref).abs().max() > 1e-3  # the option changes the output, so the test can fail


def test_aux_head_equals_torchvision(tv_state):
    """The head on a 17x17x768 map (Mixed_6e at 299 px), compared directly: cheaper than two 299 px forwards."""
    theirs, model = tv_v3(), create_model("inception_v3")
    theirs.load_state_dict(tv_state)
    model.load_state_dict(from_torchvision(tv_state))
    x = torch.randn(2, 768, 17, 17)
    with torch.no_grad():
        ref = theirs.AuxLogits.eval()(x)
        assert (model.AuxLogits.eval()(x) - ref).abs().max() <= 1e-5
        assert ref.abs().max() > 0.1


def test_aux_head_accepts_maps_below_17x17(small):
    """torchvision's head raises below 17x17 (inputs under 299 px); ours pools to the 5x5 its 5x5 conv needs."""
    head = small["inception_v3"].AuxLogits.eval()
    with torch.no_grad():
        for size in (3, 9, 16):
            assert head(torch.randn(2, head.conv0.conv.in_channels, size, size)).shape == (2, 7)


def test_timm_state_dict_converts_with_equal_outputs(tmp_path):
    timm = pytest.importorskip("timm")
    theirs = lively(timm.create_model("inception_v3", pretrained=False), seed=2)
    state = theirs.state_dict()
    assert not any(k.startswith("AuxLogits.") for k in state)  # timm's default build has no aux head
    converted = CONVERTERS["inception_v3"]["timm"](dict(state))
    assert set(converted) == set(create_model("inception_v3", aux_logits=False).state_dict())
    with pytest.raises(KeyError):
        CONVERTERS["inception_v3"]["timm"]({"conv1.weight": torch.zeros(1)})
    path = tmp_path / "timm_inception_v3.pth"
    torch.save({"state_dict": state}, path)  # timm's training checkpoints nest the weights
    model = create_model("inception_v3", pretrained=str(path)).eval()  # aux on: the head keeps its init
    x = torch.randn(2, 3, 107, 107)
    with torch.no_grad():
        ref = theirs(x)
        assert (model(x) - ref).abs().max() <= 1e-4
    assert ref.abs().max() > 0.1


def test_forward_train_returns_aux_logits_only_there(small):
    model = small["inception_v3"].train()
    x = torch.randn(2, 3, 75, 75)
    assert isinstance(model(x), torch.Tensor) and model(x).shape == (2, 7)  # logits even in training mode
    out = model.forward_train(x)
    assert isinstance(out, ModelOutput) and out.logits.shape == (2, 7)
    assert len(out.aux_logits) == 1 and out.aux_logits[0].shape == (2, 7)
    off = create_model("inception_v3", num_classes=7, width=0.25, aux_logits=False).train()
    assert off.forward_train(x).aux_logits == () and off.AuxLogits is None


@pytest.mark.parametrize("name", ["inception_v2", "inception_v3"])
def test_forward_backward_reaches_every_parameter(small, name):
    model = small[name].train()
    out = model.forward_train(torch.randn(2, 3, 75, 75))
    (out.logits.square().mean() + sum(a.square().mean() for a in out.aux_logits)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing[:5]
    assert model.AuxLogits.fc.weight.grad.abs().sum() > 0


def _stage_shapes(model: nn.Module, size: int = 299) -> dict[str, tuple]:
    """Every stage's output shape, on the meta device (shapes without arithmetic)."""
    model = model.to("meta")
    shapes = {}
    for stage in model.stage_names:
        getattr(model, stage).register_forward_hook(lambda m, i, o, s=stage: shapes.__setitem__(s, tuple(o.shape[1:])))
    model(torch.empty(1, 3, size, size, device="meta"))
    return shapes


def test_inception_v2_follows_table_1():
    """Each row's input in Table 1 of arXiv:1512.00567 is the previous row's output."""
    model = create_model("inception_v2", aux_logits=True)
    kinds = [type(getattr(model, s)).__name__ for s in model.stage_names]
    assert (kinds.count("InceptionFig5"), kinds.count("InceptionFig6"), kinds.count("InceptionFig7")) == (3, 5, 2)
    assert model.Mixed_5b.branch3x3[1].conv.kernel_size == (3, 3)  # Figure 5: no 5x5 left
    assert model.has_aux and not create_model("inception_v2", width=0.25).has_aux  # aux head optional, off
    shapes = list(_stage_shapes(model).values())
    table_1 = [(32, 149, 149), (32, 147, 147), (64, 147, 147), (64, 73, 73), (80, 71, 71), (192, 35, 35),
               (288, 35, 35)] + [(288, 35, 35)] * 3 + [(768, 17, 17)] * 6 + [(1280, 8, 8)] + [(2048, 8, 8)] * 2
    assert shapes == table_1  # stem, 3 x Figure 5, reduction + 5 x Figure 6, reduction + 2 x Figure 7


@pytest.mark.parametrize("name", ["inception_v2", "inception_v3"])
def test_feature_info_matches_intermediate_maps(small, name):
    model, size = small[name].eval(), 107
    with torch.no_grad():
        maps = model.forward_intermediates(torch.randn(1, 3, size, size))
    info = model.feature_info
    assert [i["reduction"] for i in info] == [2, 4, 8, 16, 32]  # one entry per stride
    assert [m.shape[1] for m in maps] == [i["num_chs"] for i in info]
    for fmap, i in zip(maps, info):  # unpadded convs trim a few pixels below size / reduction
        assert size / i["reduction"] - 4 <= fmap.shape[-1] <= size / i["reduction"], (i, fmap.shape)
    assert info[-1]["num_chs"] == model.num_features


def test_feature_info_equals_timm_at_full_width(ours):
    # timm's InceptionV3.feature_info, written out: same modules, channels and strides
    assert ours.feature_info == [
        {"num_chs": 64, "reduction": 2, "module": "Conv2d_2b_3x3"},
        {"num_chs": 192, "reduction": 4, "module": "Conv2d_4a_3x3"},
        {"num_chs": 288, "reduction": 8, "module": "Mixed_5d"},
        {"num_chs": 768, "reduction": 16, "module": "Mixed_6e"},
        {"num_chs": 2048, "reduction": 32, "module": "Mixed_7c"}]
    shapes = _stage_shapes(create_model("inception_v3", width=1.0, aux_logits=False))
    assert [shapes[i["module"]] for i in ours.feature_info] == [(64, 147, 147), (192, 71, 71), (288, 35, 35),
                                                                (768, 17, 17), (2048, 8, 8)]


def test_options_and_reset_classifier():
    model = create_model("inception_v3", num_classes=10, in_chans=1, drop_rate=0.3, width=0.25).eval()
    assert model.dropout.p == 0.3 and not model.transform_input
    assert model(torch.randn(2, 1, 75, 75)).shape == (2, 10)
    model.reset_classifier(4)
    assert model.fc.out_features == 4 and model.AuxLogits.fc.out_features == 4
    model.reset_classifier(0)
    assert model(torch.randn(2, 1, 75, 75)).shape == (2, model.num_features)
    features = model.forward_features(torch.randn(1, 1, 75, 75))
    assert model.forward_head(features, pre_logits=True).shape[1] == model.num_features == 512  # 2048 x 0.25


def test_default_cfgs():
    v3, v2 = get_model_cfg("inception_v3"), get_model_cfg("inception_v2")
    assert (v3.input_size, v3.min_input_size, v3.crop_pct, v3.aux_weight) == (299, 75, 0.875, 0.4)
    assert round(v3.input_size / v3.crop_pct) == 342  # torchvision resizes to 342 for a 299 crop
    assert (v3.mean, v3.std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert v2.input_size == 299


def test_summary_cli_macs_and_params(capsys):
    assert main(["summary", "inception_v3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    total, depth = out["total"], {r["name"]: r["depth"] for r in out["rows"]}
    assert (depth["Conv2d_1a_3x3"], depth["Mixed_5b"], depth["Mixed_6b"], depth["Mixed_7a"], depth["Mixed_7b"]) == (
        1, 3, 5, 4, 3)  # convs along each module's deepest branch
    assert abs(total["macs"] - V3_MACS_AT_299) / V3_MACS_AT_299 < 0.02
    assert total["params"] == sum(p.numel() for p in tv_v3(aux_logits=False).parameters())  # summary drops aux
    assert main(["summary", "inception_v3", "--input-size", "74"]) == 2


def test_our_weights_write_back_to_timms_layout_and_load_into_timm():
    timm = pytest.importorskip("timm")
    from inceptorch.weights.key_tables import to_reference_state_dict

    ours = lively(create_model("inception_v3"), seed=3)  # aux head on (our default): timm's has none
    theirs = timm.create_model("inception_v3", pretrained=False).eval()
    theirs.load_state_dict(to_reference_state_dict(ours, "timm"), strict=True)
    x = torch.randn(1, 3, 107, 107)
    with torch.no_grad():
        torch.testing.assert_close(theirs(x), ours(x), atol=1e-4, rtol=0)
def test_model_file_in_the_flat_layout_still_loads(tmp_path):
    """A model file written while inception_v2/v3 kept torchvision's flat keys (one level per module) still loads:
    `load_model_file` falls back on the model's converters."""
    model = lively(create_model("inception_v2", num_classes=7, width=0.25, aux_logits=True), seed=1)
    flat = rename_keys(model.state_dict(), [(ours, theirs) for theirs, ours in flat_key_table(V2)])
    assert "Mixed_7b.branch3x3dbl_3a.conv.weight" in flat and "Mixed_5b.branch_pool.conv.weight" in flat
    path = tmp_path / "old.safetensors"
    meta = model_metadata(model, {"num_classes": 7, "width": 0.25, "aux_logits": True})
    save_file({k: v.contiguous() for k, v in flat.items()}, str(path), metadata={META_KEY: json.dumps(meta)})
    loaded, _ = load_model_file(path)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
