"""What a pip user gets: a torch-only core, every imported package declared, torch bounded from below only."""
import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DISTRIBUTIONS = {"sklearn": "scikit-learn", "PIL": "Pillow"}       # import name -> distribution name


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(top-level absolute imports, softvq modules imported relatively) of one source file, lazy imports too."""
    absolute, relative = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            absolute |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level:
            relative |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            absolute.add(node.module.split(".")[0])
    return absolute - set(sys.stdlib_module_names) - {"__future__"}, relative


def requirements() -> dict[str, str]:
    """{distribution (lower case): specifier} of every dependency and extra."""
    found = {}
    for line in [*PROJECT["dependencies"], *(r for extra in PROJECT["optional-dependencies"].values() for r in extra)]:
        name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[.*\])?\s*(.*)", line).group(1, 3)
        found[name.lower()] = spec
    return found


def test_the_core_needs_torch_alone():
    """`import softvq` (the quantizer and the models) reaches only the standard library and torch."""
    seen, todo, third_party = set(), ["__init__"], set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            absolute, relative = imports(ROOT / "softvq" / f"{module}.py")
            third_party |= absolute
            todo += relative
    assert {"quantize", "model", "bottlenecks"} <= seen
    assert third_party == {"torch"}, seen


def test_every_imported_package_is_declared():
    declared = set(requirements())
    for path in [*sorted((ROOT / "softvq").glob("*.py")), ROOT / "reproduce.py"]:
        for name in imports(path)[0] - {"softvq"}:
            assert DISTRIBUTIONS.get(name, name).lower() in declared, f"{path.name} imports {name}"


def test_torch_is_bounded_from_below_only():
    found = requirements()
    for name in ("torch", "torchvision"):
        assert re.fullmatch(r">=\s*[0-9.]+", found[name]), (name, found[name])
    assert PROJECT["dependencies"] == [f"torch{found['torch']}"]
    assert PROJECT["requires-python"] == f">={sys.version_info[0]}.11"
