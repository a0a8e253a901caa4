"""`inceptorch export`: a trained model (or a registered architecture) as ONNX, a torch.export program or a folder.

Every artifact is checked against the PyTorch model before the command reports success.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UserError
from ..extras import require

if TYPE_CHECKING:
    import torch

FORMATS = ("onnx", "pt2", "folder")


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a model to ONNX, a torch.export .pt2 program, or a folder")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a run folder, a model .safetensors file or a saved-model folder")
    source.add_argument("--model", help="a registered model name (random weights unless --pretrained)")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--output", required=True, help="the .onnx / .pt2 file or the folder to write")
    p.add_argument("--pretrained", help="with --model: a local weights file (ours, torchvision's or timm's)")
    p.add_argument("--num-classes", type=int, default=None, help="with --model: classifier size (default 1000)")
    p.add_argument("--small-input", action="store_true", help="with --model: GoogLeNet's small-input stem")
    p.add_argument("--input-size", type=int, default=None, help="example/preprocessing input size (default: model's)")
    p.set_defaults(func=run)


def load_source(args) -> torch.nn.Module:
    """The model `--checkpoint` or `--model` names, in eval mode, with `class_names` set."""
    from ..export.folder import from_pretrained
    from ..models import create_model

    if args.checkpoint:
        if args.pretrained or args.small_input or args.num_classes is not None:
            raise UserError("--pretrained, --num-classes and --small-input go with --model, not --checkpoint")
        return from_pretrained(args.checkpoint)
    kwargs = {"num_classes": args.num_classes or 1000}
    if args.small_input:
        kwargs["small_input"] = True
    model = create_model(args.model, pretrained=args.pretrained, **kwargs)
    model.class_names = []
    return model.eval()


def run(args) -> int:
    if args.format == "onnx":  # before anything is built: the file is checked with ONNX Runtime after writing
        for module in ("onnx", "onnxruntime"):
            require(module, "--format onnx")
    import torch

    model = load_source(args)
    size = args.input_size or model.default_cfg.input_size
    if size < model.default_cfg.min_input_size:
        raise UserError(f"input size {size} is below {model.model_name}'s minimum of {model.default_cfg.min_input_size}")
    if args.format == "onnx":
        from ..export.onnx import OPSET, export_onnx, onnx_parity

        path = export_onnx(model, args.output, size)
        parity = onnx_parity(model, path, size)
        print(f"wrote {path} (ONNX opset {OPSET}, eval graph, input [batch, 3, {size}, {size}] -> logits, dynamic "
              f"batch); ONNX Runtime vs PyTorch max |diff| {parity.worst:.2e} at batch sizes "
              f"{', '.join(map(str, parity.diffs))} (fp32 rounding allows {parity.tolerance:.1e})")
        if parity.worst > parity.tolerance:
            raise UserError(f"ONNX Runtime disagrees with PyTorch by {parity.worst:.2e}, more than fp32 rounding "
                            f"allows ({parity.tolerance:.1e} at logits up to {parity.scale:.2g}); the file is at {path}")
    elif args.format == "pt2":
        from ..export.program import export_program, load_program

        path = export_program(model, args.output, size)
        program, _ = load_program(path)
        x = torch.randn(3, 3, size, size)
        with torch.no_grad():
            diff = float((program.module()(x) - model(x)).abs().max())
        print(f"wrote {path} (torch.export program, dynamic batch); reloaded vs eager max |diff| {diff:.2e}")
    else:
        from ..export.folder import from_pretrained, save_pretrained

        path = save_pretrained(model, args.output, input_size=args.input_size)
        again = from_pretrained(path)
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            diff = float((again(x) - model(x)).abs().max())
        print(f"wrote {path}/config.json and model.safetensors ({model.model_name}, "
              f"{len(again.class_names)} class names); reloaded vs original max |diff| {diff:.2e}")
    return 0
