"""What a pip user gets: a torch-only core, every imported package declared, torch bounded from below only."""
import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# import name -> distribution name
DISTRIBUTIONS = {"sklearn": "scikit-learn", "PIL": "Pillow", "vector_quantize_pytorch": "vector-quantize-pytorch"}


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


def reached(modules: list[str]) -> tuple[set[str], set[str]]:
    """(the softvq modules that importing `modules` reaches, the third-party packages they import)."""
    seen, todo, third_party = set(), list(modules), set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            absolute, relative = imports(ROOT / "softvq" / f"{module}.py")
            third_party |= absolute
            todo += relative
    return seen, third_party


def requirements() -> dict[str, str]:
    """{distribution (lower case): specifier} of every dependency and extra."""
    found = {}
    for line in [*PROJECT["dependencies"], *(r for extra in PROJECT["optional-dependencies"].values() for r in extra)]:
        name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[.*\])?\s*(.*)", line).group(1, 3)
        found[name.lower()] = spec
    return found


def test_the_core_needs_torch_alone():
    """`import softvq` (the quantizer and the models) reaches only the standard library and torch."""
    seen, third_party = reached(["__init__"])
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


def extra_closure(extra: str) -> set[str]:
    """The distributions (lower case) that `pip install softvq[extra]` asks for, the extras it names included."""
    found = {r.split(">")[0].split("=")[0].lower() for r in PROJECT["dependencies"]}
    for line in PROJECT["optional-dependencies"][extra]:
        name, extras = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[(.*)\])?.*", line).group(1, 2)
        if name == "softvq":
            found |= set().union(*(extra_closure(e) for e in extras.split(",")))
        else:
            found.add(name.lower())
    return found


def test_the_notebooks_install_cell_brings_what_the_notebooks_import():
    """The install cell's default requirement names an extra holding every package the notebooks import, directly
    or through the softvq modules they reach. IPython comes with every Jupyter kernel; submitit serves only the
    local and Slurm launchers (the cluster extra), and softvq.launch runs inline without it."""
    source = (ROOT / "notebooks" / "01_theorem1.py").read_text()
    extras = re.search(r'"SOFTVQ_PIP", "softvq\[([\w,]+)\] @ ', source).group(1)
    todo, third_party = [], set()
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "softvq":
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module.startswith("softvq."):
                todo.append(node.module.split(".")[1])
        third_party |= imports(path)[0] - {"softvq"}
    modules, packages = reached(todo)
    third_party |= packages
    assert {"notebook", "plots", "theorem1"} <= modules
    needed = {DISTRIBUTIONS.get(name, name).lower() for name in third_party} - {"ipython", "submitit"}
    assert needed - set().union(*map(extra_closure, extras.split(","))) == set(), f"softvq[{extras}] lacks them"


def test_neither_the_package_nor_the_notebooks_import_the_experiments_facade():
    """softvq.experiments re-exports the experiment API for users and tests; the package's own modules and the
    notebooks import from config, presets, evaluation, runner and store directly."""
    users = [path.name for path in [*sorted((ROOT / "softvq").glob("*.py")), *sorted((ROOT / "notebooks").glob("*.py")),
                                    ROOT / "reproduce.py"]
             if path.name != "experiments.py" and re.search(r"\bexperiments\b", path.read_text())]
    assert users == []
