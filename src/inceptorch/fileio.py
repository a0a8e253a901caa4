"""Writing files so that a crash never leaves half of one, and digests that tell when a file's tensors changed.

Imports nothing of the package: every layer (checkpoints, weights, exports, data checks, training state) uses it.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

DIGEST_KEY = "inceptorch.sha256"  # safetensors metadata key of `state_digest`, checked on every load


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once: setting it to read it is not thread-safe


def _new_file_mode(path: Path) -> int:
    """The permissions `open(path, "w")` would leave: the old file's, or 0o666 less the umask for a new one."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_UMASK


def _as_target(exc: OSError, path: Path) -> OSError:
    """The same error, naming the file the caller asked for instead of our temporary file beside it."""
    return type(exc)(exc.errno, exc.strerror, str(path))


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Write through `write(tmp_path)`, fsync, then rename over `path`: readers see the old file or the new one.

    A failure (a full disk, a crash) leaves the previous file intact and removes the partial one. The file gets the
    permissions a plain write would give it (mkstemp's temporary file is owner-only).
    """
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _as_target(exc, path) from None
    os.close(fd)
    try:
        os.chmod(tmp, _new_file_mode(path))
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def state_digest(state: Mapping[str, Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order.

    safetensors checks a file's header, not its contents: a flipped byte in the weights would load silently.
    """
    import torch  # the tensors come from torch already; importing it here keeps this module light

    digest = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
