"""Graders of section 4.1 (book/04_1_harder_tasks.ipynb): the Gaussian log-density."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from rlbook import validate
from rlbook.checks._harness import ExerciseError, _as_array, _grade, _try
from rlbook.utils import rng as _seeded_rng


def _gaussian_log_prob_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(actions, mean, log_std):
        return {
            "actions": torch.tensor(actions, dtype=torch.float64),
            "mean": torch.tensor(mean, dtype=torch.float64),
            "log_std": torch.tensor(log_std, dtype=torch.float64),
        }

    # hand-picked edge cases: one action dimension at its mean with sigma = 1 (only the constant
    # remains), then a batch of 2-D actions with log_std shared by the batch, as in GaussianPolicy
    yield case([0.0], [0.0], [0.0])
    yield case(
        [[1.0, -1.0], [0.5, 2.0], [0.0, 0.0]],
        [[0.0, 0.0], [1.0, 1.0], [0.3, -0.3]],
        [0.5, -1.0],
    )
    for _ in range(n_random):
        act_dim = int(rng.integers(1, 5))
        batch = tuple(int(n) for n in rng.integers(1, 5, size=int(rng.integers(0, 3))))
        mean = rng.normal(size=(*batch, act_dim))
        log_std = rng.uniform(-1.5, 1.0, size=act_dim)
        actions = mean + np.exp(log_std) * rng.normal(size=(*batch, act_dim)) * 1.5
        yield case(actions, mean, log_std)


def _gaussian_log_prob(actions, mean, log_std):
    normal = torch.distributions.Normal(mean, torch.exp(log_std).expand_as(mean))
    return torch.distributions.Independent(normal, 1).log_prob(actions)


def check_gaussian_log_prob(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(actions, mean, log_std) -> (...)``, the log-density of a diagonal Gaussian.

    .. math:: \log \pi(a \mid s) = \sum_{i=1}^{d} \Big( -\frac{(a_i - \mu_i)^2}{2\sigma_i^2}
              - \log\sigma_i - \tfrac12 \log 2\pi \Big), \qquad \sigma_i = e^{\log\sigma_i}

    Inputs: float64 ``actions`` and ``mean`` of shape ``(..., d)`` and ``log_std`` of shape
    ``(d,)`` (one per action dimension, shared by the batch, as in
    :class:`rlbook.policies.GaussianPolicy`); the answer has shape ``(...)``. Reference:
    ``Independent(Normal(mean, exp(log_std)), 1).log_prob(actions)``. Known mistakes recognised:
    one value per dimension (no sum), the mean over dimensions instead of the sum, ``σ`` where
    ``σ²`` belongs, the ``- log σ`` term or the constant missing, ``log_std`` used as the log of
    the variance.
    See chapter 4.1 of the book (book/04_1_harder_tasks.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    batch_case = list(_gaussian_log_prob_cases(seed, 0))[1]
    got = _try("gaussian_log_prob", fn, batch_case)  # None: _grade reports the failure
    if got is not None and np.shape(got) == tuple(batch_case["actions"].shape):
        raise ExerciseError(
            f"gaussian_log_prob returned shape {np.shape(_as_array(got))} for actions of shape "
            f"{tuple(batch_case['actions'].shape)}: one number per action dimension.\n"
            "The dimensions are independent, so the joint density is the product of the "
            "per-dimension densities: sum the log-densities over the last axis."
        )

    def per_dim(actions, mean, log_std):
        std = torch.exp(log_std)
        return (
            -((actions - mean) ** 2) / (2 * std**2) - log_std - 0.5 * np.log(2 * np.pi)
        )

    def mean_over_dims(actions, mean, log_std):
        return per_dim(actions, mean, log_std).mean(-1)

    def sigma_not_squared(actions, mean, log_std):
        std = torch.exp(log_std)
        terms = -((actions - mean) ** 2) / (2 * std) - log_std - 0.5 * np.log(2 * np.pi)
        return terms.sum(-1)

    def no_log_std(actions, mean, log_std):
        return (per_dim(actions, mean, log_std) + log_std).sum(-1)

    def no_constant(actions, mean, log_std):
        return (per_dim(actions, mean, log_std) + 0.5 * np.log(2 * np.pi)).sum(-1)

    def log_variance(actions, mean, log_std):
        return _gaussian_log_prob(actions, mean, log_std / 2)

    return _grade(
        "gaussian_log_prob",
        fn,
        _gaussian_log_prob,
        _gaussian_log_prob_cases(seed, n_random),
        mistakes={
            "you averaged over the action dimensions; the joint log-density is their sum": mean_over_dims,
            "the squared distance is divided by 2 sigma instead of 2 sigma**2": sigma_not_squared,
            "the -log(sigma) term of the normalising constant is missing (it is what makes "
            "the policy's spread learnable)": no_log_std,
            "the constant -log(2 pi) / 2 per dimension is missing (it does not change gradients, "
            "but the value is not a log-density without it)": no_constant,
            "log_std was used as the log of the variance: sigma = exp(log_std), not "
            "exp(log_std / 2)": log_variance,
        },
        hint="sum over the last axis of -(a - mu)**2 / (2 sigma**2) - log(sigma) - log(2 pi) / 2, "
        "with sigma = exp(log_std) broadcast over the batch.",
    )
