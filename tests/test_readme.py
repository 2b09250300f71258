"""The README and the docs/ pages: their Python code runs as written, their commands name things that exist and
parse, their generated tables are the committed figures, and nothing in them points outside the repository."""
import importlib.util
import re
import runpy
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = {p.relative_to(ROOT).as_posix(): p.read_text()
         for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
README = PAGES["README.md"]
PYTHON_BLOCKS = [block for text in PAGES.values() for block in re.findall(r"```python\n(.*?)```", text, flags=re.S)]
SHELL = "\n".join(b for text in PAGES.values() for b in re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S))
BLOCK = r"^<!-- (\w+) -->\n(.*?)\n<!-- /\1 -->$"


def _reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_a_landing_page_with_python_examples():
    assert len(README.splitlines()) <= 250, "README.md is a landing page: move the depth into docs/"
    assert PYTHON_BLOCKS, "the README lost its Python examples"


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / f"readme_{index}.py"
    script.write_text(PYTHON_BLOCKS[index])
    runpy.run_path(str(script), run_name="__main__")


def test_commands_name_existing_files_and_presets():
    from softvq.__main__ import PRESETS
    text = "\n".join(PAGES.values())
    for path in re.findall(r"(?:python|papermill) ((?:notebooks|benchmarks)/[\w./]+|reproduce\.py)", text):
        assert (ROOT / path).exists(), path
    for name in re.findall(r"python -m softvq preset (\w+)", text):
        assert name in PRESETS, name


def test_commands_parse():
    """Every `python -m softvq` and `python reproduce.py` command of the pages' shell blocks is accepted by its
    parser."""
    from softvq.__main__ import build_parser
    reproduce = _reproduce()
    commands = re.findall(r"^(python (?:-m softvq|reproduce\.py) [^#\n]*)", SHELL, flags=re.M)
    assert len(commands) >= 5
    for command in commands:
        words = shlex.split(command)
        if words[1] == "-m":
            build_parser().parse_args(words[3:])
        else:
            reproduce.parse_args(words[2:])


def test_the_test_command_runs_as_written_anywhere():
    assert 'pip install -e ".[dev]" && python -m pytest\n' in README


@pytest.mark.parametrize("page", list(PAGES))
def test_nothing_points_outside_the_repository(page):
    text = PAGES[page]
    assert "../shared" not in text and "/work/" not in text
    folder = (ROOT / page).parent
    for target in re.findall(r"\]\((?!https?://)([^)#\s]+)", text):        # relative links and images
        path = (folder / target).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"{page} links to {target}"


def test_the_notebooks_have_colab_badges_in_the_readme():
    import tomllib
    repository = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    account = repository.removeprefix("https://github.com/")
    for name in _reproduce().NOTEBOOKS:
        badge = f"https://colab.research.google.com/github/{account}/blob/main/notebooks/{name}.ipynb"
        assert f"[`{name}`](notebooks/{name}.py)" in README and badge in README, f"README lacks {name}'s row"


def test_generated_tables_are_the_committed_figures():
    """Each <!-- name --> block of every page is figures/<name>.md, as `reproduce.py --budget cpu` writes it."""
    found = set()
    for page, text in PAGES.items():
        for name, block in re.findall(BLOCK, text, flags=re.M | re.S):
            found.add(name)
            assert block == (ROOT / "figures" / f"{name}.md").read_text().strip(), \
                f"{page}: block {name} differs from figures/{name}.md: run python reproduce.py --budget cpu --no-train"
    assert found >= {"table1", "table1_stats", "codebook_table1", "ablation", "table2", "table2_stats"}


def test_update_pages_fills_each_pages_blocks(tmp_path):
    (tmp_path / "t.md").write_text("new table\n")
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- t -->\nold\n<!-- /t -->\n<!-- gone -->\nkept\n<!-- /gone -->\n")
    assert _reproduce().update_pages(tmp_path, [page]) == {str(page): ["t"]}
    assert page.read_text() == "intro\n<!-- t -->\nnew table\n<!-- /t -->\n<!-- gone -->\nkept\n<!-- /gone -->\n"
