"""Showing the library's real source inside a chapter."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

from IPython.display import Markdown

from rlbook import validate


def show_source(obj, *, title: bool = True) -> Markdown:
    """Render the source code of a function or class of ``rlbook`` as a highlighted code block.

    The text comes from the installed module itself (``inspect.getsource``), so what a chapter
    shows is exactly what it runs; no copy can drift.

    Parameters
    ----------
    obj : function, class or method
    title : bool
        Put the file and line number above the code.

    Returns
    -------
    IPython.display.Markdown
        Renders in Jupyter, on Colab and in the HTML book.

    Notes
    -----
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    title = validate.flag("title", title)
    try:
        lines, start = inspect.getsourcelines(obj)
        path = inspect.getsourcefile(obj)
    except (TypeError, OSError) as exc:
        raise TypeError(
            f"obj must be a function or class with source code, got {obj!r}"
        ) from exc
    source = textwrap.dedent("".join(lines)).rstrip()
    header = ""
    if title and path:
        parts = Path(path).parts
        # the package folder is the last "rlbook" in the path (a checkout may be named rlbook too)
        if "rlbook" in parts:
            shown = "/".join(parts[len(parts) - 1 - parts[::-1].index("rlbook") :])
        else:
            shown = Path(path).name
        header = f"`{obj.__qualname__}` from `{shown}`, line {start}:\n\n"
    return Markdown(f"{header}```python\n{source}\n```")
