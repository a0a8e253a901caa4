"""`inceptorch serve`: a model over HTTP, with dynamic batching, health and metrics endpoints and a page to try it."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys

from ..errors import UserError
from ._common import add_device_argument


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="an HTTP service for a model: POST /predict, dynamic batching, /metrics, a page at /",
        description="Serves a run folder, a model file, a saved folder, an .onnx export or an int8 file over HTTP "
                    "(Starlette on uvicorn). Concurrent requests share forward passes (up to --max-batch images, "
                    "waiting at most --max-wait-ms). SIGTERM lets requests in flight finish, then exits 0.")
    p.add_argument("--checkpoint", required=True, metavar="FILE_OR_RUN",
                   help="run folder, .safetensors model file, saved folder, .onnx file or int8 file")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch",
                   help="torch, or onnxruntime for an .onnx file (an .onnx file is run with ONNX Runtime anyway)")
    p.add_argument("--max-batch", type=int, default=16, help="images in one forward pass at most (default 16)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="how long the first request of a batch waits for others (default 5 ms; 0: no batching wait)")
    p.add_argument("--max-queue", type=int, default=256,
                   help="images waiting at most; beyond that requests get 503 with Retry-After (default 256)")
    p.add_argument("--max-body-mb", type=float, default=20.0, help="request bodies over this are refused (413)")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes, each with its own copy of the model (default 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per process (default: torch's)")
    p.add_argument("--access-log", action="store_true", help="log every request on stderr")
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..extras import require

    for module in ("starlette", "uvicorn", "multipart", "prometheus_client"):
        require(module, "inceptorch serve")
    import uvicorn

    from ..devices import resolve_device
    from ..evaluation.ensemble import cpu_only
    from ..serve.app import CONFIG_ENV, ServeConfig, ServedModel, create_app

    for name, value, low in (("--max-batch", args.max_batch, 1), ("--workers", args.workers, 1),
                             ("--max-queue", args.max_queue, 1), ("--port", args.port, 0)):
        if value < low:
            raise UserError(f"{name} must be at least {low}, not {value}")
    if args.max_wait_ms < 0 or not args.max_body_mb > 0:
        raise UserError("--max-wait-ms must not be negative and --max-body-mb must be positive")
    device = "cpu" if args.runtime == "onnxruntime" or cpu_only(args.checkpoint) else \
        str(resolve_device(args.device))
    cfg = ServeConfig(checkpoint=str(args.checkpoint), runtime=args.runtime, device=device,
                      max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                      max_body_mb=args.max_body_mb, threads=args.threads)
    served = ServedModel(cfg)  # load once here: a bad file is one line before any port is opened
    print(f"serving {served.name} (version {served.version}, {len(served.class_names)} classes) from "
          f"{cfg.checkpoint} on http://{args.host}:{args.port}  (POST /predict, page at /, metrics at /metrics; "
          f"batches of up to {cfg.max_batch} images, waiting {cfg.max_wait_ms:g} ms)", flush=True)
    common = {"host": args.host, "port": args.port, "log_level": "warning", "access_log": args.access_log,
              "timeout_graceful_shutdown": 30}
    # uvicorn drains on SIGTERM (no new connections, requests in flight finish), then raises the signal again for
    # the handler it found: this one takes it, so that a drained server exits 0 as a finished job should.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    if args.workers == 1:
        uvicorn.run(create_app(cfg, served), **common)
    else:  # uvicorn starts each worker process from an import string; the settings travel in the environment
        os.environ[CONFIG_ENV] = json.dumps(dataclasses.asdict(cfg))
        uvicorn.run("inceptorch.serve.app:create_app", factory=True, workers=args.workers, **common)
    print("inceptorch serve: stopped", file=sys.stderr)
    return 0
