"""The data flags shared by the commands that read image files: train, compare, eval, predict, check-data, quantize.

    add_pixel_limit_argument(p); add_outside_paths_argument(p)    # in register(); train also add_bad_image_arguments
    apply_data_flags(args)                                        # first thing in run()
    train_set = checked_dataset(train_set, args, warn=log, cache=run_dir / "verified_images.json")  # before epoch 1
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..data.io import DEFAULT_MAX_IMAGE_PIXELS, ENV_MAX_IMAGE_PIXELS, set_max_image_pixels
from ..errors import UserError

if TYPE_CHECKING:
    from ..data.datasets import ImageList


def add_pixel_limit_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-image-pixels", type=int, default=None, metavar="N",
                        help=f"refuse images with more pixels, as possible decompression bombs (default: "
                             f"{ENV_MAX_IMAGE_PIXELS} or {DEFAULT_MAX_IMAGE_PIXELS:,})")


def add_bad_image_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-bad-images", action="store_true",
                        help="leave out images that do not decode (each is logged and counted in the run summary) "
                             "instead of stopping before the first epoch")
    parser.add_argument("--max-bad-fraction", type=float, default=0.01, metavar="F",
                        help="with --skip-bad-images, still stop if more than this fraction is bad (default: 0.01)")


def add_outside_paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-outside-paths", action="store_true",
                        help="let a CSV list name files outside its own folder (absolute paths or ../ that lead out of "
                             "it); refused by default, as a list may come from anyone")


def apply_pixel_limit(args: argparse.Namespace) -> None:
    if getattr(args, "max_image_pixels", None) is not None:
        set_max_image_pixels(args.max_image_pixels)


def apply_data_flags(args: argparse.Namespace) -> None:
    """The process-wide data settings the flags ask for (both also reach forked DataLoader workers)."""
    from ..data.datasets import allow_paths_outside_lists

    apply_pixel_limit(args)
    allow_paths_outside_lists(getattr(args, "allow_outside_paths", False))


def checked_dataset(dataset: ImageList, args: argparse.Namespace,
                    warn: Callable[[str], None] | None = None, cache: str | Path | None = None) -> ImageList:
    """`preflight` with the command's flags: the dataset without bad files, or a one-line UserError."""
    from ..data.checks import preflight

    fraction = getattr(args, "max_bad_fraction", 0.01)
    if not 0 <= fraction <= 1:
        raise UserError(f"--max-bad-fraction must be between 0 and 1, not {fraction}")
    return preflight(dataset, skip_bad=getattr(args, "skip_bad_images", False), max_bad_fraction=fraction,
                     workers=getattr(args, "workers", None), warn=warn, cache=cache)
