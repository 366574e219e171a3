"""Claims: a sentence of the book, the value that backs it, and the range it must fall in.

A chapter states a claim in the words of its prose and checks it in one call::

    claim("ch3-rtg-chain", "Reward-to-go removes more than a quarter of the variance",
          ratio, below=0.75)

It shows as one visible line under the cell, in Jupyter, on Colab and in the HTML book::

    ✓ Reward-to-go removes more than a quarter of the variance (measured 0.72; holds for < 0.75)

and raises :class:`ClaimFailed` when the value falls outside its range. The ranges come from
the spread of each value over seed offsets and CPU kernel paths
(``benchmarks/claims_spread.py``), so a failure means the book is wrong, not the reader's
machine.
"""

from __future__ import annotations

import html
import json
import math
import os
import re

import numpy as np

from rlbook import validate

ISSUES_URL = "https://github.com/rlbook/rlbook/issues"
_ID = re.compile(r"^ch[0-9a-z.]+-[a-z0-9-]+$")
# how a claim's line looks in HTML; the book's "Checked claims" page reads the record back
# from it (tools/sphinx/rlbook_claims.py)
HTML_LINE = re.compile(r"<p class=\"rlbook-claim\"[^>]*data-claim='([^']*)'")


class ClaimFailed(AssertionError):
    """A claim of the book did not hold: a defect of the book, to be reported."""


def _number(name: str, value) -> float:
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def _fmt(x: float) -> str:
    # four significant digits: bounds such as 49.99 and 50.01 stay apart
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"


class Claim:
    """One checked claim; its repr is the visible line (see :func:`claim`)."""

    def __init__(self, id: str, text: str, value: float, below, above, z_of=None):
        self.id, self.text, self.value = id, text, value
        self.below, self.above, self.z_of = below, above, z_of
        self.holds = math.isfinite(value) and (
            (below is None or value < below) and (above is None or value > above)
        )

    @property
    def range_text(self) -> str:
        if self.below is not None and self.above is not None:
            return f"{_fmt(self.above)} < value < {_fmt(self.below)}"
        if self.below is not None:
            return f"value < {_fmt(self.below)}"
        return f"value > {_fmt(self.above)}"

    def line(self) -> str:
        mark = "✓" if self.holds else "✗"
        return (
            f"{mark} {self.text} (measured {_fmt(self.value)}; "
            f"holds for {self.range_text})"
        )

    def record(self) -> dict:
        return {
            "id": self.id,
            "text": self.text,
            "value": self.value,
            "below": self.below,
            "above": self.above,
            "holds": self.holds,
            "range": self.range_text,
            "measured": _fmt(self.value),
            "z_of": self.z_of,
        }

    def __repr__(self) -> str:
        return self.line()

    def _repr_mimebundle_(self, include=None, exclude=None):
        color = "#1a7f37" if self.holds else "#cf222e"
        body = html.escape(self.line())
        # the record rides along for the book's "Checked claims" page
        # (tools/sphinx/rlbook_claims.py reads it from the HTML output)
        data = html.escape(json.dumps(self.record(), ensure_ascii=False), quote=True)
        return {
            "text/plain": self.line(),
            "text/html": (
                f'<p class="rlbook-claim" id="claim-{self.id}" '
                f"data-claim='{data}' "
                f'style="color:{color};margin:0.2em 0">{body}</p>'
            ),
        }


def claim(
    id: str,
    text: str,
    value,
    *,
    below: float | None = None,
    above: float | None = None,
    z_of: int | None = None,
) -> None:
    """Check ``above < value < below`` and show the claim as one line.

    Parameters
    ----------
    id : str
        Stable identifier, ``ch<chapter>-<words>`` (for example ``"ch3-rtg-chain"``); the
        spread report and the book's list of checked claims are keyed by it.
    text : str
        The claim in the words of the prose.
    value : real number
        What was measured (a Python, NumPy or 0-d torch number).
    below, above : float, optional
        The accepted range (at least one bound).
    z_of : int, optional
        For a claim "these estimates are unbiased": ``value`` is the largest |z| of
        ``z_of`` statistics, each standard normal when the claim is true. The spread
        report then takes the chance of a false failure from that law,
        ``z_of * P(|N(0, 1)| > below)``, instead of from the measured spread.

    The line ``✓ text (measured v; holds for range)`` is displayed under the cell.

    Raises
    ------
    ClaimFailed
        The value is outside the range (or not finite): a defect of the book.
    """
    if not _ID.match(validate.instance("id", id, str)):
        raise ValueError(f"id must look like 'ch3-rtg-chain', got {id!r}")
    if not validate.instance("text", text, str).strip():
        raise ValueError("text must be the claim's sentence, got an empty string")
    if below is None and above is None:
        raise ValueError("give the accepted range: below=, above= or both")
    # a bound must be a finite number: value < nan never holds, value < inf always does
    below = validate.optional(validate.number, "below", below)
    above = validate.optional(validate.number, "above", above)
    if below is not None and above is not None and not above < below:
        raise ValueError(
            f"the range is empty: above={above} is not below below={below}"
        )
    if z_of is not None:
        z_of = validate.positive_int("z_of", z_of)
        if below is None or above is not None:
            raise ValueError(
                "a claim with z_of bounds |z| from above: give below= only"
            )
    result = Claim(id, text.strip(), _number("value", value), below, above, z_of)
    _publish(result)
    if not result.holds and not os.environ.get("RLBOOK_CLAIMS_RECORD"):
        raise ClaimFailed(
            f"claim {id!r} failed: {result.text!r} measured {result.value!r}, "
            f"accepted {result.range_text}. This is a defect of the book, not of your "
            f"setup: please report it at {ISSUES_URL} with this message."
        )


def _publish(result: Claim) -> None:
    """Display the line in a notebook; append the record for the spread sweep."""
    path = os.environ.get("RLBOOK_CLAIMS_RECORD")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"claim": result.record()}) + "\n")
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover (IPython is a dependency)
        return
    if get_ipython() is not None:
        display(result)
