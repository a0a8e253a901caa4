"""pretrained=True / a tag / a file: downloads from a local server in each source's layout, the cache, hash checks,
the offline message, and outputs equal to torchvision's and timm's models loaded with the same file.

No test touches the internet: every weight set used here is pointed at a server on 127.0.0.1 (torchvision's files)
or reached through HF_ENDPOINT (timm's hub files); TORCH_HOME and HF_HOME are temporary folders. The weights are
random, with BN statistics and affine terms far from the identity, so a wrong mapping or input convention shows.
"""
from __future__ import annotations

import dataclasses
import json
import socket

import pytest
import torch
import torchvision
from safetensors.torch import save_file

import inceptorch
from _lively import lively
from _weight_server import WeightServer, sha256
from inceptorch import UserError, create_model
from inceptorch.cli.main import main
from inceptorch.models._registry import IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN
from inceptorch.weights import sets as weight_sets
from inceptorch.weights.model_file import load_model_file, model_metadata, restore_recorded, save_model_file

timm = pytest.importorskip("timm")
CATEGORIES = torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1.meta["categories"]
SIZE = 107  # the smallest input at which Inception-v3/v4's 8x8 stage is still 2x2 (see test_inception_v4.py)


@pytest.fixture(scope="module")
def server():
    s = WeightServer()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def homes(tmp_path, monkeypatch, server):
    """Fresh, temporary caches per test; the hub is the local server; no mirror unless a test names one."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    for var in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "INCEPTORCH_WEIGHTS_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    server.requests.clear()
    return tmp_path


def point(monkeypatch, name: str, **changes) -> weight_sets.WeightSet:
    """Replace weight set `name` in the registry (e.g. its URL) for this test."""
    sets = list(weight_sets.WEIGHT_SETS)
    i = next(i for i, w in enumerate(sets) if w.name == name)
    sets[i] = dataclasses.replace(sets[i], **changes)
    monkeypatch.setattr(weight_sets, "WEIGHT_SETS", tuple(sets))
    return sets[i]


def hash_named(tmp_path_factory, stem: str, state: dict) -> tuple:
    """torch.save `state` as `<stem>-<its sha256 prefix>.pth`, torchvision's naming; returns (path, state)."""
    folder = tmp_path_factory.mktemp(stem)
    raw = folder / "raw.pth"
    torch.save(state, raw)
    path = raw.rename(folder / f"{stem}-{sha256(raw)[:8]}.pth")
    return path, state


@pytest.fixture(scope="module")
def tv_googlenet(tmp_path_factory):
    """A random torchvision GoogLeNet (aux heads included, as torchvision's file has them), saved hash-named."""
    model = lively(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False), seed=1)
    return hash_named(tmp_path_factory, "googlenet", model.state_dict())


@pytest.fixture(scope="module")
def tv_inception_v3(tmp_path_factory):
    model = lively(torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False), seed=2)
    return hash_named(tmp_path_factory, "inception_v3_google", model.state_dict())


def serve_tv(server, monkeypatch, name: str, file) -> weight_sets.WeightSet:
    return point(monkeypatch, name, url=server.serve(f"/models/{file.name}", file))


def image(size: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ---- torchvision's hash-named files -----------------------------------------------------------------------------

def test_torchvision_googlenet_downloads_once_and_matches_torchvision(server, monkeypatch, homes, tv_googlenet):
    path, state = tv_googlenet
    serve_tv(server, monkeypatch, "googlenet_bn.tv_in1k", path)
    model = create_model("googlenet_bn", pretrained=True).eval()
    cached = homes / "torch" / "hub" / "checkpoints" / path.name
    assert cached.is_file() and sha256(cached) == sha256(path) and server.count(path.name) == 1
    # torchvision's builder turns transform_input on for these weights; loaded with the same file, outputs agree.
    reference = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    reference.load_state_dict(torch.load(cached, weights_only=True))
    x = image(112)
    with torch.no_grad():
        expected = reference.eval()(x)
        assert (model(x) - expected).abs().max() <= 1e-5 and expected.abs().max() > 0.1
    assert model.transform_input and model.model_kwargs["transform_input"] is True
    assert model.class_names == CATEGORIES and len(model.class_names) == 1000
    cfg = model.default_cfg
    assert (cfg.input_size, cfg.crop_pct, cfg.interpolation, cfg.mean, cfg.std) == (
        224, 224 / 256, "bilinear", IMAGENET_MEAN, IMAGENET_STD)
    assert model.pretrained_cfg["weights"] == "googlenet_bn.tv_in1k" and model.pretrained_cfg["sha256"] == \
        path.name.split("-")[1][:8]
    # Cache hit: torchvision's enum name and the tag find the cached file without a request.
    again = create_model("googlenet_bn", pretrained="IMAGENET1K_V1")
    create_model("googlenet_bn.tv_in1k", pretrained=True)
    assert server.count(path.name) == 1
    assert torch.equal(again.fc.weight, state["fc.weight"])


def test_torchvision_inception_v3_matches_torchvision(server, monkeypatch, tv_inception_v3):
    path, _ = tv_inception_v3
    serve_tv(server, monkeypatch, "inception_v3.tv_in1k", path)
    model = create_model("inception_v3", pretrained="imagenet").eval()
    reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False,
                                                transform_input=True)
    reference.load_state_dict(torch.load(path, weights_only=True))
    x = image(SIZE)
    with torch.no_grad():
        expected = reference.eval()(x)
        assert (model(x) - expected).abs().max() <= 1e-5 and expected.abs().max() > 0.1
        model.transform_input = False  # the option matters for this input: the test can fail
        assert (model(x) - expected).abs().max() > 1e-3
    assert round(299 / model.default_cfg.crop_pct) == 342  # torchvision's resize 342, center crop 299


def test_hash_mismatch_is_refused_in_one_line_and_nothing_is_cached(server, monkeypatch, homes, tv_googlenet):
    path, _ = tv_googlenet
    wrong = "googlenet-" + ("0" * 8 if not path.name.startswith("googlenet-0") else "f" * 8) + ".pth"
    point(monkeypatch, "googlenet_bn.tv_in1k", url=server.serve(f"/models/{wrong}", path))
    with pytest.raises(UserError) as err:
        create_model("googlenet_bn", pretrained=True)
    message = str(err.value)
    assert "\n" not in message and f"its SHA-256 is {sha256(path)[:16]}" in message and "the name says" in message
    checkpoints = homes / "torch" / "hub" / "checkpoints"
    assert not any(checkpoints.iterdir())  # no file, no partial download


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_says_which_file_to_put_where_and_the_mirror_serves_it(monkeypatch, homes, tv_googlenet, capsys):
    path, state = tv_googlenet
    point(monkeypatch, "googlenet_bn.tv_in1k", url=f"http://127.0.0.1:{_closed_port()}/models/{path.name}")
    with pytest.raises(UserError) as err:
        create_model("googlenet_bn", pretrained=True)
    message = str(err.value)
    assert "\n" not in message and message.startswith("cannot download googlenet_bn.tv_in1k")
    assert f"put {path.name} in {homes / 'torch' / 'hub' / 'checkpoints'}/" in message
    assert "INCEPTORCH_WEIGHTS_MIRROR" in message
    # The CLI prints it as one line too, after the line that says what it tried.
    capsys.readouterr()
    assert main(["weights", "fetch", "googlenet_bn"]) == 2
    tried, error = capsys.readouterr().err.strip().splitlines()
    assert tried.startswith("downloading googlenet_bn.tv_in1k from http://127.0.0.1:")
    assert error == f"inceptorch weights: error: {message}"
    # A mirror folder in the source's layout serves the file with no network; its hash is still checked.
    mirror = homes / "mirror"
    mirror.mkdir()
    (mirror / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv("INCEPTORCH_WEIGHTS_MIRROR", str(mirror))
    model = create_model("googlenet_bn", pretrained=True)
    assert torch.equal(model.conv1.conv.weight, state["conv1.conv.weight"]) and model.transform_input
    damaged = bytearray(path.read_bytes())
    damaged[-100] ^= 0xFF
    (mirror / path.name).write_bytes(bytes(damaged))
    with pytest.raises(UserError, match="refusing .* does not start with"):
        create_model("googlenet_bn", pretrained=True)


# ---- timm's hub files -------------------------------------------------------------------------------------------

def timm_file(tmp_path_factory, name: str, seed: int, **kwargs) -> tuple:
    model = lively(timm.create_model(name, pretrained=False, **kwargs), seed)
    path = tmp_path_factory.mktemp(name) / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path, model


@pytest.fixture(scope="module")
def timm_v3(tmp_path_factory):
    return timm_file(tmp_path_factory, "inception_v3", seed=4)


def test_timm_hub_file_downloads_once_with_timm_preprocessing(server, homes, timm_v3):
    path, reference = timm_v3
    server.serve_hub("timm/inception_v3.tf_in1k", path)
    model = create_model("inception_v3", pretrained="tf_in1k").eval()
    x = image(SIZE)
    with torch.no_grad():
        expected = reference(x)
        assert (model(x) - expected).abs().max() <= 1e-4 and expected.abs().max() > 0.1
    assert not model.transform_input and "transform_input" not in model.model_kwargs
    cfg = model.default_cfg
    assert (cfg.mean, cfg.interpolation, cfg.crop_pct) == (INCEPTION_MEAN, "bicubic", 0.875)
    assert model.class_names == CATEGORIES
    snapshot = homes / "hf" / "hub" / "models--timm--inception_v3.tf_in1k" / "snapshots"
    assert [p.name for p in snapshot.rglob("model.safetensors")] == ["model.safetensors"]  # huggingface_hub's cache
    assert model.pretrained_cfg["sha256"] == sha256(path)  # the hub's ETag, checked against the file
    downloads = server.count("resolve/main/model.safetensors")
    create_model("inception_v3.tf_in1k", pretrained=True)
    assert server.count("resolve/main/model.safetensors") == downloads  # a cache hit makes no request at all


def test_hub_file_with_another_hash_is_refused_and_removed(server, homes, timm_v3):
    path, _ = timm_v3
    server.serve_hub("timm/inception_v3.tf_adv_in1k", path)
    server.etags["/timm/inception_v3.tf_adv_in1k/resolve/main/model.safetensors"] = "a" * 64
    with pytest.raises(UserError) as err:
        create_model("inception_v3", pretrained="tf_adv_in1k")
    assert "\n" not in str(err.value) and "the hub said aaaaaaaaaaaaaaaa" in str(err.value)
    assert not list((homes / "hf" / "hub").rglob("model.safetensors"))
    assert not [p for p in (homes / "hf" / "hub").rglob("blobs/*") if p.is_file()]


def test_hub_offline_message_and_mirror(server, monkeypatch, homes, timm_v3):
    path, reference = timm_v3
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(UserError) as err:
        create_model("inception_v3", pretrained="gluon_in1k")
    assert "\n" not in str(err.value)
    assert "put model.safetensors of timm/inception_v3.gluon_in1k at " \
           "$INCEPTORCH_WEIGHTS_MIRROR/timm/inception_v3.gluon_in1k/model.safetensors" in str(err.value)
    mirror = homes / "mirror" / "timm" / "inception_v3.gluon_in1k"
    mirror.mkdir(parents=True)
    (mirror / "model.safetensors").write_bytes(path.read_bytes())
    monkeypatch.setenv("INCEPTORCH_WEIGHTS_MIRROR", str(homes / "mirror"))
    model = create_model("inception_v3", pretrained="gluon_in1k", aux_logits=False).eval()
    assert model.default_cfg.mean == IMAGENET_MEAN and not model.transform_input  # gluon's: ImageNet mean/std
    with torch.no_grad():
        assert (model(image(SIZE)) - reference(image(SIZE))).abs().max() <= 1e-4


@pytest.fixture(scope="module", params=["inception_v4", "inception_resnet_v2"])
def timm_big(request, tmp_path_factory):
    return request.param, *timm_file(tmp_path_factory, request.param, seed=5)


@pytest.mark.slow
def test_timm_v4_and_inception_resnet_v2_from_the_hub_equal_timm(server, timm_big):
    name, path, reference = timm_big
    server.serve_hub(f"timm/{name}.tf_in1k", path)
    model = create_model(name, pretrained=True).eval()
    x = image(SIZE)
    with torch.no_grad():
        expected = reference(x)
        assert (model(x) - expected).abs().max() <= 1e-4 and expected.abs().max() > 0.1
    expected_crop = {"inception_v4": 0.875, "inception_resnet_v2": 0.8975}[name]
    assert model.default_cfg.crop_pct == expected_crop and model.default_cfg.mean == INCEPTION_MEAN


# ---- files given by path ----------------------------------------------------------------------------------------

def test_torchvision_layout_file_gets_transform_input_with_one_log_line(tmp_path, tv_googlenet, capsys):
    _, state = tv_googlenet
    path = tmp_path / "my_googlenet.pth"  # an unknown hash: recognised by its keys
    torch.save(state, path)
    model = create_model("googlenet_bn", pretrained=str(path))
    lines = capsys.readouterr().err.strip().splitlines()
    assert model.transform_input and len(lines) == 1
    assert "torchvision's layout" in lines[0] and "transform_input=True" in lines[0] and str(path) in lines[0]
    kept = create_model("googlenet_bn", pretrained=str(path), transform_input=False)  # the user overrides
    assert not kept.transform_input and "transform_input=False as given" in capsys.readouterr().err
    # A model of another shape cannot hold torchvision's weights: no convention is assumed for it.
    small = create_model("googlenet_bn", small_input=True, width=0.125, num_classes=10)
    torch.save(small.state_dict(), tmp_path / "small.pth")
    again = create_model("googlenet_bn", small_input=True, width=0.125, num_classes=10,
                         pretrained=str(tmp_path / "small.pth"))
    assert not again.transform_input and again.default_cfg.input_size == 32 and capsys.readouterr().err == ""


def test_timm_layout_inception_v3_file_gets_timm_preprocessing(tmp_path, timm_v3, capsys):
    path, reference = timm_v3
    model = create_model("inception_v3", pretrained=str(path)).eval()  # no AuxLogits keys: timm's export
    assert not model.transform_input and model.default_cfg.mean == INCEPTION_MEAN
    assert "timm's layout" in capsys.readouterr().err
    with torch.no_grad():
        assert (model(image(SIZE)) - reference(image(SIZE))).abs().max() <= 1e-4


def test_a_public_file_is_recognised_by_hash(tmp_path, tv_googlenet, capsys):
    path, _ = tv_googlenet  # the registry's googlenet file, pointed at this one's hash
    local = tmp_path / "renamed.pth"
    local.write_bytes(path.read_bytes())
    sets = [dataclasses.replace(w, url=f"https://example.invalid/{path.name}") if w.name == "googlenet_bn.tv_in1k"
            else w for w in weight_sets.WEIGHT_SETS]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(weight_sets, "WEIGHT_SETS", tuple(sets))
        model = create_model("googlenet_bn", pretrained=str(local))
    line = capsys.readouterr().err
    assert "is googlenet_bn.tv_in1k (torchvision, SHA-256" in line and model.transform_input
    assert model.pretrained_cfg["recognised_by"] == "sha256" and model.class_names == CATEGORIES


def test_tensorflow_1001_class_file_drops_the_background_row(tmp_path, monkeypatch, capsys):
    """timm's pre-hub TF ports have 1001 classes (row 0: background); recognised by hash, the row is dropped."""
    theirs = lively(timm.create_model("inception_v3", pretrained=False, num_classes=1001), seed=6)
    raw = tmp_path / "raw.pth"
    torch.save(theirs.state_dict(), raw)
    point(monkeypatch, "inception_v3.tf_in1k",
          known_files=(weight_sets.KnownFile(f"https://example.invalid/tf_inception_v3-{sha256(raw)[:8]}.pth", 1),))
    model = create_model("inception_v3", pretrained=str(raw)).eval()
    assert "is inception_v3.tf_in1k (timm" in capsys.readouterr().err
    assert torch.equal(model.fc.weight, theirs.fc.weight[1:]) and model.class_names == CATEGORIES
    with torch.no_grad():
        assert (model(image(SIZE)) - theirs(image(SIZE))[:, 1:]).abs().max() <= 1e-4


# ---- names, errors, listing -------------------------------------------------------------------------------------

def test_names_and_errors():
    assert "inception_v3.tf_in1k" in inceptorch.list_models(pretrained=True)
    assert inceptorch.list_models("inception_v4", pretrained=True) == ["inception_v4.tf_in1k"]
    assert set(inceptorch.list_models(pretrained=True)) == {w.name for w in weight_sets.WEIGHT_SETS}
    with pytest.raises(UserError, match="no public pretrained weights for googlenet .*googlenet_bn"):
        create_model("googlenet", pretrained=True)
    with pytest.raises(UserError, match="'tf_in2k' is neither a weights file nor a weight set of inception_v3 "
                                        r"\(imagenet, tv_in1k, tf_in1k"):
        create_model("inception_v3", pretrained="tf_in2k")
    with pytest.raises(UserError, match="inception_v4.tf_in1k are weights for inception_v4, not inception_v3"):
        create_model("inception_v3", pretrained="inception_v4.tf_in1k")
    with pytest.raises(UserError, match="pretrained must be True"):
        create_model("inception_v3", pretrained=3)
    assert not hasattr(create_model("googlenet_bn", pretrained=False), "pretrained_cfg")


def test_registry_data_is_consistent():
    """Every set names a registered model, a converter that exists, a hash-named URL or a hub id, and results."""
    from inceptorch.weights.key_tables import CONVERTERS

    for w in weight_sets.WEIGHT_SETS:
        assert w.model in inceptorch.list_models()
        assert w.layout == "torchvision" or w.layout in CONVERTERS[w.model]
        assert bool(w.url) != bool(w.hub_id)
        assert not w.url or (w.url.startswith("https://download.pytorch.org/models/") and len(w.hash_prefix) == 8)
        assert w.results and all(0 < r.top1 < r.top5 < 100 for r in w.results)
        assert w.preprocessing.transform_input == (w.source == "torchvision")
    assert weight_sets.class_ids("imagenet-1k")[0] == "n01440764" and CATEGORIES[0] == "tench"
    # Our synset order and torchvision's names describe the same classes: timm's lemma file links the two.
    from importlib.resources import files

    lemmas = dict(line.split("\t", 1) for line in
                  files("timm.data._info").joinpath("imagenet_synset_to_lemma.txt").read_text().splitlines())
    ids = weight_sets.class_ids("imagenet-1k")
    for i in (0, 1, 2, 100, 500, 999):
        assert CATEGORIES[i].lower() in lemmas[ids[i]].lower()


# ---- provenance in saved folders, model files and fine-tuning ------------------------------------------------------

def test_saved_folders_and_model_files_keep_the_weights_provenance(server, monkeypatch, tmp_path, tv_googlenet):
    path, _ = tv_googlenet
    serve_tv(server, monkeypatch, "googlenet_bn.tv_in1k", path)
    model = create_model("googlenet_bn", pretrained=True).eval()
    folder = inceptorch.save_pretrained(model, tmp_path / "folder")
    config = json.loads((folder / "config.json").read_text())
    assert config["pretrained"]["weights"] == "googlenet_bn.tv_in1k"
    assert config["pretrained"]["preprocessing"]["transform_input"] is True
    assert config["model_kwargs"]["transform_input"] is True and config["class_names"] == CATEGORIES
    again = inceptorch.from_pretrained(folder)
    assert again.transform_input and again.class_names == CATEGORIES
    assert again.pretrained_cfg == config["pretrained"] and again.default_cfg == model.default_cfg
    x = image(112)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
    inceptorch.save_pretrained(again, tmp_path / "again")  # re-saving carries everything on
    assert json.loads((tmp_path / "again" / "config.json").read_text())["pretrained"] == config["pretrained"]
    # A model file given by path is ours: its recorded preprocessing and transform_input are used.
    save_model_file(model, tmp_path / "m.safetensors", model_metadata(model, model.model_kwargs, CATEGORIES))
    loaded, meta = load_model_file(tmp_path / "m.safetensors")
    assert meta["pretrained"]["weights"] == "googlenet_bn.tv_in1k" and loaded.transform_input
    by_path = create_model("googlenet_bn", pretrained=str(tmp_path / "m.safetensors"))
    assert by_path.transform_input and by_path.pretrained_cfg["weights"] == "googlenet_bn.tv_in1k"


def test_fine_tuning_records_the_source_weights(server, monkeypatch, tv_googlenet):
    """What the training run saves: the new classes, and the pretrained set with its preprocessing."""
    from inceptorch.train.config import resolve
    from inceptorch.train.run import build_model

    path, state = tv_googlenet
    serve_tv(server, monkeypatch, "googlenet_bn.tv_in1k", path)
    cfg = resolve({}, {"model": "googlenet_bn", "pretrained": "imagenet"})
    model, kwargs, _ = build_model(cfg, num_classes=3, log=lambda s: None)
    assert model.fc.out_features == 3 and torch.equal(model.conv1.conv.weight, state["conv1.conv.weight"])
    assert model.transform_input and not hasattr(model, "class_names")  # ImageNet's names do not fit 3 classes
    meta = model_metadata(model, kwargs, ["a", "b", "c"])
    assert meta["model_kwargs"]["transform_input"] is True and meta["class_names"] == ["a", "b", "c"]
    assert meta["pretrained"]["weights"] == "googlenet_bn.tv_in1k" and meta["model_cfg"]["mean"] == IMAGENET_MEAN
    # Resuming builds the model without reading the weights again: the checkpoint's metadata restores the rest.
    fresh, _, _ = build_model(cfg, num_classes=3, log=lambda s: None, load_weights=False)
    assert not fresh.transform_input
    restore_recorded(fresh, json.loads(json.dumps(meta)))  # as read back from a file
    assert fresh.transform_input and fresh.default_cfg == model.default_cfg
    assert fresh.pretrained_cfg == json.loads(json.dumps(meta["pretrained"]))


# ---- the command line -------------------------------------------------------------------------------------------

def test_weights_cli_list_fetch_verify(server, monkeypatch, homes, tv_googlenet, capsys):
    path, _ = tv_googlenet
    serve_tv(server, monkeypatch, "googlenet_bn.tv_in1k", path)
    assert main(["weights", "list", "googlenet*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["googlenet_bn.tv_in1k"] and rows[0]["cached"] is None
    assert rows[0]["results"][0]["top1"] == 69.778 and rows[0]["preprocessing"]["transform_input"] is True
    assert main(["weights", "fetch", "googlenet_bn"]) == 0
    cached = homes / "torch" / "hub" / "checkpoints" / path.name
    assert capsys.readouterr().out.strip() == f"googlenet_bn.tv_in1k: {cached}"
    assert main(["weights", "list"]) == 0
    table = capsys.readouterr().out
    assert "googlenet_bn.tv_in1k *" in table and "69.778" in table and "inception_resnet_v2.tf_ens_adv_in1k" in table
    assert main(["weights", "verify", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["status"] == "ok" and result["sha256"] == sha256(path)
    assert main(["weights", "verify", str(path)]) == 0
    assert capsys.readouterr().out.split() == ["ok", "googlenet_bn.tv_in1k", str(path), "its", "SHA-256", "starts",
                                               "with", f"{sha256(path)[:8]}:", "it", "is", path.name]
    damaged = bytearray(cached.read_bytes())
    damaged[1000] ^= 0xFF
    cached.write_bytes(bytes(damaged))
    assert main(["weights", "verify"]) == 1
    assert "mismatch" in capsys.readouterr().out
    assert main(["weights", "fetch"]) == 2 and "--all" in capsys.readouterr().err


def test_predict_prints_imagenet_class_names(server, monkeypatch, tv_googlenet, tmp_path, capsys):
    from PIL import Image

    path, _ = tv_googlenet
    serve_tv(server, monkeypatch, "googlenet_bn.tv_in1k", path)
    Image.fromarray((torch.rand(80, 100, 3) * 255).byte().numpy()).save(tmp_path / "photo.png")
    assert main(["predict", "--model", "googlenet_bn", "--pretrained", "imagenet", str(tmp_path / "photo.png"),
                 "--topk", "3", "--json", "--device", "cpu"]) == 0
    (pred,) = json.loads(capsys.readouterr().out)
    names = [p["class"] for p in pred["predictions"]]
    # The same image through the model and its own preprocessing gives the same top-3, named as torchvision does.
    from inceptorch.export.preprocess import eval_transform, preprocessing

    model = create_model("googlenet_bn", pretrained=True).eval()
    x = eval_transform(preprocessing(model))(Image.open(tmp_path / "photo.png").convert("RGB"))
    with torch.no_grad():
        top = model(x[None]).softmax(1)[0].topk(3)
    assert names == [CATEGORIES[i] for i in top.indices.tolist()]
    assert [p["probability"] for p in pred["predictions"]] == pytest.approx(top.values.tolist(), abs=2e-3)
    assert main(["predict", "--pretrained", "imagenet", str(tmp_path / "photo.png")]) == 2
    assert "needs --model" in capsys.readouterr().err


def test_eval_scores_imagenet_weights_on_a_folder_named_by_wordnet_ids(server, monkeypatch, tv_googlenet, tmp_path,
                                                                         capsys):
    """ImageNet folders name classes n01440764...: each image goes under the id of the class the model gives it,
    but one under another id, so the mapping from ids to the model's outputs decides top-1 (2 of 3)."""
    from PIL import Image

    from inceptorch.cli._common import match_imagenet_ids, pretrained_member
    from inceptorch.evaluation import evaluate, load_eval_data, predict

    path, _ = tv_googlenet
    serve_tv(server, monkeypatch, "googlenet_bn.tv_in1k", path)
    member = pretrained_member("googlenet_bn", "imagenet", torch.device("cpu"))
    ids = weight_sets.class_ids("imagenet-1k")
    pictures = [Image.fromarray((torch.rand(90, 120, 3, generator=torch.Generator().manual_seed(s)) * 255).byte()
                                .numpy()) for s in range(3)]
    probe = tmp_path / "probe"
    probe.mkdir()
    for i, picture in enumerate(pictures):
        picture.save(probe / f"{i}.png")
    firsts = [CATEGORIES.index(p.classes[0][0]) for p in predict([member], sorted(probe.glob("*.png")), topk=1)]
    wrong = next(i for i in range(1000) if i != firsts[2])
    for i, (picture, label) in enumerate(zip(pictures, [firsts[0], firsts[1], wrong])):
        folder = tmp_path / "val" / ids[label]
        folder.mkdir(parents=True, exist_ok=True)
        picture.save(folder / f"{i}.png")
    data, _ = load_eval_data(str(tmp_path / "val"), "all")
    match_imagenet_ids([member], data.class_names)
    assert member.class_names == list(ids)
    assert evaluate([member], data).top1 == pytest.approx(2 / 3)
    assert main(["eval", "--model", "googlenet_bn", "--pretrained", "imagenet", "--data", str(tmp_path / "val"),
                 "--json", "--confusion-png", str(tmp_path / "c.png"), "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["top1"] == pytest.approx(2 / 3)
