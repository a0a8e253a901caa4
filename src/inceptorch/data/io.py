"""Decoding one image file into an 8-bit RGB PIL image, with one-line errors a user can act on.

Every file is treated as untrusted: `load_image` either returns an RGB image whose pixels were all decoded, or raises
`BadImageError` naming the file and the problem. Nothing is decoded lazily later (a truncated file fails here, not
in the middle of an epoch), and nothing is converted silently wrong:
- alpha (RGBA, LA, palette with transparency) is composited on white rather than dropped (see `_on_white`),
- 16-bit grayscale is scaled to 8 bits rather than clipped to white,
- CMYK and YCbCr go through Pillow's conversion to RGB,
- the EXIF orientation tag (all 8 values) is applied,
- images over a pixel limit are refused before any pixel is decoded (decompression bombs).
"""
from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError

# Pillow's own default (1024 * 1024 * 1024 // 4 // 3 = 89,478,485 pixels, about a 9,500 x 9,500 image); the
# environment variable lets a run with legitimately huge images raise it without code changes.
DEFAULT_MAX_IMAGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3
ENV_MAX_IMAGE_PIXELS = "INCEPTORCH_MAX_IMAGE_PIXELS"

# What a damaged or hostile file makes Pillow raise. OSError covers UnidentifiedImageError and "image file is
# truncated"; SyntaxError is Pillow's "broken PNG file"; zlib.error and struct.error come from corrupt compressed
# data and headers; the DecompressionBomb* pair from Pillow's own pixel limit. The fuzz in tests/test_data_faults.py
# feeds random and mutated files to `load_image` and finds nothing else.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error, Image.DecompressionBombError,
                  Image.DecompressionBombWarning)

# Pillow only warns between its limit and twice its limit; a warning is easy to miss in a training log, so anywhere
# in this process (training, eval, predict, DataLoader workers forked from it) such an image is an error.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


class BadImageError(UserError):
    """An image file that cannot be used: `str()` is one line, '<path>: <problem>'.

    Built from one message instead (how pickling and DataLoader workers re-create an exception; the DataLoader adds
    the worker's traceback), it keeps only the '<path>: <problem>' line, so a bad file met mid-epoch in a worker
    still reaches the command line as one line.
    """

    def __init__(self, path: str | Path, problem: str | None = None):
        if problem is None:
            lines = [line.strip() for line in str(path).splitlines() if line.strip()]
            last = lines[-1] if lines else ""
            last = last.split("BadImageError: ", 1)[-1]  # "inceptorch.data.io.BadImageError: <path>: <problem>"
            path, _, problem = last.partition(": ")
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


def max_image_pixels() -> int:
    """The largest width x height that `load_image` accepts."""
    if _max_pixels is None:  # INCEPTORCH_MAX_IMAGE_PIXELS was unreadable at import: say so now, as a UserError
        set_max_image_pixels(_limit_from_env())
    return _max_pixels


def set_max_image_pixels(limit: int) -> None:
    """Change the pixel limit for this process; Pillow's own check is kept equal so that every path refuses bombs.

    DataLoader workers started by fork inherit it; spawned workers re-read INCEPTORCH_MAX_IMAGE_PIXELS instead.
    """
    global _max_pixels
    if int(limit) < 1:
        raise UserError(f"the image pixel limit must be a positive number of pixels, not {limit}")
    _max_pixels = Image.MAX_IMAGE_PIXELS = int(limit)


def _limit_from_env() -> int:
    value = os.environ.get(ENV_MAX_IMAGE_PIXELS, "").replace("_", "").replace(",", "")
    try:
        return int(value) if value else DEFAULT_MAX_IMAGE_PIXELS
    except ValueError:
        raise UserError(f"{ENV_MAX_IMAGE_PIXELS}={value!r} is not a whole number of pixels") from None


_max_pixels: int | None = None
try:
    set_max_image_pixels(_limit_from_env())
except UserError:
    pass  # raised again by the first `load_image`, inside the CLI's one-line error handling, not at import


def load_image(path: str | Path, draft: bool = False) -> Image.Image:
    """The image at `path` as 8-bit RGB with its EXIF orientation applied; raises `BadImageError` for a bad file.

    `draft=True` lets JPEGs decode at a reduced scale (libjpeg's DCT scaling, up to 8x smaller): every byte of the
    entropy-coded data is still read, so truncation is still detected; `check-data` uses it to verify files faster.
    """
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise BadImageError(path, "empty file (0 bytes)")
            return _decode(f, path, draft, lambda: _what_it_is(path))
    except BadImageError:
        raise
    except _DECODE_ERRORS as exc:  # opening the file itself failed: a missing file, a broken link, no permission
        raise BadImageError(path, _describe(exc)) from None


def decode_image(data: bytes, name: str = "the upload") -> Image.Image:
    """`load_image` for bytes received (an HTTP body): the same checks, conversions and one-line errors."""
    if not data:
        raise BadImageError(name, "empty (0 bytes)")
    return _decode(io.BytesIO(data), name, False, lambda: _kind_of(data[:512], len(data)))


def _decode(f, name: str | Path, draft: bool, what: Callable[[], str]) -> Image.Image:
    limit = max_image_pixels()
    try:
        img = Image.open(f)  # reads the header only
        width, height = img.size
        if width * height > limit:
            raise BadImageError(name, _bomb_message(f"{width}x{height} = {width * height:,}"))
        if draft and img.format == "JPEG":
            img.draft(None, (1, 1))  # the smallest scale libjpeg offers: 1/8 per side
        img.load()  # decode every pixel now, so a truncated file fails here and not later in a transform
        ImageOps.exif_transpose(img, in_place=True)  # all 8 EXIF orientations (mirrors and rotations)
        return _to_rgb(img, name)
    except BadImageError:
        raise
    except UnidentifiedImageError:
        raise BadImageError(name, f"not an image in a format Pillow can read ({what()})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        pixels = next((w for w in str(exc).replace("(", " ").split() if w.isdigit()), "?")
        raise BadImageError(name, _bomb_message(f"{int(pixels):,}" if pixels != "?" else "too many")) from None
    except _DECODE_ERRORS as exc:
        raise BadImageError(name, _describe(exc)) from None


def _to_rgb(img: Image.Image, path: str | Path) -> Image.Image:
    """8-bit RGB from each mode Pillow opens files as; an unusual mode is refused rather than guessed at."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("1", "L", "CMYK", "YCbCr", "RGBX"):
        return img.convert("RGB")  # CMYK: Pillow's naive conversion (no ICC colour management)
    if mode == "P" and "transparency" not in img.info:
        return img.convert("RGB")
    if mode in ("P", "PA", "LA", "RGBA"):
        return _on_white(img.convert("RGBA"))
    if mode in ("La", "RGBa"):  # premultiplied alpha: un-premultiply first
        return _on_white(img.convert("LA" if mode == "La" else "RGBA").convert("RGBA"))
    if mode.startswith("I;16") or mode == "I":
        return _sixteen_bit_gray(img, path)
    raise BadImageError(path, f"unsupported pixel mode {mode} (expected 8-bit or 16-bit gray, RGB, RGBA, palette or "
                              f"CMYK); convert it to an 8-bit RGB file")


def _on_white(rgba: Image.Image) -> Image.Image:
    """Alpha composited on a white background.

    The colour stored under a fully transparent pixel is undefined (encoders leave black, or whatever was there), so
    dropping alpha, which is what `convert("RGB")` does, paints transparent regions in arbitrary colours. Images with
    transparency (logos, icons, product cut-outs) are made to be shown on a page, which is white by default, so white
    is what a person labelling them saw.
    """
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _sixteen_bit_gray(img: Image.Image, path: str | Path) -> Image.Image:
    """16-bit gray (0..65535) scaled to 8 bits; Pillow's `convert("L")` would clip every value above 255 to white."""
    import numpy as np  # here, not at the top: the command line's flags read this module's constants

    values = np.asarray(img).astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        # mode I also holds 32-bit integer TIFFs, whose range we cannot know; PNG and 16-bit TIFF fit 0..65535
        raise BadImageError(path, f"32-bit integer pixels ({values.min()}..{values.max()}) outside the 16-bit range; "
                                  f"convert it to an 8-bit or 16-bit file")
    gray = ((values * 255 + 32767) // 65535).astype(np.uint8)  # rounded, so 0 -> 0, 32768 -> 128, 65535 -> 255
    return Image.fromarray(gray).convert("RGB")


def _bomb_message(pixels: str) -> str:
    return (f"refused: {pixels} pixels is over the limit of {max_image_pixels():,} (a possible decompression bomb; "
            f"set {ENV_MAX_IMAGE_PIXELS} or --max-image-pixels to allow larger images)")


def _describe(exc: BaseException) -> str:
    """One line for a decode error: Pillow's messages are already short; some name no problem at all."""
    text = str(exc).splitlines()[0].strip() if str(exc).strip() else ""
    if isinstance(exc, FileNotFoundError) and exc.filename and os.path.islink(exc.filename):
        return f"broken symbolic link to {os.readlink(exc.filename)} (the target does not exist)"
    if isinstance(exc, OSError) and exc.strerror:  # a file-system error: "No such file or directory"
        return f"cannot read the file: {exc.strerror}"
    if "truncated" in text.lower():  # Pillow's detail ("5 bytes not processed") says nothing more to a user
        return "truncated: the file ends before its image data does"
    return f"cannot decode: {text}" if text else f"cannot decode ({type(exc).__name__})"


def _what_it_is(path: str | Path) -> str:
    """Its size and whether it looks like text: never its bytes, which may be anything a list pointed at (a key,
    a password file) and would end up in a log."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return "unreadable"
    return _kind_of(head, size)


def _kind_of(head: bytes, size: int) -> str:
    try:
        head.decode("utf-8")
        text = b"\0" not in head
    except UnicodeDecodeError as exc:
        text = exc.start >= len(head) - 3  # only a multi-byte character cut at 512 bytes
    return f"{size:,} bytes of {'text' if text else 'binary data'}"
