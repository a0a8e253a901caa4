"""What eval, predict, calibrate, embed and report give beside accuracy: per-image rows, the practitioners'
scores (checked against scikit-learn), temperature scaling (stored, used by eval and by ONNX exports), pre-logits
features, and the HTML report."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import torch

from _cli import cli_in_process
from _train_helpers import TINY, make_jpeg_folder
from inceptorch.weights.model_file import load_model_file, read_metadata, save_model_file

pytest.importorskip("torchmetrics")
pytest.importorskip("sklearn")
pytestmark = pytest.mark.usefixtures("one_thread")


def test_scores_equal_scikit_learns_and_ece_its_definition():
    from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support, roc_auc_score

    from inceptorch.evaluation.scores import CALIBRATION_BINS, practitioner_scores

    rng = np.random.default_rng(0)
    targets = rng.integers(0, 4, 300)
    targets[targets == 3] = 2  # class 3 has no images: it gets no row, and the macro averages leave it out
    logits = rng.normal(size=(300, 4)) + 2.0 * np.eye(4)[targets] * rng.random((300, 1))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scores = practitioner_scores(probs, targets, ["a", "b", "c", "d"])
    assert [c.name for c in scores.classes] == ["a", "b", "c"]
    pred = probs.argmax(1)
    precision, recall, f1, support = precision_recall_fscore_support(targets, pred, labels=[0, 1, 2],
                                                                     zero_division=0)
    for i, c in enumerate(scores.classes):
        assert (c.precision, c.recall, c.f1, c.support) == pytest.approx((precision[i], recall[i], f1[i],
                                                                           support[i]), abs=1e-6)
        onehot = targets == i
        assert c.roc_auc == pytest.approx(roc_auc_score(onehot, probs[:, i]), abs=1e-6)
        assert c.average_precision == pytest.approx(average_precision_score(onehot, probs[:, i]), abs=1e-6)
    assert scores.macro_f1 == pytest.approx(f1_score(targets, pred, labels=[0, 1, 2], average="macro"), abs=1e-6)
    assert scores.weighted_f1 == pytest.approx(f1_score(targets, pred, average="weighted", labels=[0, 1, 2]),
                                               abs=1e-6)
    # ECE as Guo et al. define it: the image-weighted gap between confidence and accuracy over equal bins.
    confidence, correct = probs.max(1), (pred == targets)
    bins = np.minimum((confidence * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    ece = sum(abs(confidence[bins == b].mean() - correct[bins == b].mean()) * (bins == b).mean()
              for b in range(CALIBRATION_BINS) if (bins == b).any())
    assert scores.ece == pytest.approx(ece, abs=1e-5)
    assert json.dumps(scores.to_dict())  # no NaN: JSON-safe


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_outputs")
    data = make_jpeg_folder(root / "colours", per_class=10)
    out = root / "run"
    done = cli_in_process("train", *TINY, "--data", data, "--epochs", "3", "--batch-size", "6", "--lr", "0.01",
                          "--output", out, "--no-report")
    assert done.returncode == 0, done.stderr
    return data, out


def test_eval_writes_one_row_per_image_and_its_scores(run, tmp_path):
    data, out = run
    rows_file = tmp_path / "rows.csv"
    done = cli_in_process("eval", "--checkpoint", out, "--data", data, "--predictions", rows_file, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    with open(rows_file) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == report["num_images"] == len(report["predictions"]) > 0
    for row, item in zip(rows, report["predictions"]):
        assert row["path"] == item["path"] and row["path"].endswith(".jpg")
        assert int(row["correct"]) == (row["label"] == row["predicted"])
        assert float(row["loss"]) == pytest.approx(-np.log(float(row["label_probability"])), rel=1e-4)
        assert row["topk"].split("|")[0].split(":")[0] == row["predicted"]
    assert np.mean([int(r["correct"]) for r in rows]) == pytest.approx(report["top1"])
    assert set(report["scores"]["classes"]) <= {"red", "green", "blue"} and "ece" in report["scores"]
    assert all(p.endswith(".png") for p in report["pictures"].values())
    done = cli_in_process("eval", "--checkpoint", out, "--data", data)
    assert re.search(r"class +images +recall +precision +F1 +ROC-AUC +AP", done.stdout)
    assert "macro F1" in done.stdout and "calibration error (ECE)" in done.stdout


def test_calibration_fixes_an_overconfident_model_keeps_its_answers_and_reaches_exports(run, tmp_path):
    """Logits made 6x too large: the fitted temperature grows about 6x over the model's own, the calibration error
    falls, every prediction stays, and an ONNX export carries the temperature in its graph."""
    data, out = run
    own = tmp_path / "own"
    own.mkdir()
    for name in ("best.safetensors", "config.yaml"):
        (own / name).write_bytes((out / name).read_bytes())
    t_own = json.loads(cli_in_process("calibrate", "--checkpoint", own, "--json").stdout)["temperature"]
    model, meta = load_model_file(out / "best.safetensors")
    with torch.no_grad():
        model.fc.weight.mul_(6.0)
        model.fc.bias.mul_(6.0)
    hot = tmp_path / "hot"
    hot.mkdir()
    save_model_file(model, hot / "best.safetensors", meta)
    (hot / "config.yaml").write_text((out / "config.yaml").read_text())
    before = json.loads(cli_in_process("eval", "--checkpoint", hot, "--data", data, "--predictions",
                                       tmp_path / "before.csv", "--json").stdout)
    done = cli_in_process("calibrate", "--checkpoint", hot, "--json")
    assert done.returncode == 0, done.stderr
    fitted = json.loads(done.stdout)
    assert 4.0 < fitted["temperature"] / t_own < 9.0 and fitted["ece_after"] < fitted["ece_before"]
    assert read_metadata(hot / "best.safetensors")["calibration"]["temperature"] == fitted["temperature"]
    after = json.loads(cli_in_process("eval", "--checkpoint", hot, "--data", data, "--predictions",
                                      tmp_path / "after.csv", "--json").stdout)
    assert [r["predicted"] for r in after["predictions"]] == [r["predicted"] for r in before["predictions"]]
    assert after["scores"]["ece"] == pytest.approx(fitted["ece_after"], abs=1e-4)  # float32 logits / T here
    # The ONNX file divides by the temperature itself: ONNX Runtime's softmax is the calibrated one.
    pytest.importorskip("onnxruntime")
    from inceptorch.evaluation import load_members

    onnx_file = tmp_path / "hot.onnx"
    assert cli_in_process("export", "--checkpoint", hot, "--format", "onnx", "--output", onnx_file).returncode == 0
    x = torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8)
    torch_member, onnx_member = load_members([hot])[0], load_members([onnx_file], runtime="onnxruntime")[0]
    assert torch.allclose(torch_member.probabilities(x, 1, 4), onnx_member.probabilities(x, 1, 4), atol=1e-4)
    assert onnx_member.temperature == 1.0  # not divided twice
    assert cli_in_process("calibrate", "--checkpoint", hot, "--reset").returncode == 0
    assert "calibration" not in read_metadata(hot / "best.safetensors")


def test_embed_writes_the_pre_logits_features_of_each_image(run, tmp_path):
    data, out = run
    done = cli_in_process("embed", "--checkpoint", out, data / "red", "--output", tmp_path / "red")
    assert done.returncode == 0, done.stderr
    features = np.load(tmp_path / "red.npy")
    paths = (tmp_path / "red.csv").read_text().splitlines()
    assert features.shape[0] == len(paths) - 1 == 10
    model, _ = load_model_file(out)
    assert features.shape[1] == model.num_features


def test_report_is_one_self_contained_page_with_every_part(run, tmp_path):
    _, out = run
    page = tmp_path / "page" / "report.html"
    done = cli_in_process("report", out, "--output", page, "--neighbours")
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    for part in ("Per class", "Confusion matrix", "Precision-recall and ROC curves", "Calibration",
                 "Most confused pairs", "Most confident mistakes", "How the run was made", "config.yaml"):
        assert part in text, part
    assert not re.search(r"""(src|href)=['"](https?:)?//""", text)  # nothing fetched from a network
    sources = re.findall(r"""<img src='([^']+)'""", text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    link = re.search(r"<a href='([^']+\.csv)'", text).group(1)
    assert (page.parent / link).is_file()


def test_report_groups_the_curves_findings_and_words_the_last_one_as_the_run_did():
    """Consecutive epochs with one finding make one range; the last epoch's finding is recomputed from metrics.csv
    with the same words the run's log used (train/diagnosis.py)."""
    from types import SimpleNamespace

    from inceptorch.report.build import _diagnosis
    from inceptorch.train.diagnosis import diagnose

    flat = {"train_loss": 1.50, "train_top1": 60.0, "val_top1": 60.0, "val_loss": 0.9}
    kinds = ["", "", "underfitting", "underfitting", "", "underfitting"]
    metrics = [{"epoch": i + 1, **flat, "diagnosis": k} for i, k in enumerate(kinds)]
    result = SimpleNamespace(class_counts={"ok": 55, "bad": 45}, majority_share=0.55)
    lines = _diagnosis(metrics, result, {})
    assert lines[:2] == ["epochs 3-4: underfitting", "epoch 6: underfitting"]
    assert lines[2] == "after the last epoch, " + diagnose(metrics, 0.55, "ok").message
    assert "always answering 'ok' (55.0%)" in lines[2]
    # Under the balancing sampler the run compared against an even share, and so does the report.
    assert "(50.0%)" in _diagnosis(metrics, result, {"class_balance": "sampler"})[2]
    assert _diagnosis([{**m, "diagnosis": ""} for m in metrics], result, {}) == []
