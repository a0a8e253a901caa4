"""`inceptorch check-data DIR`: decode every image file under DIR and list the bad ones, the empty class folders
and what else `train` would refuse (one class, a val/ class train/ lacks) (exit 1 if any, 0 if none); say how train
and eval will read the folder (its classes, and the images they leave out or count for the class folder above)."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..text import count
from ._data_flags import add_outside_paths_argument, add_pixel_limit_argument, apply_data_flags


def register(subparsers) -> None:
    p = subparsers.add_parser("check-data", help="decode every image under a folder and report the bad files")
    p.add_argument("path", metavar="DIR", help="an image folder (searched recursively), a CSV list, or one image")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding threads (default: one per CPU core, at most 8)")
    p.add_argument("--full-decode", action="store_true",
                   help="decode JPEGs at full size (default: 1/8 scale, which still reads all data, so still "
                        "finds truncation)")
    add_pixel_limit_argument(p)
    add_outside_paths_argument(p)
    p.add_argument("--cache", metavar="FILE", default=None,
                   help="JSON file of files verified good (by size and mtime): unchanged files are not decoded again")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.checks import (
        class_warnings,
        empty_class_folders,
        folder_layout,
        image_files,
        list_layout,
        report_dict,
        scan_images,
        training_problems,
    )
    from ..data.datasets import IMAGE_EXTENSIONS, LIST_SUFFIX

    apply_data_flags(args)
    listing = image_files(args.path)
    empty = empty_class_folders(args.path)
    layout = folder_layout(args.path, listing.images) or list_layout(args.path)
    if not listing.images:
        raise UserError(f"no image files under {args.path} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
    report = scan_images(listing.images, workers=args.workers, draft=not args.full_decode, cache=args.cache)
    # What train would refuse besides bad files, for data laid out for training: class folders or a CSV list. (Empty
    # class folders are listed on their own; a folder of loose images, for predict, gets its layout line.)
    single_image = Path(args.path).is_file() and Path(args.path).suffix.lower() != LIST_SUFFIX
    for_training = not single_image and (layout is None or layout.kind != "no class folders")
    problems, counts = training_problems(args.path) if for_training and not empty else ([], {})
    # Labels that look mistyped: named, as train names them before epoch 1, but not failed (train goes on).
    warnings = class_warnings(counts)
    failed = 1 if report.bad or empty or problems else 0
    if args.json:
        print(json.dumps(report_dict(report, args.path, listing, empty, layout, problems, warnings, counts), indent=1))
        return failed
    for bad in report.bad:
        print(bad)
    for folder in empty:
        print(f"{folder}: empty class folder (no image files)")
    for problem in problems:
        print(f"train would refuse this data: {problem}")
    rate = report.total / report.seconds if report.seconds > 0 else 0.0
    print(f"checked {count(report.total, 'image file')} under {args.path} in {report.seconds:.2f} s "
          f"({rate:,.0f} files/s, {report.workers} threads"
          + (f", {report.cached:,} unchanged since verified" if report.cached else "") + "): "
          + (f"{len(report.bad):,} bad ({report.bad_fraction:.2%})" if report.bad else "all decode")
          + (f"; {count(len(empty), 'empty class folder')}" if empty else ""))
    for line in [*(layout.notes() if layout else []), *warnings]:
        print(line)
    if listing.ignored:
        kinds = ", ".join(f"{ext} x{n}" for ext, n in listing.ignored.most_common())
        n = sum(listing.ignored.values())
        print(f"ignored {count(n, 'file')} without an image extension ({kinds})")
    if listing.hidden:
        print(f"skipped {count(listing.hidden, 'hidden entry', 'hidden entries')} (dot-files such as macOS's ._* and "
              f".DS_Store, __MACOSX): never data, in any command")
    return failed
