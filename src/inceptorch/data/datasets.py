"""Where images come from: ImageFolder trees, CSV lists, and the embedded digits set; all yield (image, label).

`build_dataset(spec, split)` takes
- a folder with `train/` and `val/` class folders (ImageFolder layout),
- one folder of class folders, split deterministically into train/val by `val_split`,
- a CSV file (`.csv`, UTF-8) of `path,label` rows (paths relative to the CSV; a `path,label` header is optional),
- `digits`: scikit-learn's 8x8 handwritten digits, shipped inside its wheel (no download), as 32x32 RGB;
- `inspection`: defect severities drawn on real gray surfaces that scikit-image ships (`inspection.py`), a hard,
  imbalanced benchmark, split by class (each class keeps its share in val).
Class names are sorted folder or label names, so the same data always gives the same class indices.

Every command that reads a folder (check-data, train, eval, predict) lists it with `list_images`, so they agree on
what is data: hidden entries (`is_hidden`) are never data, a class folder without images is an error, and a broken
symbolic link is listed, so that decoding it reports it rather than a listing skipping it unseen.
"""
from __future__ import annotations

import csv
import functools
import io
import os
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError
from ..extras import require
from .io import load_image
from .splits import random_split, stratified_split

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
EMBEDDED = ("digits", "inspection")
LIST_SUFFIX = ".csv"
DATA_KINDS = f"a folder of class folders, a train/val tree, a CSV list ({LIST_SUFFIX}) or one of: {', '.join(EMBEDDED)}"


class ImageList:
    """(image, label) pairs from a list of samples: each sample is a file path or an in-memory PIL image.

    A map-style dataset by protocol (`__len__`, `__getitem__`), which is all DataLoader, Subset and the samplers use;
    not a `torch.utils.data.Dataset` subclass, so that reading and checking data (`inceptorch check-data`) does not
    import torch.
    """

    def __init__(self, samples: list[tuple[str | Image.Image, int]], class_names: list[str],
                 transform: Callable | None = None):
        self.samples, self.class_names, self.transform = samples, class_names, transform
        self.skipped: list = []  # bad files that `data.checks.preflight` left out, for the run summary

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        source, label = self.samples[index]
        image = source.convert("RGB") if isinstance(source, Image.Image) else load_image(source)
        return (self.transform(image) if self.transform else image), label

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]


def build_dataset(spec: str | Path, split: str, val_split: float = 0.2, seed: int = 0) -> ImageList:
    """The `split` ("train" or "val") of the data that `spec` names; see the module docstring."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', not {split!r}")
    if str(spec) == "digits":
        samples, names = _digits()
        return ImageList(random_split(samples, split, val_split, seed), names)
    if str(spec) == "inspection":
        samples, names = _inspection()
        return ImageList(stratified_split(samples, split, val_split, seed), names)
    path = Path(spec)
    if not path.exists():
        raise UserError(f"data not found: {path} ({DATA_KINDS})")
    if path.is_file():
        samples, names = _csv_samples(path)
        return ImageList(random_split(samples, split, val_split, seed), names)
    if is_tree(path):
        names = _class_names(path / "train")
        if split == "val":
            extra = [n for n in _subfolders(path / "val") if n not in names]
            if extra:
                raise UserError(f"{path / 'val' / extra[0]} is not a class of {path / 'train'} (its images would be "
                                f"left out); add it to {path / 'train'} or move it out of {path / 'val'}")
        return ImageList(_folder_samples(path / split, names, subset=split == "val"), names)
    names = _class_names(path)
    return ImageList(random_split(_folder_samples(path, names), split, val_split, seed), names)


# Folder names that mean a split of the data, not a class: a class folder named so is a train/val tree misspelled.
SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "test", "testing")


def check_training_classes(names: list[str], data: str | Path) -> None:
    """Refuse data a classifier cannot learn from: fewer than two classes, or "classes" that are data splits."""
    splits = [n for n in names if n.lower() in SPLIT_NAMES]
    tree_hint = "a train/val tree needs both train/ and val/ (lower case), each with one folder per class"
    if len(names) < 2:
        found = f"one class, {names[0]!r}" if names else "no class"
        raise UserError(f"{data}: {found}; training needs at least 2 classes"
                        + (f" ({tree_hint})" if splits else ""))
    if len(splits) >= 2 or len(splits) == len(names):
        raise UserError(f"{data}: the class folders {', '.join(splits)} look like data splits, not classes; "
                        f"{tree_hint}")


def is_tree(path: Path) -> bool:
    """Whether `path` is an ImageFolder tree: `train/` and `val/`, each with one folder per class."""
    return path.is_dir() and (path / "train").is_dir() and (path / "val").is_dir()


def is_hidden(name: str) -> bool:
    """Entries that are never data: dot-files and dot-folders (macOS's AppleDouble `._name` twins, `.DS_Store`,
    `.git`, `.ipynb_checkpoints`) and the `__MACOSX` folder of zip archives made on a Mac."""
    return name.startswith(".") or name == "__MACOSX"


@dataclass
class Listing:
    """What a folder holds, as every command sees it."""

    images: list[Path] = field(default_factory=list)  # image files by extension, sorted; broken links included
    ignored: Counter = field(default_factory=Counter)  # other files, by extension
    hidden: int = 0  # hidden entries left out (a hidden folder counts once, its contents not at all)


def list_images(root: str | Path) -> Listing:
    """Every image file under `root` (recursively, not into linked folders), hidden entries left out."""
    listing = Listing()
    for dirpath, dirnames, filenames in os.walk(root):
        listing.hidden += sum(is_hidden(d) for d in dirnames)
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for name in filenames:
            path = Path(dirpath) / name
            if is_hidden(name):
                listing.hidden += 1
            elif path.suffix.lower() in IMAGE_EXTENSIONS:
                listing.images.append(path)
            else:
                listing.ignored[path.suffix.lower() or "(none)"] += 1
    listing.images.sort()  # Path order, as the dataset has always used: it fixes the samples of a val split
    return listing


def class_folders(root: str | Path) -> list[Path]:
    """The class folders of a folder data set, as `build_dataset` reads them (both splits of a tree)."""
    root = Path(root)
    parts = [root / "train", root / "val"] if is_tree(root) else [root]
    return [part / name for part in parts for name in _subfolders(part)]


def _subfolders(root: Path) -> list[str]:
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not is_hidden(d.name)) if root.is_dir() else []


def _class_names(root: Path) -> list[str]:
    names = _subfolders(root)
    if not names:
        raise UserError(f"{root} has no class folders (expected {root}/<class>/<image files>)")
    return names


def _folder_samples(root: Path, class_names: list[str], subset: bool = False) -> list[tuple[str, int]]:
    """Every class's images; `subset`: classes may be missing (a val/ folder may hold a subset), never empty."""
    if not root.is_dir():
        raise UserError(f"missing folder {root}")
    samples = []
    for label, name in enumerate(class_names):
        folder = root / name
        if subset and not folder.is_dir():
            continue
        files = list_images(folder).images
        if not files:  # a class the model would learn to never predict, or a copy that failed half-way
            raise UserError(f"class folder {folder} holds no images (extensions: {', '.join(IMAGE_EXTENSIONS)}); "
                            f"add images or remove the folder")
        samples.extend((str(p), label) for p in files)
    if not samples:
        raise UserError(f"no images found under {root} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
    return samples


_outside_allowed = False


def allow_paths_outside_lists(allowed: bool) -> None:
    """Let CSV lists name files outside their own folder (absolute paths, `..`) in this process, or stop them.

    Off by default: a list is data that may come from anyone, and a path such as `../../etc/passwd` in it would make
    the command read files its user never meant to hand over. `--allow-outside-paths` turns it on.
    """
    global _outside_allowed
    _outside_allowed = bool(allowed)


def _csv_samples(path: Path) -> tuple[list[tuple[str, int]], list[str]]:
    """The (file, label index) rows of a CSV list and its sorted class names; see `_csv_rows` for the format."""
    rows = _csv_rows(path)
    names = sorted({label for _, _, label in rows})
    index = {n: i for i, n in enumerate(names)}
    return [(str(path.parent / file), index[label]) for _, file, label in rows], names


def _csv_rows(path: Path) -> list[tuple[int, str, str]]:
    """(line, path, label) of each row: UTF-8 (a byte-order mark is allowed), `#` comments and blank rows skipped,
    an optional `path,label` header, exactly two columns (empty trailing cells, as spreadsheets write, are fine).

    Cells are stripped of surrounding white space; labels are also NFC-normalised, so `café` typed on a Mac (NFD)
    and elsewhere is one class. Errors name the line, never echo what is on it beyond the offending path.
    """
    if path.suffix.lower() != LIST_SUFFIX:
        kind = f"one {path.suffix.lower()} file, not a data set" if path.suffix.lower() in IMAGE_EXTENSIONS else \
            f"not a CSV list (its name does not end in {LIST_SUFFIX})"
        raise UserError(f"{path} is {kind}; --data takes {DATA_KINDS}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise UserError(f"{path}, line {line}: not UTF-8 text; save the list as UTF-8") from None
    if "\0" in text:  # the csv module refuses it too, but only on some Python versions
        line = text.count("\n", 0, text.index("\0")) + 1
        raise UserError(f"{path}, line {line}: a NUL byte; not a text file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=True)
    rows = []
    try:
        for cells in reader:
            cells = [c.strip() for c in cells]
            while cells and not cells[-1]:
                cells.pop()
            if cells and not cells[0].startswith("#"):
                rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise UserError(f"{path}, line {reader.line_num}: not valid CSV ({exc})") from None
    if rows and [c.lower() for c in rows[0][1]] == ["path", "label"]:
        rows = rows[1:]
    if not rows:
        raise UserError(f"{path}: no rows of 'path,label'")
    return [_csv_row(path, line, cells) for line, cells in rows]


def _csv_row(path: Path, line: int, cells: list[str]) -> tuple[int, str, str]:
    where = f"{path}, line {line}"
    if len(cells) != 2:
        raise UserError(f"{where}: {len(cells)} column{'s' if len(cells) != 1 else ''}; expected 2 (path,label)")
    file, label = cells[0], unicodedata.normalize("NFC", cells[1]).strip()
    if not file or not label:
        raise UserError(f"{where}: empty {'path' if not file else 'label'}")
    if any(unicodedata.category(c) == "Cc" for c in file + label):  # a quoted line break, a tab inside a name
        raise UserError(f"{where}: control characters in the path or label")
    leads_to = None if _outside_allowed else _outside(path.parent, file)
    if leads_to is not None:
        raise UserError(f"{where}: {file!r} is outside the list's folder: it leads to {leads_to}, not to a file under "
                        f"{os.path.realpath(path.parent)}; pass --allow-outside-paths to read files outside it")
    return line, file, label


def _outside(folder: Path, file: str) -> str | None:
    """Where a list's row leads when that is not a file inside the list's folder; None when it is.

    A row spelled inside the folder without `..` is inside, relative or absolute (`/data/x/a/1.jpg` in
    `/data/x/list.csv`): the links it passes through are the folder owner's choice. Any other row is judged by the
    resolved path, so that an absolute path through another route to the folder counts as inside, and a `..`
    after a link, which the OS follows from the link's target, cannot climb out."""
    root = os.path.normpath(os.path.abspath(folder))
    if ".." not in Path(file).parts and _under(os.path.normpath(os.path.join(root, file)), root):
        return None
    real = os.path.realpath(os.path.join(root, file))
    return None if _under(real, os.path.realpath(root)) else real


def _under(path: str, folder: str) -> bool:
    return path != folder and path.startswith(folder.rstrip(os.sep) + os.sep)


@functools.lru_cache(maxsize=1)
def _inspection() -> tuple[list[tuple[Image.Image, int]], list[str]]:
    # made from scikit-image's bundled surfaces on first use (about 10 s), then kept for the process
    from . import inspection

    return inspection.make_inspection(inspection.COUNT), inspection.class_names()


def _digits() -> tuple[list[tuple[Image.Image, int]], list[str]]:
    # the 1,797 images ship inside scikit-learn's wheel
    digits = require("sklearn.datasets", "the embedded digits").load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    samples = [(Image.fromarray(img).resize((32, 32), Image.BILINEAR), int(t))
               for img, t in zip(images, digits.target)]
    return samples, [str(d) for d in range(10)]
