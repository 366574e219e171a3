"""Tests of rlbook.display, rlbook.plotting and rlbook.history.

show_source must render the real source of the installed module; curves_on_grid must
interpolate exactly on data that is linear; the plot must hold one line and one band per label.
"""

import inspect
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from IPython.display import Markdown  # noqa: E402

import rlbook.display  # noqa: E402
from rlbook.display import show_source  # noqa: E402
from rlbook.history import History  # noqa: E402
from rlbook.plotting import curves_on_grid, plot_learning_curves  # noqa: E402
from rlbook.policies import GaussianPolicy  # noqa: E402
from rlbook.returns import reward_to_go  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------------------------------------
# show_source
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("obj", [reward_to_go, GaussianPolicy, GaussianPolicy.dist])
def test_show_source_renders_the_real_source(obj) -> None:
    shown = show_source(obj)
    assert isinstance(shown, Markdown)
    text = shown.data
    lines, start = inspect.getsourcelines(obj)
    indent = len(lines[0]) - len(lines[0].lstrip())
    body = "".join(line[indent:] for line in lines).rstrip()
    assert f"```python\n{body}\n```" in text
    assert text.endswith("```")
    # the header names the object, the file inside the package and the first line's number
    assert f"`{obj.__qualname__}`" in text
    module_path = obj.__module__.replace(".", "/") + ".py"
    assert f"`{module_path}`, line {start}:" in text
    file_lines = Path(inspect.getsourcefile(obj)).read_text().splitlines()
    assert file_lines[start - 1].strip() == body.splitlines()[0].strip()


def test_show_source_of_a_method_is_dedented() -> None:
    text = show_source(GaussianPolicy.dist, title=False).data
    assert text.startswith("```python\ndef dist(self, obs")


def test_show_source_without_title_is_only_the_code_block() -> None:
    text = show_source(reward_to_go, title=False).data
    assert text.startswith("```python\ndef reward_to_go(")
    assert "line" not in text.split("\n")[0]


def test_show_source_header_names_the_package_file_in_a_checkout_named_rlbook(
    monkeypatch,
) -> None:
    # `git clone https://github.com/rlbook/rlbook` puts the package at .../rlbook/rlbook/, and
    # CI checks out at /home/runner/work/rlbook/rlbook; the header must still say rlbook/returns.py
    fake = "/home/runner/work/rlbook/rlbook/rlbook/returns.py"
    with monkeypatch.context() as patch:
        patch.setattr(rlbook.display.inspect, "getsourcefile", lambda obj: fake)
        text = show_source(reward_to_go).data
    assert "from `rlbook/returns.py`" in text


@pytest.mark.parametrize("obj", [len, 3, "reward_to_go"])
def test_show_source_rejects_objects_without_source(obj) -> None:
    with pytest.raises(TypeError, match="obj"):
        show_source(obj)


# ---------------------------------------------------------------------------------------------
# History
# ---------------------------------------------------------------------------------------------


def test_history_columns_missing_values_and_meta() -> None:
    history = History(algo="vpg", seed=3)
    history.log(env_steps=10, mean_return=1.0)
    history.log(env_steps=20, mean_return=np.float32(2.5), extra=7)
    assert len(history) == 2
    assert history.keys() == ["env_steps", "mean_return", "extra"]
    np.testing.assert_array_equal(history["env_steps"], [10.0, 20.0])
    assert history["mean_return"].dtype == np.float64
    assert math.isnan(history["extra"][0]) and history["extra"][1] == 7.0
    assert history.meta == {"algo": "vpg", "seed": 3}
    assert [row["env_steps"] for row in history] == [10.0, 20.0]
    assert "2 rows" in repr(history)
    with pytest.raises(KeyError, match="loss"):
        history["loss"]


def test_history_first_reach() -> None:
    history = History()
    for steps, ret in [(100, 10.0), (200, 60.0), (300, 40.0), (400, 80.0)]:
        history.log(env_steps=steps, mean_return=ret)
    assert history.first_reach("mean_return", 50.0) == 200.0
    assert history.first_reach("mean_return", 80.0) == 400.0
    assert history.first_reach("mean_return", 81.0) == math.inf


# ---------------------------------------------------------------------------------------------
# Learning curves
# ---------------------------------------------------------------------------------------------


def linear_history(xs, slope: float, intercept: float) -> History:
    history = History()
    for x in xs:
        history.log(env_steps=x, mean_return=slope * x + intercept)
    return history


def test_curves_on_grid_interpolates_linear_data_exactly() -> None:
    a = linear_history([0, 30, 70, 100, 150], 2.0, 1.0)
    b = linear_history([10, 25, 90, 120], -1.0, 5.0)
    grid, values = curves_on_grid([a, b], num=50)
    # the shared range: from the largest first x to the smallest last x
    assert grid.shape == (50,) and values.shape == (2, 50)
    assert grid[0] == 10 and grid[-1] == 120
    np.testing.assert_allclose(np.diff(grid), np.full(49, 110 / 49))
    np.testing.assert_allclose(values[0], 2.0 * grid + 1.0)
    np.testing.assert_allclose(values[1], -1.0 * grid + 5.0)


def test_curves_on_grid_other_metrics() -> None:
    history = History()
    for it in range(5):
        history.log(iteration=it, env_steps=100 * it, mean_length=3.0 * it)
    grid, values = curves_on_grid([history], x="iteration", y="mean_length", num=9)
    np.testing.assert_allclose(grid, np.linspace(0, 4, 9))
    np.testing.assert_allclose(values[0], 3.0 * grid)


def test_curves_on_grid_errors() -> None:
    with pytest.raises(ValueError, match="histories"):
        curves_on_grid([])
    a = linear_history([0, 10], 1.0, 0.0)
    b = linear_history([20, 30], 1.0, 0.0)
    with pytest.raises(ValueError, match="env_steps"):
        curves_on_grid([a, b])


def runs() -> dict[str, list[History]]:
    return {
        "rising": [linear_history([0, 50, 100], 1.0, c) for c in (0.0, 2.0, 4.0)],
        "flat": [linear_history([0, 40, 100], 0.0, c) for c in (10.0, 20.0)],
    }


def band_extent(ax, k: int) -> tuple[float, float]:
    vertices = ax.collections[k].get_paths()[0].vertices
    return vertices[:, 1].min(), vertices[:, 1].max()


def test_plot_learning_curves_draws_a_line_and_a_band_per_label() -> None:
    ax = plot_learning_curves(runs())
    assert isinstance(ax, plt.Axes)
    assert len(ax.lines) == 2
    assert len(ax.collections) == 2
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["rising (3 seeds)", "flat (2 seeds)"]
    # the line is the mean over seeds
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(y, x + 2.0)
    np.testing.assert_allclose(ax.lines[1].get_data()[1], 15.0)
    # std band: mean ± population std over seeds (sqrt(8/3) for 0, 2, 4; 5 for 10, 20)
    low, high = band_extent(ax, 0)
    assert low == pytest.approx(0.0 + 2.0 - math.sqrt(8 / 3))
    assert high == pytest.approx(100.0 + 2.0 + math.sqrt(8 / 3))
    assert band_extent(ax, 1) == pytest.approx((10.0, 20.0))
    assert ax.get_xlabel() == "env steps" and ax.get_ylabel() == "mean return"
    assert ax.get_legend() is not None


def test_plot_learning_curves_minmax_band_threshold_and_given_axes() -> None:
    _, given = plt.subplots()
    ax = plot_learning_curves(runs(), band="minmax", ax=given, threshold=475.0)
    assert ax is given
    low, high = band_extent(ax, 0)
    assert (low, high) == pytest.approx((0.0, 104.0))
    # the threshold adds one dashed horizontal line
    assert len(ax.lines) == 3
    threshold = ax.lines[-1]
    assert threshold.get_linestyle() == "--"
    np.testing.assert_allclose(threshold.get_ydata(), 475.0)


@pytest.mark.parametrize("band", ["sem", "", None])
def test_plot_learning_curves_rejects_a_bad_band(band) -> None:
    with pytest.raises(ValueError, match="band"):
        plot_learning_curves(runs(), band=band)
