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
    p.set_defaults(func=run)


def load_source(args) -> torch.nn.Module:
    """The model `--checkpoint` or `--model` names, in eval mode, with `class_names` set."""
    from ..export.folder import from_pretrained
    from ..pretrained import create_model

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
        raise UserError(f"input size {size} is below {model.model_name}'s minimum of {model.default_cfg.min_input_size}")
    if args.format == "onnx":
        from ..export.onnx import OPSET, export_onnx, onnx_parity

        path = export_onnx(model, args.output, size)
        results = onnx_parity(model, path, size)
        check = worst(list(results.values()))
        print(f"wrote {path} (ONNX opset {OPSET}, eval graph, input [batch, 3, {size}, {size}] -> logits, dynamic "
              f"batch); ONNX Runtime vs PyTorch at batch sizes {', '.join(map(str, results))}: {check.describe()}")
        if not check.ok:
            raise UserError(f"ONNX Runtime disagrees with PyTorch by {check.relative:.1e} of the largest logit "
                            f"({check.describe()}; tolerance {RELATIVE_TOLERANCE:g}); the file is at {path}")
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


def write_weights(model: torch.nn.Module, output: str, layout: str) -> int:
    """The state dict in `layout` as a bare safetensors file, checked by reading it back through the converter that
    loads that layout: what the reference library gets is what this model holds."""
    import torch
    from safetensors.torch import load_file, save_file

    from ..fileio import atomic_write
    from ..models._convert import CONVERTERS, to_reference_state_dict

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

