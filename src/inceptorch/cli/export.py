"""`inceptorch export`: a trained model (or a registered architecture) as ONNX, a torch.export program, a folder,
or bare weights in our key layout or a reference library's (`--format weights --layout timm`).

Every artifact is checked against the PyTorch model before the command reports success.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from ..extras import require

if TYPE_CHECKING:
    import torch

FORMATS = ("onnx", "pt2", "folder", "weights")


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model to ONNX, a torch.export .pt2 program, or a folder")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a run folder, a model .safetensors file or a saved-model folder")
    source.add_argument("--model", help="a registered model name (random weights unless --pretrained)")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--output", required=True, help="the .onnx / .pt2 / .safetensors file or the folder to write")
    p.add_argument("--layout", default="inceptorch",
                   help="with --format weights: the key layout, inceptorch (ours) or a reference library's the model "
                        "loads from, e.g. timm for inception_v3, inception_v4, inception_resnet_v2")
    p.add_argument("--pretrained", metavar="imagenet|TAG|FILE",
                   help="with --model: its public ImageNet weights (imagenet or a tag, fetched once) or a weights "
                        "file (ours, torchvision's or timm's)")
    p.add_argument("--num-classes", type=int, default=None, help="with --model: classifier size (default 1000)")
    p.add_argument("--small-input", action="store_true", help="with --model: GoogLeNet's small-input stem")
    p.add_argument("--input-size", type=int, default=None, help="example/preprocessing input size (default: model's)")
    int8 = p.add_argument_group("int8 ONNX (--format onnx --int8)")
    int8.add_argument("--int8", action="store_true",
                      help="static int8 through ONNX Runtime's quantizer (QDQ, per-channel weights, uint8 activations)")
    int8.add_argument("--calibration", default=None, metavar="DATA",
                      help="images whose activations set the int8 ranges (their training split)")
    int8.add_argument("--val", default=None, metavar="DATA",
                      help="images to score fp32 against int8 on (default: --calibration's held-out split)")
    int8.add_argument("--calibration-method", default="minmax", choices=("minmax", "entropy", "percentile"),
                      help="how a range is read off the calibration activations (default minmax)")
    int8.add_argument("--calibration-images", type=int, default=128, metavar="N", help="at most N (default 128)")
    int8.add_argument("--max-drop", type=float, default=1.0, metavar="POINTS",
                      help="refuse the int8 file when its top-1 on --val is more than this many points below "
                           "fp32's (default 1)")
    p.set_defaults(func=run)


def load_source(args) -> torch.nn.Module:
    """The model `--checkpoint` or `--model` names, in eval mode, with `class_names` set."""
    from ..export.folder import from_pretrained
    from ..weights.pretrained import create_model

    if args.checkpoint:
        if args.pretrained or args.small_input or args.num_classes is not None:
            raise UserError("--pretrained, --num-classes and --small-input go with --model, not --checkpoint")
        return from_pretrained(args.checkpoint)
    kwargs = {"num_classes": args.num_classes or 1000}
    if args.small_input:
        kwargs["small_input"] = True
    model = create_model(args.model, pretrained=args.pretrained, **kwargs)
    model.class_names = getattr(model, "class_names", [])  # the weights' classes (ImageNet's), if any
    return model.eval()


# The file name each format is read back by: predict/eval pick ONNX Runtime by ".onnx", torch.export loads ".pt2".
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2", "weights": ".safetensors"}


def run(args) -> int:
    wanted = SUFFIXES.get(args.format)
    if wanted and Path(args.output).suffix.lower() != wanted:
        raise UserError(f"--format {args.format} writes a {wanted} file; name --output so (not {args.output})")
    if args.format == "onnx":  # before anything is built: the file is checked with ONNX Runtime after writing
        for module in ("onnx", "onnxruntime"):
            require(module, "--format onnx")
    import torch

    from ..export.parity import RELATIVE_TOLERANCE, parity, worst

    model = load_source(args)
    if args.layout != "inceptorch" and args.format != "weights":
        raise UserError("--layout goes with --format weights")
    if args.format == "weights":
        return write_weights(model, args.output, args.layout)
    size = args.input_size or model.default_cfg.input_size
    if size < model.default_cfg.min_input_size:
        raise UserError(f"input size {size} is below {model.model_name}'s minimum of "
                        f"{model.default_cfg.min_input_size}")
    if args.int8 and args.format != "onnx":
        raise UserError("--int8 goes with --format onnx")
    if args.int8 and not args.calibration:
        raise UserError("--int8 needs --calibration DATA: images whose activations set the int8 ranges")
    if args.format == "onnx":
        from ..export.onnx import OPSET, export_onnx, onnx_parity

        fp32 = Path(args.output).with_name(Path(args.output).stem + ".fp32.onnx") if args.int8 else args.output
        path = export_onnx(model, fp32, size)
        results = onnx_parity(model, path, size)
        check = worst(list(results.values()))
        print(f"wrote {path} (ONNX opset {OPSET}, eval graph, input [batch, 3, {size}, {size}] -> logits, dynamic "
              f"batch); ONNX Runtime vs PyTorch at batch sizes {', '.join(map(str, results))}: {check.describe()}")
        if not check.ok:
            raise UserError(f"ONNX Runtime disagrees with PyTorch by {check.relative:.1e} of the largest logit "
                            f"({check.describe()}; tolerance {RELATIVE_TOLERANCE:g}); the file is at {path}")
        if args.int8:
            write_int8(model, path, Path(args.output), size, args)
    elif args.format == "pt2":
        from ..export.program import export_program, load_program

        path = export_program(model, args.output, size)
        program, _ = load_program(path)
        x = torch.randn(3, 3, size, size)
        with torch.no_grad():
            check = parity(program.module()(x), model(x))
        print(f"wrote {path} (torch.export program, dynamic batch); reloaded vs eager {check.describe()}")
    else:
        from ..export.folder import from_pretrained, save_pretrained

        path = save_pretrained(model, args.output, input_size=args.input_size)
        again = from_pretrained(path)
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            check = parity(again(x), model(x))
        print(f"wrote {path}/config.json and model.safetensors ({model.model_name}, "
              f"{len(again.class_names)} class names); reloaded vs original {check.describe()}")
    return 0


def write_int8(model: torch.nn.Module, fp32: Path, output: Path, size: int, args) -> None:
    """The int8 file beside the fp32 one it was made from, scored against it on --val; refused (removed, one line)
    when it loses more than --max-drop points of top-1."""
    import numpy as np
    import torch

    from ..data.datasets import build_dataset
    from ..data.transforms import eval_transform
    from ..evaluation import evaluate, load_members
    from ..export.onnx_int8 import quantize_onnx, set_info

    if args.calibration_images < 1:
        raise UserError(f"--calibration-images must be at least 1, not {args.calibration_images}")
    calibration = build_dataset(args.calibration, "train")  # only its images matter: labels play no part
    transform = eval_transform(model.default_cfg, size)
    count = min(args.calibration_images, len(calibration))
    images = torch.stack([transform(calibration[i][0]) for i in range(count)])
    batches = [b.numpy().astype(np.float32) for b in images.split(16)]
    info = {"method": args.calibration_method, "calibration_images": count, "calibration_data": str(args.calibration),
            "format": "QDQ, per-channel int8 weights, uint8 activations"}
    quantize_onnx(fp32, output, batches, args.calibration_method, info)
    val = build_dataset(args.val or args.calibration, "val")  # its classes are matched to the model's by name
    scores = {}
    for name, path in (("fp32", fp32), ("int8", output)):
        scores[name] = evaluate(load_members([path], "cpu", "onnxruntime"), val).top1
    drop = 100 * (scores["fp32"] - scores["int8"])
    set_info(output, {"val_data": str(args.val or args.calibration), "val_images": len(val),
                      "top1_fp32": scores["fp32"], "top1_int8": scores["int8"], "top1_drop_points": drop})
    line = (f"int8: top-1 {scores['int8']:.2%} against fp32's {scores['fp32']:.2%} on {len(val)} images of "
            f"{args.val or args.calibration} ({drop:+.2f} points); {count} calibration images, "
            f"{args.calibration_method} ranges")
    if drop > args.max_drop:
        output.unlink(missing_ok=True)
        raise UserError(f"{line}: more than --max-drop {args.max_drop:g} points lost, no int8 file written "
                        f"(try --calibration-method entropy or percentile, more --calibration-images)")
    print(f"wrote {output}: {line}")


def write_weights(model: torch.nn.Module, output: str, layout: str) -> int:
    """The state dict in `layout` as a bare safetensors file, checked by reading it back through the converter that
    loads that layout: what the reference library gets is what this model holds."""
    import torch
    from safetensors.torch import load_file, save_file

    from ..fileio import atomic_write
    from ..weights.key_tables import CONVERTERS, to_reference_state_dict

    state = {k: v.detach().contiguous().cpu() for k, v in to_reference_state_dict(model, layout).items()}
    atomic_write(output, lambda tmp: save_file(state, tmp))
    back = load_file(output)
    ours = back if layout == "inceptorch" else CONVERTERS[model.model_name][layout](back)
    expected = model.state_dict()
    if any(not torch.equal(v, expected[k].cpu()) for k, v in ours.items()):
        raise UserError(f"{output} does not read back to the model's weights through the {layout} converter")
    where = "our key layout" if layout == "inceptorch" else f"{layout}'s key layout"
    print(f"wrote {output} ({model.model_name} weights in {where}, {len(state)} tensors, safetensors without "
          f"inceptorch metadata); read back through the {layout} converter: equal to the model's")
    return 0

