"""Wording shared by the commands' output (imports nothing: the CLI's parsers stay free of torch)."""
from __future__ import annotations


def count(n: int, noun: str) -> str:
    """`n` with `noun` in the singular or plural: "1 class", "3 classes", "2 epochs" (the nouns these lines use)."""
    if n == 1:
        return f"{n} {noun}"
    return f"{n} {noun}{'es' if noun.endswith('s') else 's'}"
