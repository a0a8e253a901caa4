"""`inceptorch serve` as a real process on 127.0.0.1, spoken to with real HTTP requests: its answers equal
predict's, concurrent requests share batches, bad input is a 4xx and the server goes on, a full queue is a 503,
SIGTERM lets requests in flight finish; every kind of model file runs in predict as in serve."""
from __future__ import annotations

import io
import json
import signal
import threading
import time

import numpy as np
import pytest
from PIL import Image

from _cli import cli_in_process
from _server import Server
from _train_helpers import TINY, make_jpeg_folder

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    data = make_jpeg_folder(root / "colours", per_class=10)
    out = root / "run"
    done = cli_in_process("train", *TINY, "--data", data, "--epochs", "3", "--batch-size", "6", "--lr", "0.01",
                          "--output", out, "--no-report")
    assert done.returncode == 0, done.stderr
    return data, out


@pytest.fixture(scope="module")
def server(run):
    _, out = run
    # Small limits, so that the refusals are cheap to provoke: 0.2 MB bodies, images of at most 20,000 pixels. A
    # batch waits up to 100 ms for company: on a busy 2-core machine fifty requests sent at once arrive over a second.
    s = Server(out, "--max-batch", "8", "--max-wait-ms", "100", "--max-body-mb", "0.2",
               env={"INCEPTORCH_MAX_IMAGE_PIXELS": "20000"})
    yield s
    s.stop()


def _png(seed: int = 0, size: int = 24) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_answers_equal_predicts_for_the_same_images_and_model(run, server):
    data, out = run
    files = sorted((data / "red").glob("*.jpg"))[:2] + sorted((data / "blue").glob("*.jpg"))[:2]
    done = cli_in_process("predict", "--checkpoint", out, *files, "--topk", "3", "--json")
    expected = json.loads(done.stdout)
    for file, want in zip(files, expected):
        r = httpx.post(f"{server.url}/predict?topk=3", content=file.read_bytes(),
                       headers={"Content-Type": "image/jpeg"})
        assert r.status_code == 200, r.text
        got = r.json()
        assert [p["class"] for p in got["predictions"]] == [p["class"] for p in want["predictions"]]
        assert np.allclose([p["probability"] for p in got["predictions"]],
                           [p["probability"] for p in want["predictions"]], atol=1e-5)
        assert got["model"] == "googlenet_bn" and len(got["version"]) == 12
    r = httpx.post(f"{server.url}/predict/batch?topk=1", files=[("a", (f.name, f.read_bytes())) for f in files])
    assert r.status_code == 200 and [p["predictions"][0]["class"] for p in r.json()["predictions"]] == \
        [w["predictions"][0]["class"] for w in expected]


def _series(text: str, name: str) -> float:
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name)))


def test_fifty_requests_at_once_are_all_answered_in_shared_batches(server):
    results = [None] * 50
    bodies = [_png(i) for i in range(50)]
    start = threading.Barrier(50)
    before = httpx.get(f"{server.url}/metrics").text

    def send(i: int) -> None:
        with httpx.Client(timeout=60) as client:  # connected before the barrier: only the requests race
            client.get(f"{server.url}/healthz")
            start.wait()
            results[i] = client.post(f"{server.url}/predict", content=bodies[i],
                                     headers={"Content-Type": "image/png"}).status_code

    threads = [threading.Thread(target=send, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 50
    after = httpx.get(f"{server.url}/metrics").text
    images = _series(after, "inceptorch_batch_images_sum") - _series(before, "inceptorch_batch_images_sum")
    batches = _series(after, "inceptorch_batch_images_count") - _series(before, "inceptorch_batch_images_count")
    single = (_series(after, 'inceptorch_batch_images_bucket{le="1.0"}')
              - _series(before, 'inceptorch_batch_images_bucket{le="1.0"}'))
    assert images == 50 and batches < 50 and single < batches  # some forward passes served several requests


@pytest.mark.parametrize("body, headers, status, message", [
    (b"hello", {"Content-Type": "text/plain"}, 400, "expected an image"),
    (b"\x89PNG\r\n\x1a\nnot really", {"Content-Type": "image/png"}, 400, "truncated"),
    (b"GIF? no, text", {"Content-Type": "image/gif"}, 400, "not an image in a format Pillow can read"),
    (b"", {"Content-Type": "image/png"}, 400, "empty"),
    ("big", {"Content-Type": "image/png"}, 413, "over the limit"),
    ("bomb", {"Content-Type": "image/png"}, 400, "decompression bomb"),
])
def test_bad_input_is_a_one_line_4xx_and_the_server_goes_on(server, body, headers, status, message):
    if body == "big":
        body = b"\x00" * 300_000  # over 0.2 MB
    elif body == "bomb":
        body = _png(size=200)  # 40,000 pixels: over this server's limit of 20,000
    r = httpx.post(f"{server.url}/predict", content=body, headers=headers)
    assert r.status_code == status and message in r.json()["error"] and "\n" not in r.json()["error"]
    assert httpx.post(f"{server.url}/predict", content=_png(), headers={"Content-Type": "image/png"}).status_code \
        == 200


def test_health_readiness_model_and_metrics_endpoints(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    model = httpx.get(f"{server.url}/model").json()
    assert model["classes"] == ["blue", "green", "red"] and model["input_size"] == 32
    assert model["preprocessing"]["mean"] and model["calibration"]["temperature"] == 1.0
    metrics = httpx.get(f"{server.url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in ("inceptorch_requests_total", "inceptorch_request_errors_total", "inceptorch_request_seconds_bucket",
                 "inceptorch_batch_images_bucket", "inceptorch_queue_images"):
        assert name in metrics.text
    assert "<input id=\"file\"" in httpx.get(f"{server.url}/").text


def test_a_full_queue_answers_503_with_retry_after(run):
    _, out = run
    s = Server(out, "--max-queue", "2", "--max-batch", "2", "--max-wait-ms", "400")
    try:
        statuses, retry = [], []

        def send(i: int) -> None:
            r = httpx.post(f"{s.url}/predict", content=_png(i), headers={"Content-Type": "image/png"}, timeout=60)
            statuses.append(r.status_code)
            if r.status_code == 503:
                retry.append(r.headers.get("retry-after"))

        threads = [threading.Thread(target=send, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses.count(200) >= 2 and statuses.count(503) >= 1 and set(statuses) <= {200, 503}
        assert retry and all(r == "1" for r in retry)
    finally:
        s.stop()


def test_sigterm_finishes_the_requests_in_flight_then_exits_0(run):
    _, out = run
    s = Server(out, "--max-wait-ms", "1500")  # a lone request waits 1.5 s for company: it is in flight a while
    answers = []
    t = threading.Thread(target=lambda: answers.append(httpx.post(
        f"{s.url}/predict", content=_png(), headers={"Content-Type": "image/png"}, timeout=30).status_code))
    t.start()
    time.sleep(0.5)
    s.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.TransportError):  # new requests are refused while it drains
        httpx.post(f"{s.url}/predict", content=_png(), headers={"Content-Type": "image/png"}, timeout=5)
    t.join(30)
    assert answers == [200]
    assert s.process.wait(30) == 0


def test_every_model_file_runs_in_predict_and_serve(run, tmp_path):
    """A run folder, its model file, a saved folder, an ONNX export and an int8 file: predict takes each with
    the preprocessing it records, and they agree (fp32 to 1e-4; int8 on the top class of most images)."""
    pytest.importorskip("onnxruntime")
    data, out = run
    saved, onnx_file, int8_file = tmp_path / "saved", tmp_path / "m.onnx", tmp_path / "m-int8.pt"
    for fmt, path in (("folder", saved), ("onnx", onnx_file)):
        assert cli_in_process("export", "--checkpoint", out, "--format", fmt, "--output", path).returncode == 0
    done = cli_in_process("quantize", "--checkpoint", out, "--calibration", data, "--output", int8_file)
    assert done.returncode == 0, done.stderr
    files = sorted(data.rglob("*.jpg"))[::3]
    answers = {}
    for kind, checkpoint in (("run", out), ("file", out / "best.safetensors"), ("saved", saved),
                             ("onnx", onnx_file), ("int8", int8_file)):
        done = cli_in_process("predict", "--checkpoint", checkpoint, *files, "--topk", "3", "--json")
        assert done.returncode == 0, (kind, done.stderr)
        answers[kind] = json.loads(done.stdout)
    reference = answers.pop("run")
    for kind, got in answers.items():
        tops = [a["predictions"][0]["class"] == b["predictions"][0]["class"] for a, b in zip(got, reference)]
        if kind == "int8":
            assert np.mean(tops) >= 0.8, tops
            continue
        assert all(tops), kind
        for a, b in zip(got, reference):
            assert np.allclose([p["probability"] for p in a["predictions"]],
                               [p["probability"] for p in b["predictions"]], atol=1e-4), kind
    s = Server(int8_file)
    try:
        r = httpx.post(f"{s.url}/predict", content=files[0].read_bytes(), headers={"Content-Type": "image/jpeg"})
        assert r.status_code == 200 and r.json()["model"].endswith("(int8)")
    finally:
        s.stop()


def test_int8_onnx_export_agrees_with_fp32_carries_its_accuracy_and_runs_everywhere(run, tmp_path):
    """export --int8: calibrated on the run's images, scored against fp32 on its held-out ones, the scores in the
    file's metadata; predict runs it; a threshold no int8 file can meet refuses it in one line and leaves none."""
    pytest.importorskip("onnxruntime")
    data, out = run
    path = tmp_path / "m-int8.onnx"
    done = cli_in_process("export", "--checkpoint", out, "--format", "onnx", "--int8", "--calibration", data,
                          "--output", path, "--max-drop", "100")
    assert done.returncode == 0, done.stderr
    from inceptorch.export.onnx_runtime import OnnxClassifier

    info = OnnxClassifier(path).meta["int8"]
    assert info["method"] == "minmax" and info["calibration_images"] > 0 and info["val_images"] > 0
    assert abs(info["top1_drop_points"] - 100 * (info["top1_fp32"] - info["top1_int8"])) < 1e-6
    assert f"int8: top-1 {info['top1_int8']:.2%}" in done.stdout
    import onnx

    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ: ONNX Runtime runs the convs in int8
    fp32 = json.loads(cli_in_process("predict", "--checkpoint", tmp_path / "m-int8.fp32.onnx",
                                     *sorted(data.rglob("*.jpg")), "--topk", "1", "--json").stdout)
    int8 = json.loads(cli_in_process("predict", "--checkpoint", path, *sorted(data.rglob("*.jpg")), "--topk", "1",
                                     "--json").stdout)
    agree = np.mean([a["predictions"][0]["class"] == b["predictions"][0]["class"] for a, b in zip(fp32, int8)])
    assert agree >= 0.8
    refused = tmp_path / "refused.onnx"
    done = cli_in_process("export", "--checkpoint", out, "--format", "onnx", "--int8", "--calibration", data,
                          "--output", refused, "--max-drop", "-101")
    assert done.returncode == 2 and "no int8 file written" in done.stderr and len(done.stderr.splitlines()) == 1
    assert not refused.exists()
