"""Other libraries' key names for our models, as tables read both ways.

torchvision and timm name the same tensors otherwise than we do: torchvision's Inception-v3 puts every conv of a
module at one level (`Mixed_7b.branch3x3_2a`) where ours has one submodule per branch (`Mixed_7b.branch3x3.1.
branch1x3`); timm's Inception-v4 numbers its layers and branches (`features.5.branch0`) where ours name what they
compute (`mixed5a.branch3x3`). One layout is one table of (their prefix, our prefix) pairs: it renames their keys to
ours for loading (`CONVERTERS`), and ours to theirs for writing (`WRITERS`), so that weights trained here load back
into the reference implementation (`to_reference_state_dict`, `inceptorch export --format weights --layout timm`).

The tables are read off the models' own spec rows, so a spec that gains or renames a stage changes its table too.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import UserError
from ..models._inception_v4_blocks import InceptionA, ReductionA, Stage, StemMixed, StemPoolConv, stage_rows
from ..models._rows import Conv
from ..models.inception_resnet import INCEPTION_RESNET_V2, Block8, Block17, Block35, ReductionBRes
from ..models.inception_v3 import V2, V3, Inc8, Inc17, Inc35, N, Red17, Red35, Row
from ..models.inception_v4 import INCEPTION_V4, InceptionB, InceptionC, ReductionB

StateDict = dict
Converter = Callable[[StateDict], StateDict]
Pairs = tuple[tuple[str, str], ...]
OURS = "inceptorch"  # our own layout, which every model writes


def rename_keys(state: dict, table: Sequence[tuple[str, str]]) -> dict:
    """Keys renamed by their longest matching prefix in `table` of (theirs, ours); an unmatched key is a KeyError."""
    table = sorted(table, key=lambda pair: -len(pair[0]))
    out = {}
    for key, value in state.items():
        theirs, ours = next(((a, b) for a, b in table if key.startswith(a)), (None, None))
        if theirs is None:
            raise KeyError(f"no mapping for {key!r}")
        out[ours + key[len(theirs):]] = value
    return out


@dataclass(frozen=True)
class KeyLayout:
    """One library's names for one model's keys: (their prefix, our prefix) pairs, each read both ways."""

    pairs: Pairs
    unwritten: tuple[str, ...] = ()  # our prefixes that the library's own build lacks: left out when writing

    def to_ours(self, state: StateDict) -> StateDict:
        """Their state dict in our keys; a key the table does not name is a KeyError (another layout, then)."""
        return rename_keys(state, self.pairs)

    def to_theirs(self, state: StateDict) -> StateDict:
        """Our state dict in their keys."""
        kept = {k: v for k, v in state.items() if not k.startswith(self.unwritten)}
        return rename_keys(kept, [(ours, theirs) for theirs, ours in self.pairs])


# ---- torchvision's Inception-v3 (timm's keeps its names): every conv of a module at one level -----------------------

def _chain(branch: str, n: int) -> list[tuple[str, str]]:
    """`{branch}_1` .. `{branch}_n`, the convs of a flat chain, are `{branch}.0` .. of our `conv_chain`."""
    return [(f"{branch}_{i}.", f"{branch}.{i - 1}.") for i in range(1, n + 1)]


def _split(theirs: str, ours: str) -> list[tuple[str, str]]:
    """`{theirs}a` / `{theirs}b`, Figure 7's 1x3 and 3x1 convs, are the two convs of our `Split` at `ours`."""
    return [(f"{theirs}a.", f"{ours}.branch1x3."), (f"{theirs}b.", f"{ours}.branch3x1.")]


_SAME = ("branch1x1.", "branch1x1.")
_POOL = ("branch_pool.", "branch_pool.1.")  # their pool is functional; ours is the first module of the branch

# Their names inside one module of each kind -> ours.
_FLAT_MODULES: dict[type, Callable[[Row], list[tuple[str, str]]]] = {
    Inc35: lambda r: [_SAME, *_chain(f"branch{r.kmid}x{r.kmid}", 2), *_chain("branch3x3dbl", 3), _POOL],
    Red35: lambda r: [("branch3x3.", "branch3x3."), *_chain("branch3x3dbl", 3)],
    Inc17: lambda r: [_SAME, *_chain(f"branch{N}x{N}", 3), *_chain(f"branch{N}x{N}dbl", 5), _POOL],
    Red17: lambda r: [*_chain("branch3x3", 2), *_chain(f"branch{N}x{N}x3", 4)],
    Inc8: lambda r: [_SAME, *_chain("branch3x3", 1), *_split("branch3x3_2", "branch3x3.1"),
                     *_chain("branch3x3dbl", 2), *_split("branch3x3dbl_3", "branch3x3dbl.2"), _POOL],
}


def flat_key_table(spec: tuple[Row, ...]) -> Pairs:
    """(their prefix, ours) for a whole v2/v3 network; stem convs, the aux head and fc keep their names."""
    table = [("AuxLogits.", "AuxLogits."), ("fc.", "fc.")]
    for row in spec:
        if isinstance(row, Conv):
            table.append((f"{row.name}.", f"{row.name}."))
        elif type(row) in _FLAT_MODULES:  # pools hold no weights
            table += [(f"{row.name}.{theirs}", f"{row.name}.{ours}") for theirs, ours in _FLAT_MODULES[type(row)](row)]
    return tuple(table)


# ---- timm's Inception-v4 and Inception-ResNet-v2: numbered layers and branches --------------------------------------

# timm's positional branch names -> ours, per block class. `{kernel}`: InceptionA names its middle branch by its
# kernel (branch5x5 in Inception-ResNet-v2's Mixed_5b).
_TIMM_BRANCHES: dict[type, Pairs] = {
    StemPoolConv: (("conv.", "branch3x3."),),
    StemMixed: (("branch0.", "branch3x3."), ("branch1.", "branch7x7.")),
    InceptionA: (("branch0.", "branch1x1."), ("branch1.", "branch{kernel}x{kernel}."), ("branch2.", "branch3x3dbl."),
                 ("branch3.", "branch_pool.")),
    ReductionA: (("branch0.", "branch3x3."), ("branch1.", "branch3x3dbl.")),
    InceptionB: (("branch0.", "branch1x1."), ("branch1.", "branch7x7."), ("branch2.", "branch7x7dbl."),
                 ("branch3.", "branch_pool.")),
    ReductionB: (("branch0.", "branch3x3."), ("branch1.", "branch7x7x3.")),
    InceptionC: (("branch0.", "branch1x1."), ("branch1_0.", "branch3x3.0."), ("branch1_1a.", "branch3x3.1.branch1x3."),
                 ("branch1_1b.", "branch3x3.1.branch3x1."), ("branch2_0.", "branch3x3dbl.0."),
                 ("branch2_1.", "branch3x3dbl.1."), ("branch2_2.", "branch3x3dbl.2."),
                 ("branch2_3a.", "branch3x3dbl.3.branch1x3."), ("branch2_3b.", "branch3x3dbl.3.branch3x1."),
                 ("branch3.", "branch_pool.")),
    # The residual blocks: the branches sit in `branches`, timm's `conv2d` is our linear 1x1 `proj`.
    Block35: (("branch0.", "branches.branch1x1."), ("branch1.", "branches.branch3x3."),
              ("branch2.", "branches.branch3x3dbl."), ("conv2d.", "proj.")),
    Block17: (("branch0.", "branches.branch1x1."), ("branch1.", "branches.branch7x7."), ("conv2d.", "proj.")),
    Block8: (("branch0.", "branches.branch1x1."), ("branch1.", "branches.branch3x3."), ("conv2d.", "proj.")),
    ReductionBRes: (("branch0.", "branch3x3a."), ("branch1.", "branch3x3b."), ("branch2.", "branch3x3dbl.")),
}


def timm_table(spec: Sequence, timm_layers: Sequence[str], head: tuple[str, str]) -> Pairs:
    """(timm's prefix, ours) for a whole network: timm's layer list zipped with our stages, then the classifier."""
    stages = stage_rows(spec)
    if len(stages) != len(timm_layers):
        raise ValueError(f"{len(stages)} stages but {len(timm_layers)} timm layers")
    table = []
    for (name, row), theirs in zip(stages, timm_layers):
        if isinstance(row, Conv):
            table.append((f"{theirs}.", f"{name}."))
        elif isinstance(row, Stage):  # pools hold no weights
            fields = row.widths._asdict()
            table += [(f"{theirs}.{a}", f"{name}.{b.format(**fields)}") for a, b in _TIMM_BRANCHES[row.block]]
    return (*table, head)


_TIMM_V4_LAYERS = tuple(f"features.{i}" for i in range(22))
_TIMM_IR_V2_LAYERS = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "maxpool_5a",
                      "mixed_5b", *(f"repeat.{i}" for i in range(10)), "mixed_6a",
                      *(f"repeat_1.{i}" for i in range(20)), "mixed_7a", *(f"repeat_2.{i}" for i in range(9)),
                      "block8", "conv2d_7b")

# timm's InceptionV3 keeps torchvision's key names; its files lack the aux head unless built with aux_logits=True
# (only its tv_in1k weights have one), which fitting tolerates. Written without it: timm's default build has no aux
# head, and torchvision's loads without one (`aux_logits=False`).
_V3_FLAT = KeyLayout(flat_key_table(V3), unwritten=("AuxLogits.",))

LAYOUTS: dict[str, dict[str, KeyLayout]] = {
    "inception_v3": {"timm": _V3_FLAT, "torchvision": _V3_FLAT},
    # inception_v2 model files written before its modules had one submodule per branch: v3's ports' naming.
    "inception_v2": {"flat layout": KeyLayout(flat_key_table(V2))},
    "inception_v4": {"timm": KeyLayout(timm_table(INCEPTION_V4, _TIMM_V4_LAYERS, ("last_linear.", "fc.")))},
    "inception_resnet_v2": {
        "timm": KeyLayout(timm_table(INCEPTION_RESNET_V2, _TIMM_IR_V2_LAYERS, ("classif.", "fc.")))},
}
CONVERTERS: dict[str, dict[str, Converter]] = {
    model: {source: layout.to_ours for source, layout in sources.items()} for model, sources in LAYOUTS.items()}
WRITERS: dict[str, dict[str, Converter]] = {
    model: {source: layout.to_theirs for source, layout in sources.items()} for model, sources in LAYOUTS.items()}


def from_torchvision(state: StateDict) -> StateDict:
    """torchvision's `inception_v3` state dict in our layout; a key it does not name is a KeyError."""
    return _V3_FLAT.to_ours(state)


def layouts(model_name: str) -> list[str]:
    """The layouts `model_name`'s weights can be written in: ours, then each reference's."""
    return [OURS, *sorted(LAYOUTS.get(model_name, {}))]


def to_reference_state_dict(model, layout: str) -> StateDict:
    """`model`'s weights (a model built by `create_model`) in `layout`'s key names, e.g. "timm"."""
    name = getattr(model, "model_name", type(model).__name__)
    state = {k: v for k, v in model.state_dict().items()}
    if layout == OURS:
        return state
    if layout not in LAYOUTS.get(name, {}):
        raise UserError(f"{name} has no {layout} layout to write (layouts: {', '.join(layouts(name))})")
    return LAYOUTS[name][layout].to_theirs(state)
