"""The best validation result of a run so far, as one value: what best.safetensors holds and why."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

METRICS = {"top1": "top-1", "balanced": "balanced accuracy"}


@dataclass
class BestSoFar:
    metric: str = "top1"     # what ranks epochs: "top1" or "balanced" (accuracy)
    score: float = -1.0      # that metric's value at the best epoch
    loss: float = math.inf   # its validation loss: on a tie of scores, the lower wins
    top1: float = -1.0
    balanced: float = -1.0
    epoch: int = -1          # 1-based; -1 before the first validation
    weights: str = "raw"     # "raw" or "ema"

    def beaten_by(self, result: dict) -> bool:
        """Whether a validation result (`engine.evaluate`'s) is better. On a tie the lower validation loss: small
        validation sets often tie at 100% from an early epoch on, and the first such epoch is the least trained."""
        return (result[self.metric], -result["loss"]) > (self.score, -self.loss)

    def take(self, result: dict, epoch: int, weights: str) -> None:
        self.score, self.loss = result[self.metric], result["loss"]
        self.top1, self.balanced, self.epoch, self.weights = result["top1"], result["balanced"], epoch, weights

    def state_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: dict, metric: str, averaged: bool) -> BestSoFar:
        """From a training state; states written before this value existed kept its fields flat (`best_top1`, ...)
        and some lacked a few of them."""
        if "best" in state:
            return cls(**state["best"])
        return cls(metric=metric, score=state.get("best_score", state["best_top1"]),
                   loss=state.get("best_loss", math.inf), top1=state["best_top1"],
                   balanced=state.get("best_balanced", -1.0), epoch=state["best_epoch"],
                   weights=state.get("best_weights", "ema" if averaged else "raw"))
