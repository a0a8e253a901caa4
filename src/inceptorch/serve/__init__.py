"""Serving a model over HTTP: `app.py` (routes, uvicorn), `batcher.py` (dynamic batching), `metrics.py`
(Prometheus), `page.py` (a page to try it in a browser)."""
