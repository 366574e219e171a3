"""Structure of the chapters: the Colab cell, outputs, the table of contents, exercises."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from book_files import chapter_number

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return (
        "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    )


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files += [section["file"] for section in chapter.get("sections", [])]
    return files


def test_there_are_chapters():
    assert NOTEBOOKS, "book/ holds no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_cell_installs_rlbook_on_colab_only(path):
    first = cells(path)[0]
    text = source(first)
    assert first["cell_type"] == "code"
    assert "remove-cell" in first.get("metadata", {}).get("tags", []), (
        "hide it in the HTML"
    )
    assert 'if "google.colab" in sys.modules:' in text, "must do nothing outside Colab"
    repo = CONFIG["repository"]["url"]
    branch = CONFIG["repository"]["branch"]
    installs = re.findall(r"%pip install .*", text)
    assert installs, "no %pip install"
    assert all(f"git+{repo}@{branch}" in line for line in installs), (
        installs,
        repo,
        branch,
    )
    # Colab's torch and numpy are kept: reinstalling them forces a runtime restart
    for forbidden in ("torch", "numpy", "--upgrade", "-U ", "--force-reinstall"):
        assert all(forbidden not in line for line in installs), (forbidden, installs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    for cell in cells(path):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_table_of_contents(path):
    assert path.relative_to(ROOT).with_suffix("").as_posix() in toc_files()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_has_exercises_solutions_and_checks(path):
    text = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "markdown")
    exercises = re.findall(r"```\{exercise\}\s*\n:label: (\S+)", text)
    assert len(exercises) >= 3, f"{len(exercises)} exercises"
    solved = set(re.findall(r"```\{solution(?:-start)?\} (\S+)", text))
    assert set(exercises) <= solved, f"no solution for {set(exercises) - solved}"
    code = [source(c) for c in cells(path) if c["cell_type"] == "code"]
    assert any(
        "rlbook.checks" in c or "from rlbook.checks import" in c for c in code
    ), "at least one code exercise is graded by rlbook.checks"
    visible_claims = [
        c
        for c in cells(path)
        if c["cell_type"] == "code"
        and "remove-cell" not in c.get("metadata", {}).get("tags", [])
        and "claim(" in source(c)
    ]
    assert visible_claims, "claims are checked visibly, with rlbook.claims.claim"


CLAIM_ID = re.compile(r"claim\(\s*\"(ch[0-9a-z.]+-[a-z0-9-]+)\"")


def test_claim_ids_are_unique_across_the_book():
    ids = [
        found
        for path in NOTEBOOKS
        for c in cells(path)
        if c["cell_type"] == "code"
        for found in CLAIM_ID.findall(source(c))
    ]
    assert ids, "no claims found"
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert duplicates == [], duplicates


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_title_carries_the_number_the_text_uses(path):
    # the table of contents is not numbered by Sphinx (it would call 4.1 "4.9"): the title is
    titles = [
        line
        for c in cells(path)
        if c["cell_type"] == "markdown"
        for line in source(c).splitlines()
        if line.startswith("# ")
    ]
    assert titles and titles[0].startswith(f"# {chapter_number(path)}. "), titles[:1]
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert not any(part.get("numbered") for part in toc["parts"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_claim_ids_name_their_chapter(path):
    chapter = chapter_number(path)
    for c in cells(path):
        for found in CLAIM_ID.findall(source(c)):
            assert found.startswith(f"ch{chapter}-"), (found, path.name)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_labels_name_their_chapter(path):
    # one name per chapter: the exercises of section 4.1 are ex41-..., as its file is 04_1_...
    prefix = "ex" + chapter_number(path).replace(".", "") + "-"
    labels = [
        line.split(":label:")[1].strip()
        for c in cells(path)
        if c["cell_type"] == "markdown"
        for line in source(c).splitlines()
        if line.startswith(":label: ex")
    ]
    assert all(label.startswith(prefix) for label in labels), (prefix, labels)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solution_cells_sit_inside_solution_blocks(path):
    # the student edition replaces "solution" cells; they must be between solution-start/end
    inside = False
    for cell in cells(path):
        text = source(cell)
        if cell["cell_type"] == "markdown":
            if "```{solution-start}" in text:
                inside = True
            if "```{solution-end}" in text:
                inside = False
        elif "solution" in cell.get("metadata", {}).get("tags", []):
            assert inside, f"solution cell outside a solution block: {text[:60]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_shown_code_fits_the_page(path):
    # the HTML code block holds 88 columns; a longer line scrolls sideways
    hidden = {"remove-cell", "remove-input"}
    too_long = [
        (index, line)
        for index, cell in enumerate(cells(path))
        if cell["cell_type"] == "code"
        and not hidden & set(cell.get("metadata", {}).get("tags", []))
        for line in source(cell).splitlines()
        if len(line) > 88
    ]
    assert not too_long, f"shown code lines over 88 columns (cell, line): {too_long}"
