"""Loading weights never runs pickled code: malicious and truncated files are refused in one line."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import inceptorch
from _cli import cli_in_process
from inceptorch import UserError, create_model
from inceptorch.weights.files import read_state_dict


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture()
def evil_pth(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"fc.weight": torch.zeros(1)}, "hook": _Payload(marker)}, path)
    return path, marker


def test_malicious_pickle_is_refused_without_running(evil_pth):
    path, marker = evil_pth
    with pytest.raises(UserError, match="unsafe") as info:
        read_state_dict(path)
    assert "\n" not in str(info.value) and not marker.exists()


def test_malicious_pickle_is_refused_by_the_cli_in_one_line(evil_pth, tmp_path):
    path, marker = evil_pth
    result = cli_in_process("export", "--model", "googlenet_bn", "--pretrained", str(path), "--format", "folder",
                            "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "unsafe" in result.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    model = create_model("googlenet_bn", num_classes=3, small_input=True, width=0.125)
    folder = inceptorch.save_pretrained(model, root / "saved")
    torch.save(model.state_dict(), root / "w.pth")
    return folder, root / "w.pth"


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_files_are_refused(tiny_files, tmp_path, keep):
    folder, pth = tiny_files
    for source in (folder / "model.safetensors", pth):
        data = source.read_bytes()
        cut = tmp_path / source.name
        cut.write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(UserError, match="cannot read|truncated|corrupt") as info:
            read_state_dict(cut)
        assert "\n" not in str(info.value)


def test_truncated_saved_folder_is_refused(tiny_files, tmp_path):
    folder, _ = tiny_files
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "config.json").write_bytes((folder / "config.json").read_bytes())
    data = (folder / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as info:
        inceptorch.from_pretrained(copy)
    assert "\n" not in str(info.value)
    (copy / "model.safetensors").write_bytes(data)
    (copy / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="config.json"):
        inceptorch.from_pretrained(copy)


@pytest.mark.parametrize("where", [0.3, 0.7, 0.999])
def test_a_flipped_weight_byte_is_refused(tiny_files, tmp_path, where):
    """safetensors parses the header only; our files record a SHA-256 of the tensors, checked on every load."""
    folder, _ = tiny_files
    data = bytearray((folder / "model.safetensors").read_bytes())
    header_end = 8 + int.from_bytes(data[:8], "little")  # the tensor bytes follow the length-prefixed JSON header
    data[header_end + int((len(data) - header_end) * where)] ^= 0x01
    copy = tmp_path / "tampered"
    copy.mkdir()
    (copy / "config.json").write_bytes((folder / "config.json").read_bytes())
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(UserError, match="modified or damaged"):
        inceptorch.from_pretrained(copy)
    with pytest.raises(UserError, match="modified or damaged"):
        create_model("googlenet_bn", num_classes=3, small_input=True, width=0.125,
                     pretrained=str(copy / "model.safetensors"))
    inceptorch.from_pretrained(folder)  # the untouched original still loads


def test_the_cli_refuses_a_tampered_file_in_one_line(tiny_files, tmp_path):
    folder, _ = tiny_files
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-3] ^= 0x10
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(bytes(data))
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (40, 40), (200, 10, 10)).save(image)
    proc = cli_in_process("predict", "--checkpoint", str(bad), str(image))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "modified or damaged" in proc.stderr
