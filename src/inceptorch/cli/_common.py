"""Arguments shared by the subcommands that run a trained model (eval, predict), and the --device flag of all."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..devices import DEVICE_HELP
from ..errors import UserError
from ..evaluation.options import PROTOCOLS, RUNTIMES

if TYPE_CHECKING:
    import torch


def add_model_args(p, images_follow: bool = False) -> None:
    """--checkpoint and the other ways to name the model(s). An ensemble is `--checkpoint A B` or `--checkpoint A
    --checkpoint B`; where image paths follow as positional arguments (`images_follow`, predict) only the second:
    `--checkpoint A photo.jpg` would otherwise take the photo for a second checkpoint."""
    if images_follow:
        p.add_argument("--checkpoint", action="append", default=[], metavar="CKPT_OR_RUN_DIR",
                       help="model file or run folder; repeat --checkpoint for an ensemble that averages its "
                            "members (--checkpoint A --checkpoint B; paper: 7 models)")
    else:
        p.add_argument("--checkpoint", nargs="+", action="extend", default=[], metavar="CKPT_OR_RUN_DIR",
                       help="model file or run folder; several average an ensemble (--checkpoint A B, or "
                            "--checkpoint A --checkpoint B; paper: 7 models)")
    p.add_argument("--model", default=None,
                   help="instead of --checkpoint: a registered model with --pretrained weights")
    p.add_argument("--pretrained", default=None, metavar="imagenet|TAG|FILE",
                   help="with --model: its public ImageNet weights (imagenet, or a tag from `inceptorch weights "
                        "list`, fetched once) or a weights file; MODEL.TAG alone names both")
    p.add_argument("--crops", type=int, choices=PROTOCOLS, default=1,
                   help="1: center crop; 10: corners + center, mirrored; 144: the GoogLeNet paper's protocol")
    p.add_argument("--runtime", choices=RUNTIMES, default="torch",
                   help="torch: a checkpoint or run folder; onnxruntime: an .onnx file from `inceptorch export` "
                        "(CPU, same preprocessing and output)")
    add_device_argument(p)


def runtime_device(args) -> torch.device:
    """The device of --device, which ONNX Runtime (the CPU build this package uses) and int8 files must leave at
    the CPU: `auto` is the CPU for them, and any other device one line."""
    from ..devices import resolve_device
    from ..evaluation.ensemble import cpu_only

    runs_on_cpu = args.runtime == "onnxruntime" or any(cpu_only(c) for c in getattr(args, "checkpoint", []) or [])
    if runs_on_cpu and args.device not in (None, "auto", "cpu"):
        what = "--runtime onnxruntime" if args.runtime == "onnxruntime" else "an .onnx or int8 model file"
        raise UserError(f"{what} runs on the CPU; drop --device {args.device}")
    return resolve_device("cpu" if runs_on_cpu else args.device)


def load_model_args(args, device: torch.device, runtime: str = "torch") -> list:
    """The ensemble members that --checkpoint names, or the one model that --model / --pretrained build."""
    from ..evaluation import load_members

    if not (args.model or args.pretrained):
        if not args.checkpoint:
            raise UserError("give --checkpoint, or --model with --pretrained (e.g. --model inception_v3 "
                            "--pretrained imagenet)")
        return load_members(args.checkpoint, device, runtime)
    if args.checkpoint or runtime != "torch":
        raise UserError("--model/--pretrained build one PyTorch model: drop --checkpoint and --runtime")
    return [pretrained_member(args.model, args.pretrained, device)]


def pretrained_member(model: str | None, pretrained: str | None, device: torch.device):
    """A Member for a registered model with pretrained weights, named by the weights' class names."""
    import dataclasses

    from ..evaluation import Member
    from ..evaluation.ensemble import inference_model
    from ..weights.pretrained import create_model

    if not pretrained and model and "." in model:
        pretrained = True  # --model MODEL.TAG
    if not pretrained:
        raise UserError(f"--model {model} needs --pretrained imagenet|TAG|FILE (or use --checkpoint)")
    if not model:
        model, _, tag = pretrained.partition(".")
        if not tag:
            raise UserError("--pretrained needs --model, unless it names MODEL.TAG (e.g. inception_v3.tf_in1k)")
    net, channels_last = inference_model(create_model(model, pretrained=pretrained), device)
    names = list(getattr(net, "class_names", None) or [str(i) for i in range(net.num_classes)])
    source = (getattr(net, "pretrained_cfg", None) or {}).get("weights") or str(pretrained)
    return Member(net, names, dataclasses.asdict(net.default_cfg), source, channels_last)


def match_imagenet_ids(members: list, data_classes: list[str]) -> None:
    """ImageNet folders name their classes by WordNet id (n01440764): models that name ImageNet's classes in
    words are scored against those ids instead."""
    from ..weights.sets import class_ids, class_names

    names, ids = list(class_names("imagenet-1k")), list(class_ids("imagenet-1k"))
    if set(data_classes) <= set(ids) and not set(data_classes) & set(names):
        for m in members:
            if m.class_names == names:
                m.class_names = ids


def add_device_argument(p, default: str | None = None) -> None:
    """--device, the same everywhere (`devices.resolve_device` reads it); None: the recipe's, else auto."""
    p.add_argument("--device", default=default, metavar="DEVICE",
                   help=f"{DEVICE_HELP} (default: {default or 'auto'})")
