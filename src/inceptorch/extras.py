"""Optional dependencies, installed by need: which extra brings each, and a one-line error naming it.

    pip install 'inceptorch[demo]'         scikit-learn, scikit-image: the embedded data sets (`--data digits`,
                                           `--data inspection`)
    pip install 'inceptorch[plot]'         matplotlib: curves.png, confusion matrices, `inceptorch draw`
    pip install 'inceptorch[tensorboard]'  TensorBoard logs of training runs
    pip install 'inceptorch[onnx]'         onnx, onnxruntime, onnxscript: ONNX export and ONNX Runtime
    pip install 'inceptorch[hub]'          huggingface_hub: timm's pretrained weights from the Hugging Face hub
    pip install 'inceptorch[tune]'         optuna: the recipe search (`inceptorch tune`)
    pip install 'inceptorch[metrics]'      torchmetrics, scikit-learn: precision, F1, ROC-AUC, calibration error
    pip install 'inceptorch[explain]'      captum: Grad-CAM heat maps (`predict --explain`, reports)
    pip install 'inceptorch[serve]'        starlette, uvicorn, python-multipart, prometheus-client: `inceptorch serve`
    pip install 'inceptorch[all]'          all of the above
"""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import UserError

# top-level module -> the extra that installs it
EXTRAS = {"sklearn": "demo", "skimage": "demo", "optuna": "tune", "torchmetrics": "metrics", "captum": "explain",
          "matplotlib": "plot", "tensorboard": "tensorboard", "onnx": "onnx", "onnxruntime": "onnx",
          "onnxscript": "onnx", "huggingface_hub": "hub", "starlette": "serve", "uvicorn": "serve",
          "multipart": "serve", "prometheus_client": "serve"}
# where the package's name on PyPI is not its module's
PACKAGES = {"sklearn": "scikit-learn", "skimage": "scikit-image", "huggingface_hub": "huggingface-hub",
            "multipart": "python-multipart", "prometheus_client": "prometheus-client"}


class MissingExtra(UserError):
    """An optional dependency is not installed; the message names the `pip install` that brings it."""


def require(module: str, purpose: str) -> ModuleType:
    """`module` imported (e.g. "matplotlib.figure"), or MissingExtra: "`purpose` needs X: pip install '...'"."""
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] != top:
            raise  # the package is there but something it imports is not: not ours to explain
        raise MissingExtra(f"{purpose} needs {PACKAGES.get(top, top)}, which is not installed: "
                           f"pip install 'inceptorch[{EXTRAS[top]}]'") from None
