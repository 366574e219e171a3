"""The student edition: stubs instead of solutions, no solution text anywhere, and notebooks that
run top to bottom until the first unfilled exercise."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))

_spec = importlib.util.spec_from_file_location(
    "student_edition", ROOT / "tools" / "student_edition.py"
)
student_edition = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student_edition)


def test_stub_keeps_the_signature_and_docstring_and_raises():
    source = '''def my_fn(x, y=2):
    """Add."""
    z = x + y
    return z


print("not a function: dropped")
'''
    stub = student_edition.stub(source)
    assert "z = x + y" not in stub and "print" not in stub
    assert '"""Add."""' in stub and student_edition.STUB_MARK in stub
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="my_fn is not implemented yet"):
        namespace["my_fn"](1)


def test_a_solution_cell_without_a_function_is_an_error():
    with pytest.raises(ValueError, match="defines no function"):
        student_edition.stub("x = 1\n")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_solution_text_survives_in_the_student_notebook(path):
    nb = json.loads(path.read_text())
    probes = student_edition.solution_probes(nb)
    assert probes, "the chapter has solutions to hide"
    student = student_edition.student_notebook(nb)
    text = " ".join(
        " ".join(
            (
                "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            ).split()
        )
        for c in student["cells"]
    )
    assert "{solution" not in text
    leaked = [p for p in probes if " ".join(p.split()) in text]
    assert not leaked, leaked
    # everything that is not a solution is still there
    kept = [c for c in nb["cells"] if "solution" not in "".join(c["source"])]
    assert len(student["cells"]) >= len(kept) - 1


def test_leaks_finds_solution_text_in_a_built_page(tmp_path):
    nb = json.loads(NOTEBOOKS[0].read_text())
    probe = student_edition.solution_probes(nb)[0]
    (tmp_path / "page.html").write_text(f"<p>{probe.replace(' ', ' <b>', 1)}</b></p>")
    (tmp_path / "clean.html").write_text("<p>nothing to see</p>")
    found = student_edition.leaks(tmp_path)
    assert len(found) >= 1 and all(f.startswith("page.html") for f in found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_notebook_runs_until_the_first_unfilled_exercise(path):
    student = student_edition.student_notebook(json.loads(path.read_text()))
    nb = nbformat.reads(json.dumps(student), as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "book")}},
    )
    with pytest.raises(CellExecutionError) as info:
        client.execute()
    assert info.value.ename == "NotImplementedError", info.value
    assert "not implemented yet" in info.value.evalue
    failed = [
        i
        for i, c in enumerate(nb.cells)
        if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    assert len(failed) == 1
    stubs = [
        i for i, c in enumerate(nb.cells) if "exercise" in c.metadata.get("tags", [])
    ]
    # the first failure is the grader of the first exercise, right after its stub
    assert failed[0] > stubs[0] and "check_" in nb.cells[failed[0]].source
    code_before = [c for c in nb.cells[: failed[0]] if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_before), (
        "every cell before it ran"
    )


def test_the_student_sources_leave_out_the_instructor_guide(tmp_path):
    student_edition.copy_sources(tmp_path)
    guide = (tmp_path / "book" / "instructors.md").read_text()
    assert "Rubrics" not in guide and "Grading notes" not in guide
    assert "## Rubrics" in (ROOT / "book" / "instructors.md").read_text()
    no_solution = json.loads(
        (tmp_path / "book" / "01_policy_gradient.ipynb").read_text()
    )
    assert "solution-start" not in json.dumps(no_solution)
