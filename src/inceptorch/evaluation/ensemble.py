"""One or several checkpoints behind one call: softmax probabilities averaged over crops and over models.

The GoogLeNet paper's winning entry averages the softmax of 7 models over 144 crops (arXiv:1409.4842 section 7).
Members may differ in input size or normalisation: each gets crops made for its own ModelCfg; they must agree on
the class names, whose order is taken from the first member.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..devices import prefers_channels_last
from ..errors import UserError
from ..weights.files import is_int8_model
from ..weights.model_file import load_model_file, resolve_model_file
from .crops import CropTransform, normalize
from .options import RUNTIMES


@dataclass
class Member:
    """A model ready for inference, what its outputs mean, and how it wants its input cropped."""

    model: nn.Module
    class_names: list[str]
    model_cfg: dict   # ModelCfg as a dict: input_size, mean, std, interpolation, crop_pct
    source: str       # the weights file it came from
    channels_last: bool = False  # feed the model NHWC batches (`inference_model` put its weights in that layout)
    temperature: float = 1.0  # logits are divided by it before the softmax (`calibration.py`; 1: uncalibrated)

    def transform(self, protocol: int) -> CropTransform:
        cfg = self.model_cfg
        return CropTransform(protocol, cfg["input_size"], cfg.get("crop_pct", 0.875),
                             cfg.get("interpolation", "bilinear"))

    @torch.inference_mode()
    def probabilities(self, crops: Tensor, n_crops: int, batch_size: int) -> Tensor:
        """uint8 crops [images * n_crops, 3, S, S] -> softmax averaged over each image's crops [images, classes]."""
        tensors = itertools.chain(self.model.parameters(), self.model.buffers())
        device = next(tensors, torch.empty(0)).device
        probs = []
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        for chunk in crops.split(batch_size):
            chunk = chunk.to(device, non_blocking=True).contiguous(memory_format=layout)  # uint8: the cheap copy
            x = normalize(chunk, self.model_cfg["mean"], self.model_cfg["std"])
            probs.append((self.model(x).float() / self.temperature).softmax(dim=1).cpu())
        probs = torch.cat(probs)
        return probs.view(-1, n_crops, probs.shape[1]).mean(dim=1)


def load_members(checkpoints: list[str | Path], device: str | torch.device = "cpu",
                 runtime: str = "torch") -> list[Member]:
    """Load every checkpoint (file or run folder) in eval mode; all must name the same classes.

    runtime "onnxruntime": every checkpoint is an .onnx file written by `export_onnx`, run on the CPU by ONNX
    Runtime with the preprocessing its metadata records; crops, normalisation and averaging are the same code.
    """
    if not checkpoints:
        raise UserError("give at least one --checkpoint")
    if runtime not in RUNTIMES:
        raise UserError(f"--runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    members = []
    for ckpt in checkpoints:
        # Every kind of model file runs: an .onnx export through ONNX Runtime, an int8 file from `quantize` as the
        # TorchScript it is (both on the CPU whatever `device` says), anything else as an inceptorch model file.
        if runtime == "onnxruntime" or Path(ckpt).suffix.lower() == ".onnx":
            members.append(_onnx_member(Path(ckpt)))
            continue
        if Path(ckpt).is_file() and is_int8_model(ckpt):
            members.append(_int8_member(Path(ckpt)))
            continue
        path = resolve_model_file(ckpt)
        model, meta = load_model_file(path)
        model, channels_last = inference_model(model, device)
        names = list(meta.get("class_names") or [])
        if not names:  # a file saved without names: its outputs are known by index only
            names = [str(i) for i in range(_num_outputs(model))]
        cfg = meta.get("model_cfg") or dataclass_dict(getattr(model, "default_cfg", None))
        temperature = float((meta.get("calibration") or {}).get("temperature", 1.0))
        members.append(Member(model, names, cfg, str(path), channels_last, temperature))
    reference = members[0]
    for m in members[1:]:
        if set(m.class_names) != set(reference.class_names) or len(m.class_names) != len(reference.class_names):
            extra = sorted(set(m.class_names) ^ set(reference.class_names))
            raise UserError(f"ensemble members disagree on classes: {m.source} vs {reference.source} "
                            f"({len(m.class_names)} vs {len(reference.class_names)} classes; differing: "
                            f"{_few(extra)})")
    return members


def inference_model(model: nn.Module, device: str | torch.device) -> tuple[nn.Module, bool]:
    """`model` in eval mode on `device`, in the memory format it runs fastest in there, and whether that is
    channels_last (`devices.prefers_channels_last`, the format it also trains in)."""
    model.eval().to(device)
    channels_last = prefers_channels_last(torch.device(device), getattr(model, "default_cfg", None))
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model, channels_last


def cpu_only(checkpoint: str | Path) -> bool:
    """Whether a model file runs on the CPU only: an ONNX file (this package's ONNX Runtime is the CPU build) or
    an int8 file (x86 int8 kernels)."""
    path = Path(checkpoint)
    return path.suffix.lower() == ".onnx" or (path.is_file() and is_int8_model(path))


def _int8_member(path: Path) -> Member:
    """An int8 file from `inceptorch quantize`: TorchScript on normalised batches, with the preprocessing, class
    names (and temperature) its metadata records."""
    from ..export.quantize import load_quantized

    module, meta = load_quantized(path)
    pre = meta.get("preprocessing") or {}
    missing = [k for k in ("input_size", "mean", "std") if k not in pre]
    if missing:
        raise UserError(f"{path} is an int8 model without the preprocessing it needs ({', '.join(missing)})")
    cfg = {"input_size": int(pre["input_size"]), "mean": tuple(pre["mean"]), "std": tuple(pre["std"]),
           "crop_pct": pre.get("crop_pct", 0.875), "interpolation": pre.get("interpolation", "bilinear")}
    names = list(meta.get("class_names") or [])
    if not names:
        with torch.no_grad():
            names = [str(i) for i in range(module(torch.zeros(1, 3, cfg["input_size"], cfg["input_size"])).shape[1])]
    module.model_name = f"{meta.get('model', 'model')} (int8)"
    temperature = float((meta.get("calibration") or {}).get("temperature", 1.0))
    return Member(module, names, cfg, str(path), False, temperature)


def _onnx_member(path: Path) -> Member:
    from ..export.onnx_runtime import OnnxClassifier, OnnxLogits

    if path.suffix.lower() != ".onnx":
        raise UserError(f"--runtime onnxruntime needs an .onnx file (from `inceptorch export --format onnx`), "
                        f"not {path}")
    classifier = OnnxClassifier(path)
    cfg = classifier.model_cfg()  # before anything runs: a file without our metadata fails here, by name
    return Member(OnnxLogits(classifier), classifier.class_names_or_indices(), cfg, str(path))


def class_order(member: Member, reference: list[str]) -> Tensor | None:
    """Column indices that put `member`'s outputs in `reference` order (None when already in that order)."""
    if member.class_names == reference:
        return None
    index = {name: i for i, name in enumerate(member.class_names)}
    return torch.tensor([index[name] for name in reference])


def ensemble_probabilities(members: list[Member], crops: list[Tensor], n_crops: int, batch_size: int) -> Tensor:
    """Mean over members of each member's crop-averaged probabilities; `crops[i]` holds member i's crops."""
    reference = members[0].class_names
    total = None
    for member, member_crops in zip(members, crops):
        probs = member.probabilities(member_crops, n_crops, batch_size)
        order = class_order(member, reference)
        probs = probs if order is None else probs[:, order]
        total = probs if total is None else total + probs
    return total / len(members)


def _num_outputs(model: nn.Module) -> int:
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    if isinstance(head, nn.Linear):
        return head.out_features
    raise UserError("the checkpoint records no class names and its classifier size cannot be read")


def dataclass_dict(cfg) -> dict:
    import dataclasses

    if cfg is None:
        raise UserError("the checkpoint records no model config (input size, mean, std)")
    return dataclasses.asdict(cfg)


def _few(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")
