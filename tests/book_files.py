"""What the tests know about the book's file names, in one place."""

from __future__ import annotations

from pathlib import Path


def chapter_number(path: str | Path) -> str:
    """The number the book gives a notebook: ``04_1_harder_tasks.ipynb`` is section "4.1",
    ``06_ppo.ipynb`` chapter "6". The leading numeric parts of the name are the number."""
    parts = []
    for part in Path(path).stem.split("_"):
        if not part.isdigit():
            break
        parts.append(str(int(part)))
    if not parts:
        raise ValueError(f"{path} does not start with a chapter number")
    return ".".join(parts)
