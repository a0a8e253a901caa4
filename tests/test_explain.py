"""Grad-CAM heat maps: on data whose class is decided by a known region, the map's mass falls on that region; the
default layer of every model of the family; `predict --explain` and `--csv` as a user runs them."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from _cli import cli_in_process
from _train_helpers import TINY
from inceptorch.models import create_model, list_models

pytest.importorskip("captum")
pytestmark = pytest.mark.usefixtures("one_thread")

SIZE, SQUARE = 64, 16


def _corner_images(root, per_class: int = 40):
    """Noise, with a bright square in a corner for class 'square' (top-left in even-numbered files, bottom-right in
    odd ones) and without for class 'plain': the square alone decides the class, and it is in a known place."""
    rng = np.random.default_rng(0)
    for name in ("plain", "square"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 90, (SIZE, SIZE, 3)).astype(np.uint8)
            if name == "square":
                top, left = rng.integers(0, 4, 2) if i % 2 == 0 else SIZE - SQUARE - rng.integers(0, 4, 2)
                pixels[top:top + SQUARE, left:left + SQUARE] = 230
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def corner_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("corners")
    data = _corner_images(root / "data")
    run = root / "run"
    done = cli_in_process("train", *TINY, "--data", data, "--epochs", "6", "--batch-size", "8", "--lr", "0.01",
                          "--input-size", SIZE, "--aug", "none", "--set", "hflip=0", "--output", run, "--no-report")
    assert done.returncode == 0, done.stderr
    return data, run


def test_the_heat_map_falls_on_the_square_that_decides_the_class(corner_run):
    from inceptorch.evaluation import load_members
    from inceptorch.explain.gradcam import explain_images

    data, run = corner_run
    member = load_members([run])[0]
    files = sorted((data / "square").glob("*.png"))[:16]
    images = [Image.open(p).convert("RGB") for p in files]
    half = SIZE // 2
    ratios = []
    for i, (_, heat) in enumerate(explain_images(member, images, [member.class_names.index("square")] * 16)):
        assert heat.map.shape == (SIZE, SIZE) and heat.layer == "inception5b"
        assert 0.0 <= heat.map.min() and heat.map.max() == pytest.approx(1.0)
        top_left, bottom_right = heat.map[:half, :half].sum(), heat.map[half:, half:].sum()
        ratios.append(top_left / bottom_right if i % 2 == 0 else bottom_right / top_left)
    # The map follows the square: the corner that holds it gets more of the map than the opposite corner, in every
    # image, and several times more in most (a map that looked nowhere in particular would split them evenly).
    assert min(ratios) > 1.0 and np.median(ratios) > 3.0, ratios


@pytest.mark.parametrize("name", list_models())
def test_every_model_has_a_default_layer_with_a_spatial_map(name):
    from inceptorch.explain.gradcam import GradCam

    model = create_model(name, num_classes=3)
    size = model.default_cfg.min_input_size
    cam = GradCam(model, size)
    maps = cam(torch.randn(2, 3, size, size), [0, 2])
    assert len(maps) == 2 and maps[0].map.shape == (size, size) and maps[1].target == 2


def test_predict_writes_csv_rows_and_heat_maps(corner_run, tmp_path):
    data, run = corner_run
    out, rows_file = tmp_path / "maps", tmp_path / "rows.csv"
    done = cli_in_process("predict", "--checkpoint", run, data / "plain" / "00.png", data / "square" / "00.png",
                          "--topk", "2", "--csv", rows_file, "--explain", out)
    assert done.returncode == 0, done.stderr
    with open(rows_file) as f:
        rows = list(csv.DictReader(f))
    assert [r["predicted"] for r in rows] == ["plain", "square"]
    assert all(float(r["probability"]) > 0.5 and r["topk"].count("|") == 1 for r in rows)
    # Both files are named 00.png: the second heat map gets a name of its own.
    assert sorted(p.name for p in out.iterdir()) == ["00__gradcam.png", "00_gradcam.png"]
    done = cli_in_process("predict", "--checkpoint", run, data / "plain" / "00.png", "--explain", out,
                          "--explain-class", "nope")
    assert done.returncode == 2 and "--explain-class 'nope' is not a class" in done.stderr
