"""The inspection benchmark: real surfaces from scikit-image's wheel, defects drawn at four severities; the same
images in memory (`--data inspection`) and on disk; a split that keeps each class's share."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inceptorch.data.datasets import build_dataset
from inceptorch.data.inspection import (
    SEVERITIES,
    SURFACES,
    class_names,
    make_image,
    make_inspection,
    surfaces,
    write_inspection,
)
from inceptorch.data.splits import stratified_split

pytest.importorskip("skimage")


def test_the_images_are_the_same_on_every_call_and_the_classes_keep_their_shares():
    a, b = make_inspection(200, seed=3), make_inspection(200, seed=3)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) and la == lb for (x, la), (y, lb) in zip(a, b))
    counts = np.bincount([label for _, label in a], minlength=len(SEVERITIES))
    assert list(counts) == [round(s.share * 200) for s in SEVERITIES]
    assert a[0][0].mode == "L" and a[0][0].size == (192, 192)


def test_defects_are_thin_dark_marks_on_the_surface_and_worse_severities_mark_more_of_it():
    """Each severity drawn on the same crop of each surface (the same random draws up to the defects): what
    differs from the clean image beyond the sensor noise is darker, and its area grows with the severity."""
    darker = {s.name: 0 for s in SEVERITIES[1:]}
    brighter = dict(darker)
    for surface in surfaces().values():
        for seed in range(6):
            clean = np.asarray(make_image(np.random.default_rng(seed), surface, SEVERITIES[0]), dtype=float)
            for severity in SEVERITIES[1:]:
                image = np.asarray(make_image(np.random.default_rng(seed), surface, severity), dtype=float)
                # Two draws of sensor noise (std 3 each) differ by more than 15 levels at 3.5 sigma: rarely.
                darker[severity.name] += int(((clean - image) > 15).sum())
                brighter[severity.name] += int(((image - clean) > 15).sum())
    images = len(SURFACES) * 6 * 192 * 192
    for name, count in darker.items():
        assert count > 10 * brighter[name], name
    shares = {name: darker[name] / images for name in darker}
    assert shares["1_minor"] < shares["2_major"] < shares["3_critical"]
    assert shares["1_minor"] < 0.01  # a minor crack marks well under 1% of the image: a fine detail
    assert set(SURFACES) == set(surfaces())


def test_stratified_split_keeps_every_class_in_val_in_proportion():
    samples = [(i, label) for i, label in enumerate([0] * 90 + [1] * 8 + [2] * 2)]
    val = stratified_split(samples, "val", 0.2, seed=0)
    train = stratified_split(samples, "train", 0.2, seed=0)
    assert sorted(val + train) == samples
    assert [sum(1 for _, label in val if label == c) for c in (0, 1, 2)] == [18, 2, 1]
    assert val == stratified_split(samples, "val", 0.2, seed=0)


def test_the_written_folder_and_the_embedded_set_hold_the_same_validation_images(tmp_path, monkeypatch):
    from inceptorch.data import datasets, inspection

    monkeypatch.setattr(inspection, "COUNT", 120)  # the embedded set at a test's size
    datasets._inspection.cache_clear()
    try:
        root = write_inspection(tmp_path / "inspection", count=120)
        embedded = build_dataset("inspection", "val")
        on_disk = build_dataset(str(root), "val")
        assert embedded.class_names == on_disk.class_names == class_names() == sorted(class_names())
        assert len(embedded) == len(on_disk) == sum(max(1, round(c * 0.2)) for c in
                                                    [round(s.share * 120) for s in SEVERITIES])
        pixels = sorted(np.asarray(img).tobytes() for img, _ in (embedded[i] for i in range(len(embedded))))
        files = sorted(np.asarray(Image.open(p).convert("RGB")).tobytes()
                       for p in sorted((root / "val").rglob("*.png")))
        assert pixels == files
    finally:
        datasets._inspection.cache_clear()
