"""Static int8 ONNX: ONNX Runtime's quantizer on an exported model, calibrated on the user's own images.

QDQ format (QuantizeLinear/DequantizeLinear pairs that ONNX Runtime fuses into int8 kernels), per-channel int8
weights, uint8 activations: on x86 the u8 x s8 products are what VNNI (and AVX2's vpmaddubsw) multiply natively
(ONNX Runtime's quantization guide recommends U8S8 there). Activation ranges come from calibration images put
through the model's own preprocessing; `method` chooses how a range is read off their activations: minmax (the
extremes), entropy (KL divergence, TensorRT's), percentile (99.999th).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..extras import require
from ..fileio import atomic_write

METHODS = ("minmax", "entropy", "percentile")


def quantize_onnx(fp32: str | Path, output: str | Path, batches: Iterable[np.ndarray], method: str = "minmax",
                  info: dict | None = None) -> Path:
    """`fp32` (an ONNX file from `export_onnx`) as int8 at `output`, its activation ranges read from `batches`
    (normalised float32 [N, 3, S, S]); the fp32 file's metadata is carried over, with `info` under "int8"."""
    onnx = require("onnx", "int8 ONNX export")
    quantization = require("onnxruntime.quantization", "int8 ONNX export")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in METHODS:
        raise UserError(f"--calibration-method must be one of {', '.join(METHODS)}, not {method!r}")
    batches = list(batches)
    if not batches:
        raise UserError("no calibration images")
    work = Path(tempfile.mkdtemp(prefix="inceptorch_int8_"))
    try:
        prepared = work / "prepared.onnx"
        # Shape inference and constant folding first: the quantizer needs every tensor's shape.
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        source = onnx.load(str(fp32))
        reader = _Reader(source.graph.input[0].name, batches)
        quantized = work / "int8.onnx"
        quantization.quantize_static(
            str(prepared), str(quantized), reader, quant_format=quantization.QuantFormat.QDQ, per_channel=True,
            activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
            calibrate_method={"minmax": quantization.CalibrationMethod.MinMax,
                              "entropy": quantization.CalibrationMethod.Entropy,
                              "percentile": quantization.CalibrationMethod.Percentile}[method])
        proto = onnx.load(str(quantized))
        del proto.metadata_props[:]
        for prop in source.metadata_props:
            value = prop.value
            if prop.key == "inceptorch" and info:
                value = json.dumps({**json.loads(prop.value), "int8": info})
            entry = proto.metadata_props.add()
            entry.key, entry.value = prop.key, value
        proto.doc_string = source.doc_string + " (int8, QDQ)"
        atomic_write(output, lambda tmp: onnx.save(proto, tmp))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Path(output)


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader protocol: one {input: batch} a call, then None."""

    def __init__(self, name: str, batches: list[np.ndarray]):
        self.name, self.batches = name, iter(batches)

    def get_next(self) -> dict | None:
        batch = next(self.batches, None)
        return None if batch is None else {self.name: np.ascontiguousarray(batch, dtype=np.float32)}


def set_info(path: str | Path, info: dict) -> None:
    """Update the "int8" entry of a written file's metadata (the accuracy measured after writing it)."""
    onnx = require("onnx", "int8 ONNX export")
    proto = onnx.load(str(path))
    for prop in proto.metadata_props:
        if prop.key == "inceptorch":
            meta = json.loads(prop.value)
            meta["int8"] = {**meta.get("int8", {}), **info}
            prop.value = json.dumps(meta)
    atomic_write(path, lambda tmp: onnx.save(proto, tmp))
