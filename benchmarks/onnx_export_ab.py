"""What folding BN before the ONNX export saves: the dynamo exporter on the eval model as built and on a copy with its
BN folded into the convs (what `export_onnx` traces now), rounds alternating in one process (BENCHMARKS.md).

    PYTHONPATH=src python benchmarks/onnx_export_ab.py [--rounds 3] [--models googlenet_bn inception_v3]

Per model: the median and min export time of each side, the node counts, and the largest logit difference between
the two files under ONNX Runtime (the same graph up to fp32 rounding). One thread, the model's input size, BN
statistics calibrated on one random batch as `inceptorch bench --runtime onnxruntime` does.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from inceptorch import create_model
from inceptorch.bench.runtimes import calibrate_batchnorm
from inceptorch.export.onnx import _batchnorm_folded, _export_proto


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["googlenet_bn", "inception_v3"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    import onnxruntime

    _export_proto(create_model("lenet5").eval(), torch.randn(2, 3, 32, 32))  # the exporter's imports, untimed
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, 1 thread")
    for name in args.models:
        model = create_model(name)
        size = model.default_cfg.input_size
        calibrate_batchnorm(model, size)  # logits of a trained model's scale, not denormal or overflowing floats
        example = torch.randn(2, 3, size, size)
        sides = {"as built": lambda: _export_proto(model, example),
                 "BN folded": lambda: _export_proto(_batchnorm_folded(model), example)}
        times = {side: [] for side in sides}
        protos = {}
        for r in range(args.rounds):
            for side in (sides if r % 2 == 0 else reversed(list(sides))):
                start = time.perf_counter()
                protos[side] = sides[side]()
                times[side].append(time.perf_counter() - start)
        x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
        logits = [onnxruntime.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"])
                  .run(None, {"input": x})[0] for p in protos.values()]
        print(f"{name}: max |logit difference| {np.abs(logits[0] - logits[1]).max():.1e} "
              f"(largest |logit| {np.abs(logits[0]).max():.1e})")
        for side, values in times.items():
            print(f"  {side:9s} median {statistics.median(values):5.2f} s   min {min(values):5.2f} s   "
                  f"{len(protos[side].graph.node)} nodes")
        ratio = statistics.median(times["as built"]) / statistics.median(times["BN folded"])
        print(f"  speed-up {ratio:.2f}x")


if __name__ == "__main__":
    main()
