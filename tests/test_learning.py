"""What makes short runs learn: averaged weights with a warmed-up decay, BN statistics recomputed before evaluation,
data-dependent initialisation of networks without BN, schedules fitted to the run, class balance and its scores,
and fine-tuning with a slower or frozen trunk."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from inceptorch.models import create_model
from inceptorch.train.config import TrainConfig, resolve
from inceptorch.train.data_init import data_dependent_init, has_normalization
from inceptorch.train.ema import ModelEMA, warmed_decay
from inceptorch.train.engine import evaluate
from inceptorch.train.metrics import class_share_note, missing_classes_note, prediction_note
from inceptorch.train.optim import MAX_WARMUP_FRACTION, build_optimizer, fit_warmup, param_groups
from inceptorch.train.precise_bn import YOUNG_UPDATES, needs_recompute, recompute_bn_stats
from inceptorch.train.samplers import EpochSampler, balanced_class_weights, balanced_image_weights


# ---- averaged weights -------------------------------------------------------------------------------------------
def test_ema_decay_warms_up_as_tensorflow_num_updates():
    assert [warmed_decay(0.9999, t) for t in (0, 1, 90)] == pytest.approx([0.1, 2 / 11, 0.91])
    assert warmed_decay(0.9999, 10**6) == 0.9999  # capped


def test_ema_follows_training_after_a_few_steps_instead_of_keeping_the_start():
    """With decay 0.9999 and no warm-up, 40 steps leave the average 99.6% the initial weights; with it the
    average is most of the way to the trained ones."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    start = model.weight.detach().clone()
    plain, warmed = ModelEMA(model, 0.9999, warmup=False), ModelEMA(model, 0.9999)
    target = torch.ones_like(model.weight)
    for _ in range(40):
        with torch.no_grad():
            model.weight.lerp_(target, 0.2)
        plain.update(model)
        warmed.update(model)

    def travelled(ema):
        return ((ema.module.weight - start).norm() / (target - start).norm()).item()

    assert travelled(plain) < 0.01
    assert travelled(warmed) > 0.5


def test_ema_state_keeps_its_update_count():
    model = nn.Linear(2, 2)
    ema = ModelEMA(model, 0.999)
    for _ in range(7):
        ema.update(model)
    again = ModelEMA(model, 0.999)
    again.load_state_dict(ema.state_dict())
    assert again.updates == 7 and again.current_decay == ema.current_decay == pytest.approx(8 / 17)


# ---- BatchNorm statistics ---------------------------------------------------------------------------------------
def _young_googlenet() -> nn.Module:
    torch.manual_seed(0)
    return create_model("googlenet_bn", num_classes=3, small_input=True, width=0.125, aux_logits=False)


def test_young_bn_statistics_collapse_eval_logits_and_recomputing_them_fixes_it():
    """A fresh BN GoogLeNet (torchvision's std-0.01 init) in eval mode gives every image the same logits: the running
    variances still hold their starting 1.0, hundreds of times the real ones. Recomputed statistics restore the
    spread that the train-mode network has."""
    model = _young_googlenet()
    images = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        collapsed = model(images).std(0).max().item()
        model.train()
        train_mode = model(images).std(0).max().item()
    model.eval()
    assert collapsed < 1e-3 * train_mode
    state = torch.get_rng_state()
    seen = recompute_bn_stats(model, images.split(16))
    assert seen == 64 and torch.equal(torch.get_rng_state(), state)  # no random numbers drawn (exact resume)
    assert not model.training
    with torch.no_grad():
        recomputed = model(images).std(0).max().item()
    # Statistics of 16-image batches averaged, against one 64-image batch's: the same scale, not equal.
    assert 0.5 * train_mode < recomputed < 2 * train_mode


def test_recomputed_statistics_are_the_plain_average_over_batches():
    bn = nn.BatchNorm2d(3)
    model = nn.Sequential(nn.Conv2d(3, 3, 1), bn)
    x = torch.randn(40, 3, 5, 5)
    recompute_bn_stats(model, x.split(10))
    with torch.no_grad():
        y = model[0](x)
    means = torch.stack([b.mean((0, 2, 3)) for b in y.split(10)])
    variances = torch.stack([b.var((0, 2, 3), unbiased=True) for b in y.split(10)])
    torch.testing.assert_close(bn.running_mean, means.mean(0))
    torch.testing.assert_close(bn.running_var, variances.mean(0))
    assert int(bn.num_batches_tracked) == 0 and bn.momentum == 0.1  # training's own count and momentum kept


def test_kept_bn_layers_normalise_with_their_own_statistics_and_keep_them():
    """A frozen trunk's BN layer (keep) is left as it is, in eval mode, and the layer after it gets the statistics
    of what the frozen one puts out."""
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3))
    model[1].running_mean.fill_(0.5)
    model[1].running_var.fill_(4.0)
    x = torch.randn(40, 3, 5, 5)
    recompute_bn_stats(model, x.split(10), keep=frozenset({"1"}))
    assert torch.equal(model[1].running_mean, torch.full((3,), 0.5))
    assert torch.equal(model[1].running_var, torch.full((3,), 4.0))
    with torch.no_grad():
        y = model[2](model[1].eval()(model[0](x)))
    torch.testing.assert_close(model[3].running_mean, torch.stack([b.mean((0, 2, 3)) for b in y.split(10)]).mean(0))


def test_precise_bn_auto_only_while_estimates_are_young():
    model = _young_googlenet()
    assert needs_recompute(model, "auto") and not needs_recompute(model, "never")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.num_batches_tracked.fill_(YOUNG_UPDATES)
    assert not needs_recompute(model, "auto") and needs_recompute(model, "always")
    assert not needs_recompute(create_model("lenet5", num_classes=10), "always")  # no BN at all


# ---- networks without BN ----------------------------------------------------------------------------------------
def test_paper_googlenet_init_carries_the_signal_through_22_layers():
    """torchvision's std-0.01 init gave max |logit| 3.7e-12 on a 96 px batch; He init keeps it of order 1."""
    torch.manual_seed(0)
    model = create_model("googlenet", num_classes=10).eval()
    with torch.no_grad():
        logits = model(torch.randn(4, 3, 96, 96))
    assert 0.1 < logits.abs().max().item() < 100


def test_data_dependent_init_gives_unit_outputs_and_keeps_the_classifiers():
    torch.manual_seed(0)
    model = create_model("googlenet", num_classes=10, small_input=True, width=0.125)
    assert not has_normalization(model) and has_normalization(_young_googlenet())
    images = torch.randn(32, 3, 32, 32)
    keep = {model.fc, model.aux1.fc2, model.aux2.fc2}
    before = {id(m): m.weight.clone() for m in keep}
    layers = data_dependent_init(model, images, keep)
    assert layers == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules()) - 3
    assert all(torch.equal(m.weight, before[id(m)]) for m in keep)
    out = {}
    model.inception4e.branch1.conv.register_forward_hook(lambda m, i, o: out.update(y=o.clone()))  # before ReLU
    with torch.no_grad():
        model.eval()(images)
    per_channel = out["y"].transpose(0, 1).flatten(1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(per_channel.shape[0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_channel.std(1), torch.ones(per_channel.shape[0]), atol=1e-3, rtol=0)


def test_data_dependent_init_scales_for_training_with_dropout_and_draws_nothing():
    """Maxout has 20-50% dropout before every layer (arXiv:1302.4389). Scaled in eval mode it started training at
    a loss of 91; scaled as training sees it, the first loss is near log(10) = 2.30 and the eval loss too."""
    torch.manual_seed(0)
    model = create_model("maxout", num_classes=10, width=0.125)
    images, labels = torch.randn(128, 3, 32, 32), torch.arange(128) % 10
    state = torch.get_rng_state()
    data_dependent_init(model, images[:64], {model.get_classifier()})
    assert torch.equal(torch.get_rng_state(), state)  # dropout's draws came from a forked generator
    with torch.no_grad():
        train_loss = nn.functional.cross_entropy(model.train()(images[64:]), labels[64:]).item()
        eval_loss = nn.functional.cross_entropy(model.eval()(images[64:]), labels[64:]).item()
    assert 2.0 < train_loss < 4.0 and 2.0 < eval_loss < 4.0


# ---- schedules ----------------------------------------------------------------------------------------------------
def test_warmup_is_capped_to_a_tenth_of_the_run_and_says_so():
    cfg = resolve({"warmup_epochs": 5, "epochs": 6}, {})
    fitted, note = fit_warmup(cfg)
    assert fitted.warmup_epochs == pytest.approx(MAX_WARMUP_FRACTION * 6) and "6-epoch run" in note
    long = resolve({"warmup_epochs": 5, "epochs": 50}, {})
    assert fit_warmup(long) == (long, None)


def test_defaults_are_a_small_data_recipe_and_paper_recipes_state_theirs():
    from inceptorch.train.config import read_recipe

    default = TrainConfig()
    assert (default.optimizer, default.schedule, default.aug, default.label_smoothing) == \
        ("adamw", "cosine", "small_data", 0.1)
    paper = resolve(read_recipe("googlenet_paper"), {})
    assert (paper.optimizer, paper.schedule, paper.warmup_epochs, paper.label_smoothing, paper.aug) == \
        ("sgd", "step", 0.0, 0.0, "paper")
    v3 = resolve(read_recipe("inception_v3_paper"), {})
    assert (v3.warmup_epochs, v3.label_smoothing, v3.weight_decay) == (0.0, 0.1, 4e-5)
    demo = resolve(read_recipe("demo"), {})
    assert (demo.label_smoothing, demo.min_lr, demo.ema_decay, demo.aug) == (0.0, 0.0, None, "light")


def test_augmentation_names_are_the_transform_presets():
    from inceptorch.data.transforms import PRESETS
    from inceptorch.train.config import AUGMENTATIONS

    assert AUGMENTATIONS == PRESETS


# ---- imbalanced classes -------------------------------------------------------------------------------------------
def test_balanced_accuracy_and_recall_match_scikit_learn():
    from sklearn.metrics import balanced_accuracy_score, recall_score

    g = torch.Generator().manual_seed(0)
    targets = torch.tensor([0] * 30 + [1] * 8 + [2] * 2)
    logits = torch.randn(40, 4, generator=g) + 2.0 * nn.functional.one_hot(targets, 4) * (torch.rand(40, 1) > 0.3)
    batches = list(zip(logits.split(16), targets.split(16)))
    result = evaluate(nn.Identity(), batches, torch.device("cpu"), num_classes=4)
    predicted = logits.argmax(1)
    assert result["balanced"] == pytest.approx(100 * balanced_accuracy_score(targets, predicted))
    recall = recall_score(targets, predicted, labels=[0, 1, 2], average=None, zero_division=0)
    assert result["recall"][:3] == pytest.approx(list(100 * recall)) and math.isnan(result["recall"][3])
    assert result["images_per_class"] == [30, 8, 2, 0] and sum(result["predicted_per_class"]) == 40


def test_class_balanced_sampler_draws_every_class_equally_often():
    targets = [0] * 90 + [1] * 9 + [2] * 1
    sampler = EpochSampler(100, 10, 100, seed=0, weights=balanced_image_weights(targets))
    drawn = torch.bincount(torch.tensor([targets[i] for i in sampler]), minlength=3)
    assert drawn.sum() == 1000 and drawn.min() > 280  # about 333 each; 90% of draws would be class 0 unweighted
    sampler.set_epoch(1)
    assert list(sampler) != list(EpochSampler(100, 10, 100, seed=0, weights=balanced_image_weights(targets)))


def test_class_weights_are_scikit_learns_balanced():
    from sklearn.utils.class_weight import compute_class_weight

    targets = [0] * 6 + [1] * 3 + [3] * 1
    expected = compute_class_weight("balanced", classes=np.array([0, 1, 3]), y=np.array(targets))
    weights = balanced_class_weights(targets, 4)
    assert weights[[0, 1, 3]].tolist() == pytest.approx(list(expected)) and weights[2] == 0


def test_majority_share_and_one_class_predictions_are_called_out():
    names = ["good", "crack", "dent", "scratch"]
    note = class_share_note([0] * 58 + [1] * 20 + [2] * 12 + [3] * 10, names)
    assert "'good' is 58.0%" in note
    assert class_share_note([0, 1, 2, 3] * 10, names) is None
    present = [58, 20, 12, 10]
    one = {"predicted_per_class": [100, 0, 0, 0], "images_per_class": present, "balanced": 25.0}
    assert "answer 'good' for every val image" in prediction_note(one, names, "raw")
    two = {"predicted_per_class": [70, 30, 0, 0], "images_per_class": present, "balanced": 40.0}
    assert "never answer 2 of 4 classes" in prediction_note(two, names, "ema")
    even = {"predicted_per_class": [70, 30, 0, 0], "images_per_class": [25] * 4, "balanced": 40.0}
    assert prediction_note(even, names, "raw") is None  # early epochs on balanced data: no imbalance advice
    fine = {"predicted_per_class": [40, 30, 20, 10], "images_per_class": present, "balanced": 80.0}
    assert prediction_note(fine, names, "raw") is None


# ---- fine-tuning -------------------------------------------------------------------------------------------------
def test_trunk_learns_at_a_fraction_of_the_classifiers_rate():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    trunk = {"0.weight", "0.bias"}
    groups = param_groups(model, 0.01, 1e-3, trunk, trunk_lr_scale=0.1)
    by_lr: dict[float, int] = {}
    for g in groups:
        by_lr[round(g["lr"], 12)] = by_lr.get(round(g["lr"], 12), 0) + sum(p.numel() for p in g["params"])
    assert by_lr == {1e-4: 4 * 3 * 9 + 4, 1e-3: 4 * 2 + 2}
    assert {g["weight_decay"] for g in groups if g["params"][0].ndim == 1} == {0.0}
    cfg = resolve({"trunk_lr_scale": 0.1, "lr": 1e-3}, {})
    optimizer = build_optimizer(model, cfg, trunk)
    assert sorted(g["lr"] for g in optimizer.param_groups) == pytest.approx([1e-4, 1e-4, 1e-3, 1e-3])


def test_a_class_without_validation_images_is_named():
    """A class of one image has none in a 20% split: its recall is never measured, which the run must say."""
    names = ["cat", "coffee", "rocket"]
    note = missing_classes_note([0, 0, 1, 1], names)
    assert note == ("warning: no validation images of 'rocket' (1 of 3 classes): its recall is not measured, and "
                    "balanced accuracy is the mean over the other 2")
    assert missing_classes_note([0, 1, 2], names) is None and missing_classes_note([], names) is None
