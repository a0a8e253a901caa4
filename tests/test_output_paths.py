"""Where the commands write: the files get a plain write's permissions, and an output path that cannot be written
(a file where a folder should be, a folder nobody may create) is one line naming it, never a traceback."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from PIL import Image

from _cli import cli_in_process as cli
from _cli import one_line_error
from inceptorch.fileio import atomic_write


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for name, colour in {"a": (200, 30, 30), "b": (30, 30, 200)}.items():
        (root / name).mkdir()
        for i in range(3):
            Image.new("RGB", (32, 32), colour).save(root / name / f"{i}.png")
    return root


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_get_the_umasks_permissions_and_a_replaced_file_keeps_its_own(tmp_path):
    """mkstemp makes owner-only files: renamed into place as they were, an exported model was unreadable to the
    service that should load it."""
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "new.bin", lambda p: Path(p).write_bytes(b"x"))
        assert _mode(tmp_path / "new.bin") == 0o644
        os.umask(0o077)  # the umask of the moment, as open() would apply it
        atomic_write(tmp_path / "own.bin", lambda p: Path(p).write_bytes(b"x"))
        assert _mode(tmp_path / "own.bin") == 0o600
        private = tmp_path / "private.bin"
        private.write_bytes(b"old")
        private.chmod(0o600)
        atomic_write(private, lambda p: Path(p).write_bytes(b"new"))
        assert _mode(private) == 0o600 and private.read_bytes() == b"new"
    finally:
        os.umask(old)


def test_an_output_under_a_file_is_one_line_naming_that_file(lenet5_run, data, tmp_path):
    blocker = tmp_path / "metrics.csv"
    blocker.write_text("epoch\n")
    commands = [
        ("export", "--checkpoint", lenet5_run, "--format", "weights", "--output", blocker / "model.safetensors"),
        ("eval", "--checkpoint", lenet5_run, "--data", data, "--device", "cpu", "--confusion-png", blocker / "c.png"),
    ]
    for command in commands:
        assert f"Not a directory: {blocker}" in one_line_error(cli(*command))
    assert blocker.read_text() == "epoch\n"


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")  # an error raised in __del__
def test_a_run_folder_that_cannot_be_created_is_one_line_without_a_lock_error(data, tmp_path):
    """The lock of a run folder that was never made used to add "Exception ignored in: RunFolderLock.__del__"."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = cli("train", "--model", "lenet5", "--data", data, "--epochs", "1", "--output", blocker / "run",
               "--no-progress")
    assert "Exception ignored" not in proc.stderr and "RunFolderLock" not in proc.stderr
    assert str(blocker) in one_line_error(proc)
