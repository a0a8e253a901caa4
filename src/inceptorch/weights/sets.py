"""The public pretrained weights for this family, as data: where each file lives, what it scored, how to feed it.

One row per weight set, named `MODEL.TAG` as timm names them (`inception_v3.tf_in1k`). A set comes from a
hash-named URL (torchvision's files: the first 8 hex digits of the file's SHA-256 are in its name, which
`torch.hub` checks) or from a Hugging Face hub repository (timm's files: the hub's ETag of a stored file is its
SHA-256, which inceptorch checks after the download). `inceptorch weights list` prints this table.

Preprocessing is what each source does for its own users: torchvision feeds ImageNet mean/std and, for the two
files ported from TensorFlow, turns on `transform_input` (its `googlenet` / `inception_v3` builders force it when
they load these weights); timm instead feeds mean = std = 0.5 (`IMAGENET_INCEPTION_MEAN`), the same [-1, 1] input.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from ..errors import UserError
from ..models.normalization import IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD

TORCHVISION_LICENSE = ("BSD-3-Clause code; torchvision's README: pretrained weights 'may have their own licenses or "
                       "terms and conditions derived from the dataset used for training' (ImageNet)")
TIMM_RESULTS = "https://github.com/huggingface/pytorch-image-models/blob/main/results/results-imagenet.csv"
TIMM_PROTOCOL = "timm validate.py, ImageNet-1k val (50,000 images), 299 px, {interp}, crop_pct {crop}, one crop"
TV_PROTOCOL = ("torchvision references/classification --test-only, ImageNet-1k val (50,000 images): resize {resize} "
               "bilinear, center crop {crop}, ImageNet mean/std")


@dataclass(frozen=True)
class Result:
    """A published ImageNet-1k accuracy and the protocol it was measured with."""

    top1: float
    top5: float
    protocol: str
    where: str  # the page or file that publishes it


@dataclass(frozen=True)
class Preprocessing:
    """Evaluation preprocessing: resize to input_size / crop_pct, center-crop input_size, normalise."""

    input_size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    transform_input: bool = False  # torchvision's in-model ImageNet -> [-1, 1] re-normalisation


@dataclass(frozen=True)
class KnownFile:
    """Another public copy of a weight set, recognised by the SHA-256 prefix in its name."""

    url: str
    label_offset: int = 0  # 1: TensorFlow's 1001-class head, whose row 0 is "background"


@dataclass(frozen=True)
class WeightSet:
    model: str        # our registered model name
    tag: str
    source: str       # "torchvision" or "timm": whose convention the file and its preprocessing follow
    origin: str       # how the weights were made
    license: str
    results: tuple[Result, ...]
    preprocessing: Preprocessing
    url: str = ""     # a hash-named file (downloaded into torch's hub cache) ...
    hub_id: str = ""  # ... or a Hugging Face hub repository holding `hub_file`
    hub_file: str = "model.safetensors"
    layout: str = "torchvision"  # the state-dict layout: "torchvision" is ours key for key; else a converter name
    classes: str = "imagenet-1k"
    aliases: tuple[str, ...] = ()
    known_files: tuple[KnownFile, ...] = ()
    notes: str = ""

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1] if self.url else self.hub_file

    @property
    def hash_prefix(self) -> str:
        """The SHA-256 prefix a hash-named file carries (`name-<hex>.pth`, torch.hub's convention); "" for hub files."""
        return hash_prefix_of(self.file_name) if self.url else ""


def hash_prefix_of(file_name: str) -> str:
    """`googlenet-1378be20.pth` -> `1378be20` (torch.hub.HASH_REGEX), or "" when the name carries none."""
    import re

    match = re.search(r"-([a-f0-9]{8,64})\.", file_name)
    return match.group(1) if match else ""


def _tv(input_size: int, resize: int) -> Preprocessing:
    # torchvision's ImageClassification(crop_size, resize_size): crop_pct is crop / resize (224 / 256 = 0.875).
    return Preprocessing(input_size, input_size / resize, "bilinear", IMAGENET_MEAN, IMAGENET_STD, transform_input=True)


def _timm(crop_pct: float = 0.875, mean=INCEPTION_MEAN, std=INCEPTION_STD) -> Preprocessing:
    # timm's pretrained_cfg for every tag here: 299 px, bicubic, the given crop_pct and mean/std.
    return Preprocessing(299, crop_pct, "bicubic", mean, std)


def _timm_result(top1: float, top5: float, crop: float = 0.875) -> Result:
    return Result(top1, top5, TIMM_PROTOCOL.format(interp="bicubic", crop=crop), TIMM_RESULTS)


# timm's files before the hub (timm's git history, 2023): the TF ports there keep TF's 1001-class head.
TIMM_RELEASES = "https://github.com/rwightman/pytorch-image-models/releases/download"

WEIGHT_SETS: tuple[WeightSet, ...] = (
    WeightSet(
        model="googlenet_bn", tag="tv_in1k", source="torchvision", aliases=("IMAGENET1K_V1",),
        url="https://download.pytorch.org/models/googlenet-1378be20.pth",
        origin="torchvision's GoogLeNet_Weights.IMAGENET1K_V1, ported from TensorFlow ('ported from the original "
               "paper'); trained on [-1, 1] input",
        license=TORCHVISION_LICENSE,
        results=(Result(69.778, 89.530, TV_PROTOCOL.format(resize=256, crop=224),
                        "https://pytorch.org/vision/stable/models/generated/torchvision.models.googlenet.html"),),
        preprocessing=_tv(224, 256),
        notes="the file's auxiliary heads are not trained (torchvision warns so); fine-tuning trains them"),
    WeightSet(
        model="inception_v3", tag="tv_in1k", source="torchvision", aliases=("IMAGENET1K_V1",),
        url="https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
        origin="torchvision's Inception_V3_Weights.IMAGENET1K_V1, ported from TensorFlow; trained on [-1, 1] input",
        license=TORCHVISION_LICENSE,
        results=(Result(77.294, 93.450, TV_PROTOCOL.format(resize=342, crop=299),
                        "https://pytorch.org/vision/stable/models/generated/torchvision.models.inception_v3.html"),
                 _timm_result(77.472, 93.468)),  # timm's inception_v3.tv_in1k: the same weights, timm's protocol
        preprocessing=_tv(299, 342),
        # timm's `inception_v3.tv_in1k` names this torchvision file's earlier copy as its URL.
        known_files=(KnownFile("https://download.pytorch.org/models/inception_v3_google-1a9a5a14.pth"),)),
    WeightSet(
        model="inception_v3", tag="tf_in1k", source="timm", hub_id="timm/inception_v3.tf_in1k", layout="timm",
        origin="timm's port of TF-slim's inception_v3_2016_08_28 checkpoint",
        license="apache-2.0", results=(_timm_result(77.866, 93.644),), preprocessing=_timm(),
        known_files=(KnownFile(f"{TIMM_RELEASES}/v0.1-weights/tf_inception_v3-e0069de4.pth", label_offset=1),)),
    WeightSet(
        model="inception_v3", tag="tf_adv_in1k", source="timm", hub_id="timm/inception_v3.tf_adv_in1k", layout="timm",
        origin="timm's port of TF's adv_inception_v3_2017_08_18 (adversarial training, Kurakin et al., "
               "arXiv:1611.01236)",
        license="apache-2.0", results=(_timm_result(77.598, 93.726),), preprocessing=_timm(),
        known_files=(KnownFile(f"{TIMM_RELEASES}/v0.1-weights/adv_inception_v3-9e27bd63.pth", label_offset=1),)),
    WeightSet(
        model="inception_v3", tag="gluon_in1k", source="timm", hub_id="timm/inception_v3.gluon_in1k", layout="timm",
        origin="GluonCV's model zoo InceptionV3, ported by timm", license="apache-2.0",
        results=(_timm_result(78.806, 94.372),), preprocessing=_timm(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        known_files=(KnownFile(f"{TIMM_RELEASES}/v0.1-weights/gluon_inception_v3-9f746940.pth"),)),
    WeightSet(
        model="inception_v4", tag="tf_in1k", source="timm", hub_id="timm/inception_v4.tf_in1k", layout="timm",
        origin="TF-slim's inception_v4_2016_09_09 checkpoint, ported by Cadene's pretrainedmodels, hosted by timm",
        license="apache-2.0", results=(_timm_result(80.144, 94.982),), preprocessing=_timm(),
        known_files=(KnownFile(f"{TIMM_RELEASES}/v0.1-cadene/inceptionv4-8e4777a0.pth", label_offset=1),)),
    WeightSet(
        model="inception_resnet_v2", tag="tf_in1k", source="timm", hub_id="timm/inception_resnet_v2.tf_in1k",
        layout="timm", origin="timm's port of TF-slim's inception_resnet_v2_2016_08_30 checkpoint",
        license="apache-2.0", results=(_timm_result(80.434, 95.312, crop=0.8975),), preprocessing=_timm(0.8975),
        known_files=(KnownFile(f"{TIMM_RELEASES}/v0.1-weights/inception_resnet_v2-940b1cd6.pth", label_offset=1),)),
    WeightSet(
        model="inception_resnet_v2", tag="tf_ens_adv_in1k", source="timm",
        hub_id="timm/inception_resnet_v2.tf_ens_adv_in1k", layout="timm",
        origin="timm's port of TF's ens_adv_inception_resnet_v2_2017_08_18 (ensemble adversarial training, "
               "Tramer et al., arXiv:1705.07204)",
        license="apache-2.0", results=(_timm_result(79.998, 94.940, crop=0.8975),), preprocessing=_timm(0.8975),
        known_files=(KnownFile(f"{TIMM_RELEASES}/v0.1-weights/ens_adv_inception_resnet_v2-2592a550.pth",
                               label_offset=1),)),
)
# The first set of a model is what `pretrained=True` / `--pretrained imagenet` loads: torchvision's where it has
# one (what torchvision users get), else timm's default tag (the first in its default_cfgs).
IMAGENET = "imagenet"


def weight_sets(model: str | None = None) -> list[WeightSet]:
    return [w for w in WEIGHT_SETS if model is None or w.model == model]


def models_with_weights() -> list[str]:
    return sorted({w.model for w in WEIGHT_SETS})


def find_weight_set(model: str, name: str) -> WeightSet | None:
    """The set `name` names for `model`: "imagenet", a tag, an alias or `MODEL.TAG` (case-insensitive); else None."""
    wanted = name.lower()
    sets = weight_sets(model)
    if wanted == IMAGENET:
        return sets[0] if sets else None
    for w in sets:
        if wanted in (w.tag.lower(), w.name.lower(), *(a.lower() for a in w.aliases)):
            return w
    return None


def weight_set_named(model: str, name: str) -> WeightSet:
    """The set `name` names for `model` (as `find_weight_set` reads it); else a UserError that says what there is."""
    ws = find_weight_set(model, name)
    if ws is not None:
        return ws
    other = find_by_full_name(name)
    if other is not None:
        raise UserError(f"{other.name} are weights for {other.model}, not {model}")
    if not weight_sets(model):
        raise UserError(f"no public pretrained weights for {model} (there are for "
                        f"{', '.join(models_with_weights())}); give a weights file instead of {name!r}")
    tags = ", ".join([IMAGENET] + [w.tag for w in weight_sets(model)])
    raise UserError(f"{name!r} is neither a weights file nor a weight set of {model} ({tags}; "
                    "`inceptorch weights list` shows them)")


def find_by_full_name(name: str) -> WeightSet | None:
    return next((w for w in WEIGHT_SETS if w.name.lower() == name.lower()), None)


def find_by_hash(sha256: str) -> tuple[WeightSet, KnownFile] | None:
    """The set (and which of its files) whose hash-named file has this SHA-256."""
    for w in WEIGHT_SETS:
        files = ((KnownFile(w.url),) if w.url else ()) + w.known_files
        for f in files:
            prefix = hash_prefix_of(f.url.rsplit("/", 1)[-1])
            if prefix and sha256.startswith(prefix):
                return w, f
    return None


@cache
def class_ids(classes: str) -> tuple[str, ...]:
    """The WordNet ids of a label set in class order, as ImageNet folders name their classes (n01440764: tench).

    ILSVRC2012's class index is the sorted order of its 1000 synsets (the list timm ships in timm/data/_info).
    """
    if classes != "imagenet-1k":
        raise KeyError(classes)
    # The list is package data of `models/`, where the wheel's manifest (pyproject.toml) ships it.
    return tuple(resources.files("inceptorch.models").joinpath("imagenet_synsets.txt").read_text().split())


@cache
def class_names(classes: str) -> tuple[str, ...]:
    """The class names of a label set; ImageNet-1k's are the ones torchvision's weights carry (no download)."""
    if classes != "imagenet-1k":
        raise KeyError(classes)
    from torchvision.models import GoogLeNet_Weights

    return tuple(GoogLeNet_Weights.IMAGENET1K_V1.meta["categories"])
