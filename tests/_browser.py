"""A real browser for the tests: Debian's chromium driven by Playwright; tests skip (saying why) without one."""
from __future__ import annotations

import shutil

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def browser_path() -> str:
    """The system chromium, or a skip naming what is missing."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium on this machine (Debian: apt-get install chromium)")


class Page:
    """One headless page; collects console errors and failed requests."""

    def __init__(self, width: int = 1200, height: int = 900):
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(executable_path=browser_path(), args=["--no-sandbox"])
        self.page = self.browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))

    def close(self) -> None:
        self.browser.close()
        self._playwright.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def broken_images(self) -> int:
        return self.page.evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length")


def is_blank(png: bytes) -> bool:
    """Whether a screenshot is one flat colour (nothing drawn)."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return pixels.std() < 2.0
