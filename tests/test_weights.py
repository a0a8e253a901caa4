"""Loading weight files of any supported layout, safely."""
import pickle

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from inceptorch import UserError, create_model
from inceptorch.weights.pretrained import load_pretrained


@pytest.fixture(scope="module")
def torchvision_state():
    return torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True).state_dict()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_create_model_loads_a_torchvision_file(tmp_path, torchvision_state, suffix):
    path = tmp_path / f"googlenet{suffix}"
    if suffix == ".pth":
        torch.save(torchvision_state, path)
    else:
        save_file({k: v.contiguous() for k, v in torchvision_state.items()}, str(path))
    model = create_model("googlenet_bn", pretrained=str(path))
    assert torch.equal(model.inception4e.branch3[1].conv.weight, torchvision_state["inception4e.branch3.1.conv.weight"])
    assert torch.equal(model.aux2.fc2.weight, torchvision_state["aux2.fc2.weight"])


def test_aux_heads_are_independent_of_the_file(tmp_path, torchvision_state):
    with_aux = tmp_path / "aux.pth"
    torch.save({"state_dict": torchvision_state}, with_aux)  # training scripts nest the weights
    no_aux = create_model("googlenet_bn", aux_logits=False, pretrained=str(with_aux))
    assert torch.equal(no_aux.fc.weight, torchvision_state["fc.weight"])
    without = tmp_path / "noaux.pth"
    torch.save({k: v for k, v in torchvision_state.items() if not k.startswith("aux")}, without)
    model = create_model("googlenet_bn")
    missing = load_pretrained(model, without)
    assert missing and all(k.startswith(("aux1.", "aux2.")) for k in missing)


def test_mismatches_are_clear_errors(tmp_path, torchvision_state):
    path = tmp_path / "tv.pth"
    torch.save(torchvision_state, path)
    with pytest.raises(UserError, match="classifier has 1000 classes but the model has 10"):
        create_model("googlenet_bn", num_classes=10, pretrained=str(path))
    model = create_model("googlenet_bn", num_classes=10)
    load_pretrained(model, path, reset_classifier=True)  # fine-tuning keeps the new 10-class heads
    assert model.fc.weight.shape == (10, 1024)
    with pytest.raises(UserError, match="do not fit googlenet: .*missing keys"):
        create_model("googlenet", pretrained=str(path))  # the paper build has no BN
    with pytest.raises(UserError, match="weights file not found"):
        create_model("googlenet_bn", pretrained=str(tmp_path / "nope.pth"))


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused_and_truncation_detected(tmp_path, torchvision_state):
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"fc.weight": _Exploit()}))
    with pytest.raises(UserError, match="unsafe"):
        create_model("googlenet_bn", pretrained=str(evil))
    good = tmp_path / "good.safetensors"
    save_file({k: v.contiguous() for k, v in torchvision_state.items()}, str(good))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated or corrupt|cannot read"):
        create_model("googlenet_bn", pretrained=str(cut))
