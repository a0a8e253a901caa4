"""A run's report: one self-contained HTML file (pictures embedded, no network) that says how the run went and
where its model is wrong.

    build.py   evaluates the run's best weights and gathers the parts: config, curves, scores, pictures, the most
               confident mistakes with their heat maps, the most confused pairs, nearest training images
    html.py    lays the parts out as one page
"""
from .build import write_report

__all__ = ["write_report"]
