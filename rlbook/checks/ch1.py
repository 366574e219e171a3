"""Graders of chapter 1 (book/01_policy_gradient.ipynb): returns and the softmax score."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from rlbook import validate
from rlbook.algos.numpy_pg import grad_log_softmax_policy
from rlbook.checks._harness import _grade
from rlbook.returns import discounted_returns, reward_to_go
from rlbook.utils import rng as _seeded_rng


def _episode_cases(seed: int | None, n_random: int, with_gamma: bool) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(rewards, dones, gamma=1.0):
        args = {
            "rewards": torch.tensor(rewards, dtype=torch.float32),
            "dones": torch.tensor(dones, dtype=torch.bool),
        }
        if with_gamma:
            args["gamma"] = gamma
        return args

    # hand-picked edge cases: one step, one episode, every step an episode, gamma 0
    yield case([[1.0]], [[True]])
    yield case([[1.0], [2.0], [3.0]], [[False], [False], [True]], 0.5)
    yield case([[1.0, 2.0], [3.0, 4.0]], [[True, True], [True, True]], 0.9)
    yield case([[1.0], [1.0], [1.0], [1.0]], [[False], [True], [False], [True]], 0.0)
    for _ in range(n_random):
        t, n = int(rng.integers(2, 9)), int(rng.integers(1, 4))
        dones = rng.random((t, n)) < 0.3
        dones[-1] = True
        gamma = float(rng.choice([1.0, 0.99, 0.5, rng.random()]))
        yield case(rng.integers(-3, 4, (t, n)).astype(float), dones, gamma)


def _cumsum_from_episode_start(rewards, dones, gamma=1.0):
    out, running = torch.empty_like(rewards), torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0]):
        running = running + rewards[t]
        out[t] = running
        running = running * (~dones[t])
    return out


def _ignores_dones(rewards, dones, gamma=1.0):
    return reward_to_go(rewards, torch.zeros_like(dones), gamma)


def _discount_forward(rewards, dones, gamma=1.0):
    # the discount counted from the start of the episode instead of from step t
    power = torch.empty_like(rewards)
    k = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0]):
        power[t] = gamma**k
        k = (k + 1) * (~dones[t])
    return reward_to_go(rewards * power, dones, 1.0)


def _total_return_ignoring_dones(rewards, dones, gamma=1.0):
    return torch.broadcast_to(
        reward_to_go(rewards, torch.zeros_like(dones), gamma)[0], rewards.shape
    )


def check_discounted_returns(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    """Grade ``fn(rewards, dones, gamma) -> (T, N)``: the episode's whole return at each of its steps.

    Reference: :func:`rlbook.returns.discounted_returns`. Known mistakes recognised: returning the
    reward-to-go instead of the whole return, one return per column ignoring episode boundaries.
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)
    return _grade(
        "discounted_returns",
        fn,
        discounted_returns,
        _episode_cases(seed, n_random, with_gamma=True),
        mistakes={
            "you computed the reward-to-go (from t onwards), not the whole episode's return": reward_to_go,
            "one return per column: the episode boundaries (dones) are ignored": (
                _total_return_ignoring_dones
            ),
        },
        hint="every step of an episode gets the same number, sum_k gamma**k * r_k over that "
        "episode; a new episode starts after each done.",
    )


def _softmax_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)
    yield {
        "theta": np.zeros((2, 2)),
        "x": np.array([[1.0, 0.0]]),
        "actions": np.array([1]),
    }
    yield {
        "theta": np.array([[50.0, -50.0, 0.0]]),
        "x": np.ones((2, 1)),
        "actions": np.array([1, 0]),
    }
    for _ in range(n_random):
        d, k, b = (int(v) for v in rng.integers([1, 2, 1], [6, 5, 8]))
        yield {
            "theta": rng.normal(size=(d, k)),
            "x": rng.normal(size=(b, d)),
            "actions": rng.integers(0, k, size=b),
        }


def _softmax_rows(z, axis):
    z = z - z.max(axis=axis, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=axis, keepdims=True)


def check_grad_log_softmax(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    """Grade ``fn(theta, x, actions) -> (B, d, K)``, the per-sample :math:`\\nabla_\\theta\\log\\pi`.

    Reference: :func:`rlbook.algos.numpy_pg.grad_log_softmax_policy`. Known mistakes recognised:
    dropping the ``- pi`` term, the softmax over the batch axis instead of the actions, the
    sign flipped. See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)

    def no_minus_pi(theta, x, actions):
        return x[:, :, None] * np.eye(theta.shape[1])[actions][:, None, :]

    def wrong_axis(theta, x, actions):
        probs = _softmax_rows(x @ theta, axis=0)
        return x[:, :, None] * (np.eye(theta.shape[1])[actions] - probs)[:, None, :]

    def flipped(theta, x, actions):
        return -grad_log_softmax_policy(theta, x, actions)

    return _grade(
        "grad_log_softmax",
        fn,
        grad_log_softmax_policy,
        _softmax_cases(seed, n_random),
        mistakes={
            "the gradient of the log-sum-exp term (- pi) is missing": no_minus_pi,
            "the softmax normalises over the batch axis instead of the action axis": wrong_axis,
            "the sign is flipped": flipped,
        },
        hint="d log pi(a|x) / d theta[j, k] = x[j] * (1[k == a] - pi(k|x)), "
        "with pi = softmax(x @ theta) over the action axis.",
    )
