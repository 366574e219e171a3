"""Learning curves over seeds: the mean as a line, the spread as a band."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from rlbook import validate
from rlbook.history import History


def _histories(name: str, value) -> list[History]:
    """A non-empty sequence of History objects, as a list."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(
            f"{name} must be a list of History objects, got {type(value).__name__}"
        )
    if len(value) == 0:
        raise ValueError(f"{name} must hold at least one History, got none")
    for item in value:
        validate.instance(f"{name}[...]", item, History)
    return list(value)


def curves_on_grid(
    histories: Sequence[History],
    x: str = "env_steps",
    y: str = "mean_return",
    num: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate each run's ``y`` against ``x`` onto one shared grid.

    Runs log at different ``x`` (episodes have different lengths), so they are put on a common
    grid from the largest first ``x`` to the smallest last ``x`` over runs, where every run has data.

    Returns
    -------
    grid : ndarray, (num,)
    values : ndarray, (num_runs, num)
    """
    histories = _histories("histories", histories)
    num = validate.positive_int("num", num)
    validate.instance("x", x, str)
    validate.instance("y", y, str)
    xs, ys = [], []
    for h in histories:
        # metrics logged only on some rows (evaluations) are NaN on the others: skip those rows
        keep = ~np.isnan(h[y]) & ~np.isnan(h[x])
        if not keep.any():
            raise ValueError(f"a run has no values of {y!r}")
        xs.append(h[x][keep])
        ys.append(h[y][keep])
    lo, hi = max(v[0] for v in xs), min(v[-1] for v in xs)
    if not hi > lo:
        raise ValueError(f"the runs share no range of {x!r} to compare on")
    grid = np.linspace(lo, hi, num)
    return grid, np.stack(
        [np.interp(grid, xi, yi) for xi, yi in zip(xs, ys, strict=True)]
    )


def plot_learning_curves(
    runs: Mapping[str, Sequence[History]],
    x: str = "env_steps",
    y: str = "mean_return",
    *,
    band: str = "std",
    ax: plt.Axes | None = None,
    threshold: float | None = None,
) -> plt.Axes:
    """Plot one learning curve per label: mean over seeds, with a band.

    Parameters
    ----------
    runs : mapping of label to a list of History
        One History per seed.
    x, y : str
        Metrics for the axes.
    band : {"std", "minmax"}
        Mean ± one standard deviation over seeds, or the range from the worst to the best seed.
    ax : matplotlib Axes, optional
    threshold : float, optional
        Draw a dashed horizontal line, e.g. the score that counts as solved.

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    validate.choice("band", band, ("std", "minmax"))
    validate.instance("runs", runs, Mapping)
    if not runs:
        raise ValueError("runs must map at least one label to its histories, got none")
    for label, histories in runs.items():
        _histories(f"runs[{label!r}]", histories)
    threshold = validate.optional(validate.number, "threshold", threshold)
    validate.optional(validate.instance, "ax", ax, cls=plt.Axes)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for label, histories in runs.items():
        grid, values = curves_on_grid(histories, x, y)
        mean = values.mean(axis=0)
        if band == "std":
            low, high = mean - values.std(axis=0), mean + values.std(axis=0)
        else:
            low, high = values.min(axis=0), values.max(axis=0)
        (line,) = ax.plot(grid, mean, label=f"{label} ({len(histories)} seeds)")
        ax.fill_between(
            grid, low, high, color=line.get_color(), alpha=0.25, linewidth=0
        )
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " "))
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return ax
