"""The articles' comparisons as data: each experiment is a claim, where it comes from, and the variants that test it.

Every variant of an experiment trains through `inceptorch.train.run.train` with the same recipe (pinned here, not
the default recipe, so that a new default cannot change an experiment silently), the same data split, the same
epochs and the same seeds; only its model, model options and `overrides` differ. The default sizes run on the
embedded digits (1,438 train / 359 val images at 32 px) on two CPU cores in minutes per experiment; the same
experiments take an image folder, a GPU and `--width-mult` for a serious run.

Expectations (`Variant.expect`, judged against the variant named by `versus`; see `report.verdict`):
  "higher"        the claim: higher final validation top-1
  "higher early"  the claim: faster convergence, read as higher validation top-1 after the first epoch
  "not lower"     the claim: no accuracy lost (the gain claimed is in cost)
  "stabler"       the claim: fewer runs that diverge (a non-finite loss stops a run)
"""
from __future__ import annotations

from dataclasses import dataclass, field

EXPECTATIONS = ("higher", "higher early", "not lower", "stabler")
KINDS = ("accuracy", "cost", "stability")  # what the plot's second panel shows: curves, top-1 vs MACs, losses

GOOGLENET_PAPER = "Szegedy et al. 2014, Going Deeper with Convolutions (arXiv:1409.4842)"
INCEPTION_V3_PAPER = "Szegedy et al. 2015, Rethinking the Inception Architecture (arXiv:1512.00567)"
INCEPTION_V4_PAPER = "Szegedy et al. 2016, Inception-v4, Inception-ResNet and the Impact of Residual Connections " \
                     "(arXiv:1602.07261)"
# senliuy's "CNN-Structures" notes on GoogLeNet (GitHub): MNIST experiments in Keras, Figures 5 and 8.
NOTES = "senliuy's CNN-Structures notes on GoogLeNet"
# The GoogLeNet experiments use the BN build: the paper's build (no BN, weights drawn with std 0.01) stays at
# chance level for all 8 epochs of the demo recipe on the digits, which would test nothing.
SMALL_GOOGLENET = {"small_input": True, "width": 0.125}


@dataclass(frozen=True)
class Variant:
    """One row of an experiment: a model with its options, and recipe settings of its own (e.g. aux_weight)."""

    name: str
    model: str
    model_kwargs: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)
    claim: str = ""              # what the article or paper says of this row, beside it in the table
    versus: str | None = None    # the row the claim compares this one with
    expect: str | None = None    # one of EXPECTATIONS, judged against `versus`


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    claim: str                   # the claim in words, with the article's numbers
    source: str                  # the paper (section, table or figure) and article it comes from
    variants: tuple[Variant, ...]
    recipe: str = "demo"         # a bundled recipe; its model, model options, data and output are not used
    overrides: dict = field(default_factory=dict)  # recipe settings for every variant of this experiment
    epochs: int = 8
    kind: str = "accuracy"

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        name="inception_module",
        title="A narrow Inception module against a plain convolution of the same width",
        claim="On MNIST, a narrow Inception module (4 maps per branch) in place of one conv layer with the same "
              "number of output maps converges about as fast, with a very limited gain on so small a data set, "
              "and has as many parameters as the 3x3 conv.",
        source=f"{GOOGLENET_PAPER} Figures 2a and 2b; {NOTES}, Figure 8 (MNIST)",
        variants=(
            Variant("plain_conv_16", "plain_conv", {"out_chs": 16}, claim="baseline: one 3x3 conv, 16 maps"),
            Variant("inception_2b", "inception_naive", {"branch_chs": 4, "reduce": True},
                    claim="Figure 2b, 4 x 4 = 16 maps: a small gain over the 3x3 conv", versus="plain_conv_16",
                    expect="higher"),
            Variant("plain_conv_28", "plain_conv", {"out_chs": 28},
                    claim="baseline: one 3x3 conv, 28 maps"),
            Variant("inception_2a", "inception_naive", {"branch_chs": 4, "reduce": False},
                    claim="Figure 2a, no reductions: 3 x 4 maps + the 16 pooled = 28 maps", versus="plain_conv_28",
                    expect="higher"),
        ),
        # One-layer networks: at the demo's lr of 0.004 they stay below 55% top-1 in 8 epochs, under-trained.
        overrides={"lr": 0.02},
        epochs=12,
    ),
    Experiment(
        name="nin_lenet_maxout",
        title="Network in Network against LeNet-5 and a maxout network",
        claim="LeNet-5 rebuilt as a Network in Network has far more parameters, converges faster and trains "
              "more slowly (MNIST); a maxout network has k times the parameters of a "
              "plain one without an accuracy gain to match.",
        source="Lin et al. 2013, Network In Network (arXiv:1312.4400); Goodfellow et al. 2013, Maxout Networks "
               f"(arXiv:1302.4389); {NOTES}, Figure 5 and section 1.1",
        variants=(
            Variant("lenet5", "lenet5", claim="baseline: LeNet-5"),
            Variant("nin", "nin", {"width": 0.25}, claim="more parameters, faster convergence, slower steps",
                    versus="lenet5", expect="higher early"),
            Variant("maxout", "maxout", {"width": 0.125},
                    claim="k = 2-5 times the parameters, no matching accuracy gain", versus="nin"),
        ),
        # None of the three has BN. At 0.003 each learns in 8 epochs on 2 CPU cores (single runs on digits: LeNet-5
        # 98%, NiN 94%, maxout 88%); at 0.01 the maxout network's first epoch ends at a loss of 6 and it stays
        # below 40% top-1.
        overrides={"lr": 0.003},
    ),
    Experiment(
        name="gap_head",
        title="Global average pooling against a fully connected head on GoogLeNet",
        claim="Moving from fully connected layers to average pooling improved top-1 accuracy by about 0.6% "
              "(dropout remained essential).",
        source=f"{GOOGLENET_PAPER} section 5",
        variants=(
            Variant("fc_head", "googlenet_bn", {**SMALL_GOOGLENET, "head": "fc"},
                    claim="baseline: a linear layer over the last 4x4 map"),
            Variant("avg_pool_head", "googlenet_bn", {**SMALL_GOOGLENET, "head": "avg"},
                    claim="+0.6% top-1 (ImageNet)", versus="fc_head", expect="higher"),
        ),
    ),
    Experiment(
        name="aux_classifiers",
        title="GoogLeNet's auxiliary classifiers off and on at loss weight 0.3",
        claim="Two auxiliary classifiers on 4a and 4d, their losses added with weight 0.3, fight vanishing gradients "
              "and regularize; later control experiments put their effect at about 0.5%.",
        source=f"{GOOGLENET_PAPER} section 5",
        variants=(
            Variant("aux_off", "googlenet_bn", {**SMALL_GOOGLENET, "aux_logits": False}, {"aux_weight": 0.0},
                    claim="baseline: no auxiliary classifiers"),
            Variant("aux_0.3", "googlenet_bn", {**SMALL_GOOGLENET, "aux_logits": True}, {"aux_weight": 0.3},
                    claim="helps: about +0.5% (ImageNet)", versus="aux_off", expect="higher"),
        ),
    ),
    Experiment(
        name="reductions",
        title="GoogLeNet's Inception modules with and without their 1x1 reductions",
        claim="A 1x1 reduction to 16 maps cuts a 5x5 conv from 480 to 48 maps at 14x14 from 112.9M to 5.3M "
              "multiply-adds; the reductions let the network grow without the cost blowing up.",
        source=f"{GOOGLENET_PAPER} section 4 and Figure 2; the 14x14x480 example of the GoogLeNet reviews",
        variants=(
            Variant("no_reductions", "googlenet_bn", {**SMALL_GOOGLENET, "reduce": False},
                    claim="baseline: 3x3 and 5x5 convs on the whole block input"),
            Variant("reductions", "googlenet_bn", {**SMALL_GOOGLENET, "reduce": True},
                    claim="far fewer MACs (about half here: the BN build's \"5x5\" branch is a 3x3), accuracy "
                          "kept", versus="no_reductions", expect="not lower"),
        ),
        kind="cost",
    ),
    Experiment(
        name="factorization",
        title="Factorized convolutions at the same depth and width",
        claim="Two 3x3 convs replace a 5x5 at 28% less cost and 1x3 + 3x1 a 3x3 at 33% less, without loss of "
              "expressiveness; asymmetric factorization works well on 12-20 px grids.",
        source=f"{INCEPTION_V3_PAPER} sections 3.1-3.2, Figures 1, 3 and 6",
        variants=(
            Variant("5x5", "factorized_net", {"factorization": "5x5", "width": 0.5}, claim="baseline: 5x5 convs"),
            Variant("3x3+3x3", "factorized_net", {"factorization": "3x3+3x3", "width": 0.5},
                    claim="28% fewer MACs per layer, accuracy kept", versus="5x5", expect="not lower"),
            Variant("1x5+5x1", "factorized_net", {"factorization": "1x5+5x1", "width": 0.5},
                    claim="1xn + nx1 (n=5): 60% fewer MACs per layer, accuracy kept", versus="5x5",
                    expect="not lower"),
            Variant("3x3", "factorized_net", {"factorization": "3x3", "width": 0.5}, claim="baseline: 3x3 convs"),
            Variant("1x3+3x1", "factorized_net", {"factorization": "1x3+3x1", "width": 0.5},
                    claim="33% fewer MACs per layer, accuracy kept", versus="3x3", expect="not lower"),
        ),
        kind="cost",
    ),
    Experiment(
        name="label_smoothing",
        title="Label smoothing 0 against 0.1",
        claim="Label-smoothing regularization with epsilon 0.1 improved top-1 and top-5 error by about 0.2% "
              "absolute (ImageNet, 1000 classes).",
        source=f"{INCEPTION_V3_PAPER} section 7",
        variants=(
            Variant("smoothing_0", "googlenet_bn", SMALL_GOOGLENET, {"label_smoothing": 0.0},
                    claim="baseline: one-hot targets"),
            Variant("smoothing_0.1", "googlenet_bn", SMALL_GOOGLENET, {"label_smoothing": 0.1},
                    claim="about +0.2% top-1 (ImageNet)", versus="smoothing_0", expect="higher"),
        ),
    ),
    Experiment(
        name="residual_scaling",
        title="Inception-ResNet residual scaling 1.0 against 0.3 and 0.1",
        claim="With more than about 1000 filters, Inception-ResNets without scaling 'died' early in training "
              "(only zeros before the average pooling); scaling the residuals by 0.1-0.3 before the addition "
              "stabilized training.",
        source=f"{INCEPTION_V4_PAPER} section 3.3, Figure 20",
        variants=(
            Variant("scale_1.0", "inception_resnet_small", {"width": 0.25, "residual_scale": 1.0},
                    claim="baseline: unscaled residuals, unstable past ~1000 filters"),
            Variant("scale_0.3", "inception_resnet_small", {"width": 0.25, "residual_scale": 0.3},
                    claim="stable", versus="scale_1.0", expect="stabler"),
            Variant("scale_0.1", "inception_resnet_small", {"width": 0.25, "residual_scale": 0.1},
                    claim="stable", versus="scale_1.0", expect="stabler"),
        ),
        # The paper's optimizer (section 4: RMSProp, decay 0.9, epsilon 1.0, lr 0.045), no warmup, TF-slim's L2.
        overrides={"optimizer": "rmsprop", "lr": 0.045, "rmsprop_decay": 0.9, "eps": 1.0, "weight_decay": 4e-5,
                   "warmup_epochs": 0.0},
        kind="stability",
    ),
)


def experiment_names() -> list[str]:
    return [e.name for e in EXPERIMENTS]


def get_experiment(name: str) -> Experiment:
    from ..errors import UserError

    for exp in EXPERIMENTS:
        if exp.name == name:
            return exp
    raise UserError(f"no experiment {name!r}; known: {', '.join(experiment_names())} (or all)")
