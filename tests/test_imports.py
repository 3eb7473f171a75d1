"""The import rules of shared/DESIGN.md: each module imports only the fivefold modules listed for it."""

import ast
from pathlib import Path

import fivefold

PACKAGE = Path(fivefold.__file__).parent
ALLOWED = {
    "errors": set(),
    "ops": {"errors"},
    "groups": {"errors"},
    "testing": {"groups", "errors"},
    "graphs": {"ops", "errors"},
    "grids": {"groups", "errors"},
    "spheres": {"groups", "ops", "errors"},
    "data": {"graphs", "spheres", "groups", "errors"},
    "train": {"graphs", "grids", "groups", "ops", "errors", "data"},
    "cli": {"train", "data", "errors", "groups"},
}


def _fivefold_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fivefold."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("fivefold.")}
    return found


def test_modules_import_only_what_design_allows():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        top = relative.parts[0].removesuffix(".py")
        if top == "__init__":
            continue
        assert top in ALLOWED, f"{relative}: module {top} has no import rule; add it to DESIGN.md and this test"
        extra = _fivefold_imports(path) - ALLOWED[top] - {top}
        if extra:
            violations.append(f"{relative} imports {sorted(extra)}")
    assert not violations, violations


def test_import_fivefold_is_light():
    import subprocess
    import sys

    heavy = "('torch_geometric', 'networkx', 'matplotlib')"
    code = f"import sys, fivefold; print(any(m.startswith({heavy}) for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
