"""Evaluation and prediction: averaging checked by value, name-matched classes, ensembles, and the CLIs end to end."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from _cli import cli_in_process
from inceptorch.cli.main import main
from inceptorch.data.datasets import ImageList
from inceptorch.errors import UserError
from inceptorch.evaluation import Member, evaluate, load_eval_data, load_members, predict
from inceptorch.evaluation.crops import ten_crops
from inceptorch.models import create_model
from inceptorch.weights.model_file import model_metadata, save_model_file

COLOURS = {"blue": (30, 40, 210), "green": (40, 200, 50), "red": (220, 30, 40)}
NAMES = sorted(COLOURS)  # checkpoint class order: blue, green, red
UNIT_CFG = {"input_size": 28, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "crop_pct": 1.0,
            "interpolation": "nearest"}


class MeanColour(nn.Module):
    """Logits = temperature x the mean of each input channel: an output known in closed form for any crop."""

    def __init__(self, temperature: float = 10.0, order=(2, 1, 0)):
        super().__init__()
        self.temperature, self.order = temperature, list(order)

    def forward(self, x):
        return self.temperature * x.mean(dim=(2, 3))[:, self.order]  # order (2,1,0): blue, green, red


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def _colour_image(rgb, w=40, h=32, seed=0):
    noise = np.random.default_rng(seed).normal(0, 25, (h, w, 3))
    return np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8)


def test_ten_crop_average_equals_hand_computed_mean_of_crop_softmaxes():
    array = _colour_image((120, 90, 60))
    array[:, 20:] = (10, 220, 10)  # right half green: corner crops see different colours
    member = Member(MeanColour(), NAMES, UNIT_CFG, "mean-colour")
    data = ImageList([(Image.fromarray(array), 1)], NAMES)
    result = evaluate([member], data, crops=10)
    # 40x32 image, crop 28: shorter side 32 = 8/7 x 28, no resize; each crop's mean straight from the array.
    expected = np.mean([_softmax(10 * array[t:b, left:r].reshape(-1, 3).mean(0)[[2, 1, 0]] / 255.0)
                        for left, t, r, b in [c.box for c in ten_crops(40, 32, 28)]], axis=0)
    assert np.allclose(result.probabilities[0], expected, atol=1e-5)
    one = evaluate([member], data, crops=1).probabilities[0]
    assert not np.allclose(one, expected, atol=1e-3)  # the crops differ, so averaging them changes the answer


def test_classes_are_matched_by_name_and_metrics_by_value():
    images = [(Image.fromarray(_colour_image(COLOURS[n], seed=i)), label)
              for label, n in enumerate(["red", "green"]) for i in range(2)]
    data = ImageList(images + [(Image.fromarray(_colour_image(COLOURS["blue"])), 0)], ["red", "green"])
    member = Member(MeanColour(), NAMES, UNIT_CFG, "mean-colour")
    result = evaluate([member], data, crops=1)
    # The data's class 0 is "red" = checkpoint class 2: matching by index would score 1 of 5.
    assert result.targets.tolist() == [2, 2, 1, 1, 2]
    assert result.top1 == pytest.approx(4 / 5)  # the blue image labelled red is wrong
    assert result.per_class == {"red": pytest.approx(2 / 3), "green": 1.0}
    assert result.class_counts == {"red": 3, "green": 2}
    assert result.confusion.tolist() == [[1, 0, 2], [0, 2, 0]]  # rows: data red, green; columns: blue, green, red
    assert result.top5 == 1.0 and result.topk == 3
    # Balanced accuracy: the mean of the two recalls, not the image-weighted top-1; the majority share beside it.
    assert result.balanced == pytest.approx((2 / 3 + 1) / 2) and result.majority_share == pytest.approx(3 / 5)
    assert result.to_dict()["balanced_accuracy"] == pytest.approx(5 / 6)


def test_unknown_data_class_is_a_user_error():
    data = ImageList([(Image.new("RGB", (32, 32)), 0)], ["purple"])
    with pytest.raises(UserError, match="purple"):
        evaluate([Member(MeanColour(), NAMES, UNIT_CFG, "m")], data)


def test_ensemble_is_the_mean_of_member_probabilities_with_class_order_mapped():
    data = ImageList([(Image.fromarray(_colour_image(c, seed=i)), i) for i, c in enumerate(COLOURS.values())], NAMES)
    a = Member(MeanColour(10.0), NAMES, UNIT_CFG, "a")
    # b lists its classes in another order and has other input geometry: its outputs must be re-ordered by name.
    b = Member(MeanColour(3.0, order=(0, 2, 1)), ["red", "blue", "green"], {**UNIT_CFG, "input_size": 24}, "b")
    pa = evaluate([a], data, crops=10).probabilities
    alone = evaluate([b], data, crops=10)  # in b's own class order
    pb = alone.probabilities[:, [alone.model_classes.index(n) for n in NAMES]]
    both = evaluate([a, b], data, crops=10, batch_size=7)
    assert both.model_classes == NAMES
    assert np.allclose(both.probabilities, (pa + pb) / 2, atol=1e-6)
    assert np.allclose(pb, evaluate([Member(MeanColour(3.0), NAMES, b.model_cfg, "b2")], data, crops=10).probabilities,
                       atol=1e-6)
    assert np.allclose(both.probabilities.sum(1), 1.0, atol=1e-5)


def test_predict_in_memory_images_topk():
    member = Member(MeanColour(), NAMES, UNIT_CFG, "m")
    images = [Image.fromarray(_colour_image(COLOURS["green"])), Image.fromarray(_colour_image(COLOURS["red"]))]
    out = predict([member], images, topk=2, crops=144)
    assert [p.classes[0][0] for p in out] == ["green", "red"] and [p.image for p in out] == ["<image 0>", "<image 1>"]
    assert all(len(p.classes) == 2 and p.classes[0][1] >= p.classes[1][1] for p in out)


# ---------------------------------------------------------------------------------------------------------------
# End to end through the CLI, on generated JPEG folders and small googlenet_bn checkpoints (32 px, width 1/16).

KWARGS = {"num_classes": 3, "small_input": True, "width": 0.0625, "aux_logits": False}


def _checkpoint(path: Path, bias, names=NAMES) -> Path:
    """A small googlenet_bn whose classifier bias decides the answer: known predictions without training."""
    torch.manual_seed(0)
    model = create_model("googlenet_bn", **KWARGS)
    with torch.no_grad():
        model.fc.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    save_model_file(model, path / "best.safetensors", model_metadata(model, KWARGS, names))
    return path


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    root = tmp_path_factory.mktemp("jpegs")
    for name, rgb in COLOURS.items():
        (root / name).mkdir()
        for i, (w, h) in enumerate([(48, 36), (36, 48)]):  # landscape and portrait
            Image.fromarray(_colour_image(rgb, w, h, seed=i)).save(root / name / f"{i}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"red": _checkpoint(root / "red", [0.0, 0.0, 20.0]),   # always "red"
            "soft": _checkpoint(root / "soft", [0.0, 1.0, 0.0])}  # leans to "green"


def test_members_run_in_the_models_cpu_layout_and_score_as_in_nchw(tmp_path):
    """eval and predict run a googlenet_bn in channels_last on the CPU (its faster layout there) and maxout in
    NCHW; the probabilities are the NCHW model's up to fp32 rounding."""
    from inceptorch.bench.runtimes import calibrate_batchnorm

    torch.manual_seed(0)
    model = create_model("googlenet_bn", **KWARGS)
    calibrate_batchnorm(model, 32)  # activations of a trained model's scale, so the logits depend on the image
    nn.init.normal_(model.fc.weight, std=0.1)
    save_model_file(model, tmp_path / "bn.safetensors", model_metadata(model, KWARGS, NAMES))
    member, = load_members([tmp_path / "bn.safetensors"], "cpu")
    seen = []
    member.model.register_forward_pre_hook(lambda m, args: seen.append(
        args[0].is_contiguous(memory_format=torch.channels_last)))
    convs = [w for w in member.model.parameters() if w.dim() == 4]
    assert member.channels_last and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    nchw = Member(copy.deepcopy(member.model).to(memory_format=torch.contiguous_format), member.class_names,
                  member.model_cfg, "nchw")
    crops = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    probs, probs_nchw = member.probabilities(crops, 3, 4), nchw.probabilities(crops, 3, 4)
    assert seen == [True, True, False, False]  # two chunks in each layout (the hook is on the shared model)
    # The layouts sum each conv in another order: logits of this model (|logit| < 10) move by ~1e-6, and a
    # probability by at most a quarter of that (the softmax's slope).
    assert torch.allclose(probs, probs_nchw, rtol=0, atol=1e-5)
    assert not torch.allclose(probs[0], probs[1], atol=1e-3)  # the images differ, so a mix-up would show

    maxout = create_model("maxout", num_classes=3, width=0.0625)
    save_model_file(maxout, tmp_path / "maxout.safetensors",
                    model_metadata(maxout, {"num_classes": 3, "width": 0.0625}, NAMES))
    member, = load_members([tmp_path / "maxout.safetensors"], "cpu")
    assert not member.channels_last and member.model.h0.conv.weight.is_contiguous()


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("crops", [1, 10, 144])
def test_eval_cli_json(jpegs, runs, tmp_path, capsys, crops):
    png = tmp_path / "cm.png"
    out = _json(capsys, ["eval", "--checkpoint", str(runs["red"]), "--data", str(jpegs), "--crops", str(crops),
                         "--json", "--confusion-png", str(png), "--device", "cpu"])
    assert set(out) >= {"top1", "per_class", "num_images", "crops", "checkpoints", "confusion_matrix_png"}
    assert out["num_images"] == 6 and out["crops"] == crops and out["split"] == "all"  # a plain folder: all images
    assert out["top1"] == pytest.approx(1 / 3)  # everything predicted "red"
    # Top-3 of 3 classes is 1.0 for any model: not reported, as in the text output.
    assert "top5" not in out and "topk" not in out
    assert out["per_class"] == {"blue": 0.0, "green": 0.0, "red": 1.0}
    assert out["checkpoints"] == [str(runs["red"] / "best.safetensors")]
    assert out["confusion_matrix_png"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_cli_text_and_default_png_next_to_checkpoint(jpegs, runs, capsys):
    assert main(["eval", "--checkpoint", str(runs["red"]), "--data", str(jpegs)]) == 0
    text = capsys.readouterr().out
    assert "top-1 33.33%" in text and "6 images" in text and "1 crop per image" in text
    assert "top-3" not in text and "balanced" in text  # top-3 of 3 classes is 100% for any model: not reported
    png = runs["red"] / f"confusion_{jpegs.name}_all.png"  # a plain class folder: split "all"
    assert png.is_file() and f"confusion matrix: {png}" in text


@pytest.mark.parametrize("weights, data, split, crops, name", [
    ("best", "photos", "val", 1, "confusion_photos_val.png"),
    ("best", "photos/", "train", 1, "confusion_photos_train.png"),  # another split of the same data: another file
    ("best", "lists/test.csv", "all", 1, "confusion_test_all.png"),
    ("best", "digits", "val", 1, "confusion_digits_val.png"),
    ("best", "photos", "val", 10, "confusion_photos_val_10crops.png"),  # other crops, another picture
    ("last", "photos", "val", 144, "confusion_photos_val_last_144crops.png"),  # the run's other weights too
])
def test_default_confusion_png_is_named_after_what_was_evaluated(weights, data, split, crops, name):
    from inceptorch.cli.eval import default_confusion_png

    assert default_confusion_png(f"runs/a/{weights}.safetensors", data, split, crops=crops) == Path("runs/a") / name


def test_eval_cli_ensemble_averages_members(jpegs, runs, tmp_path, capsys):
    argv = ["eval", "--data", str(jpegs), "--crops", "10", "--json", "--confusion-png", str(tmp_path / "c.png")]
    members = load_members([runs["red"], runs["soft"]])
    data, _ = load_eval_data(str(jpegs))
    singles = [evaluate([m], data, crops=10).probabilities for m in members]
    both = evaluate(members, data, crops=10)
    assert np.allclose(both.probabilities, (singles[0] + singles[1]) / 2, atol=1e-6)
    out = _json(capsys, argv + ["--checkpoint", str(runs["red"]), "--checkpoint", str(runs["soft"])])
    assert out["checkpoints"] == [str(runs[k] / "best.safetensors") for k in ("red", "soft")]
    assert out["top1"] == pytest.approx(both.top1)
    # As the README and --help write it: one --checkpoint with several values is the same ensemble.
    assert _json(capsys, argv + ["--checkpoint", str(runs["red"]), str(runs["soft"])]) == out
    # By default the ensemble's picture goes next to its first member, not over that member's own one.
    out = _json(capsys, argv[:-2] + ["--checkpoint", str(runs["red"]), "--checkpoint", str(runs["soft"])])
    assert out["confusion_matrix_png"] == str(runs["red"] / f"confusion_{jpegs.name}_all_10crops_ensemble_of_2.png")


def test_predict_cli_files_dir_topk_json(jpegs, runs, capsys):
    files = [str(jpegs / "blue" / "0.jpg"), str(jpegs / "green")]
    out = _json(capsys, ["predict", "--checkpoint", str(runs["red"]), *files, "--topk", "2", "--json"])
    assert [p["image"] for p in out] == [files[0], str(jpegs / "green" / "0.jpg"), str(jpegs / "green" / "1.jpg")]
    for p in out:
        assert len(p["predictions"]) == 2 and p["predictions"][0]["class"] == "red"
        assert p["predictions"][0]["probability"] > 0.99 >= p["predictions"][1]["probability"]
    # The ensemble's probabilities are the mean of the members' (all three classes shown, order by name).
    soft = _json(capsys, ["predict", "--checkpoint", str(runs["soft"]), files[0], "--topk", "3", "--json"])
    red = _json(capsys, ["predict", "--checkpoint", str(runs["red"]), files[0], "--topk", "3", "--json"])
    ens = _json(capsys, ["predict", "--checkpoint", str(runs["red"]), "--checkpoint", str(runs["soft"]), files[0],
                         "--topk", "3", "--json"])
    as_dict = [{c["class"]: c["probability"] for c in r[0]["predictions"]} for r in (soft, red, ens)]
    for name in NAMES:
        assert as_dict[2][name] == pytest.approx((as_dict[0][name] + as_dict[1][name]) / 2, abs=1e-6)
    assert main(["predict", "--checkpoint", str(runs["red"]), files[0], "--topk", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == [files[0], "  100.00%  red"]
    # eval's `--checkpoint A B` spelling: B would be read as a folder of images (its PNGs classified).
    assert main(["predict", "--checkpoint", str(runs["red"]), str(runs["soft"]), files[0]]) == 2
    err = capsys.readouterr().err
    assert f"{runs['soft']} is a model, not images: for an ensemble repeat --checkpoint" in err
    assert len(err.strip().splitlines()) == 1


def test_eval_split_choices(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "val" / "a").mkdir(parents=True)
    for part, n in (("train", 3), ("val", 2)):
        for i in range(n):
            Image.new("RGB", (8, 8)).save(tmp_path / part / "a" / f"{i}.png")
    assert [len(load_eval_data(str(tmp_path), s)[0]) for s in ("auto", "val", "train", "all")] == [2, 2, 3, 5]
    assert load_eval_data(str(tmp_path / "train"))[1] == "all"  # a plain class folder: all of it
    assert len(load_eval_data(str(tmp_path / "train"), "val")[0]) == 1


def test_eval_cli_digits_in_memory(tmp_path, capsys):
    torch.manual_seed(0)
    kwargs = {**KWARGS, "num_classes": 10}
    model = create_model("googlenet_bn", **kwargs)
    save_model_file(model, tmp_path / "run" / "last.safetensors",
                    model_metadata(model, kwargs, [str(d) for d in range(10)]))
    out = _json(capsys, ["eval", "--checkpoint", str(tmp_path / "run"), "--data", "digits", "--json"])
    assert out["num_images"] == 359 and out["split"] == "val"  # the deterministic 20% held out of 1,797
    assert sum(out["class_counts"].values()) == 359 and 0.0 <= out["top1"] <= out["top5"] <= 1.0
    assert out["topk"] == 5  # 10 classes: top-5 says something
    assert Path(out["confusion_matrix_png"]).parent == tmp_path / "run"


def test_errors_are_one_line(jpegs, runs, tmp_path, capsys):
    bad = tmp_path / "bad"
    (bad / "purple").mkdir(parents=True)
    Image.new("RGB", (40, 40)).save(bad / "purple" / "x.jpg")
    other = _checkpoint(tmp_path / "other", [0.0, 0.0, 0.0], names=["cat", "dog", "red"])
    cases = [
        (["eval", "--checkpoint", str(tmp_path / "nope"), "--data", str(jpegs)], "checkpoint not found"),
        (["eval", "--checkpoint", str(runs["red"]), "--data", str(bad)], "does not know: purple"),
        (["eval", "--checkpoint", str(runs["red"]), "--checkpoint", str(other), "--data", str(jpegs)],
         "disagree on classes"),
        (["predict", "--checkpoint", str(runs["red"]), str(tmp_path / "missing.jpg")], "image not found"),
        (["predict", "--checkpoint", str(runs["red"]), str(jpegs / "red" / "0.jpg"), "--topk", "0"], "--topk"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    proc = cli_in_process("predict", "--checkpoint", str(runs["red"]), str(tmp_path / "broken.jpg"))
    assert proc.returncode == 2 and "broken.jpg" in proc.stderr and "Traceback" not in proc.stderr


def test_confusion_png_of_a_few_folders_against_many_outputs_is_at_most_2000_pixels_wide(tmp_path):
    """Three ImageNet folders scored by a 1,000-class model: a 3 x 1000 matrix, drawn 29,000 pixels wide (10 s)
    when the width followed the matrix's shape without a cap."""
    from inceptorch.evaluation.evaluate import save_confusion_png, score

    gen = torch.Generator().manual_seed(0)
    probs = torch.randn(6, 1000, generator=gen).softmax(dim=1)
    names = [f"n{i:08d}" for i in range(1000)]
    result = score(probs, torch.tensor([0, 1, 2, 0, 1, 2]), names[:3], names, 1, ["ckpt"])
    width, height = Image.open(save_confusion_png(result, tmp_path / "cm.png")).size
    assert width <= 2000 and height == 1600


@pytest.mark.parametrize("n_classes", [1, 2, 3, 12])
def test_confusion_png_keeps_its_title_and_labels_inside_the_image(tmp_path, n_classes):
    from inceptorch.evaluation.evaluate import save_confusion_png, score

    gen = torch.Generator().manual_seed(0)
    probs = torch.randn(40, n_classes, generator=gen).softmax(dim=1)
    targets = torch.randint(0, n_classes, (40,), generator=gen)
    names = [f"class {i}" for i in range(n_classes)]
    result = score(probs, targets, names, names, 144, ["ckpt"])  # the longest default title: "144 crops"
    pixels = np.asarray(Image.open(save_confusion_png(result, tmp_path / "cm.png")).convert("L"))
    border = np.concatenate([pixels[:3].ravel(), pixels[-3:].ravel(), pixels[:, :3].ravel(), pixels[:, -3:].ravel()])
    assert (border > 200).all()  # white all round: no text runs off an edge (a clipped title would)
    assert (pixels[: pixels.shape[0] // 8] < 100).any()  # and the title is there, at the top
