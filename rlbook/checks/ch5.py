"""Graders of chapter 5 (book/05_importance_sampling.ipynb): importance weights."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from rlbook import validate
from rlbook.checks._harness import ExerciseError, _fmt, _grade, _try
from rlbook.utils import rng as _seeded_rng


def _log_prob_pair_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(log_p_target, log_p_behaviour):
        return {
            "log_p_target": torch.tensor(log_p_target, dtype=torch.float64),
            "log_p_behaviour": torch.tensor(log_p_behaviour, dtype=torch.float64),
        }

    # hand-picked edge cases: one step (2 = 0.5 / 0.25); equal policies (weights 1); a batch
    # with one trajectory the target prefers and one it does not
    yield case([[np.log(0.5)]], [[np.log(0.25)]])
    same = np.log([[0.2, 0.7], [0.5, 0.5], [0.9, 0.1]])
    yield case(same, same)
    yield case(
        np.log([[0.9, 0.8, 0.6], [0.1, 0.3, 0.2]]),
        np.log([[0.5, 0.4, 0.5], [0.5, 0.6, 0.2]]),
    )
    for _ in range(n_random):
        m, h = int(rng.integers(1, 6)), int(rng.integers(2, 8))
        yield case(
            np.log(rng.uniform(0.05, 1.0, (m, h))),
            np.log(rng.uniform(0.05, 1.0, (m, h))),
        )
    # last: probabilities that underflow to 0 in float64 (exp(-800) == 0.0), and a 400-step
    # episode whose probability e^(-920) does too, although every per-step ratio is ordinary
    yield from _underflow_cases(rng)


def _underflow_cases(rng: np.random.Generator) -> list[dict]:
    per_step = np.log(rng.uniform(0.05, 0.15, (2, 400)))
    return [
        {
            "log_p_target": torch.tensor(
                [[-800.0, -1.0], [-3.0, -801.5]], dtype=torch.float64
            ),
            "log_p_behaviour": torch.tensor(
                [[-801.0, -1.2], [-3.0, -800.0]], dtype=torch.float64
            ),
        },
        {
            "log_p_target": torch.tensor(per_step + 0.01, dtype=torch.float64),
            "log_p_behaviour": torch.tensor(per_step, dtype=torch.float64),
        },
    ]


def _trajectory_weights_reference(log_p_target, log_p_behaviour):
    # local: keeps checks light to import
    from rlbook.importance import (
        trajectory_weights,
    )

    return trajectory_weights(log_p_target, log_p_behaviour)


def _check_underflow_and_shape(
    name: str, fn: Callable, cases: list[dict], per_step_diagnosis: str
) -> None:
    """Run ``fn`` on cases where naive exponentials underflow; name NaN and per-step answers."""
    for args in cases:
        got = _try(name, fn, args)
        if got is None:
            return  # _grade reports the failure with its input
        m, h = args["log_p_target"].shape
        if got.shape == (m, h):
            raise ExerciseError(
                f"{name} returned shape {got.shape}, one number per step, for {m} trajectories "
                f"of {h} steps; expected shape ({m},).\nIt looks like {per_step_diagnosis}"
            )
        if got.shape == (m,) and not np.all(np.isfinite(got)):
            raise ExerciseError(
                f"{name} returned {got!r} on the input\n{_fmt(args)}\n"
                "whose true weights are ordinary numbers. It looks like the probabilities were "
                "exponentiated before dividing: exp(-800) is 0.0 in float64 (so is the "
                "probability of a long episode), and 0 / 0 is NaN.\n"
                "Subtract the log-probabilities first, add the differences over time, and "
                "exponentiate once: exp(sum_t (log p_t - log q_t))."
            )


def check_trajectory_weights(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(log_p_target, log_p_behaviour) -> (M,)``, one importance weight per trajectory.

    .. math:: W(\tau) = \prod_{t=0}^{H-1}
              \frac{\pi_{\theta'}(a_t \mid s_t)}{\pi_\theta(a_t \mid s_t)}
              = \exp \sum_{t} \big(\log \pi_{\theta'}(a_t \mid s_t) - \log \pi_\theta(a_t \mid s_t)\big)

    Inputs: float64 ``log_p_target`` (the new policy) and ``log_p_behaviour`` (the policy that
    collected the data), both ``(M, H)``. Reference: :func:`rlbook.importance.trajectory_weights`.
    The last cases have log-probabilities near -800 and a 400-step episode, whose probabilities
    are 0.0 in float64. Known mistakes recognised: one ratio per step (no product over time),
    NaN from exponentiating before dividing, the ratio inverted (behaviour over target), the sum
    or the mean of the per-step ratios instead of their product, the geometric mean, the last
    step's ratio only.
    See chapter 5 of the book (book/05_importance_sampling.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    probe_rng = _seeded_rng(0)
    probe = {
        "log_p_target": torch.tensor(np.log(probe_rng.uniform(0.1, 1, (3, 4)))),
        "log_p_behaviour": torch.tensor(np.log(probe_rng.uniform(0.1, 1, (3, 4)))),
    }
    _check_underflow_and_shape(
        "trajectory_weights",
        fn,
        [probe, *_underflow_cases(_seeded_rng(seed))],
        "you forgot the product over time: the weight of a trajectory is the product of its "
        "per-step ratios, exp of the sum over the last axis of (log_p_target - log_p_behaviour).",
    )

    def log_ratio(log_p_target, log_p_behaviour):
        return log_p_target - log_p_behaviour

    def inverted(log_p_target, log_p_behaviour):
        return torch.exp(-log_ratio(log_p_target, log_p_behaviour).sum(-1))

    def summed(log_p_target, log_p_behaviour):
        return torch.exp(log_ratio(log_p_target, log_p_behaviour)).sum(-1)

    def averaged(log_p_target, log_p_behaviour):
        return torch.exp(log_ratio(log_p_target, log_p_behaviour)).mean(-1)

    def geometric_mean(log_p_target, log_p_behaviour):
        return torch.exp(log_ratio(log_p_target, log_p_behaviour).mean(-1))

    def last_step(log_p_target, log_p_behaviour):
        return torch.exp(log_ratio(log_p_target, log_p_behaviour)[..., -1])

    return _grade(
        "trajectory_weights",
        fn,
        _trajectory_weights_reference,
        _log_prob_pair_cases(seed, n_random),
        mistakes={
            "the ratio is inverted: the weight is target over behaviour, "
            "pi_new(a|s) / pi_old(a|s), not the other way round": inverted,
            "you added the per-step ratios; the trajectory's weight is their product": summed,
            "you averaged the per-step ratios; the trajectory's weight is their product": averaged,
            "you averaged the log-ratios over time (a geometric mean); sum them": geometric_mean,
            "only the last step's ratio is used; every action of the trajectory was chosen by "
            "the behaviour policy, so every step contributes a ratio": last_step,
        },
        hint="W = exp(sum over the last axis of (log_p_target - log_p_behaviour)): subtract, "
        "sum over time, exponentiate once. No exp of a single log-probability is needed.",
    )


def _per_decision_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(rewards, log_p_target, log_p_behaviour, gamma=1.0):
        return {
            "rewards": torch.tensor(rewards, dtype=torch.float64),
            "log_p_target": torch.tensor(log_p_target, dtype=torch.float64),
            "log_p_behaviour": torch.tensor(log_p_behaviour, dtype=torch.float64),
            "gamma": gamma,
        }

    # hand-picked edge cases: one step (per-decision = ordinary IS); two steps with a reward at
    # each; gamma = 0 (only r_0 counts)
    yield case([[3.0]], [[np.log(0.5)]], [[np.log(0.25)]])
    yield case([[1.0, 2.0]], np.log([[0.8, 0.3]]), np.log([[0.4, 0.5]]))
    yield case(
        [[1.0, 2.0], [-1.0, 0.5]],
        np.log([[0.8, 0.3], [0.2, 0.9]]),
        np.log([[0.4, 0.6], [0.5, 0.3]]),
        0.0,
    )
    for _ in range(n_random):
        m, h = int(rng.integers(1, 6)), int(rng.integers(2, 8))
        yield case(
            rng.normal(size=(m, h)).round(2),
            np.log(rng.uniform(0.05, 1.0, (m, h))),
            np.log(rng.uniform(0.05, 1.0, (m, h))),
            float(rng.choice([1.0, 0.99, 0.9, 0.5])),
        )
    # last: log-probabilities near -800, which naive exponentials turn into 0 / 0
    yield _per_decision_underflow_case()


def _per_decision_probe() -> dict:
    # three trajectories of four steps: (M, H) is not (M,)
    rng = _seeded_rng(0)
    return {
        "rewards": torch.tensor(rng.normal(size=(3, 4))),
        "log_p_target": torch.tensor(np.log(rng.uniform(0.1, 1, (3, 4)))),
        "log_p_behaviour": torch.tensor(np.log(rng.uniform(0.1, 1, (3, 4)))),
        "gamma": 0.9,
    }


def _per_decision_underflow_case() -> dict:
    return {
        "rewards": torch.tensor([[1.0, -0.5], [2.0, 1.0]], dtype=torch.float64),
        "log_p_target": torch.tensor(
            [[-800.0, -1.0], [-3.0, -801.5]], dtype=torch.float64
        ),
        "log_p_behaviour": torch.tensor(
            [[-801.0, -1.2], [-3.0, -800.0]], dtype=torch.float64
        ),
        "gamma": 0.9,
    }


def _per_decision_reference(rewards, log_p_target, log_p_behaviour, gamma=1.0):
    from rlbook.importance import per_decision_is

    return per_decision_is(rewards, log_p_target, log_p_behaviour, gamma)


def check_per_decision_is(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(rewards, log_p_target, log_p_behaviour, gamma) -> (M,)``, per-decision IS returns.

    .. math:: \hat G^{\mathrm{PD}}(\tau) = \sum_{t=0}^{H-1} \gamma^t\, r_t
              \prod_{k=0}^{t} \frac{\pi_{\theta'}(a_k \mid s_k)}{\pi_\theta(a_k \mid s_k)}

    (Precup, Sutton and Singh, 2000). Inputs: float64 ``rewards``, ``log_p_target`` and
    ``log_p_behaviour``, all ``(M, H)``, and a float ``gamma``. Reference:
    :func:`rlbook.importance.per_decision_is`. The last case has log-probabilities near -800.
    Known mistakes recognised: the whole trajectory's weight on every reward (ordinary IS), the
    ratios up to ``t - 1`` only, the ratio of step ``t`` alone, the ratios from ``t`` to the
    end, the ratio inverted, the discount missing.
    See chapter 5 of the book (book/05_importance_sampling.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    _check_underflow_and_shape(
        "per_decision_is",
        fn,
        [_per_decision_probe(), _per_decision_underflow_case()],
        "you forgot the sum over time: each trajectory gets one number, the sum over its steps "
        "of gamma**t * W_0:t * r_t.",
    )

    def weighted(rewards, log_ratio, gamma):
        discounts = gamma ** torch.arange(rewards.shape[-1], dtype=torch.float64)
        return (discounts * torch.exp(log_ratio) * rewards).sum(-1)

    def ordinary(rewards, log_p_target, log_p_behaviour, gamma=1.0):
        total = (log_p_target - log_p_behaviour).sum(-1, keepdim=True)
        return weighted(rewards, total.expand_as(rewards), gamma)

    def exclusive(rewards, log_p_target, log_p_behaviour, gamma=1.0):
        cumulative = (log_p_target - log_p_behaviour).cumsum(-1)
        return weighted(rewards, cumulative - (log_p_target - log_p_behaviour), gamma)

    def single_step(rewards, log_p_target, log_p_behaviour, gamma=1.0):
        return weighted(rewards, log_p_target - log_p_behaviour, gamma)

    def from_t_on(rewards, log_p_target, log_p_behaviour, gamma=1.0):
        later = (log_p_target - log_p_behaviour).flip(-1).cumsum(-1).flip(-1)
        return weighted(rewards, later, gamma)

    def inverted(rewards, log_p_target, log_p_behaviour, gamma=1.0):
        return _per_decision_reference(rewards, log_p_behaviour, log_p_target, gamma)

    def no_discount(rewards, log_p_target, log_p_behaviour, gamma=1.0):
        return _per_decision_reference(rewards, log_p_target, log_p_behaviour, 1.0)

    return _grade(
        "per_decision_is",
        fn,
        _per_decision_reference,
        _per_decision_cases(seed, n_random),
        mistakes={
            "every reward is weighted by the whole trajectory's weight W_0:H-1 (that is "
            "ordinary importance sampling); r_t needs only the ratios up to step t": ordinary,
            "r_t is weighted by the ratios up to step t - 1; a_t itself was chosen by the "
            "behaviour policy and r_t depends on it, so its ratio belongs in W_0:t": exclusive,
            "r_t is weighted by the ratio of step t alone; it needs the product of all "
            "ratios of steps 0..t (cumsum of the log-ratios)": single_step,
            "r_t is weighted by the ratios of steps t..H-1 (the future); it needs those of "
            "steps 0..t (the past and present)": from_t_on,
            "the ratio is inverted: target over behaviour, pi_new / pi_old": inverted,
            "the discount gamma**t is missing": no_discount,
        },
        hint="W_0:t = exp(cumsum over the last axis of (log_p_target - log_p_behaviour)); "
        "then sum over t of gamma**t * W_0:t * r_t, one number per trajectory.",
    )
