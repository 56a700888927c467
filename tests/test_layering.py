"""Dependencies point down: keras_models <- pipelines <- trainers <- bench, and no cycles."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("keras_models", "pipelines", "trainers", "bench")
# Inside a layer, these subpackages sit below the rest and import none of their siblings.
FOUNDATIONS = {
    "keras_models.utils": ("keras_models.utils", "keras_models.backend", "keras_models.version"),
    "trainers.core": ("trainers.core",),
}


def imported_modules(path):
    """The absolute module names ``path`` imports (at any depth of the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def module_name(path):
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def sources(layer):
    return sorted((ROOT / layer).rglob("*.py"))


def upward_imports(layer, path):
    rank = LAYERS.index(layer)
    return sorted({m for m in imported_modules(path)
                   if m.split(".")[0] in LAYERS[rank + 1:]})


@pytest.mark.parametrize("layer", LAYERS)
def test_no_module_imports_a_layer_above_its_own(layer):
    found = {module_name(p): upward_imports(layer, p) for p in sources(layer)}
    assert sources(layer), f"no sources found under {layer}/"
    assert {m: up for m, up in found.items() if up} == {}


@pytest.mark.parametrize("foundation, allowed", FOUNDATIONS.items())
def test_foundations_import_nothing_of_their_own_layer_above_them(foundation, allowed):
    layer = foundation.split(".")[0]
    found = {}
    for path in sorted((ROOT / Path(*foundation.split("."))).rglob("*.py")):
        same_layer = [m for m in imported_modules(path) if m.split(".")[0] == layer
                      and m != layer and not m.startswith(allowed)]
        if same_layer:
            found[module_name(path)] = same_layer
    assert found == {}


def test_the_command_line_is_imported_by_nothing_below_it():
    importers = [module_name(p) for layer in LAYERS for p in sources(layer)
                 if any(m == "trainers.cli" or m.startswith("trainers.cli.")
                        for m in imported_modules(p))]
    assert importers == []


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from trainers.core import export\n", encoding="utf-8")
    assert upward_imports("pipelines", bad) == ["trainers.core", "trainers.core.export"]
    assert upward_imports("trainers", bad) == []
