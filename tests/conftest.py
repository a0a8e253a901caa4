"""Shared fixtures: small, deterministic inputs so the suite runs on a 2-core CPU."""
import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One test process per core (pytest-xdist): each one thread, and so the CLI processes it starts, or OpenMP's
    # spinning threads of two processes fight over the same cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny convolutions on a shared 2-core machine: one thread avoids OpenMP spin-waiting (100x slower). A module
    that trains asks for it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def onnx_registry_built_once():
    """torch's dynamo ONNX exporter rebuilds its table of ~500 onnxscript functions at every export, reading each
    one's source (0.7-0.9 s of the 1.3 s a LeNet-5 export takes on a 2-core CPU). The table depends only on the opset
    and the exporter only reads it (no custom translation table is passed), so a test process that exports many
    models builds it once: the files are the same. test_export.py alone: 64 -> 51 s. A module that exports asks for
    it with `pytestmark = pytest.mark.usefixtures("onnx_registry_built_once")`."""
    try:
        from torch.onnx._internal.exporter._registration import ONNXRegistry
        build = ONNXRegistry.from_torchlib.__func__
    except (ImportError, AttributeError):  # another exporter layout, or no onnxscript: each export builds its own
        yield
        return
    tables = {}

    def from_torchlib(cls, *args, **kwargs):
        key = (cls, args, tuple(sorted(kwargs.items())))
        if key not in tables:
            tables[key] = build(cls, *args, **kwargs)
        return tables[key]

    patch = pytest.MonkeyPatch()
    patch.setattr(ONNXRegistry, "from_torchlib", classmethod(from_torchlib))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def lenet5_run(tmp_path_factory):
    """A run folder of a 2-class lenet5 (classes a, b): enough for eval, predict and export to get past loading."""
    from inceptorch.models import create_model
    from inceptorch.weights.model_file import model_metadata, save_model_file

    root = tmp_path_factory.mktemp("lenet5_run")
    model = create_model("lenet5", num_classes=2)
    save_model_file(model, root / "best.safetensors", model_metadata(model, {"num_classes": 2}, ["a", "b"]))
    return root
