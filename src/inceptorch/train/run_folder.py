"""The run folder as a resource: what may be written into it, and by whom."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import UserError

LOCK_NAME = ".lock"


def check_output(run_dir: Path, resume: bool, state_name: str, data: str | None = None) -> None:
    """Refuse an --output that is a file, that lies inside the --data folder (its plots and logs would become
    images or empty classes of the next run), or that already holds a run (unless resuming it)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--output {run_dir} is a file, not a folder: choose a folder for the run")
    if data and Path(data).is_dir() and run_dir.resolve().is_relative_to(Path(data).resolve()):
        raise UserError(f"--output {run_dir} is inside the data folder {data}: the run's files would become part of "
                        "the data; choose a folder outside it")
    if not resume and (run_dir / state_name).exists():
        raise UserError(f"{run_dir} already holds a run; continue it with --resume {run_dir} "
                        "or choose another --output")


STARTUP_FILES = (LOCK_NAME, "verified_images.json")  # what a run writes before its first epoch


def remove_unstarted(run_dir: Path) -> None:
    """Remove a run folder this start created, if it holds nothing but what a start writes: a run that could not
    begin (an image given as --data, a device the machine lacks) leaves no folder to trip the next attempt."""
    if run_dir.is_dir() and all(p.name in STARTUP_FILES or p.name.startswith(".") for p in run_dir.iterdir()):
        for p in run_dir.iterdir():
            p.unlink()
        run_dir.rmdir()


class RunFolderLock:
    """An exclusive `flock` on RUN_DIR/.lock for as long as the run lives.

    Two runs started into one folder at the same moment would interleave their metrics and checkpoints; the second
    stops at once instead. The operating system drops the lock when its process ends, however it ends, so a lock
    left by a killed run (kill -9) never blocks `--resume`.
    """

    def __init__(self, run_dir: Path):
        self.fd = None  # set before anything can fail: __del__ runs on a half-built lock too
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / LOCK_NAME
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip()
            os.close(self.fd)
            self.fd = None
            raise UserError(f"another inceptorch run is writing into {run_dir}"
                            f"{f' (process {holder})' if holder else ''}: wait for it, or choose another --output") \
                from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __del__(self):
        self.release()
