"""The HTTP service: Starlette routes over one loaded model and a dynamic batcher, run by uvicorn.

Starlette rather than FastAPI: the service takes image bytes and answers JSON, so FastAPI's request models and
pydantic validation would add a dependency and a layer without checking anything; Starlette is what FastAPI runs
on, with the same ASGI server (uvicorn) and the same multipart parser.

    POST /predict            one image: the raw bytes (Content-Type image/*) or multipart/form-data with one file
    POST /predict/batch      several images, multipart/form-data
         ?topk=5             how many classes to return; ?explain=1 adds a Grad-CAM heat map (PNG, base64)
    GET  /healthz            the process is up
    GET  /readyz             the model is loaded and warmed up (and the server is not shutting down)
    GET  /metrics            Prometheus text format: requests, errors, latency, batch sizes, queue depth
    GET  /model              what is served: classes, input size, preprocessing, provenance, version
    GET  /                   a page to try it: drop an image, see the top-5 and the heat map

Every error is a JSON object with one line, {"error": "..."}; a bad request never stops the server.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import time
from dataclasses import dataclass

import torch

from .. import __version__
from ..errors import UserError
from .batcher import Batcher, QueueFull
from .page import PAGE

CONFIG_ENV = "INCEPTORCH_SERVE_CONFIG"  # how `inceptorch serve --workers N` hands its settings to each process


@dataclass
class ServeConfig:
    checkpoint: str
    runtime: str = "torch"
    device: str = "cpu"
    max_batch: int = 16
    max_wait_ms: float = 5.0
    max_queue: int = 256      # images waiting at most; beyond, 503 with Retry-After
    max_body_mb: float = 20.0  # request bodies above this are refused with 413
    max_images: int = 64      # per /predict/batch request
    threads: int | None = None


class ServedModel:
    """The model and what a request needs of it: crops from image bytes, probabilities, heat maps, metadata."""

    def __init__(self, cfg: ServeConfig):
        from ..evaluation import load_members

        self.cfg = cfg
        self.member = load_members([cfg.checkpoint], cfg.device, cfg.runtime)[0]
        # Answers come from the inference copy `inceptorch.optimize` makes (BN folded, sibling 1x1 convs merged,
        # channels_last: the same logits within 1e-5, a faster forward); heat maps from the model as built, whose
        # layers they name.
        self.fast = self._optimized(self.member)
        self.transform = self.member.transform(1)
        self.class_names = self.member.class_names
        self.version = model_version(self.member.source)
        self.name = getattr(self.member.model, "model_name", "model")
        self._cam = None

    def crops(self, image) -> torch.Tensor:
        return self.transform(image)  # uint8 [1, 3, S, S]

    def probabilities(self, crops: torch.Tensor) -> torch.Tensor:
        return self.fast.probabilities(crops, 1, max(1, crops.shape[0]))

    @staticmethod
    def _optimized(member):
        import dataclasses

        from torch import nn

        from ..fast import optimize
        from ..models.layers import ConvNormAct

        model = member.model
        if not isinstance(model, nn.Module) or not any(isinstance(m, ConvNormAct) for m in model.modules()):
            return member  # an ONNX or int8 file, or a model optimize has nothing to fold in
        device = next(model.parameters()).device
        return dataclasses.replace(member, model=optimize(model).to(device), channels_last=True)

    def heat_map(self, image, target: int) -> str:
        """The Grad-CAM overlay for class `target` as a PNG data URI."""
        from ..explain.gradcam import explain_images, overlay

        (crop, heat), = explain_images(self.member, [image], [target])
        buffer = io.BytesIO()
        overlay(crop, heat.map).save(buffer, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

    def describe(self) -> dict:
        from ..weights.model_file import read_metadata

        meta = {}
        if self.member.source.endswith(".safetensors"):
            meta = read_metadata(self.member.source)
        return {"model": self.name, "version": self.version, "source": os.path.basename(self.member.source),
                "classes": self.class_names, "num_classes": len(self.class_names),
                "input_size": self.member.model_cfg["input_size"],
                "preprocessing": {k: self.member.model_cfg.get(k) for k in
                                  ("input_size", "mean", "std", "crop_pct", "interpolation")},
                "calibration": {"temperature": self.member.temperature},
                "pretrained": meta.get("pretrained"), "trained": meta.get("train"),
                "runtime": self.cfg.runtime if not self.member.source.endswith(".onnx") else "onnxruntime",
                "inceptorch_version": __version__}


def model_version(path: str) -> str:
    """A short content hash: the tensors' SHA-256 that our model files record, else the file's own. Replicas
    serving the same weights report the same version."""
    import hashlib

    from ..fileio import DIGEST_KEY

    if path.endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            digest = (f.metadata() or {}).get(DIGEST_KEY)
        if digest:
            return digest[:12]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


class BadRequest(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def create_app(cfg: ServeConfig | None = None, model: ServedModel | None = None):
    """The ASGI app; without `cfg`, the settings come from $INCEPTORCH_SERVE_CONFIG (uvicorn's worker processes).
    `model`: the model already loaded (else it loads as the server starts, before /readyz answers ready)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from .metrics import Metrics

    cfg = cfg or ServeConfig(**json.loads(os.environ[CONFIG_ENV]))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state = {"ready": False, "model": None, "batcher": None}
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        loop = asyncio.get_running_loop()
        served = model or await loop.run_in_executor(None, ServedModel, cfg)
        batcher = Batcher(served.probabilities, cfg.max_batch, cfg.max_wait_ms, cfg.max_queue,
                          on_batch=metrics.batch)
        batcher.start()
        state.update(model=served, batcher=batcher)
        # Warm up: the first forward pays for allocations and kernel choices; readiness waits for it.
        size = served.member.model_cfg["input_size"]
        await batcher.submit(torch.zeros(2, 3, size, size, dtype=torch.uint8))
        state["ready"] = True
        yield
        state["ready"] = False
        await batcher.stop()

    def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    async def read_body(request: Request) -> bytes:
        limit = int(cfg.max_body_mb * 1024 * 1024)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise BadRequest(413, f"the body is {int(length):,} bytes, over the limit of {limit:,}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(413, f"the body is over the limit of {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def images_of(request: Request, many: bool) -> list[tuple[str, bytes]]:
        """(name, bytes) of each image in the request: a raw image body, or the files of a multipart form."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind.startswith("multipart/form-data"):
            body = await read_body(request)
            form = await _form(request, body)
            files = [(getattr(v, "filename", None) or k, await v.read()) for k, v in form.multi_items()
                     if hasattr(v, "read")]
            if not files:
                raise BadRequest(400, "the form holds no file (send the image as a file field)")
        elif kind.startswith("image/") or kind == "application/octet-stream":
            files = [("the upload", await read_body(request))]
        else:
            raise BadRequest(400, f"expected an image (Content-Type image/jpeg, image/png, ...) or "
                                  f"multipart/form-data, not {kind or 'no Content-Type'!r}")
        if not many and len(files) != 1:
            raise BadRequest(400, f"/predict takes one image, not {len(files)} (use /predict/batch)")
        if len(files) > cfg.max_images:
            raise BadRequest(413, f"{len(files)} images in one request, over the limit of {cfg.max_images}")
        return files

    async def _form(request: Request, body: bytes):
        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        return await Request(request.scope, receive).form(max_files=cfg.max_images, max_fields=cfg.max_images)

    def options(request: Request) -> tuple[int, bool]:
        try:
            topk = int(request.query_params.get("topk", "5"))
        except ValueError:
            raise BadRequest(400, f"topk must be a whole number, not {request.query_params['topk']!r}") from None
        if topk < 1:
            raise BadRequest(400, f"topk must be at least 1, not {topk}")
        explain = request.query_params.get("explain", "0").lower() in ("1", "true", "yes")
        return min(topk, len(state["model"].class_names)), explain

    async def predict_images(request: Request, many: bool) -> list[dict]:
        from ..data.io import decode_image

        if not state["ready"]:
            raise BadRequest(503, "the model is not loaded yet", {"Retry-After": "1"})
        served: ServedModel = state["model"]
        topk, explain = options(request)
        files = await images_of(request, many)
        loop = asyncio.get_running_loop()
        decoded = []
        for name, data in files:
            try:
                image = await loop.run_in_executor(None, decode_image, data, name)
            except UserError as exc:
                raise BadRequest(400, str(exc)) from None
            decoded.append((name, image))
        crops = torch.cat([served.crops(image) for _, image in decoded])
        try:
            probs = await state["batcher"].submit(crops)
        except QueueFull:
            raise BadRequest(503, "the server is busy: its queue is full", {"Retry-After": "1"}) from None
        answers = []
        for (name, image), row in zip(decoded, probs):
            values, indices = row.topk(topk)
            answer = {"image": name, "predictions": [{"class": served.class_names[i], "probability": float(p)}
                                                     for p, i in zip(values.tolist(), indices.tolist())]}
            if explain:
                try:
                    answer["heat_map"] = await loop.run_in_executor(None, served.heat_map, image, int(indices[0]))
                except UserError as exc:
                    raise BadRequest(400, f"explain=1: {exc}") from None
            answers.append(answer)
        return answers

    def handler(endpoint: str, many: bool):
        async def handle(request: Request):
            tic = time.perf_counter()
            try:
                answers = await predict_images(request, many)
                served = state["model"]
                body = {"model": served.name, "version": served.version}
                body.update({"predictions": answers} if many else answers[0])
                response = JSONResponse(body)
            except BadRequest as exc:
                response = error(exc.status, exc.message, exc.headers)
            except Exception as exc:  # noqa: BLE001 - a request's failure is that request's 500, never the server's
                response = error(500, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            metrics.request(endpoint, response.status_code, time.perf_counter() - tic)
            return response
        return handle

    async def healthz(request: Request):
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request):
        if state["ready"]:
            return JSONResponse({"status": "ready", "model": state["model"].name})
        return error(503, "not ready: the model is loading or the server is stopping", {"Retry-After": "1"})

    async def model_info(request: Request):
        if state["model"] is None:
            return error(503, "the model is not loaded yet", {"Retry-After": "1"})
        return JSONResponse(state["model"].describe())

    async def metrics_text(request: Request):
        batcher = state["batcher"]
        metrics.queue(batcher.waiting_images if batcher else 0)
        return Response(metrics.text(), media_type=metrics.content_type)

    async def page(request: Request):
        return HTMLResponse(PAGE)

    async def favicon(request: Request):  # browsers ask for one; no content rather than a 404 in their console
        return Response(status_code=204)

    routes = [Route("/predict", handler("/predict", False), methods=["POST"]),
              Route("/predict/batch", handler("/predict/batch", True), methods=["POST"]),
              Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics_text),
              Route("/model", model_info), Route("/", page), Route("/favicon.ico", favicon)]
    return Starlette(routes=routes, lifespan=lifespan)
