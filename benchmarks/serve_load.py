"""Load on `inceptorch serve`: throughput and latency percentiles at 1, 8 and 32 concurrent clients, for the same
weights served as a model file (PyTorch), as an ONNX export and as an int8 ONNX export, with dynamic batching on
and off; memory over many requests; and the same load with bad requests mixed in.

    PYTHONPATH=src python benchmarks/serve_load.py --model googlenet_bn --requests 400 --memory-requests 10000

Starts the server itself (a subprocess on 127.0.0.1, a free port) for each setting, and sends to 127.0.0.1 only.
Every phase is bounded in requests and in time (--max-seconds). Prints a Markdown table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"  # never anywhere else


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def jpeg(seed: int, size: int = 320) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


class Server:
    def __init__(self, checkpoint: Path, flags: list[str], threads: int):
        import httpx

        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        self.process = subprocess.Popen([sys.executable, "-m", "inceptorch", "serve", "--checkpoint", str(checkpoint),
                                         "--host", HOST, "--port", str(self.port), "--threads", str(threads), *flags],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server stopped: {self.process.stderr.read()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit("the server did not become ready")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as f:
            line = next(line for line in f if line.startswith("VmRSS"))
        return int(line.split()[1]) / 1024

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


async def load(url: str, bodies: list[tuple[bytes, str, int]], concurrency: int, max_seconds: float) -> dict:
    """Send every body with `concurrency` clients at once (each waits for its answer before sending the next);
    returns latencies and the status codes, and the answers' agreement with what each body expects."""
    import httpx

    queue = list(enumerate(bodies))
    latencies, statuses, wrong = [], [], 0
    deadline = time.monotonic() + max_seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal wrong
        while queue and time.monotonic() < deadline:
            _, (body, content_type, expected) = queue.pop()
            tic = time.perf_counter()
            r = await http.post(f"{url}/predict?topk=1", content=body, headers={"Content-Type": content_type})
            latencies.append(time.perf_counter() - tic)
            statuses.append(r.status_code)
            if r.status_code == 200 and expected >= 0 and r.json()["predictions"][0]["class"] != str(expected):
                wrong += 1

    tic = time.perf_counter()
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    seconds = time.perf_counter() - tic
    ms = np.array(latencies) * 1000
    return {"requests": len(latencies), "seconds": seconds, "per_s": len(latencies) / seconds,
            "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)), "statuses": {str(s): statuses.count(s) for s in set(statuses)},
            "wrong": wrong}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="googlenet_bn")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--requests", type=int, default=400, help="requests per phase")
    p.add_argument("--memory-requests", type=int, default=10000)
    p.add_argument("--max-seconds", type=float, default=600, help="a phase stops after this long, whatever is left")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()

    import torch

    import inceptorch

    work = Path(tempfile.mkdtemp(prefix="serve_load_"))
    torch.manual_seed(0)
    model = inceptorch.create_model(args.model, num_classes=1000, aux_logits=False)
    checkpoint = inceptorch.save_pretrained(model, work / "model", class_names=[str(i) for i in range(1000)],
                                            input_size=args.input_size)
    images = [jpeg(i) for i in range(64)]
    # What the model answers for each image, from predict itself: the server must agree with every answer.
    files = []
    for i, data in enumerate(images):
        (work / f"{i}.jpg").write_bytes(data)
        files.append(str(work / f"{i}.jpg"))
    out = subprocess.run([sys.executable, "-m", "inceptorch", "predict", "--checkpoint", str(checkpoint), *files,
                          "--topk", "1", "--json", "--device", "cpu"], capture_output=True, text=True, check=True)
    expected = [int(item["predictions"][0]["class"]) for item in json.loads(out.stdout)]
    good = [(images[i % 64], "image/jpeg", expected[i % 64]) for i in range(args.requests)]
    rng = random.Random(0)
    bad_kinds = [(b"not an image", "image/jpeg", -1), (b"hello", "text/plain", -1), (b"", "image/png", -1)]
    mixed = [rng.choice(bad_kinds) if rng.random() < 0.1 else body for body in good]

    onnx_file, int8_file = work / "model.onnx", work / "model-int8.onnx"
    calibration = work / "calibration"
    for i, data in enumerate(images[:32]):  # the export's calibration images: the same kind of photos, in two of
        for label in ("0", "1"):           # the model's classes, so that its fp32/int8 check can score them
            (calibration / label).mkdir(parents=True, exist_ok=True)
            (calibration / label / f"{i}.jpg").write_bytes(data)
    export = [sys.executable, "-m", "inceptorch", "export", "--checkpoint", str(checkpoint), "--format", "onnx"]
    subprocess.run([*export, "--output", str(onnx_file)], check=True, capture_output=True)
    # The model is untrained and the photos random: the int8 file's accuracy check means nothing here and is let
    # through by a threshold nothing reaches; its speed is what this measures.
    subprocess.run([*export, "--output", str(int8_file), "--int8", "--calibration", str(calibration),
                    "--max-drop", "100"], check=False, capture_output=True)
    on = ["--max-batch", "16", "--max-wait-ms", "5"]
    settings = {"model file (PyTorch), batching on (max 16, 5 ms)": (checkpoint, on),
                "model file (PyTorch), batching off": (checkpoint, ["--max-batch", "1", "--max-wait-ms", "0"]),
                "ONNX export (ONNX Runtime), batching on": (onnx_file, on)}
    if int8_file.is_file():
        settings["int8 ONNX export (ONNX Runtime), batching on"] = (int8_file, on)
    rows, results = [], {}
    for name, (served, flags) in settings.items():
        server = Server(served, flags, args.threads)
        try:
            for clients in (1, 8, 32):
                r = asyncio.run(load(server.url, good, clients, args.max_seconds))
                results[f"{name}, {clients}"] = r
                rows.append(f"| {name} | {clients} | {r['per_s']:.1f} | {r['p50']:.0f} | {r['p95']:.0f} | "
                            f"{r['p99']:.0f} | {r['statuses']} | {r['wrong']} |")
                print(rows[-1], flush=True)
            if name.startswith("model file (PyTorch), batching on"):
                r = asyncio.run(load(server.url, mixed, 8, args.max_seconds))
                results["mixed 10% bad, 8"] = r
                bad_sent = sum(1 for _, _, e in mixed if e < 0)
                print(f"mixed: {r['statuses']} ({bad_sent} bad sent), wrong answers {r['wrong']}", flush=True)
                before = server.rss_mb()
                many = [(images[i % 64], "image/jpeg", expected[i % 64]) for i in range(args.memory_requests)]
                r = asyncio.run(load(server.url, many, 8, args.max_seconds * 4))
                after = server.rss_mb()
                results["memory"] = {"requests": r["requests"], "rss_before_mb": before, "rss_after_mb": after,
                                     "statuses": r["statuses"]}
                print(f"memory: {r['requests']} requests, RSS {before:.0f} -> {after:.0f} MB, {r['statuses']}",
                      flush=True)
        finally:
            server.stop()
    print("\n| server | clients | requests/s | p50 ms | p95 ms | p99 ms | statuses | wrong answers |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
