"""Wording shared by the commands' output (imports nothing: the CLI's parsers stay free of torch)."""
from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` (digits grouped, as the logs print parameter counts) with `noun` in the singular or plural: "1 class",
    "3 classes", "1,437 images"; `plural` for the irregular ones ("hidden entries")."""
    if n == 1:
        return f"{n:,} {noun}"
    return f"{n:,} {plural or noun + ('es' if noun.endswith('s') else 's')}"
