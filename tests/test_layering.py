"""How the package is layered: no import cycles, light modules stay light, the command line parses without torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import inceptorch
from inceptorch.errors import first_line

PACKAGE = Path(inceptorch.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """The import statements under `if TYPE_CHECKING:`: they never run, so they are not dependencies."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def imports_of(name: str) -> set[str]:
    """The package's modules that `name` imports anywhere in its code: at the top or inside a function.

    A function-level import is as much a dependency as a top-level one; it only runs later.
    """
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skipped = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            stem = ".".join([*base, *([node.module] if node.module else [])])
            found |= {f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in MODULES else stem for alias in node.names}
    return {m for m in found if m in MODULES and m != name}


def find_cycle() -> list[str] | None:
    graph = {name: imports_of(name) for name in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


def test_the_import_graph_parses():
    """The checker itself: it resolves relative imports at every depth, so an empty graph cannot pass for a good one."""
    assert "inceptorch.weights.fitting" in imports_of("inceptorch.weights.model_file")
    assert "inceptorch.fileio" in imports_of("inceptorch.weights.files")
    assert "inceptorch.train.run" in imports_of("inceptorch.cli.train")  # inside run()
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .speedup import BenchConfig\n")
    assert id(tree.body[1].body[0]) in _type_checking_nodes(tree)  # an annotation's import is no dependency


def test_no_import_cycles_counting_function_level_imports():
    cycle = find_cycle()
    assert cycle is None, " -> ".join(cycle)


LEAF_MODULES = ("inceptorch.fileio", "inceptorch.errors", "inceptorch.precision", "inceptorch.text",
                "inceptorch.evaluation.options", "inceptorch.analysis.options")


@pytest.mark.parametrize("name", LEAF_MODULES)
def test_leaf_modules_import_nothing_of_the_package(name):
    assert imports_of(name) == set()


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# The two lowest layers and what each may import besides its own modules, the leaf modules and the package root
# (`__version__`; the root imports nothing else): `models/` builds networks and knows nothing of weight files;
# `weights/` loads files onto models, and names the missing extra where one is needed.
LAYERS = {"inceptorch.models": (), "inceptorch.weights": ("inceptorch.models", "inceptorch.extras")}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_the_lowest_layers_import_nothing_above_them(layer):
    below = (layer, *LAYERS[layer], *LEAF_MODULES)
    above = sorted(f"{name} -> {dep}" for name in MODULES if _inside(name, layer) for dep in imports_of(name)
                   if dep != "inceptorch" and not any(_inside(dep, b) for b in below))
    assert not above, above


def test_parsing_the_command_line_imports_no_torch():
    """Every subcommand registers its parser (what `inceptorch --help` and each `--help` do) without torch."""
    code = ("import sys\nfrom inceptorch.cli.main import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'numpy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_checking_data_imports_no_torch(tmp_path):
    """`inceptorch check-data` reads and decodes images: a second, not the 2-5 s of importing torch first."""
    from PIL import Image

    for i, label in enumerate("ab"):
        (tmp_path / label).mkdir()
        Image.new("RGB", (8, 8), (i * 200, 0, 0)).save(tmp_path / label / "0.png")
    code = ("import sys\nfrom inceptorch.cli.main import main\n"
            f"assert main(['check-data', {str(tmp_path)!r}]) == 0\n"
            "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]" and "checked 2 image files" in out.stdout


def test_version():
    out = subprocess.run([sys.executable, "-m", "inceptorch", "--version"], check=True, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == f"inceptorch {inceptorch.__version__}"


@pytest.mark.parametrize("exc, expected", [
    (OSError(), "OSError"),  # a blank message: the type, never an IndexError
    (ValueError("   \n"), "ValueError"),
    (RuntimeError("\n  first line  \nsecond line"), "first line"),
    (KeyError("k" * 300), "'" + "k" * 119),
])
def test_first_line_of_an_exception(exc, expected):
    assert first_line(exc) == expected


def test_lazy_names_that_are_also_submodule_names_stay_the_functions():
    """`evaluation.predict` and `evaluation.evaluate` are functions and submodules: importing the submodule first
    (as `from inceptorch.evaluation.evaluate import ...` does) must not shadow the function."""
    code = ("import inceptorch.evaluation.predict, inceptorch.evaluation.evaluate\n"
            "from inceptorch.evaluation import evaluate, predict\nimport inceptorch.evaluation as e\n"
            "print(callable(predict), callable(evaluate), callable(e.predict), e.collect_images.__name__)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "True", "True", "collect_images"]
