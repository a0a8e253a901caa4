"""Writing files so that a crash never leaves half of one, and digests that tell when a file's tensors changed.

Imports nothing of the package: every layer (checkpoints, weights, exports, data checks, training state) uses it.
"""
from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

DIGEST_KEY = "inceptorch.sha256"  # safetensors metadata key of `state_digest`, checked on every load


def _temporary_file_beside(path: Path) -> str:
    """A new, empty file next to `path` (`.NAME.RANDOM.tmp`), created with the permissions a plain write gives:
    0o666 less the umask, applied by the kernel as for open() (mkstemp's are owner-only), or the old file's own."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # replacing a file: keep what its owner chose
        except FileNotFoundError:
            pass
        return str(tmp)
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path))


def _as_target(exc: OSError, path: Path) -> OSError:
    """The same error, naming the file the caller asked for instead of our temporary file beside it."""
    return type(exc)(exc.errno, exc.strerror, str(path))


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Write through `write(tmp_path)`, fsync, then rename over `path`: readers see the old file or the new one.

    A failure (a full disk, a crash) leaves the previous file intact and removes the partial one. The file gets the
    permissions a plain write would give it.
    """
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = _temporary_file_beside(path)
    except OSError as exc:
        raise _as_target(exc, path) from None
    try:
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
