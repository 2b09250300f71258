"""The README's Python code runs as written, and its commands name things that exist."""
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_python_examples():
    assert PYTHON_BLOCKS, "the README lost its Python examples"


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / f"readme_{index}.py"
    script.write_text(PYTHON_BLOCKS[index])
    runpy.run_path(str(script), run_name="__main__")


def test_readme_commands_name_existing_files_and_presets():
    from softvq.__main__ import PRESETS
    for path in re.findall(r"(?:python|papermill) ((?:notebooks|benchmarks)/[\w./]+|reproduce\.py)", README):
        assert (ROOT / path).exists(), path
    for name in re.findall(r"python -m softvq preset (\w+)", README):
        assert name in PRESETS, name


def test_readme_commands_parse():
    """Every `python -m softvq` and `python reproduce.py` command of the README's shell blocks is accepted by its
    parser."""
    import importlib.util
    import shlex

    from softvq.__main__ import build_parser
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "reproduce.py")
    reproduce = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reproduce)
    shell = "\n".join(re.findall(r"```(?:bash|sh)\n(.*?)```", README, flags=re.S))
    commands = re.findall(r"^(python (?:-m softvq|reproduce\.py) [^#\n]*)", shell, flags=re.M)
    assert len(commands) >= 5
    for command in commands:
        words = shlex.split(command)
        if words[1] == "-m":
            build_parser().parse_args(words[3:])
        else:
            reproduce.parse_args(words[2:])


def test_readme_tables_are_the_committed_figures():
    """Each <!-- name --> block of the README is figures/<name>.md, as `reproduce.py --budget cpu` writes it."""
    blocks = re.findall(r"^<!-- (\w+) -->\n(.*?)\n<!-- /\1 -->$", README, flags=re.M | re.S)
    assert {name for name, _ in blocks} >= {"table1", "table1_stats", "codebook_table1", "ablation", "table2"}
    for name, block in blocks:
        assert block == (ROOT / "figures" / f"{name}.md").read_text().strip(), \
            f"README block {name} differs from figures/{name}.md: run python reproduce.py --budget cpu --no-train"
