"""Graders of chapter 3 (book/03_reward_to_go.ipynb): reward-to-go and its estimates."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from rlbook import validate
from rlbook.checks._harness import _grade
from rlbook.checks.ch1 import (
    _cumsum_from_episode_start,
    _discount_forward,
    _episode_cases,
    _ignores_dones,
)
from rlbook.returns import reward_to_go
from rlbook.utils import rng as _seeded_rng


def check_reward_to_go(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    """Grade ``fn(rewards, dones, gamma) -> (T, N)`` against :func:`rlbook.returns.reward_to_go`.

    Inputs are float tensors ``rewards`` and boolean ``dones`` shaped ``(T, N)`` and a float
    ``gamma``. Known mistakes recognised: summing from the start of the episode, summing across
    episode boundaries, discounting from the start of the episode.
    See chapter 3 of the book (book/03_reward_to_go.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)
    return _grade(
        "reward_to_go",
        fn,
        reward_to_go,
        _episode_cases(seed, n_random, with_gamma=True),
        mistakes={
            "you summed the rewards from the start of the episode up to t, not from t to its end": _cumsum_from_episode_start,
            "the sum runs past the end of an episode into the next one (dones are ignored)": _ignores_dones,
            "the discount is counted from the episode's first step instead of from step t": _discount_forward,
        },
        hint="walk backwards in time: G[t] = r[t] + gamma * (1 - done[t]) * G[t + 1].",
    )


def _tabular_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(theta, states, actions, rewards):
        return {
            "theta": torch.tensor(theta, dtype=torch.float64),
            "states": torch.tensor(states, dtype=torch.long),
            "actions": torch.tensor(actions, dtype=torch.long),
            "rewards": torch.tensor(rewards, dtype=torch.float64),
        }

    # hand-picked edge cases: one step; one episode of three steps in one state; a reward that
    # only arrives at the end (reward-to-go equals the return there); a nearly greedy policy
    yield case([[0.0, 0.0]], [[0]], [[1]], [[2.0]])
    yield case([[0.0, 0.0]], [[0, 0, 0]], [[0, 1, 1]], [[1.0, 2.0, 3.0]])
    yield case([[0.5, -0.5], [0.0, 1.0]], [[0, 1, 1]], [[1, 0, 1]], [[0.0, 0.0, 5.0]])
    yield case(
        [[4.0, -4.0, 0.0]],
        [[0, 0], [0, 0]],
        [[0, 2], [1, 0]],
        [[1.0, -1.0], [0.5, 2.0]],
    )
    for _ in range(n_random):
        s, a, h, m = (int(v) for v in rng.integers([1, 2, 1, 1], [5, 5, 7, 5]))
        yield case(
            rng.normal(size=(s, a)).round(2),
            rng.integers(0, s, size=(m, h)),
            rng.integers(0, a, size=(m, h)),
            rng.normal(size=(m, h)).round(2),
        )


def _score_weighted(theta, states, actions, weights, minus_pi=True):
    """``Σ_t w_t ∇_θ log π(a_t|s_t)`` per episode, shape (M, S, A), from the library's score."""
    # local: keeps checks light to import
    from rlbook.exact import (
        grad_log_probs,
        policy_probs,
    )

    if minus_pi:
        scores = grad_log_probs(theta, states, actions)
    else:
        scores = grad_log_probs(theta, states, actions) + (
            torch.nn.functional.one_hot(states, theta.shape[0]).to(torch.float64)[
                ..., None
            ]
            * policy_probs(theta)[states][..., None, :]
        )
    return torch.einsum("mh,mhsa->msa", weights.to(torch.float64), scores)


def _tabular_reward_to_go_estimates(theta, states, actions, rewards):
    from rlbook.exact import Trajectories, estimator_weights

    traj = Trajectories(states=states, actions=actions, rewards=rewards)
    return _score_weighted(
        theta, states, actions, estimator_weights(traj, "reward_to_go")
    )


def _rtg(rewards):
    return rewards.flip(-1).cumsum(-1).flip(-1)


def check_reward_to_go_estimates(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(theta, states, actions, rewards) -> (M, S, A)``, one reward-to-go estimate per episode.

    The estimate of episode ``m`` for the tabular softmax policy ``π(a|s) = softmax(θ[s])[a]``
    (undiscounted) is

    .. math:: \hat g_m = \sum_{t} \hat G_t\, \nabla_\theta \log \pi_\theta(a_t \mid s_t),
              \qquad \hat G_t = \sum_{k \ge t} r_k

    Inputs: float64 ``theta`` (S, A); int64 ``states``, ``actions`` and float64 ``rewards``,
    all (M, H). Reference: :func:`rlbook.exact.estimator_weights` with
    ``weights="reward_to_go"`` times :func:`rlbook.exact.grad_log_probs`. Known mistakes
    recognised: the whole return as the weight, the rewards after ``t`` without ``r_t``, the
    rewards up to ``t``, the score without its ``- π`` term, the sign flipped.
    See chapter 3 of the book (book/03_reward_to_go.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)

    def whole_return(theta, states, actions, rewards):
        weights = rewards.sum(-1, keepdim=True).expand_as(rewards)
        return _score_weighted(theta, states, actions, weights)

    def after_t(theta, states, actions, rewards):
        return _score_weighted(theta, states, actions, _rtg(rewards) - rewards)

    def up_to_t(theta, states, actions, rewards):
        return _score_weighted(theta, states, actions, rewards.cumsum(-1))

    def no_minus_pi(theta, states, actions, rewards):
        return _score_weighted(theta, states, actions, _rtg(rewards), minus_pi=False)

    def flipped(theta, states, actions, rewards):
        return -_tabular_reward_to_go_estimates(theta, states, actions, rewards)

    return _grade(
        "reward_to_go_estimates",
        fn,
        _tabular_reward_to_go_estimates,
        _tabular_cases(seed, n_random),
        mistakes={
            "every step is weighted by the whole return R(tau), not by the reward-to-go": whole_return,
            "the weight leaves out r_t itself: a_t does cause r_t, so the sum starts at k = t": after_t,
            "the weight sums the rewards up to t (the past) instead of from t on (the future)": up_to_t,
            "the score misses its - pi(.|s_t) term (the gradient of the log-normaliser)": no_minus_pi,
            "the sign is flipped": flipped,
        },
        hint="for each episode, G[t] = r[t] + G[t + 1] (walk backwards); the score of step t is "
        "zero outside row s_t of theta and equals onehot(a_t) - softmax(theta[s_t]) there; "
        "add up G[t] * score_t over the steps.",
    )
