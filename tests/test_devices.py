"""One device convention for every command: --device auto|cpu|cuda|cuda:N, resolved by `devices.resolve_device`.

The GPU cases run here on a CPU-only machine by telling torch what devices it sees (torch.cuda.is_available and
device_count); tests/test_cuda.py runs the real thing where there is a GPU."""
from __future__ import annotations

import pytest
import torch

from inceptorch.cli.main import main
from inceptorch.devices import resolve_device
from inceptorch.errors import UserError
from inceptorch.train.config import resolve


@pytest.fixture
def gpus(monkeypatch):
    """Pretend torch sees `n` CUDA devices."""
    def see(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    return see


@pytest.mark.parametrize("n, name, expected", [
    (0, None, "cpu"), (0, "auto", "cpu"), (0, "cpu", "cpu"),
    (2, None, "cuda"), (2, "auto", "cuda"), (2, "cpu", "cpu"), (2, "cuda", "cuda"), (2, "cuda:1", "cuda:1"),
])
def test_resolve(gpus, n, name, expected):
    gpus(n)
    assert resolve_device(name) == torch.device(expected)


@pytest.mark.parametrize("n, name, message", [
    (0, "cuda", "--device cuda: torch sees no CUDA device"),
    (0, "cuda:0", "--device cuda:0: torch sees no CUDA device"),
    (2, "cuda:2", "--device cuda:2: torch sees 2 CUDA devices (cuda:0 to cuda:1)"),
    (2, "gpu", "--device must be auto, cpu, cuda or cuda:N, not 'gpu'"),
    (2, "cuda:x", "--device must be auto, cpu, cuda or cuda:N, not 'cuda:x'"),
    (2, "cuda:-1", "not 'cuda:-1'"),
    (2, "CPU", "not 'CPU'"),
])
def test_refused(gpus, n, name, message):
    gpus(n)
    with pytest.raises(UserError) as info:
        resolve_device(name)
    assert message in str(info.value)


def test_a_recipe_takes_the_same_spellings():
    assert resolve({"device": "cuda:1"}, {}).device == "cuda:1"  # resolved when the run starts, not here
    with pytest.raises(UserError, match="--device must be auto, cpu, cuda or cuda:N, not 'gpu'"):
        resolve({"device": "gpu"}, {})


@pytest.mark.parametrize("argv", [
    ["train", "--model", "lenet5", "--data", "digits", "--output", "{tmp}/run"],
    ["compare", "lenet5", "--data", "digits", "--output", "{tmp}/cmp"],
    ["eval", "--checkpoint", "{tmp}/none", "--data", "digits"],
    ["predict", "--checkpoint", "{tmp}/none", "{tmp}"],
    ["bench", "--model", "googlenet_bn"],
])
@pytest.mark.parametrize("device, message", [
    ("gpu", "--device must be auto, cpu, cuda or cuda:N, not 'gpu'"),
    ("cuda:3", "--device cuda:3: torch sees no CUDA device"),
])
def test_every_command_speaks_the_same_convention(tmp_path, capsys, argv, device, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main([*argv, "--device", device]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists() and not (tmp_path / "cmp").exists()
