"""The reference implementation of each of our architectures, in torchvision or timm, built untrained.

Imports neither at module level: `inceptorch bench --help` lists the models without importing torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..errors import UserError

if TYPE_CHECKING:
    from torch import nn


class ReferenceWanted(Protocol):
    """What `build_reference` reads of a bench's settings (`speedup.BenchConfig` has these, among others)."""

    model: str
    compare: str | None
    num_classes: int

# Our model -> (library, that library's name for the same architecture). torchvision's GoogLeNet is the BN port,
# so it is the reference for both of our GoogLeNet builds; timm holds the only maintained v4 / IR-v2 ports.
REFERENCES: dict[str, dict[str, str]] = {
    "googlenet": {"torchvision": "googlenet"},
    "googlenet_bn": {"torchvision": "googlenet"},
    "inception_v3": {"torchvision": "inception_v3", "timm": "inception_v3"},
    "inception_v4": {"timm": "inception_v4"},
    "inception_resnet_v2": {"timm": "inception_resnet_v2"},
}


def build_reference(cfg: ReferenceWanted, input_size: int) -> tuple[nn.Module, str]:
    """The other library's model of the same architecture as `cfg.model`, untrained, aux heads off; and a label.

    `cfg.compare`: "torchvision" or "timm"; None takes the first one `REFERENCES` lists for the model.
    """
    choices = REFERENCES.get(cfg.model)
    if not choices:
        raise UserError(f"no reference implementation is known for {cfg.model!r}; known: {', '.join(REFERENCES)}")
    library = cfg.compare or next(iter(choices))
    if library not in choices:
        raise UserError(f"{library} has no {cfg.model}; compare with {' or '.join(choices)}")
    arch = choices[library]
    try:
        if library == "torchvision":
            import torchvision.models as tvm
        else:
            import timm
    except ImportError:
        raise UserError(f"--compare {library} needs the {library} package (pip install {library})") from None
    if library == "torchvision":
        model = getattr(tvm, arch)(weights=None, aux_logits=False, init_weights=False, num_classes=cfg.num_classes)
    else:
        if not timm.is_model(arch):
            raise UserError(f"this timm ({timm.__version__}) has no model {arch!r}")
        model = timm.create_model(arch, pretrained=False, num_classes=cfg.num_classes)
    return model, f"{library} {arch}"
