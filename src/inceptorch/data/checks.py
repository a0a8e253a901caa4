"""Finding bad image files before they cost an epoch: `scan_images`, and `preflight` for training.

A scan decodes every file with `load_image`, the same code the data loader runs, so a file that passes the scan
also loads during training. Threads suffice for speed: Pillow releases the GIL while it decodes.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..fileio import atomic_write
from ..text import count
from .datasets import (
    LIST_SUFFIX,
    ImageList,
    Listing,
    _csv_samples,
    class_folders,
    is_tree,
    list_images,
)
from .io import BadImageError, load_image, max_image_pixels

CACHE_VERSION = 1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BadFile:
    """One file that cannot be used; `index` is its position in the scanned list (a sample index for a dataset)."""

    index: int
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class ScanReport:
    total: int
    bad: list[BadFile] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1
    cached: int = 0  # files taken as good from the cache, unchanged since they were verified

    @property
    def bad_fraction(self) -> float:
        return len(self.bad) / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {"total": self.total, "bad_count": len(self.bad), "bad_fraction": self.bad_fraction,
                "seconds": round(self.seconds, 3), "workers": self.workers, "cached": self.cached,
                "bad": [{"path": b.path, "problem": b.problem} for b in self.bad]}


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def scan_images(source: ImageList | Iterable[str | Path], workers: int | None = None, draft: bool = True,
                cache: str | Path | None = None) -> ScanReport:
    """Decode every file of a dataset (its file samples; in-memory images are already decoded) or of a list of paths.

    `draft` lets JPEGs decode at 1/8 scale, faster; it still reads all the compressed data, so truncation is still
    found (tests/test_data_faults.py checks this). `cache`: a JSON file of files already verified good, by size and
    modification time; those are not decoded again (a resumed run re-checks only what changed), and it is rewritten
    with this scan's good files.
    """
    paths = [s for s, _ in source.samples] if isinstance(source, ImageList) else list(source)
    jobs = [(i, str(p)) for i, p in enumerate(paths) if isinstance(p, (str, Path))]
    workers = max(1, workers or default_workers())
    known = _read_cache(cache) if cache else {}
    start = time.perf_counter()

    def check(job: tuple[int, str]) -> tuple[BadFile | None, str, tuple[int, int] | None, bool]:
        index, path = job
        key = _stamp(path)
        if key is not None and known.get(os.path.abspath(path)) == key:
            return None, path, key, True
        try:
            load_image(path, draft=draft)
        except BadImageError as exc:
            return BadFile(index, path, exc.problem), path, key, False
        return None, path, key, False

    if workers == 1 or len(jobs) < 2:
        results = [check(j) for j in jobs]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="scan") as pool:
            results = list(pool.map(check, jobs))
    bad = [r[0] for r in results if r[0] is not None]
    if cache:
        for problem, path, key, _ in results:
            if problem is None and key is not None:
                known[os.path.abspath(path)] = key
            else:
                known.pop(os.path.abspath(path), None)
        _write_cache(cache, known)
    return ScanReport(total=len(paths), bad=bad, seconds=time.perf_counter() - start, workers=workers,
                      cached=sum(r[3] for r in results))


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _read_cache(cache: str | Path) -> dict[str, tuple[int, int]]:
    """Verified files from an earlier scan under the same pixel limit; an unreadable cache is just a full scan."""
    try:
        with open(cache) as f:
            data = json.load(f)
        if data.get("version") != CACHE_VERSION or data.get("max_image_pixels") != max_image_pixels():
            return {}
        return {path: (int(size), int(mtime)) for path, (size, mtime) in data["files"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def _write_cache(cache: str | Path, files: dict[str, tuple[int, int]]) -> None:
    data = {"version": CACHE_VERSION, "max_image_pixels": max_image_pixels(), "files": files}

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(data, f, separators=(",", ":"))

    atomic_write(cache, write)


def preflight(dataset: ImageList, skip_bad: bool = False, max_bad_fraction: float = 0.01,
              workers: int | None = None, warn: Callable[[str], None] | None = None,
              cache: str | Path | None = None) -> ImageList:
    """The dataset, checked before the first epoch: every file decodes, or the run stops in seconds with one line.

    Default: any bad file is a `UserError` naming the first one and the count. With `skip_bad`, each bad file is
    reported through `warn` (default: this module's logger) and left out; the returned dataset lists them in
    `.skipped` for the run summary; more than `max_bad_fraction` bad is still an error (a broken copy of the data,
    not a few bad files). `cache` is passed to `scan_images` (a file in the run folder suits a resumed run).
    """
    return preflight_splits([dataset], skip_bad, max_bad_fraction, workers, warn, cache)[0]


def preflight_splits(splits: list[ImageList], skip_bad: bool = False, max_bad_fraction: float = 0.01,
                     workers: int | None = None, warn: Callable[[str], None] | None = None,
                     cache: str | Path | None = None) -> list[ImageList]:
    """`preflight` of the splits of one data set (train and val) as one: one scan, and `max_bad_fraction` of all
    their images, so that where the split happens to put a bad file does not decide whether the run starts."""
    if not 0 <= max_bad_fraction <= 1:
        raise UserError(f"--max-bad-fraction must be between 0 and 1, not {max_bad_fraction}")
    whole = ImageList([s for split in splits for s in split.samples], splits[0].class_names)
    report = scan_images(whole, workers=workers, cache=cache)
    if not report.bad:
        return list(splits)
    first, n, total = report.bad[0], len(report.bad), report.total
    counted = f"{n} of {total:,} images are bad ({report.bad_fraction:.2%})"
    if not skip_bad:
        raise UserError(f"bad image {first}; {counted}: list them with `inceptorch check-data DIR`, "
                        f"or pass --skip-bad-images")
    if report.bad_fraction > max_bad_fraction:
        raise UserError(f"{counted}, more than --max-bad-fraction {max_bad_fraction:.2%}; first: {first}")
    warn = warn or log.warning
    for bad in report.bad:
        warn(f"skipping bad image {bad}")
    kept_splits, start = [], 0
    for split in splits:
        end = start + len(split.samples)
        bad_here = [dataclasses.replace(b, index=b.index - start) for b in report.bad if start <= b.index < end]
        drop = {b.index for b in bad_here}
        kept = ImageList([s for i, s in enumerate(split.samples) if i not in drop], split.class_names,
                         split.transform)
        kept.skipped = list(split.skipped) + bad_here
        kept_splits.append(kept)
        start = end
    return kept_splits


def image_files(root: str | Path) -> Listing:
    """Every image file under `root` as the dataset builder finds them (`datasets.list_images`: by extension, hidden
    entries left out), with the other files counted. A CSV list gives the files it lists; another file, itself."""
    root = Path(root)
    if not root.exists() and not root.is_symlink():
        raise UserError(f"data not found: {root}")
    if root.is_file() or root.is_symlink() and not root.is_dir():
        if root.suffix.lower() == LIST_SUFFIX:
            return Listing(images=[Path(p) for p, _ in _csv_samples(root)[0]])
        return Listing(images=[root])
    return list_images(root)


def empty_class_folders(root: str | Path) -> list[Path]:
    """The class folders under `root` (as `build_dataset` reads a folder) that hold no image file."""
    root = Path(root)
    return [folder for folder in class_folders(root) if not list_images(folder).images] if root.is_dir() else []


@dataclass
class Layout:
    """How `train` and `eval` read a folder: its kind, its classes, and the images they leave out or fold in."""

    root: Path
    kind: str  # "train/val tree", "class folders", "no class folders" or "CSV list"
    classes: list[str]
    loose: list[Path]  # image files in no class folder: train and eval leave them out
    nested: list[Path]  # folders inside a class folder that hold images: those count for the class above
    unvalidated: list[str] = field(default_factory=list)  # a tree's classes that val/ has no folder for

    def notes(self) -> list[str]:
        """One line each, as `check-data` prints them."""
        shown = ", ".join(self.classes[:8]) + (", ..." if len(self.classes) > 8 else "")
        if self.kind == "CSV list":
            return [(f"layout: CSV list, {count(len(self.classes), 'class')} ({shown}); train holds a validation "
                     "split out (--val-split)")]
        if self.kind == "no class folders":
            return [(f"layout: no class folders in {self.root}: train needs {self.root}/CLASS/IMAGE files (or a "
                     f"train/val tree of them); eval needs them for accuracy; predict reads the images as they are")]
        lines = [f"layout: {self.kind}, {count(len(self.classes), 'class')} ({shown})"
                 + ("" if self.kind == "train/val tree" else "; train holds a validation split out (--val-split)")]
        if self.loose:
            lines.append(f"{count(len(self.loose), 'image file')} in no class folder (such as {self.loose[0]}): "
                         f"train and eval leave {'it' if len(self.loose) == 1 else 'them'} out")
        if self.unvalidated:
            names = ", ".join(self.unvalidated[:8]) + (", ..." if len(self.unvalidated) > 8 else "")
            lines.append(f"val/ has no folder for {count(len(self.unvalidated), 'class', 'classes')} of train/ "
                         f"({names}): training validates without {'it' if len(self.unvalidated) == 1 else 'them'}, "
                         f"so {'its' if len(self.unvalidated) == 1 else 'their'} recall is not measured")
        if self.nested:
            first, one = self.nested[0], len(self.nested) == 1
            above = first.relative_to(self.root).parts[1 if self.kind == "train/val tree" else 0]
            lines.append(f"{count(len(self.nested), 'folder')} inside class folders {'holds' if one else 'hold'} "
                         f"images (such as {first}): {'its' if one else 'their'} images count for the class folder "
                         f"above, {above!r}")
        return lines

    def to_dict(self) -> dict:
        return {"kind": self.kind, "classes": self.classes, "loose_images": [str(p) for p in self.loose],
                "nested_folders": [str(p) for p in self.nested], "classes_without_val": self.unvalidated}


def folder_layout(root: str | Path, images: Iterable[Path]) -> Layout | None:
    """The layout of a folder data set as `build_dataset` reads it; None for a CSV list or a single file.

    `images` are the folder's image files as `image_files` lists them: the layout is read off their paths, not from
    another walk of what may be a million files.
    """
    root = Path(root)
    if not root.is_dir():
        return None
    tree = is_tree(root)
    parts = [root / "train", root / "val"] if tree else [root]
    folders = class_folders(root)
    loose, nested = [], set()
    for image in images:
        folder = image.parent
        if folder == root or folder in parts:
            loose.append(image)
        elif folder.parent not in parts and any(part in folder.parents for part in parts):
            nested.add(folder)  # below a class folder, not the class folder itself
    kind = "train/val tree" if tree else "class folders" if folders else "no class folders"
    unvalidated = sorted({f.name for f in folders if f.parent == root / "train"}
                         - {f.name for f in folders if f.parent == root / "val"}) if tree else []
    return Layout(root, kind, sorted({f.name for f in folders}), sorted(loose) if folders else [], sorted(nested),
                  unvalidated)


def training_problems(spec: str | Path) -> tuple[list[str], dict[str, int]]:
    """Why `inceptorch train` would refuse this data (one class, a val/ class that train/ lacks, ...), in train's
    own words: its dataset building and class checks run here as they would there; empty when it would train. And
    the images per class over train and val as train reads them ({} where it would refuse)."""
    from .datasets import build_dataset, check_training_classes

    try:
        train = build_dataset(spec, "train")
        check_training_classes(train.class_names, spec)
        val = build_dataset(spec, "val")
    except UserError as exc:
        return [str(exc)], {}
    return [], counts_by_name(train.targets + val.targets, train.class_names)


def list_layout(path: str | Path) -> Layout | None:
    """The classes of a CSV list, as a layout (`check-data` prints it as it prints a folder's); None for others."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() != LIST_SUFFIX:
        return None
    return Layout(path, "CSV list", _csv_samples(path)[1], [], [])


# A class this much smaller than the median one is named: at a tenth, a class of 1 image among classes of 17.
SMALL_CLASS = 0.1


def counts_by_name(targets: list[int], names: list[str]) -> dict[str, int]:
    counts = [0] * len(names)
    for t in targets:
        counts[t] += 1
    return dict(zip(names, counts))


def class_warnings(counts: dict[str, int]) -> list[str]:
    """Lines naming the classes that look like mistakes in the labels: labels that differ from another only in
    case, spacing or punctuation (`C0` beside `c0`: one class spelt two ways), and classes under a tenth of the
    median class (a mislabelled image makes a class of one). Training still proceeds; the user decides."""
    import statistics
    import unicodedata

    def key(label: str) -> str:
        return "".join(c for c in unicodedata.normalize("NFKC", label).casefold() if c.isalnum())

    def shown(names: list[str]) -> str:
        each = [f"{n!r} ({count(counts[n], 'image')})" for n in names]
        return each[0] if len(each) == 1 else f"{', '.join(each[:-1])} and {each[-1]}"

    groups: dict[str, list[str]] = {}
    for name in counts:
        if key(name):  # labels of punctuation only ("+", "-") have nothing to compare
            groups.setdefault(key(name), []).append(name)
    lines, named = [], set()
    for names in groups.values():
        if len(names) > 1:
            lines.append(f"warning: labels {shown(names)} differ only in case, spacing or punctuation: one class "
                         "spelt more than one way?")
            named.update(names)
    median = statistics.median(counts.values()) if counts else 0
    small = [n for n, c in counts.items() if c < SMALL_CLASS * median and n not in named]
    if small:
        lines.append(f"warning: {'class' if len(small) == 1 else 'classes'} {shown(small)} "
                     f"{'has' if len(small) == 1 else 'have'} under a tenth of the median class's "
                     f"{median:g} images: mislabelled, or too few to learn from?")
    return lines


def report_dict(report: ScanReport, root: str | Path, listing: Listing, empty: list[Path],
                layout: Layout | None = None, train_problems: list[str] | None = None,
                warnings: list[str] | None = None, counts: dict[str, int] | None = None) -> dict:
    return {"root": str(root), **report.to_dict(), "ignored": dict(listing.ignored), "hidden": listing.hidden,
            "empty_class_folders": [str(f) for f in empty], "layout": layout.to_dict() if layout else None,
            "train_problems": train_problems or [], "class_counts": counts or {}, "class_warnings": warnings or []}


