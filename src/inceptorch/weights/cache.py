"""Where pretrained weight files live on this machine, how they get there, and how they are checked.

Hash-named files (torchvision's) go into torch's hub cache, `$TORCH_HOME/hub/checkpoints` (what
`torch.hub.load_state_dict_from_url` uses, so a file torchvision already downloaded is found), after the SHA-256 of
the download has been checked against the prefix in the name, as `torch.hub`'s `check_hash` does. Hub files (timm's)
go through `huggingface_hub` into its cache (`$HF_HOME/hub`, shared with timm; `HF_ENDPOINT` names another server),
and are checked against the hub's ETag, which for a stored file is its SHA-256 (`huggingface_hub` does not check it).

Offline: a folder named by `INCEPTORCH_WEIGHTS_MIRROR` is looked in first, laid out like the sources
(`MIRROR/googlenet-1378be20.pth`, `MIRROR/timm/inception_v3.tf_in1k/model.safetensors`); nothing is downloaded
when the file is there.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .sets import WeightSet, hash_prefix_of

MIRROR_ENV = "INCEPTORCH_WEIGHTS_MIRROR"
TIMEOUT_S = 60  # per socket operation: a dead network fails in a minute instead of hanging
_SHA256 = re.compile(r"[0-9a-f]{64}")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def torch_cache_dir() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"  # reads TORCH_HOME at each call


def hf_cache_dir() -> Path:
    """huggingface_hub's cache, from the environment at call time (its own constants are read once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def download_url(ws: WeightSet) -> str:
    return ws.url or f"{hf_endpoint()}/{ws.hub_id}/resolve/main/{ws.hub_file}"


def mirror_path(ws: WeightSet) -> Path | None:
    """Where the mirror folder (if one is named) holds this set's file, in the source's layout."""
    root = os.environ.get(MIRROR_ENV)
    if not root:
        return None
    return Path(root).expanduser() / (ws.file_name if ws.url else f"{ws.hub_id}/{ws.hub_file}")


def cached_path(ws: WeightSet) -> Path | None:
    """The local file of `ws` (mirror first, then the cache), without touching the network; None if absent."""
    mirror = mirror_path(ws)
    if mirror is not None and mirror.is_file():
        return mirror
    if ws.url:
        path = torch_cache_dir() / ws.file_name
        return path if path.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # without the hub extra nothing can be in its cache
        return None

    found = try_to_load_from_cache(ws.hub_id, ws.hub_file, cache_dir=str(hf_cache_dir()))
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


def where_to_put(ws: WeightSet) -> str:
    """One clause telling an offline user which file to place where."""
    if ws.url:
        return f"put {ws.file_name} in {torch_cache_dir()}/ or in the folder that ${MIRROR_ENV} names"
    return (f"put {ws.hub_file} of {ws.hub_id} at ${MIRROR_ENV}/{ws.hub_id}/{ws.hub_file} "
            f"(${MIRROR_ENV}: a folder of your choice)")


def fetch(ws: WeightSet, log=None) -> Path:
    """The local file of `ws`, downloaded and checked first if needed; raises UserError in one line."""
    found = cached_path(ws)
    if found is not None:
        return found
    log = log or _stderr
    log(f"downloading {ws.name} from {download_url(ws)}")
    return _download_hash_named(ws) if ws.url else _download_from_hub(ws)


def _download_hash_named(ws: WeightSet) -> Path:
    dst = torch_cache_dir() / ws.file_name
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent)
    digest = hashlib.sha256()
    try:
        from .. import __version__

        request = urllib.request.Request(ws.url, headers={"User-Agent": f"inceptorch/{__version__}"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        got, expected = digest.hexdigest(), ws.hash_prefix
        if not got.startswith(expected):
            raise UserError(f"refusing the download of {ws.url}: its SHA-256 is {got[:16]}..., the name says "
                            f"{expected} (a damaged download or a changed file); nothing was cached")
        os.replace(tmp, dst)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UserError(f"cannot download {ws.name} from {ws.url} ({_reason(exc)}); without network, "
                        f"{where_to_put(ws)}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dst


def _download_from_hub(ws: WeightSet) -> Path:
    from ..extras import require

    hf_hub_download = require("huggingface_hub", f"downloading {ws.name} from the Hugging Face hub").hf_hub_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        if not offline:
            _reachable(download_url(ws))
        path = Path(hf_hub_download(ws.hub_id, ws.hub_file, cache_dir=str(hf_cache_dir()), endpoint=hf_endpoint(),
                                    local_files_only=offline))
    except Exception as exc:  # noqa: BLE001 - huggingface_hub and its HTTP client raise many types for one failure
        raise UserError(f"cannot download {ws.name} from {download_url(ws)} ({_reason(exc)}); without network, "
                        f"{where_to_put(ws)}") from None
    problem = check_hub_file(path)
    if problem:
        blob = Path(os.path.realpath(path))
        path.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)
        raise UserError(f"refusing the download of {ws.name} from {download_url(ws)}: {problem}; "
                        "the file was removed from the cache")
    return path


def hub_blob_hash(path: str | Path) -> str:
    """The SHA-256 a hub-cache file should have: the name of the blob it links to (the hub's ETag); else ""."""
    blob = Path(os.path.realpath(path)).name
    return blob if _SHA256.fullmatch(blob) else ""  # a git-stored file's ETag is a git hash; a mirror copy has none


def _reachable(url: str) -> None:
    """Fail at once when the hub cannot be reached: huggingface_hub retries a refused connection for 23 s."""
    from .. import __version__

    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": f"inceptorch/{__version__}"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S):
        pass


def check_hub_file(path: Path) -> str:
    """"" when a hub-cache file's SHA-256 equals its blob name (the hub's ETag), else what differs."""
    expected = hub_blob_hash(path)
    got = file_sha256(path) if expected else ""
    return "" if got == expected else f"its SHA-256 is {got[:16]}..., the hub said {expected[:16]}..."


@dataclass
class Check:
    path: Path
    sha256: str
    status: str  # "ok", "mismatch" or "unchecked" (no published hash for a mirror copy of a hub file)
    detail: str


def verify(ws: WeightSet, path: Path) -> Check:
    """Check a local file of `ws` against the hash its source publishes."""
    sha = file_sha256(path)
    if ws.url or hash_prefix_of(path.name):
        expected = ws.hash_prefix or hash_prefix_of(path.name)
        ok = sha.startswith(expected)
        return Check(path, sha, "ok" if ok else "mismatch",
                     f"SHA-256 {sha[:16]}... {'starts with' if ok else 'does not start with'} {expected}")
    etag = hub_blob_hash(path)
    if etag:
        ok = sha == etag
        return Check(path, sha, "ok" if ok else "mismatch",
                     f"SHA-256 {sha[:16]}... {'equals' if ok else 'differs from'} the hub's ETag {etag[:16]}...")
    return Check(path, sha, "unchecked", f"SHA-256 {sha[:16]}...; the hub publishes no hash for a copy outside "
                                         "its cache (its keys are still checked on load)")


def checked_sha256(ws: WeightSet, path: Path) -> str:
    """The SHA-256 (or its published prefix) of a set's local file; a mirror copy is checked here, on use."""
    root = torch_cache_dir() if ws.url else hf_cache_dir()
    check = verify(ws, path) if hash_prefix_of(path.name) and not path.is_relative_to(root) else None
    if check is not None and check.status == "mismatch":
        raise UserError(f"refusing {path} for {ws.name}: {check.detail} (a damaged or different file)")
    if check is not None:
        return check.sha256
    blob = Path(path).resolve().name
    return blob if len(blob) == 64 else ws.hash_prefix


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    reason = getattr(exc, "reason", None) or exc
    text = str(reason).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)
