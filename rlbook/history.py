"""Per-iteration training metrics, as returned by every ``train_*`` function."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from rlbook import validate


class History:
    """A table of metrics, one row per training iteration.

    ``log(env_steps=..., mean_return=..., ...)`` appends a row; ``history["mean_return"]`` is that
    column as a NumPy array (NaN where a row lacks it). ``meta`` keeps the configuration and seed.

    Notes
    -----
    See chapter 6 of the book (book/06_ppo.ipynb).
    """

    def __init__(self, **meta):
        self.meta = dict(meta)
        self.rows: list[dict[str, float]] = []

    def log(self, **metrics: float) -> None:
        """Append one row of metrics: real numbers (NaN allowed), named by their keyword."""
        self.rows.append({k: validate.real(k, v) for k, v in metrics.items()})

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return list(seen)

    def __getitem__(self, key: str) -> np.ndarray:
        validate.instance("key", key, str)
        if key not in self.keys():
            raise KeyError(f"no metric {key!r}; this history has {self.keys()}")
        return np.array([row.get(key, math.nan) for row in self.rows])

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, float]]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"History({len(self)} rows, metrics={self.keys()}, meta={self.meta})"

    def first_reach(self, key: str, threshold: float, x: str = "env_steps") -> float:
        """The value of ``x`` at the first row where ``key >= threshold`` (``inf`` if never)."""
        threshold = validate.number("threshold", threshold)
        values, xs = self[key], self[x]
        hits = np.flatnonzero(values >= threshold)
        return float(xs[hits[0]]) if hits.size else math.inf
