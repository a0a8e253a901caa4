"""The contract every registered model keeps, parametrised over the registry (timm's suite shape)."""
import functools
import inspect

import pytest
import torch
from torch import nn

from inceptorch import ModelOutput, UserError, create_model, get_model_cfg, list_models
from inceptorch.models import register_model

MODELS = list_models()


@functools.cache
def _built_by_default(name: str) -> tuple[type, bool]:
    """The class `name` builds and whether its default build has auxiliary heads (one full build per model)."""
    model = create_model(name)
    return type(model), model.has_aux


def _small_kwargs(name: str) -> dict:
    """Cheapest build of a model that still exercises every block: few classes, narrow where supported."""
    params = inspect.signature(_built_by_default(name)[0].__init__).parameters
    kwargs = {"num_classes": 7}
    if "width" in params:
        kwargs["width"] = 0.25
    return kwargs


def _has_aux_option(name: str) -> bool:
    cls, has_aux = _built_by_default(name)
    return "aux_logits" in inspect.signature(cls.__init__).parameters and has_aux


@pytest.mark.parametrize("name", MODELS)
def test_forward_at_default_size(name):
    cfg = get_model_cfg(name)
    model = create_model(name, num_classes=5).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, cfg.input_size, cfg.input_size))
    assert out.shape == (1, 5) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_at_min_size_reaches_every_parameter(name):
    cfg = get_model_cfg(name)
    model = create_model(name, **_small_kwargs(name)).train()
    x = torch.randn(2, 3, cfg.min_input_size, cfg.min_input_size)
    out = model.forward_train(x)
    assert isinstance(out, ModelOutput) and out.logits.shape == (2, 7)
    loss = out.logits.square().mean() + sum(a.square().mean() for a in out.aux_logits)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, no_grad[:5]


@pytest.mark.parametrize("name", MODELS)
def test_forward_returns_logits_and_aux_only_from_forward_train(name):
    cfg = get_model_cfg(name)
    model = create_model(name, **_small_kwargs(name)).train()
    x = torch.randn(2, 3, cfg.min_input_size, cfg.min_input_size)
    assert isinstance(model(x), torch.Tensor)  # even in training mode
    n_aux = len(model.forward_train(x).aux_logits)
    assert n_aux == len(model.aux_taps) if model.has_aux else n_aux == 0
    if _has_aux_option(name):
        off = create_model(name, aux_logits=False, **_small_kwargs(name)).train()
        assert off.forward_train(x).aux_logits == ()
        assert not any(k.startswith(tuple(model.aux_taps.values())) for k in off.state_dict())


@pytest.mark.parametrize("name", MODELS)
def test_feature_info_matches_intermediate_maps(name):
    cfg = get_model_cfg(name)
    model = create_model(name, **_small_kwargs(name)).eval()
    size = cfg.min_input_size
    with torch.no_grad():
        maps = model.forward_intermediates(torch.randn(1, 3, size, size))
        features = model.forward_features(torch.randn(1, 3, size, size))
    # the two-stride digit networks (stem at 1, everything else at 2) have two entries, the others three or more
    assert len(maps) == len(model.feature_info) >= 2
    for fmap, info in zip(maps, model.feature_info):
        assert fmap.shape[1] == info["num_chs"], info
        # "same" padding gives ceil(size / reduction); the TF ports' VALID convs lose a few border pixels per stage
        assert size / info["reduction"] / 2 - 1 <= fmap.shape[-1] <= -(-size // info["reduction"]), info
    reductions = [i["reduction"] for i in model.feature_info]
    assert reductions == sorted(set(reductions)), reductions  # one entry per stride (timm): the deepest map at it
    assert features.shape[1] == model.num_features == model.feature_info[-1]["num_chs"]


@pytest.mark.parametrize("name", MODELS)
def test_head_api_and_reset_classifier(name):
    cfg = get_model_cfg(name)
    model = create_model(name, **_small_kwargs(name)).eval()
    x = torch.randn(1, 3, cfg.min_input_size, cfg.min_input_size)
    with torch.no_grad():
        features = model.forward_features(x)
        assert model.forward_head(features, pre_logits=True).shape == (1, model.num_features)
        assert torch.allclose(model.forward_head(features), model(x))
        model.reset_classifier(3)
        assert model(x).shape == (1, 3)
        x2 = torch.randn(2, *x.shape[1:])  # BN in training mode needs more than one value per channel
        assert all(a.shape == (2, 3) for a in model.train().forward_train(x2).aux_logits)
        model.eval().reset_classifier(0)
        assert model(x).shape == (1, model.num_features)


@pytest.mark.parametrize("name", MODELS)
def test_in_chans_and_config(name):
    cfg = get_model_cfg(name)
    model = create_model(name, in_chans=1, **_small_kwargs(name)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, cfg.min_input_size, cfg.min_input_size)).shape == (1, 7)
    assert cfg.min_input_size <= cfg.input_size and cfg.paper and 0 < cfg.crop_pct <= 1
    assert model.default_cfg == cfg and model.model_name == name


@pytest.mark.parametrize("name", MODELS)
def test_drop_rate_is_an_option(name):
    model = create_model(name, drop_rate=0.123)
    assert any(isinstance(m, nn.Dropout) and m.p == 0.123 for m in model.modules())


def test_registry_rejects_duplicates_and_unknown_names():
    def googlenet(**kwargs):
        return None
    with pytest.raises(ValueError, match="already registered"):
        register_model(get_model_cfg("googlenet"))(googlenet)
    with pytest.raises(UserError, match="unknown model 'googlenett'"):
        create_model("googlenett")
    assert list_models("googlenet*") == ["googlenet", "googlenet_bn"]


def test_width_multiplier_scales_channels():
    narrow, full = create_model("googlenet", width=0.5), create_model("googlenet")
    assert narrow.num_features == full.num_features // 2
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in full.parameters()) / 3


def test_every_reference_layout_a_model_reads_it_can_also_write():
    from inceptorch.weights.key_tables import CONVERTERS, WRITERS

    assert CONVERTERS  # the registry is populated (timm's layouts of v3, v4 and Inception-ResNet-v2)
    for name, sources in CONVERTERS.items():
        assert set(WRITERS.get(name, {})) == set(sources), name


def test_export_writes_a_reference_layout_that_loads_back(tmp_path, capsys):
    from safetensors.torch import load_file

    import inceptorch
    from inceptorch.cli.main import main
    from inceptorch.weights.key_tables import to_reference_state_dict

    model = create_model("inception_v3", num_classes=3, width=0.125, aux_logits=False)
    folder = inceptorch.save_pretrained(model, tmp_path / "saved")
    out = tmp_path / "timm.safetensors"
    assert main(["export", "--checkpoint", str(folder), "--format", "weights", "--layout", "timm",
                 "--output", str(out)]) == 0
    assert "timm's key layout" in capsys.readouterr().out
    written, expected = load_file(str(out)), to_reference_state_dict(model, "timm")
    assert written.keys() == expected.keys() and all(torch.equal(written[k], expected[k]) for k in expected)
    again = create_model("inception_v3", num_classes=3, width=0.125, aux_logits=False, pretrained=str(out))
    assert all(torch.equal(again.state_dict()[k], v) for k, v in model.state_dict().items())
    assert main(["export", "--model", "googlenet_bn", "--format", "weights", "--layout", "timm",
                 "--output", str(tmp_path / "x.safetensors")]) == 2
    assert "googlenet_bn has no timm layout to write (layouts: inceptorch)" in capsys.readouterr().err
