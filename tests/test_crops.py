"""Test-time crop geometry, checked box by box against numbers worked out by hand from the paper's description."""
import numpy as np
import pytest
import torch
from PIL import Image

from inceptorch.evaluation.crops import (
    Crop,
    CropTransform,
    crop_boxes,
    crop_tensor,
    one_crop,
    paper_144_crops,
    paper_scales,
    render_crops,
    ten_crops,
)


def _views(left, top, side, size):
    """TL, TR, BL, BR, center, whole square: written out, not computed by the code under test."""
    d, c = side - size, (side - size) // 2
    return [(left, top, left + size, top + size), (left + d, top, left + d + size, top + size),
            (left, top + d, left + size, top + d + size), (left + d, top + d, left + d + size, top + d + size),
            (left + c, top + c, left + c + size, top + c + size), (left, top, left + side, top + side)]


def test_paper_scales_are_256_to_352_for_224_and_sevenths_otherwise():
    assert paper_scales(224) == [256, 288, 320, 352]  # paper section 7
    assert paper_scales(299) == [342, 384, 427, 470]  # 8/7 .. 11/7 of 299, rounded
    assert paper_scales(32) == [37, 41, 46, 50]


def test_144_crops_landscape_exact():
    crops = paper_144_crops(400, 300, 224)
    assert len(crops) == 144 == 4 * 3 * 6 * 2
    # Shorter side 256, 288, 320, 352; the long side keeps the 4:3 aspect (rounded).
    assert sorted({c.resize for c in crops}) == [(341, 256), (384, 288), (427, 320), (469, 352)]
    first = crops[:36]  # scale 256: left, center, right squares at x = 0, (341-256)//2 = 42, 341-256 = 85
    assert first[0] == Crop((341, 256), (0, 0, 224, 224), False)
    assert first[1] == Crop((341, 256), (0, 0, 224, 224), True)
    expected = [b for left in (0, 42, 85) for b in [
        (left, 0, left + 224, 224), (left + 32, 0, left + 256, 224), (left, 32, left + 224, 256),
        (left + 32, 32, left + 256, 256), (left + 16, 16, left + 240, 240), (left, 0, left + 256, 256)]]
    assert [c.box for c in first[::2]] == expected
    assert [c.mirror for c in first] == [False, True] * 18
    # Every scale: 3 squares side by side over the full width, each with its 6 views.
    for s, (w, h) in zip((256, 288, 320, 352), [(341, 256), (384, 288), (427, 320), (469, 352)]):
        at_scale = [c for c in crops if c.resize == (w, h)]
        assert len(at_scale) == 36
        lefts = (0, (w - s) // 2, w - s)
        assert [c.box for c in at_scale if not c.mirror] == [b for x in lefts for b in _views(x, 0, s, 224)]
        assert [c.box for c in at_scale if c.mirror] == [c.box for c in at_scale if not c.mirror]


def test_144_crops_portrait_uses_top_center_bottom_squares():
    crops = paper_144_crops(300, 400, 224)
    assert len(crops) == 144
    assert sorted({c.resize for c in crops}) == [(256, 341), (288, 384), (320, 427), (352, 469)]
    first = [c.box for c in crops[:36] if not c.mirror]
    assert first[5] == (0, 0, 256, 256) and first[11] == (0, 42, 256, 298) and first[17] == (0, 85, 256, 341)
    assert first[6:12] == _views(0, 42, 256, 224)
    for s, (w, h) in zip((256, 288, 320, 352), [(256, 341), (288, 384), (320, 427), (352, 469)]):
        tops = (0, (h - s) // 2, h - s)
        boxes = [c.box for c in crops if c.resize == (w, h) and not c.mirror]
        assert boxes == [b for y in tops for b in _views(0, y, s, 224)]


@pytest.mark.parametrize("size", [(400, 300), (300, 400), (256, 256), (37, 90)])
def test_144_crops_invariants(size):
    crops = paper_144_crops(*size, 32)
    assert len(crops) == 144
    assert sum(c.mirror for c in crops) == 72
    assert all(0 <= c.box[0] < c.box[2] <= c.resize[0] and 0 <= c.box[1] < c.box[3] <= c.resize[1] for c in crops)
    assert all(c.box[2] - c.box[0] == c.box[3] - c.box[1] for c in crops)  # every view is square
    sides = sorted(c.box[2] - c.box[0] for c in crops)
    assert sides.count(32) == 120  # corners and centers: 4 scales x 3 squares x 5 x 2
    assert sorted(set(sides) - {32}) == [37, 41, 46, 50]  # the whole squares, 6 per scale
    assert all(min(c.resize) in (37, 41, 46, 50) for c in crops)
    unmirrored = [(c.resize, c.box) for c in crops if not c.mirror]
    assert unmirrored == [(c.resize, c.box) for c in crops if c.mirror]  # each crop has its mirror twin


def test_ten_crops_exact():
    crops = ten_crops(400, 300, 224)  # shorter side to 256 = 8/7 of 224, corners and center of the whole image
    assert len(crops) == 10
    assert {c.resize for c in crops} == {(341, 256)}
    boxes = [(0, 0, 224, 224), (117, 0, 341, 224), (0, 32, 224, 256), (117, 32, 341, 256), (58, 16, 282, 240)]
    assert [c.box for c in crops] == boxes * 2
    assert [c.mirror for c in crops] == [False] * 5 + [True] * 5
    assert [c.box for c in ten_crops(300, 400, 224)][:5] == [
        (0, 0, 224, 224), (32, 0, 256, 224), (0, 117, 224, 341), (32, 117, 256, 341), (16, 58, 240, 282)]


def test_one_crop_follows_crop_pct():
    assert one_crop(500, 375, 224, 0.875) == [Crop((341, 256), (58, 16, 282, 240), False)]
    assert one_crop(48, 36, 32, 1.0) == [Crop((43, 32), (5, 0, 37, 32), False)]
    assert crop_boxes(1, 48, 36, 32, 1.0) == one_crop(48, 36, 32, 1.0)
    with pytest.raises(ValueError):
        crop_boxes(12, 48, 36, 32)


def _coordinate_image(w, h):
    """Red = x, green = y: every pixel says where it came from."""
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    return np.stack([x * 4, y * 4, np.full_like(x, 100)], axis=-1).astype(np.uint8)


def test_render_cuts_the_boxes_and_mirrors():
    array = _coordinate_image(40, 32)  # shorter side already 32 = 8/7 of 28: the 10-crop resize is the identity
    crops = ten_crops(40, 32, 28)
    assert crops[0].resize == (40, 32)
    views = render_crops(Image.fromarray(array), crops, 28, "nearest")
    assert views.shape == (10, 3, 28, 28) and views.dtype == torch.uint8
    for crop, view in zip(crops, views):
        left, top, right, bottom = crop.box
        expected = array[top:bottom, left:right].transpose(2, 0, 1)
        expected = expected[:, :, ::-1] if crop.mirror else expected
        assert np.array_equal(view.numpy(), expected), crop


def test_render_whole_square_is_resized_and_normalisation_uses_cfg():
    image = Image.fromarray(np.full((30, 40, 3), (255, 0, 51), dtype=np.uint8))
    views = render_crops(image, paper_144_crops(40, 30, 28), 28)
    assert views.shape == (144, 3, 28, 28)
    assert (views[:, 0] == 255).all() and (views[:, 1] == 0).all() and (views[:, 2] == 51).all()
    x = crop_tensor(image, 10, {"input_size": 28, "mean": (0.5, 0.0, 0.2), "std": (0.5, 1.0, 0.1)})
    assert x.shape == (10, 3, 28, 28)
    assert torch.allclose(x[:, 0], torch.tensor(1.0)) and torch.allclose(x[:, 1], torch.tensor(0.0))
    assert torch.allclose(x[:, 2], torch.tensor(0.0), atol=1e-6)  # 51/255 = 0.2


def test_crop_transform_matches_boxes_and_is_picklable():
    import pickle

    t = pickle.loads(pickle.dumps(CropTransform(144, 32, 1.0, "bicubic")))
    out = t(Image.fromarray(_coordinate_image(48, 36)))
    assert out.shape == (144, 3, 32, 32)
    with pytest.raises(ValueError, match="interpolation"):
        CropTransform(1, 32, 1.0, "cubic-ish")
