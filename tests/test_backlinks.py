"""Back-links that cannot rot: every "See chapter N ... (book/NN_slug.ipynb)" in a docstring of
rlbook names a notebook that exists, has that chapter number, and mentions the object."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from functools import cache
from pathlib import Path

import gymnasium as gym
import pytest
from book_files import chapter_number

import rlbook
import rlbook.envs  # noqa: F401  (registers the ids that count as environments' names)

ROOT = Path(__file__).resolve().parents[1]
# "See chapter 3 of the book (book/03_x.ipynb)." or "See chapters 1 and 3 (book/a, book/b)."
REFERENCE = re.compile(r"See chapters? (?P<numbers>[^()]*?)\((?P<paths>[^()]*)\)", re.S)
NOTEBOOK = re.compile(r"book/[\w.]+\.ipynb")


@cache
def notebook_text(path: str) -> str:
    cells = json.loads((ROOT / path).read_text())["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells)


def env_ids(module_or_class) -> set[str]:
    """The gymnasium ids registered for an environment class, or for those of a module."""
    name = module_or_class.__name__
    if inspect.ismodule(module_or_class):
        prefix = f"{name}:"
    else:
        prefix = f"{module_or_class.__module__}:{name}"
    return {
        spec.id
        for spec in gym.registry.values()
        if isinstance(spec.entry_point, str) and spec.entry_point.startswith(prefix)
    }


def documented_objects():
    """(qualified name, object, names a chapter may use for it) for every docstring."""
    for info in pkgutil.walk_packages(rlbook.__path__, "rlbook."):
        module = importlib.import_module(info.name)
        yield info.name, module, {info.name, *env_ids(module)}
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != info.name:
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            names = {name} | (env_ids(obj) if inspect.isclass(obj) else set())
            yield f"{info.name}.{name}", obj, names
            if inspect.isclass(obj):
                for member, value in vars(obj).items():
                    if inspect.isfunction(value) or isinstance(
                        value, classmethod | staticmethod | property
                    ):
                        yield f"{info.name}.{name}.{member}", value, {member, name}


def references():
    for qualname, obj, names in documented_objects():
        doc = obj.__doc__ if isinstance(obj, property) else inspect.getdoc(obj)
        for match in REFERENCE.finditer(doc or ""):
            paths = NOTEBOOK.findall(match.group("paths"))
            numbers = re.findall(r"\d+(?:\.\d+)?", match.group("numbers"))
            yield qualname, names, paths, numbers


REFERENCES = list(references())


def test_there_are_back_links_to_check() -> None:
    assert len(REFERENCES) > 60


@pytest.mark.parametrize(
    ("qualname", "names", "paths", "numbers"),
    REFERENCES,
    ids=[f"{ref[0]}-{i}" for i, ref in enumerate(REFERENCES)],
)
def test_a_back_link_names_a_chapter_that_mentions_the_object(
    qualname, names, paths, numbers
) -> None:
    assert paths, f"{qualname}: 'See chapter' without a book/...ipynb path"
    assert numbers == [chapter_number(p) for p in paths], (
        f"{qualname}: chapter numbers {numbers} do not match the notebooks {paths}"
    )
    for path in paths:
        assert (ROOT / path).is_file(), (
            f"{qualname} points at {path}, which does not exist"
        )
        text = notebook_text(path)
        assert any(re.search(rf"\b{re.escape(n)}\b", text) for n in names), (
            f"{qualname} says 'See chapter {chapter_number(path)}' but {path} never "
            f"mentions {sorted(names)}"
        )


def test_chapter_numbers_follow_the_file_names() -> None:
    assert chapter_number("book/04_1_harder_tasks.ipynb") == "4.1"
    assert chapter_number("book/06_ppo.ipynb") == "6"
