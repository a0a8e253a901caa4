"""Pages as a person sees them: a run's report opened in headless Chromium (Debian's package, driven by
Playwright). Without a browser these tests skip and say why."""
from __future__ import annotations

import pytest

from _browser import Page, browser_path, is_blank
from _cli import cli_in_process
from _train_helpers import TINY, make_jpeg_folder

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_report_opens_in_a_browser_with_every_picture_and_no_errors(tmp_path):
    browser_path()  # skip early, before training, where there is no browser
    data = make_jpeg_folder(tmp_path / "colours", per_class=8)
    run = tmp_path / "run"
    done = cli_in_process("train", *TINY, "--data", data, "--epochs", "2", "--batch-size", "6", "--output", run)
    assert done.returncode == 0, done.stderr
    page_file = run / "report.html"
    assert page_file.is_file() and f"report {page_file}" in done.stdout  # training wrote it
    with Page() as browser:
        browser.page.goto(page_file.as_uri())
        browser.page.wait_for_load_state("load")
        shot = browser.page.screenshot(full_page=True)
        images = browser.page.evaluate("document.images.length")
        assert images >= 4 and browser.broken_images() == 0
        assert browser.errors == []
        assert not is_blank(shot)
        headings = browser.page.locator("h2").all_inner_texts()
        assert "Per class" in headings and "Most confident mistakes" in headings
        assert browser.page.locator("a[href$='.csv']").count() == 1


def test_the_serving_page_classifies_an_uploaded_image(tmp_path):
    """A person's path: open the page, choose an image, read the top-5 bars and see the heat map."""
    pytest.importorskip("uvicorn")
    browser_path()
    from _server import Server

    data = make_jpeg_folder(tmp_path / "colours", per_class=8)
    run = tmp_path / "run"
    done = cli_in_process("train", *TINY, "--data", data, "--epochs", "2", "--batch-size", "6", "--output", run,
                          "--no-report")
    assert done.returncode == 0, done.stderr
    image = min((data / "red").glob("*.jpg"))
    expected = cli_in_process("predict", "--checkpoint", run, image, "--topk", "3").stdout.splitlines()[1].split()[-1]
    server = Server(run)
    try:
        with Page() as browser:
            browser.page.goto(server.url + "/")
            browser.page.wait_for_function("document.getElementById('meta').textContent.includes('classes')")
            browser.page.set_input_files("#file", str(image))
            browser.page.wait_for_selector(".prediction")
            rows = browser.page.locator(".prediction .name").all_inner_texts()
            assert len(rows) == 3 and rows[0] == expected  # 3 classes: the top-5 shows all 3
            browser.page.wait_for_function(
                "document.getElementById('heat') && document.getElementById('heat').complete")
            assert browser.broken_images() == 0 and browser.errors == []
            assert not is_blank(browser.page.screenshot())
    finally:
        server.stop()
