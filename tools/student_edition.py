"""Make the student edition: notebooks without solutions, and an HTML book without solutions.

    python tools/student_edition.py            # student/book/*.ipynb
    python tools/student_edition.py --html     # ... and student/_build/html

In the notebooks, every code cell tagged ``solution`` becomes a stub that keeps each function's
signature and docstring and raises ``NotImplementedError``; the ``solution-start`` /
``solution-end`` markdown cells and every ``{solution}`` block are removed. Everything else (the
exercises, the grader cells, the chapter) is unchanged, so a student notebook runs top to bottom
until the first unfilled exercise, whose grader reports "not implemented yet".

The HTML edition is built from a copy of the sources in which the solution cells still run
(so every figure is there) but are removed from the page, the solution blocks are gone, and
there are no launch, download or source links (they would lead to the notebooks with
solutions). The build is then searched for any solution text.
"""

from __future__ import annotations

import argparse
import ast
import copy
import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
STUB_MARK = "# EXERCISE: replace this line and the next with your code"
SOLUTION_BLOCK = re.compile(r"```\{solution\}.*?\n```[ \t]*\n?", re.DOTALL)


def _text(cell: dict) -> str:
    return (
        "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    )


def stub(source: str) -> str:
    """Replace the body of every top-level function in ``source`` with a marked stub."""
    tree = ast.parse(source)
    lines = source.splitlines()
    pieces = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue  # only the functions the exercise asks for survive
        body_start = node.body[0]
        has_doc = (
            isinstance(body_start, ast.Expr)
            and isinstance(body_start.value, ast.Constant)
            and isinstance(body_start.value.value, str)
        )
        head_end = body_start.end_lineno if has_doc else body_start.lineno - 1
        first = node.lineno - 1 - len(node.decorator_list)
        head = lines[first:head_end]
        indent = " " * (body_start.col_offset)
        pieces.append(
            "\n".join(
                [
                    *head,
                    f"{indent}{STUB_MARK}",
                    f'{indent}raise NotImplementedError("{node.name} is not implemented yet")',
                ]
            )
        )
    if not pieces:
        raise ValueError(f"a solution cell defines no function to stub:\n{source}")
    return "\n\n\n".join(pieces)


def student_notebook(nb: dict, for_html: bool = False) -> dict:
    """The student version of one notebook (a new dict; ``nb`` is left as it was).

    With ``for_html``, solution cells are kept but tagged ``remove-cell`` instead of stubbed,
    and the graders' outputs are removed: the HTML book executes every cell, and shows the
    exercise and the grader call without the solution or its result.
    """
    nb = copy.deepcopy(nb)
    after_solution = False
    out = []
    for cell in nb["cells"]:
        text = _text(cell)
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "markdown":
            if "```{solution-start}" in text or "```{solution-end}" in text:
                continue
            text = SOLUTION_BLOCK.sub("", text)
            if "```{solution" in text:
                raise ValueError(f"a solution block was not removed:\n{text}")
            cell["source"] = text
        elif "solution" in tags:
            after_solution = True
            tags = [t for t in tags if t != "solution"]
            if for_html:
                cell["metadata"]["tags"] = [*tags, "remove-cell"]
            else:
                cell["source"] = stub(text)
                cell["metadata"]["tags"] = [*tags, "exercise"]
        elif after_solution:
            after_solution = False
            if for_html:  # the grader's "all cases passed" would give the game away
                cell.setdefault("metadata", {})["tags"] = [*tags, "remove-output"]
        out.append(cell)
    nb["cells"] = out
    return nb


def write_notebooks(out_dir: Path) -> list[Path]:
    (out_dir / "book").mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        target = out_dir / "book" / path.name
        target.write_text(
            json.dumps(student_notebook(nb), indent=1, ensure_ascii=False) + "\n"
        )
        written.append(target)
    return written


def student_config() -> dict:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = config["title"] + " (student edition)"
    config.pop("launch_buttons", None)
    config["html"] = {
        "use_repository_button": False,
        "use_issues_button": False,
        "use_edit_page_button": False,
    }
    # local Sphinx extensions live in the repository, not in the copied sources
    local = config.get("sphinx", {}).get("local_extensions") or {}
    for name, folder in local.items():
        local[name] = str((ROOT / folder).resolve())
    sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx_config["html_copy_source"] = False  # the sources hold the solutions
    sphinx_config["html_show_sourcelink"] = False
    sphinx_config.setdefault("html_theme_options", {})["use_download_button"] = False
    return config


INSTRUCTORS_STUB = """# Instructor guide

The instructor guide (syllabi, rubrics, grading notes) is part of the instructor edition of the
book, not of this student edition.
"""


def copy_sources(src: Path) -> None:
    """The book's sources as students see them: solutions removed, the guide left out."""
    (src / "book").mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "book").iterdir():
        if path.suffix == ".ipynb":
            nb = student_notebook(json.loads(path.read_text()), for_html=True)
            (src / "book" / path.name).write_text(
                json.dumps(nb, indent=1, ensure_ascii=False)
            )
        elif path.name == "instructors.md":
            # its rubrics and grading notes say what a full answer contains
            (src / "book" / path.name).write_text(INSTRUCTORS_STUB)
        elif path.is_file():
            shutil.copy2(path, src / "book" / path.name)
    shutil.copy2(ROOT / "_toc.yml", src / "_toc.yml")


def build_html(out_dir: Path) -> Path:
    """Build the student HTML book from a student copy of the sources; return the HTML folder.

    (sphinx-exercise's own ``hide_solutions`` cannot drop gated ``solution-start`` blocks: the
    HTML writer fails on their end nodes. So the copy removes the solutions itself.)
    """
    src = out_dir / "src"
    copy_sources(src)
    (src / "_config.yml").write_text(yaml.safe_dump(student_config(), sort_keys=False))
    subprocess.run(
        ["jupyter-book", "build", str(src), "--path-output", str(out_dir)]
        + ["-n", "-W", "--keep-going"],
        check=True,
    )
    return out_dir / "_build" / "html"


def _word_runs(text: str, size: int = 8) -> list[str]:
    # runs of plain words survive rendering; math, markup and directive options do not
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith((":", "```"))]
    probes, run = [], []
    for word in " ".join(lines).split() + [""]:
        if re.fullmatch(r"[A-Za-z][A-Za-z,.;']*", word):
            run.append(word)
            continue
        probes += [
            " ".join(run[i : i + size]) for i in range(0, len(run) - size + 1, size)
        ]
        run = []
    return probes


@functools.cache
def _public_code() -> frozenset[str]:
    """Code lines the book shows anyway: the library's source (rendered by ``show_source``) and
    every code cell of every chapter that is not a solution. A solution line found among them
    (``running = torch.zeros_like(rewards[0])``) is no secret, so it is no probe."""
    lines = set()
    for path in (ROOT / "rlbook").rglob("*.py"):
        lines.update(line.strip() for line in path.read_text().splitlines())
    for path in (ROOT / "book").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code" and "solution" not in cell.get(
                "metadata", {}
            ).get("tags", []):
                lines.update(line.strip() for line in _text(cell).splitlines())
    return frozenset(lines)


def solution_probes(nb: dict) -> list[str]:
    """Snippets of a notebook's solutions (code lines, runs of words) that must not leak."""
    probes = []
    inside = False
    for cell in nb["cells"]:
        text = _text(cell)
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code" and "solution" in tags:
            head = set(stub(text).splitlines())
            probes += [
                line.strip()
                for line in text.splitlines()
                if len(line.strip()) >= 20
                and line not in head
                and not line.strip().startswith("#")
                and line.strip() not in _public_code()
            ]
        elif cell["cell_type"] == "markdown":
            blocks = [m.group(0) for m in SOLUTION_BLOCK.finditer(text)]
            if "```{solution-start}" in text:
                inside = True
                blocks.append(text.split("```", 3)[-1])
            if "```{solution-end}" in text:
                inside = False
            elif inside and "```{solution-start}" not in text:
                blocks.append(text)
            for block in blocks:
                probes += _word_runs(block)
    return probes


def leaks(html_dir: Path) -> list[str]:
    """Solution snippets of any chapter that appear in any file of ``html_dir``."""
    import html as html_lib

    probes = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        probes += [
            (path.name, p) for p in solution_probes(json.loads(path.read_text()))
        ]
    found = []
    for file in sorted(html_dir.rglob("*")):
        if not file.is_file() or file.suffix not in (
            ".html",
            ".ipynb",
            ".txt",
            ".md",
            ".js",
        ):
            continue
        raw = file.read_text(errors="ignore")
        text = html_lib.unescape(re.sub(r"<[^>]+>", "", raw))
        text = re.sub(r"\s+", " ", text)
        for name, probe in probes:
            if re.sub(r"\s+", " ", probe) in text:
                found.append(f"{file.relative_to(html_dir)}: {probe!r} (from {name})")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Make the student edition of the book."
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "student", help="output folder"
    )
    parser.add_argument(
        "--html", action="store_true", help="also build the student HTML book"
    )
    args = parser.parse_args()
    written = write_notebooks(args.out)
    print(f"{len(written)} student notebooks in {args.out / 'book'}")
    if args.html:
        html_dir = build_html(args.out)
        found = leaks(html_dir)
        for line in found:
            print(f"solution text in the student HTML: {line}", file=sys.stderr)
        if found:
            return 1
        print(f"student HTML in {html_dir}: no solution text found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
