"""Weights: everything between a tensor file and a built model, in three parts above `models/`.

(a) Model files that describe themselves, and their checks:
    `model_file` (safetensors weights + the metadata that rebuilds the model; saved folders' config.json),
    `meta_checks` (what such a file says, checked before anything is built from it),
    `files` (any weights file read safely; what a wrong file is).
(b) The public weight sets, the cache and downloads:
    `sets` (the sets as data: where each file lives, what it scored, how to feed it),
    `cache` (where their files live on this machine, how they get there and are checked),
    `pretrained` (`pretrained=True|TAG|FILE`: from a name or a file to a loaded model with the right
    preprocessing and class names; `inceptorch.create_model` and `inceptorch.list_models`).
(c) Key layouts: other libraries' key names for our models as declarative tables, read both ways
    (`key_tables`), and fitting a file of any layout onto a model (`fitting`).

`models/` builds networks and imports nothing from here; this package reads their specs to name their keys.
"""
