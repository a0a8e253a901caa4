"""`inceptorch quantize`: post-training int8 for x86 CPUs; reports top-1 and latency of fp32 vs int8."""
from __future__ import annotations

import json

from ..errors import UserError
from ._data_flags import add_outside_paths_argument, add_pixel_limit_argument, apply_data_flags


def register(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="int8 post-training quantization (x86 CPU), fp32 vs int8 report")
    p.add_argument("--checkpoint", required=True, help="a run folder, model .safetensors or saved-model folder")
    p.add_argument("--calibration", required=True,
                   help="image data for calibration (its train split; a folder of class folders, CSV, ...)")
    p.add_argument("--val", default=None, help="validation data (default: the val split of --calibration)")
    p.add_argument("--output", required=True, help="the int8 TorchScript file to write (.pt)")
    p.add_argument("--calibration-batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="CPU threads for the latency measurement")
    p.add_argument("--iters", type=int, default=30, help="timed batch-1 forward passes per model")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    add_pixel_limit_argument(p)
    add_outside_paths_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    apply_data_flags(args)
    from torch.utils.data import DataLoader

    from ..bench.latency import bench_torch
    from ..data.datasets import build_dataset
    from ..export.folder import from_pretrained
    from ..export.preprocess import eval_transform
    from ..export.quantize import quantize_int8, save_quantized, top1

    model = from_pretrained(args.checkpoint)
    transform = eval_transform(model.preprocessing)
    calib = build_dataset(args.calibration, "train")
    val = build_dataset(args.val or args.calibration, "val")
    for name, data in (("--calibration", calib), ("--val", val)):
        if model.class_names and data.class_names != model.class_names:
            raise UserError(f"{name} classes {data.class_names[:5]} differ from the model's {model.class_names[:5]}")
    calib.transform = val.transform = transform
    calib_loader = DataLoader(calib, batch_size=args.batch_size, shuffle=False)
    val_loader = DataLoader(val, batch_size=args.batch_size, shuffle=False)

    qmodel = quantize_int8(model, (images for images, _ in calib_loader), max_batches=args.calibration_batches)
    size = model.preprocessing["input_size"]
    meta = {"model": model.model_name, "model_kwargs": model.model_kwargs, "class_names": model.class_names,
            "preprocessing": model.preprocessing, "quantization": "int8 static, FX x86 qconfig"}
    path = save_quantized(qmodel, args.output, size, meta)
    report = {"output": str(path), "val_images": len(val),
              "calibration_images": min(len(calib), args.calibration_batches * args.batch_size)}
    for label, net in (("fp32", model), ("int8", qmodel)):
        stats = bench_torch(net, size, threads=args.threads, iters=args.iters, runtime=f"pytorch-{label}")
        report[label] = {"top1": top1(net, val_loader), "latency_ms_median": stats.median_ms,
                         "latency_ms_p90": stats.p90_ms}
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"wrote {path} (int8, x86); calibrated on {report['calibration_images']} images, "
          f"validated on {len(val)}")
    print(f"{'':6}{'top-1':>8}  latency median / p90 (batch 1, {args.threads} threads, {size}px)")
    for label in ("fp32", "int8"):
        r = report[label]
        print(f"{label:6}{100 * r['top1']:7.2f}%  {r['latency_ms_median']:.2f} / {r['latency_ms_p90']:.2f} ms")
    print(f"top-1 change {100 * (report['int8']['top1'] - report['fp32']['top1']):+.2f} points, "
          f"speed-up x{report['fp32']['latency_ms_median'] / report['int8']['latency_ms_median']:.2f}")
    return 0
