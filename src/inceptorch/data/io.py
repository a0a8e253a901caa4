"""Decoding one image file into an RGB PIL image, with errors a user can act on."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError


class BadImageError(UserError):
    """An image file that cannot be decoded: the message names the file and the problem."""


def load_image(path: str | Path) -> Image.Image:
    """The image at `path` as RGB, EXIF orientation applied."""
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImageError(f"{path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
