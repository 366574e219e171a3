"""Tests of the chapter-7 grader ``check_ars_update``.

The right answers are written the way a learner would, by routes independent of the grader's
reference (``rlbook.algos.ars.ars_update``, NumPy with ``argsort`` and ``tensordot``): a plain
loop over a sorted list of pairs, and a torch version with ``topk``. Each known wrong answer must
fail with its own diagnosis.
"""

import numpy as np
import pytest
import torch

from rlbook.checks import ExerciseError, check_ars_update

# ---------------------------------------------------------------------------------------------
# Learner-style ARS steps, right and wrong
# ---------------------------------------------------------------------------------------------


def loop_step(
    r_plus,
    r_minus,
    deltas,
    b,
    step_size,
    rank=lambda rp, rm: max(rp, rm),
    ddof=0,
    divide_by_std=True,
    std_over_all=False,
    sign=1.0,
    nan_on_equal=False,
):
    """Right with the defaults: sort the pairs by hand, sum in a loop; each switch is a bug."""
    n = len(r_plus)
    order = sorted(range(n), key=lambda k: -rank(r_plus[k], r_minus[k]))
    kept = order[:b]
    pool = range(n) if std_over_all else kept
    used = [r_plus[k] for k in pool] + [r_minus[k] for k in pool]
    mean = sum(used) / len(used)
    sigma = (sum((r - mean) ** 2 for r in used) / (len(used) - ddof)) ** 0.5
    if not divide_by_std:
        sigma = 1.0
    elif sigma == 0 and not nan_on_equal:
        sigma = 1.0
    total = np.zeros(np.shape(deltas)[1:])
    for k in kept:
        total = total + (r_plus[k] - r_minus[k]) * np.asarray(deltas[k])
    with np.errstate(invalid="ignore", divide="ignore"):
        return sign * step_size / (b * sigma) * total


def torch_step(r_plus, r_minus, deltas, b, step_size):
    """Right: torch, topk on the better of each pair, population standard deviation."""
    r_plus, r_minus = torch.as_tensor(r_plus), torch.as_tensor(r_minus)
    deltas = torch.as_tensor(deltas)
    top = torch.topk(torch.maximum(r_plus, r_minus), b).indices
    sigma = torch.cat([r_plus[top], r_minus[top]]).std(correction=0)
    if sigma == 0:
        return torch.zeros(deltas.shape[1:], dtype=deltas.dtype)
    diffs = r_plus[top] - r_minus[top]
    return step_size / (b * sigma) * torch.einsum("k,k...->...", diffs, deltas[top])


WRONG = {
    "no_scaling": (
        lambda **a: loop_step(**a, divide_by_std=False),
        "not divided by sigma_R",
    ),
    "all_directions": (
        lambda r_plus, r_minus, deltas, b, step_size: loop_step(
            r_plus, r_minus, deltas, len(r_plus), step_size
        ),
        "all N directions were used",
    ),
    "r_plus_only": (
        lambda **a: loop_step(**a, rank=lambda rp, rm: rp),
        "ranked by r+ alone",
    ),
    "by_difference": (
        lambda **a: loop_step(**a, rank=lambda rp, rm: abs(rp - rm)),
        "ranked by |r+ - r-|",
    ),
    "sign_flipped": (lambda **a: loop_step(**a, sign=-1.0), "sign is flipped"),
    "std_over_all": (
        lambda **a: loop_step(**a, std_over_all=True),
        "over all 2N returns",
    ),
    "sample_std": (lambda **a: loop_step(**a, ddof=1), "ddof=1"),
    "divided_by_n": (
        lambda r_plus, r_minus, deltas, b, step_size: (
            loop_step(r_plus, r_minus, deltas, b, step_size) * b / len(r_plus)
        ),
        "divided by N",
    ),
}


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [loop_step, torch_step], ids=["loop", "torch"])
def test_right_answers_pass(fn, capsys):
    assert check_ars_update(fn, seed=0) is True
    assert check_ars_update(fn, seed=123, n_random=60) is True
    assert "all" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(WRONG))
def test_known_mistakes_fail_with_their_diagnosis(name):
    fn, diagnosis = WRONG[name]
    with pytest.raises(ExerciseError, match="It looks like") as info:
        check_ars_update(fn, seed=1)
    assert diagnosis in str(info.value)


def test_nan_on_equal_returns_is_explained():
    with pytest.raises(ExerciseError, match="sigma_R = 0") as info:
        check_ars_update(lambda **a: loop_step(**a, nan_on_equal=True))
    assert "500" in str(info.value)


def test_wrong_shape_crash_and_none_are_reported():
    def flat(r_plus, r_minus, deltas, b, step_size):
        return loop_step(r_plus, r_minus, deltas, b, step_size).ravel()

    def crashes(r_plus, r_minus, deltas, b, step_size):
        return deltas[b + 100]

    def forgets_return(r_plus, r_minus, deltas, b, step_size):
        loop_step(r_plus, r_minus, deltas, b, step_size)

    with pytest.raises(ExerciseError, match="shape"):
        check_ars_update(flat)
    with pytest.raises(ExerciseError, match="IndexError"):
        check_ars_update(crashes)
    with pytest.raises(ExerciseError, match="return"):
        check_ars_update(forgets_return)


def test_inputs_are_copies_and_stub_errors_pass_through():
    def sorts_in_place(r_plus, r_minus, deltas, b, step_size):
        out = loop_step(r_plus, r_minus, deltas, b, step_size)
        r_plus.sort()
        deltas[:] = 0
        return out

    with pytest.raises(ExerciseError, match="'r_plus' in place"):
        check_ars_update(sorts_in_place)

    def stub(r_plus, r_minus, deltas, b, step_size):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check_ars_update(stub)
    with pytest.raises(TypeError, match="fn must be a function"):
        check_ars_update("ars")
