"""Analysis that reproduces the papers' tables: per-layer parameters and multiply-adds."""
from .summary import Row, Summary, summarize

__all__ = ["Row", "Summary", "summarize"]
