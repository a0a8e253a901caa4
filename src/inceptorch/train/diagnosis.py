"""What the curves of a run say after each epoch: underfitting, overfitting, or nothing to report.

Underfitting is the failure that looks like success on imbalanced data: a network that has learnt nothing but the
class shares scores the majority class's share in top-1. Two signs, either enough:
- after a few epochs, train top-1 has covered less than a quarter of the way from what always answering the majority
  class scores to 100% (64.9% where that class is 57.6% of the images: 17% of the way);
- over the last few epochs, train loss fell by less than a few percent while train top-1 is far from 100%.
Overfitting: train top-1 far above val top-1 while the validation loss climbs from its best.

Thresholds are data (`RULES`); the advice names the tools that act on each finding.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rules:
    min_epochs: int = 3               # no verdict before this many epochs
    majority_progress: float = 0.25   # train top-1's way from the majority share to 100% that still counts as "near"
    loss_window: int = 3              # epochs over which train loss must fall ...
    min_loss_drop: float = 0.03       # ... by at least this fraction
    fitted_top1: float = 90.0         # a train top-1 above this is not underfitting, however flat the loss
    overfit_gap: float = 15.0         # points of train top-1 above val top-1 ...
    val_loss_rise: float = 0.10       # ... while val loss is this fraction above its best


RULES = Rules()

UNDERFIT_ADVICE = ("try a lower learning rate (inceptorch lr-find, or --lr auto), more optimizer steps (--epochs), "
                   "weaker augmentation (--aug none shows whether the network can fit at all; --aug inspection for "
                   "images without an 'up'), a larger --input-size, or a recipe search (inceptorch tune)")
OVERFIT_ADVICE = ("try stronger augmentation (--aug inspection for images without an 'up', --set auto_augment=trivial, "
                  "--set mixup=0.2), more weight decay, fewer epochs, or more data; best.safetensors keeps the best "
                  "epoch")


@dataclass(frozen=True)
class Finding:
    kind: str     # "underfitting" or "overfitting"
    message: str  # one line, starting with `kind`


def diagnose(rows: list[dict], majority_share: float, majority_name: str, rules: Rules = RULES) -> Finding | None:
    """The finding after the last of `rows` (metrics.csv rows of the epochs so far: train_loss, train_top1,
    val_top1, val_loss), or None. `majority_share` (0-1) is what always answering `majority_name` scores on the
    training batches (1 / classes under class-balanced sampling)."""
    if len(rows) < rules.min_epochs:
        return None
    last = rows[-1]
    top1, majority = last["train_top1"], 100.0 * majority_share
    if top1 - majority < rules.majority_progress * (100.0 - majority):
        return Finding("underfitting", f"underfitting: after {len(rows)} epochs train top-1 is {top1:.1f}%, barely "
                                       f"above always answering '{majority_name}' ({majority:.1f}%): the network "
                                       "has not learnt to tell the classes apart; " + UNDERFIT_ADVICE)
    if len(rows) > rules.loss_window and top1 < rules.fitted_top1:
        before = rows[-1 - rules.loss_window]["train_loss"]
        drop = (before - last["train_loss"]) / before if before > 0 else 0.0
        if drop < rules.min_loss_drop:
            return Finding("underfitting", f"underfitting: train loss fell {100 * drop:.1f}% over the last "
                                           f"{rules.loss_window} epochs ({before:.4f} -> {last['train_loss']:.4f}) "
                                           f"with train top-1 at {top1:.1f}%: the network has stopped fitting its "
                                           "training images; " + UNDERFIT_ADVICE)
    val_losses = [r["val_loss"] for r in rows]
    best_epoch = min(range(len(val_losses)), key=val_losses.__getitem__)
    rise = (last["val_loss"] - val_losses[best_epoch]) / max(val_losses[best_epoch], 1e-12)
    gap = top1 - last["val_top1"]
    if gap > rules.overfit_gap and rise > rules.val_loss_rise:
        return Finding("overfitting", f"overfitting: train top-1 {top1:.1f}% against val {last['val_top1']:.1f}%, "
                                      f"and val loss is {100 * rise:.0f}% above its best (epoch {best_epoch + 1}): "
                                      "the network memorises its training images; " + OVERFIT_ADVICE)
    return None
