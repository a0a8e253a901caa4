"""How far an exported artifact's logits are from PyTorch's, judged against the logits' own scale.

An absolute tolerance means nothing across models: a freshly initialised Inception-v3 in eval mode gives logits near
1e10, where float32's last bit alone is about 1e3, while other fresh models give 1e-12, where any wrong graph is
within 1e-4. The maximum difference divided by the largest |logit| is what float32 arithmetic bounds; the bound,
`RELATIVE_TOLERANCE`, is the policy of `numerics.py` for trained networks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..numerics import RELATIVE_TOLERANCE

if TYPE_CHECKING:  # annotations only: the CLI reads RELATIVE_TOLERANCE before it needs torch
    from torch import Tensor


@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    scale: float  # the largest |logit| of the reference

    @property
    def relative(self) -> float:
        if self.scale > 0:
            return self.max_abs_diff / self.scale
        return 0.0 if self.max_abs_diff == 0 else float("inf")

    @property
    def ok(self) -> bool:
        return self.relative <= RELATIVE_TOLERANCE

    def describe(self) -> str:
        return (f"max |diff| {self.max_abs_diff:.2e}, relative to the largest logit: {self.relative:.1e} "
                f"(largest |logit| {self.scale:.2e})")


def parity(got: Tensor, reference: Tensor) -> Parity:
    return Parity(float((got.float() - reference.float()).abs().max()), float(reference.float().abs().max()))


def worst(results: list[Parity]) -> Parity:
    return max(results, key=lambda p: p.relative)
