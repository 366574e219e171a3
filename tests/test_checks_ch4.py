"""Tests of the chapter-4 graders in rlbook.checks: right answers written the way a learner would
(NumPy, loops, the density written out) pass; each typical mistake fails with its diagnosis."""

import math

import numpy as np
import pytest
import torch

from rlbook.checks import ExerciseError, check_gaussian_log_prob, check_normalize

# ---------------------------------------------------------------------------------------------
# check_normalize
# ---------------------------------------------------------------------------------------------


def numpy_normalize(x):
    """Right: NumPy's std divides by n by default."""
    a = np.asarray(x, dtype=float)
    return (a - a.mean()) / (a.std() + 1e-8)


def torch_normalize(x):
    """Right: eps inside the square root works too."""
    centred = x - x.mean()
    return centred / torch.sqrt((centred**2).mean() + 1e-12)


@pytest.mark.parametrize("fn", [numpy_normalize, torch_normalize])
def test_check_normalize_accepts_right_answers(fn, capsys) -> None:
    assert check_normalize(fn, seed=0)
    assert "all" in capsys.readouterr().out


def test_check_normalize_catches_a_missing_eps() -> None:
    def no_eps(x):
        return (x - x.mean()) / x.std(correction=0)

    with pytest.raises(ExerciseError, match="eps is missing"):
        check_normalize(no_eps, seed=0)


@pytest.mark.parametrize(
    ("wrong", "diagnosis"),
    [
        (lambda x: x / (x.std(correction=0) + 1e-8), "mean is not subtracted"),
        (
            lambda x: (x - x.mean(0)) / (x.std(0, correction=0) + 1e-8),
            "per column",
        ),
        (
            lambda x: (x - x.mean()) / (x.std(0, correction=0) + 1e-8),
            "std is taken per column",
        ),
        (lambda x: (x - x.mean()) / (x.std() + 1e-8), "sample standard deviation"),
        (lambda x: (x - x.mean()) / (x.var(correction=0) + 1e-8), "variance"),
    ],
)
def test_check_normalize_names_the_mistake(wrong, diagnosis) -> None:
    with pytest.raises(ExerciseError, match=diagnosis):
        check_normalize(wrong, seed=1)


def test_check_normalize_reports_a_crash_and_lets_not_implemented_through() -> None:
    def crashes(x):
        raise IndexError("boom")

    with pytest.raises(ExerciseError, match="IndexError"):
        check_normalize(crashes)

    def stub(x):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check_normalize(stub)


# ---------------------------------------------------------------------------------------------
# check_gaussian_log_prob
# ---------------------------------------------------------------------------------------------


def written_out_log_prob(actions, mean, log_std):
    """Right: the log of the product of 1-D densities, with NumPy."""
    a, m, ls = (np.asarray(v, dtype=float) for v in (actions, mean, log_std))
    sigma = np.exp(ls)
    density = np.exp(-((a - m) ** 2) / (2 * sigma**2)) / (
        sigma * math.sqrt(2 * math.pi)
    )
    return np.log(density).sum(axis=-1)


def torch_log_prob(actions, mean, log_std):
    """Right: a sum of torch Normal log-probs."""
    return torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1)


@pytest.mark.parametrize("fn", [written_out_log_prob, torch_log_prob])
def test_check_gaussian_log_prob_accepts_right_answers(fn) -> None:
    assert check_gaussian_log_prob(fn, seed=0)


def test_check_gaussian_log_prob_catches_a_missing_sum() -> None:
    def per_dimension(actions, mean, log_std):
        return torch.distributions.Normal(mean, log_std.exp()).log_prob(actions)

    with pytest.raises(ExerciseError, match="sum the log-densities over the last axis"):
        check_gaussian_log_prob(per_dimension)


def _terms(actions, mean, log_std, square=True, with_log_std=True, const=True):
    sigma = log_std.exp()
    out = -((actions - mean) ** 2) / (2 * (sigma**2 if square else sigma))
    if with_log_std:
        out = out - log_std
    if const:
        out = out - 0.5 * math.log(2 * math.pi)
    return out


@pytest.mark.parametrize(
    ("wrong", "diagnosis"),
    [
        (
            lambda actions, mean, log_std: _terms(actions, mean, log_std).mean(-1),
            "averaged",
        ),
        (
            lambda actions, mean, log_std: _terms(
                actions, mean, log_std, square=False
            ).sum(-1),
            "2 sigma instead of 2 sigma",
        ),
        (
            lambda actions, mean, log_std: _terms(
                actions, mean, log_std, with_log_std=False
            ).sum(-1),
            "-log\\(sigma\\) term",
        ),
        (
            lambda actions, mean, log_std: _terms(
                actions, mean, log_std, const=False
            ).sum(-1),
            "constant",
        ),
        (
            lambda actions, mean, log_std: _terms(actions, mean, log_std / 2).sum(-1),
            "log of the variance",
        ),
    ],
)
def test_check_gaussian_log_prob_names_the_mistake(wrong, diagnosis) -> None:
    with pytest.raises(ExerciseError, match=diagnosis):
        check_gaussian_log_prob(wrong, seed=2)
