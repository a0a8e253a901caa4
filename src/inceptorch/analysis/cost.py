"""The articles' cost arithmetic: multiply-adds (MACs) and weights of a conv, with and without a 1x1 reduction,
and of kernel factorizations.

Formulas (one convolution, "same" padding, biases not counted, as in Table 1 of arXiv:1409.4842):
    weights = k_h * k_w * C_in * C_out
    MACs    = H_out * W_out * C_out * (k_h * k_w * C_in)      (FLOPs = 2 x MACs)
Worked examples they reproduce: a 5x5 conv to 48 maps over 14x14x480 costs 112.9M MACs, or
1.5M + 3.8M = 5.3M behind a 16-channel 1x1 reduction; two 3x3 convs instead of a 5x5 save 28%, 1x3 + 3x1 instead
of 3x3 save 33%, two 2x2 instead of 3x3 save 11% (arXiv:1512.00567 section 3).
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from ..errors import UserError


@dataclass(frozen=True)
class Conv:
    """One convolution applied to an H x W x C_in map."""

    in_hw: tuple[int, int]
    in_chs: int
    out_chs: int
    kernel: tuple[int, int]
    stride: int = 1

    @property
    def out_hw(self) -> tuple[int, int]:
        return math.ceil(self.in_hw[0] / self.stride), math.ceil(self.in_hw[1] / self.stride)

    @property
    def weights(self) -> int:
        return self.kernel[0] * self.kernel[1] * self.in_chs * self.out_chs

    @property
    def macs(self) -> int:
        return self.out_hw[0] * self.out_hw[1] * self.out_chs * self.kernel[0] * self.kernel[1] * self.in_chs

    def label(self) -> str:
        stride = f"/{self.stride}" if self.stride > 1 else ""
        return (f"{self.kernel[0]}x{self.kernel[1]}{stride} conv {self.in_chs}->{self.out_chs} "
                f"on {self.in_hw[0]}x{self.in_hw[1]}")

    def to_dict(self) -> dict:
        return {**asdict(self), "out_hw": self.out_hw, "weights": self.weights, "macs": self.macs}


@dataclass(frozen=True)
class Comparison:
    """Two ways to compute the same output: `before` (one layer) and `after` (a chain of layers)."""

    title: str
    before: tuple[Conv, ...]
    after: tuple[Conv, ...]

    @property
    def macs(self) -> tuple[int, int]:
        return sum(c.macs for c in self.before), sum(c.macs for c in self.after)

    @property
    def weights(self) -> tuple[int, int]:
        return sum(c.weights for c in self.before), sum(c.weights for c in self.after)

    @property
    def mac_saving(self) -> float:
        """Fraction of the multiply-adds saved (0.28 = 28% fewer)."""
        before, after = self.macs
        return 1 - after / before

    @property
    def weight_ratio(self) -> float:
        """How many times fewer weights (4.0 = four times fewer)."""
        before, after = self.weights
        return before / after

    def to_dict(self) -> dict:
        (mb, ma), (wb, wa) = self.macs, self.weights
        return {"title": self.title, "units": {"macs": "multiply-adds", "flops": "2 x macs"},
                "before": {"layers": [c.to_dict() for c in self.before], "macs": mb, "weights": wb},
                "after": {"layers": [c.to_dict() for c in self.after], "macs": ma, "weights": wa},
                "mac_saving": self.mac_saving, "weight_saving": 1 - wa / wb, "weight_ratio": self.weight_ratio}


def reduction(in_hw: tuple[int, int], in_chs: int, kernel: int | tuple[int, int], out_chs: int, reduce_chs: int,
              stride: int = 1) -> Comparison:
    """A k x k conv straight on the input against a 1x1 conv to `reduce_chs` maps followed by the k x k conv
    (the dimension reduction of paper Figure 2b, arXiv:1409.4842)."""
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    direct = Conv(in_hw, in_chs, out_chs, kernel, stride)
    squeeze = Conv(in_hw, in_chs, reduce_chs, (1, 1))
    return Comparison(f"{kernel[0]}x{kernel[1]} conv with and without a {reduce_chs}-channel 1x1 reduction",
                      (direct,), (squeeze, Conv(in_hw, reduce_chs, out_chs, kernel, stride)))


# What each kernel is factorized into when the user does not say (arXiv:1512.00567 section 3):
# 5x5 -> two 3x3 (Figure 1), 3x3 -> 1x3 then 3x1 (Figure 3), larger n x n -> 1xn then nx1 (Figure 6, n = 7).
def default_factorization(kernel: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    if kernel == (5, 5):
        return (3, 3), (3, 3)
    if kernel[0] == kernel[1] and kernel[0] >= 3:
        return (1, kernel[0]), (kernel[0], 1)
    raise UserError(f"no default factorization of {kernel[0]}x{kernel[1]}; give one with --into, e.g. 1x3,3x1")


def factorize(kernel: tuple[int, int], into: tuple[tuple[int, int], ...] | None = None,
              in_hw: tuple[int, int] = (1, 1), in_chs: int = 1, out_chs: int | None = None) -> Comparison:
    """One k x k conv against a chain of smaller convs with the same receptive field.

    Every layer of the chain has `out_chs` filters (the seeds' "same number of filters"); with the defaults
    (a 1x1 map, one channel in and out) MACs and weights are the kernel areas, 25 against 9 + 9 for 5x5.
    """
    into = into or default_factorization(kernel)
    field = (1 + sum(k[0] - 1 for k in into), 1 + sum(k[1] - 1 for k in into))
    if field != kernel:
        chain = ",".join(f"{h}x{w}" for h, w in into)
        raise UserError(f"{chain} sees a {field[0]}x{field[1]} window, not {kernel[0]}x{kernel[1]}")
    out_chs = out_chs or in_chs
    chain, chs = [], in_chs
    for k in into:
        chain.append(Conv(in_hw, chs, out_chs, k))
        chs = out_chs
    names = " + ".join(f"{h}x{w}" for h, w in into)
    return Comparison(f"{kernel[0]}x{kernel[1]} conv factorized into {names}",
                      (Conv(in_hw, in_chs, out_chs, kernel),), tuple(chain))


_SHAPE = re.compile(r"^\s*(\d+)\s*[xX*]\s*(\d+)\s*[xX*]\s*(\d+)\s*$")
_KERNEL = re.compile(r"^\s*(\d+)\s*(?:[xX*]\s*(\d+))?\s*$")


def parse_shape(text: str) -> tuple[tuple[int, int], int]:
    """'14x14x480' -> ((14, 14), 480): height x width x channels, as the papers write feature maps."""
    m = _SHAPE.match(text)
    if not m or 0 in (int(g) for g in m.groups()):
        raise UserError(f"bad input shape {text!r}: expected HEIGHTxWIDTHxCHANNELS with positive integers, "
                        f"e.g. 14x14x480")
    return (int(m[1]), int(m[2])), int(m[3])


def parse_kernel(text: str) -> tuple[int, int]:
    """'5x5' or '5' -> (5, 5); '1x3' -> (1, 3)."""
    m = _KERNEL.match(text)
    if not m or int(m[1]) == 0 or (m[2] is not None and int(m[2]) == 0):
        raise UserError(f"bad kernel {text!r}: expected e.g. 5x5, 1x3 or 3")
    return int(m[1]), int(m[2] or m[1])


def parse_chain(text: str) -> tuple[tuple[int, int], ...]:
    """'3x3,3x3' -> ((3, 3), (3, 3))."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError(f"bad kernel list {text!r}: expected e.g. 3x3,3x3 or 1x3,3x1")
    return tuple(parse_kernel(p) for p in parts)
