"""The import rules of shared/DESIGN.md: each module imports only the fivefold modules listed for it, and never another
subpackage's private (``_name``) names or modules."""

import ast
from pathlib import Path

import fivefold

PACKAGE = Path(fivefold.__file__).parent
# DESIGN.md's layout table, column "may import"; `errors` is the base every module may raise from.
DOMAIN_DATA_TYPES = {"graphs", "spheres", "groups", "scale", "temporal", "meshes", "molecules"}
ALLOWED = {
    "__init__": set(),
    "errors": set(),
    "ops": set(),
    "groups": set(),
    "testing": {"groups"},
    "graphs": {"ops"},
    "scale": {"graphs", "ops"},
    "temporal": {"graphs", "ops"},
    "grids": {"groups"},
    "spheres": {"groups", "ops"},
    "meshes": {"graphs", "groups", "ops"},
    "molecules": {"graphs", "ops", "groups"},
    "data": DOMAIN_DATA_TYPES,
    "train": {"ops", "groups", "testing", "graphs", "scale", "temporal", "grids", "spheres", "meshes", "molecules",
              "data"},
    "cli": {"train", "data"},
}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, [imported names])`` for every fivefold import of a file (a plain ``import`` lists no names)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fivefold"):
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.startswith("fivefold")]
    return found


def import_violations(package: Path = PACKAGE) -> list[str]:
    violations = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        top = relative.parts[0].removesuffix(".py")
        if top not in ALLOWED:
            violations.append(f"{relative}: module {top} has no import rule; add it to DESIGN.md and this test")
            continue
        for module, names in _imports(path):
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else "__init__"
            if target not in ALLOWED[top] | {top, "errors"}:
                violations.append(f"{relative} imports {module} ({target} is not allowed for {top})")
            if target != top:
                private = [part for part in parts[2:] if part.startswith("_")]
                private += [name for name in names if name.startswith("_")]
                if private:
                    violations.append(f"{relative} imports private {private} from {module}")
    return violations


def test_modules_import_only_what_design_allows():
    violations = import_violations()
    assert not violations, "\n".join(violations)


def test_the_rule_catches_a_forbidden_module_and_a_private_name(tmp_path):
    package = tmp_path / "fivefold"
    (package / "graphs").mkdir(parents=True)
    (package / "graphs" / "layer.py").write_text("from fivefold.grids import GroupConv2d\n"
                                                 "from fivefold.ops.scatter import _scatter\n"
                                                 "import fivefold.ops._kernels\n")
    (package / "ops").mkdir()
    (package / "ops" / "fine.py").write_text("from fivefold.ops.sparse import _check_index\n")
    violations = import_violations(package)
    assert len(violations) == 3, violations
    assert any("grids is not allowed for graphs" in v for v in violations)
    assert sum("private" in v for v in violations) == 2  # a private name and a private module, across packages


def test_import_fivefold_is_light():
    import subprocess
    import sys

    heavy = "('torch_geometric', 'networkx', 'matplotlib')"
    code = f"import sys, fivefold; print(any(m.startswith({heavy}) for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
