"""Graders of chapter 7 (book/07_beyond_gradients.ipynb): the ARS update."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from rlbook import validate
from rlbook.checks._harness import ExerciseError, _fmt, _grade, _try
from rlbook.utils import rng as _seeded_rng


def _ars_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(r_plus, r_minus, deltas, b, step_size):
        return {
            "r_plus": np.asarray(r_plus, dtype=np.float64),
            "r_minus": np.asarray(r_minus, dtype=np.float64),
            "deltas": np.asarray(deltas, dtype=np.float64),
            "b": b,
            "step_size": step_size,
        }

    # hand-picked first: four directions along the axes, keep two. max(r+, r-) ranks them
    # 1, 3, 0, 2; r+ alone ranks them 1, 0, ...; |r+ - r-| ranks them 3, 2, ...: every known
    # mistake gives its own answer here
    yield case([30.0, 50.0, 5.0, 10.0], [20.0, 45.0, 25.0, 40.0], np.eye(4), 2, 1.0)
    # keep one; keep all; matrices (2 actions x 3 features) as directions
    yield case([1.0, 4.0, 2.0], [3.0, 0.5, 2.5], np.eye(3), 1, 0.5)
    yield case([1.0, 4.0, 2.0], [3.0, 0.5, 2.5], np.eye(3), 3, 0.1)
    yield case(
        [120.0, 80.0, 200.0],
        [60.0, 140.0, 20.0],
        rng.normal(size=(3, 2, 3)).round(2),
        2,
        0.02,
    )
    for _ in range(n_random):
        n = int(rng.integers(2, 12))
        shape = [
            (int(rng.integers(2, 6)),),
            (int(rng.integers(1, 4)), int(rng.integers(2, 5))),
        ]
        scale = float(rng.choice([1.0, 20.0, 500.0]))
        yield case(
            rng.normal(size=n) * scale,
            rng.normal(size=n) * scale,
            rng.normal(size=(n, *shape[int(rng.integers(2))])),
            int(rng.integers(1, n + 1)),
            float(rng.choice([0.01, 0.1, 1.0])),
        )


def _ars_equal_returns_case() -> dict:
    # every perturbed policy balanced the pole for all 500 steps: sigma_R = 0, no information
    return {
        "r_plus": np.full(4, 500.0),
        "r_minus": np.full(4, 500.0),
        "deltas": _seeded_rng(0).normal(size=(4, 2, 4)),
        "b": 2,
        "step_size": 0.1,
    }


def _ars_reference(r_plus, r_minus, deltas, b, step_size):
    from rlbook.algos.ars import ars_update  # local: keeps checks light to import

    return ars_update(r_plus, r_minus, deltas, b, step_size)


def _ars_step(r_plus, r_minus, deltas, top, step_size, sigma):
    diffs = r_plus[top] - r_minus[top]
    return step_size / (len(top) * sigma) * np.tensordot(diffs, deltas[top], axes=1)


def check_ars_update(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
    r"""Grade ``fn(r_plus, r_minus, deltas, b, step_size)``, the step of augmented random search.

    .. math:: \Delta M = \frac{\alpha}{b\,\sigma_R} \sum_{k \in \text{top } b}
              (r^+_k - r^-_k)\,\delta_k

    where the top ``b`` directions have the largest :math:`\max(r^+_k, r^-_k)` and
    :math:`\sigma_R` is the standard deviation (``ddof=0``) of the :math:`2b` returns of those
    directions (Mania, Guy and Recht, 2018). Inputs: float arrays ``r_plus`` and ``r_minus``
    shaped ``(N,)``, ``deltas`` shaped ``(N, *param_shape)``, an int ``b`` and a float
    ``step_size``; the answer has shape ``param_shape``. Reference:
    :func:`rlbook.algos.ars.ars_update`. One case has all returns equal (:math:`\sigma_R = 0`):
    the step must then be zero, not NaN. Known mistakes recognised: no division by
    :math:`\sigma_R`, all ``N`` directions instead of the top ``b``, directions ranked by
    :math:`r^+` only or by :math:`|r^+ - r^-|`, the sign flipped, :math:`\sigma_R` over all
    :math:`2N` returns, the sample standard deviation (``ddof=1``), dividing by ``N``
    instead of ``b``.
    See chapter 7 of the book (book/07_beyond_gradients.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    equal = _ars_equal_returns_case()
    got = _try("ars_update", fn, equal)  # None: _grade reports the failure
    if got is not None and not np.all(np.isfinite(got)):
        raise ExerciseError(
            f"ars_update returned non-finite numbers on the input\n{_fmt(equal)}\n"
            "where every return is 500. Then sigma_R = 0 and every difference r+ - r- is 0 as "
            "well: 0 / 0 is NaN. Return a zero step in that case (for example, divide by 1 "
            "when sigma_R is 0)."
        )

    def ranked(key, r_plus, r_minus, b):
        return np.argsort(-key, kind="stable")[:b]

    def used_std(r_plus, r_minus, top, ddof=0):
        return np.concatenate([r_plus[top], r_minus[top]]).std(ddof=ddof) or 1.0

    def top_of(r_plus, r_minus, b):
        return ranked(np.maximum(r_plus, r_minus), r_plus, r_minus, b)

    def no_scaling(r_plus, r_minus, deltas, b, step_size):
        return _ars_step(
            r_plus, r_minus, deltas, top_of(r_plus, r_minus, b), step_size, 1.0
        )

    def all_directions(r_plus, r_minus, deltas, b, step_size):
        every = np.arange(len(r_plus))
        sigma = used_std(r_plus, r_minus, every)
        return _ars_step(r_plus, r_minus, deltas, every, step_size, sigma)

    def by_r_plus(r_plus, r_minus, deltas, b, step_size):
        top = ranked(r_plus, r_plus, r_minus, b)
        return _ars_step(
            r_plus, r_minus, deltas, top, step_size, used_std(r_plus, r_minus, top)
        )

    def by_difference(r_plus, r_minus, deltas, b, step_size):
        top = ranked(np.abs(r_plus - r_minus), r_plus, r_minus, b)
        return _ars_step(
            r_plus, r_minus, deltas, top, step_size, used_std(r_plus, r_minus, top)
        )

    def flipped(r_plus, r_minus, deltas, b, step_size):
        return -_ars_reference(r_plus, r_minus, deltas, b, step_size)

    def std_of_all(r_plus, r_minus, deltas, b, step_size):
        top = top_of(r_plus, r_minus, b)
        sigma = used_std(r_plus, r_minus, np.arange(len(r_plus)))
        return _ars_step(r_plus, r_minus, deltas, top, step_size, sigma)

    def sample_std(r_plus, r_minus, deltas, b, step_size):
        top = top_of(r_plus, r_minus, b)
        sigma = used_std(r_plus, r_minus, top, ddof=1)
        return _ars_step(r_plus, r_minus, deltas, top, step_size, sigma)

    def over_n(r_plus, r_minus, deltas, b, step_size):
        return _ars_reference(r_plus, r_minus, deltas, b, step_size) * b / len(r_plus)

    return _grade(
        "ars_update",
        fn,
        _ars_reference,
        [*_ars_cases(seed, n_random), equal],
        mistakes={
            "the step is not divided by sigma_R, the standard deviation of the 2b returns "
            "used; without it the step grows with the size of the rewards": no_scaling,
            "all N directions were used; keep only the b with the largest max(r+, r-) "
            "(the top b)": all_directions,
            "the directions were ranked by r+ alone; rank by max(r+, r-): a direction whose "
            "minus side did best is just as informative": by_r_plus,
            "the directions were ranked by |r+ - r-|; rank by max(r+, r-), the better of "
            "the two rollouts": by_difference,
            "the sign is flipped: step towards the better rollout, (r+ - r-) * delta": flipped,
            "sigma_R was computed over all 2N returns; use only the 2b returns of the top b "
            "directions": std_of_all,
            "sigma_R is the sample standard deviation (ddof=1, torch.std's default); use "
            "ddof=0 (np.std's default, torch.std(..., correction=0))": sample_std,
            "the sum was divided by N; divide by b, the number of directions kept": over_n,
        },
        hint="rank the directions by max(r_plus, r_minus) and keep the first b; sigma_R = "
        "np.std of their 2b returns; step = step_size / (b * sigma_R) * sum_k (r+_k - r-_k) "
        "delta_k, with the sum over the kept directions.",
    )
