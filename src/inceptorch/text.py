"""Wording shared by the commands' output (imports nothing: the CLI's parsers stay free of torch)."""
from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` (digits grouped, as the logs print parameter counts) with `noun` in the singular or plural: "1 class",
    "3 classes", "1,437 images"; `plural` for the irregular ones ("hidden entries")."""
    if n == 1:
        return f"{n:,} {noun}"
    return f"{n:,} {plural or noun + ('es' if noun.endswith('s') else 's')}"


def close_matches(word: str, known) -> list[str]:
    """The names in `known` that a mistyped `word` most likely meant, best first (difflib's similarity ratio)."""
    import difflib

    return difflib.get_close_matches(str(word), [str(k) for k in known], n=3, cutoff=0.6)


def did_you_mean(word: str, known) -> str:
    """"did you mean X?" (or "X or Y") for a mistyped `word` among `known`; "" when nothing is close."""
    close = close_matches(word, known)
    return f"did you mean {' or '.join(close)}?" if close else ""
