"""What each chapter asks of a reader, counted: words of prose, display equations, shown code
lines, exercises, claims, and the measured run time. The instructor guide's time estimates are
computed from these counts (see ``estimate``), so they change when the chapters do.

    python tools/chapter_stats.py                      # table of counts and estimates
    python tools/chapter_stats.py --times times.json   # with run times (seconds per notebook)
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Reading rates for a student who works through a derivation rather than skims it; a display
# equation or a figure costs extra time to check. Rates from the literature on technical reading
# are 50-150 words per minute for mathematics; the guide uses the middle of that range.
WORDS_PER_MINUTE = 100
MINUTES_PER_EQUATION = 1.0
SHOWN_CODE_LINES_PER_MINUTE = 15


def counts(path: Path) -> dict:
    nb = json.loads(path.read_text())
    words = equations = code_lines = exercises = claims = 0
    in_solution = False  # between {solution-start} and {solution-end}
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        tags = cell.get("metadata", {}).get("tags", [])
        starts, ends = "{solution-start}" in text, "{solution-end}" in text
        if in_solution and not ends:
            continue
        in_solution = (in_solution or starts) and not ends
        if cell["cell_type"] == "markdown":
            exercises += len(re.findall(r"^`{3,4}\{exercise\}", text, flags=re.M))
            # solutions are read after the exercise, not with the chapter
            text = re.sub(
                r"^(`{3,4})\{solution\}.*?^\1\s*$", " ", text, flags=re.M | re.S
            )
            text = re.sub(r"^`{3,4}\{solution-start\}.*", " ", text, flags=re.M | re.S)
            text = re.sub(
                r".*^`{3,4}\{solution-end\}`{3,4}", " ", text, flags=re.M | re.S
            )
            equations += len(re.findall(r"^\$\$", text, flags=re.M)) // 2
            prose = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
            prose = re.sub(r"\$[^$]*\$", " x ", prose)
            words += len(re.findall(r"[A-Za-z][A-Za-z'-]*", prose))
        elif cell["cell_type"] == "code":
            claims += len(re.findall(r"\bclaim\(\s*\n?\s*[\"f]", text))
            if not {"remove-cell", "remove-input", "hide-input"} & set(tags):
                code_lines += sum(1 for line in text.splitlines() if line.strip())
    return dict(
        words=words,
        equations=equations,
        code_lines=code_lines,
        exercises=exercises,
        claims=claims,
    )


def estimate(c: dict, seconds: float | None) -> int:
    """Minutes for a careful first pass: read, check the equations, read the shown code, run."""
    minutes = (
        c["words"] / WORDS_PER_MINUTE
        + c["equations"] * MINUTES_PER_EQUATION
        + c["code_lines"] / SHOWN_CODE_LINES_PER_MINUTE
        + (seconds or 60) / 60
    )
    return 5 * round(minutes / 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", help="JSON: notebook file name -> run seconds")
    args = parser.parse_args()
    times = json.loads(Path(args.times).read_text()) if args.times else {}
    print(
        "| chapter | words | display equations | shown code lines | exercises | claims "
        "| run time (s) | reading estimate (min) |"
    )
    print("|:--|--:|--:|--:|--:|--:|--:|--:|")
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        c = counts(path)
        seconds = times.get(path.name)
        run = f"{seconds:.0f}" if seconds else "–"
        print(
            f"| {path.stem} | {c['words']:,} | {c['equations']} | {c['code_lines']} | "
            f"{c['exercises']} | {c['claims']} | {run} | {estimate(c, seconds)} |"
        )


if __name__ == "__main__":
    main()
