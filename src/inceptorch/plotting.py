"""The one way the package draws a picture: a matplotlib `Figure` without pyplot (no global figure state, no GUI
backend, safe in threads and servers), written atomically as PNG. Without matplotlib, `figure` raises the one-line
`MissingExtra` naming `pip install 'inceptorch[plot]'`."""
from __future__ import annotations

import io
from pathlib import Path

from .extras import require


def figure(width: float, height: float, rows: int = 1, cols: int = 1, what: str = "this picture"):
    """(fig, axes): one Axes for a single panel, else a flat list of rows x cols Axes, row by row."""
    require("matplotlib", what)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    if rows == 1 and cols == 1:
        return fig, fig.add_subplot(1, 1, 1)
    return fig, list(fig.subplots(rows, cols, squeeze=False).flat)


def save(fig, path: str | Path, dpi: int = 100) -> None:
    """`fig` as a PNG (or the format `path`'s suffix names) at `path`, atomically, laid out tightly."""
    from .fileio import atomic_write

    fig.tight_layout()
    suffix = Path(path).suffix.lstrip(".").lower() or "png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format=suffix, dpi=dpi))


def png_bytes(fig, dpi: int = 100) -> bytes:
    """`fig` as PNG bytes, for pages that embed their pictures."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
