"""The layer map of docs/architecture.md is true of the code: every module is on it once, and
imports only from its own layer or those below."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "fashionae"
ENTRY_POINTS = {"__init__", "__main__"}  # the package's face: above every layer


def layer_rows() -> list[list[str]]:
    """The modules of each layer, bottom first, as the map's table lists them."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("## The layers (bottom to top)")[1].split("\n\n")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ")][2:]  # past the header
    return [re.findall(r"`(\w+)\.py`", row.split("|")[2]) for row in rows]


def layer_map() -> dict[str, int]:
    return {module: level for level, row in enumerate(layer_rows()) for module in row}


def imports(module: str) -> list[tuple[str, bool]]:
    """(imported sibling module, whether the import is inside a function) for every relative import."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
            found += [(name, node not in tree.body) for name in names]
    return found


def test_every_module_is_on_the_map_once():
    listed = [module for row in layer_rows() for module in row]
    assert sorted(listed) == sorted({p.stem for p in PACKAGE.glob("*.py")} - ENTRY_POINTS)


def test_no_module_imports_from_a_layer_above_its_own():
    levels = layer_map()
    upward = [(module, name) for module in levels for name, deferred in imports(module)
              if name in levels and levels[name] > levels[module]]
    assert upward == []


def test_every_name_a_benchmark_imports_from_the_package_exists():
    """The benchmarks are scripts no test runs whole (minutes each): a name moved out of the
    module they import it from (``StudyFolder`` out of study.py) would break them unseen."""
    import importlib.util
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "fashionae":
                module = importlib.import_module(node.module)
                missing = [a.name for a in node.names if not hasattr(module, a.name)
                           and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
                assert not missing, f"{script.name}: {node.module} has no {', '.join(missing)}"
