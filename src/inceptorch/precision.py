"""The floating-point precisions that the training step and the benchmarks take by name (`--precision`).

Plain names, no torch at import: the command line offers them without importing it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # name -> torch dtype


def torch_dtype(precision: str) -> torch.dtype:
    """The torch dtype of a precision name ("fp32", "bf16", "fp16"); KeyError for any other name."""
    import torch

    return getattr(torch, PRECISIONS[precision])
