"""Imports go one way: boxoffice (settings, warehouse, demo, reports) <- extract, expectations, dashboards <-
orchestration <- the command line and the benchmarks. Nothing lower imports anything higher."""

import ast
from pathlib import Path

from boxoffice.settings import PROJECT_DIR

LAYERS = {"boxoffice": 0, "extract": 1, "expectations": 1, "dashboards": 1, "orchestration": 2, "bench": 3}
TOP = {"boxoffice.cli": 3}  # modules above their package's layer


def layer(module: str) -> int | None:
    for name, level in TOP.items():
        if module == name or module.startswith(name + "."):
            return level
    return LAYERS.get(module.split(".")[0])


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for package in LAYERS:
        for path in sorted((PROJECT_DIR / package).rglob("*.py")):
            module = ".".join(path.relative_to(PROJECT_DIR).with_suffix("").parts).removesuffix(".__init__")
            own = layer(module)
            for target in sorted(imports(path)):
                theirs = layer(target)
                if theirs is not None and theirs > own:
                    upward.append(f"{module} imports {target}")
                elif theirs == own == 1 and target.split(".")[0] != module.split(".")[0]:
                    upward.append(f"{module} imports {target} (a layer beside its own)")
    assert upward == []


def test_the_rule_sees_an_upward_import(tmp_path):
    """The walk above finds imports where they are: a function's import counts like a module's."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from orchestration.definitions import defs\n")
    assert "orchestration.definitions" in imports(source)
    assert layer("orchestration.definitions") > layer("boxoffice.settings")
    assert layer("boxoffice.cli") > layer("orchestration.pipeline")
