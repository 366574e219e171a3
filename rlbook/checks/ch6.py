"""Graders of chapter 6 (book/06_ppo.ipynb): generalised advantage estimation."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from rlbook import validate
from rlbook.checks._harness import _grade
from rlbook.utils import rng as _seeded_rng


def _gae_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(rewards, values, next_values, terminated, dones, gamma, lam):
        return {
            "rewards": torch.tensor(rewards, dtype=torch.float32),
            "values": torch.tensor(values, dtype=torch.float32),
            "next_values": torch.tensor(next_values, dtype=torch.float32),
            "terminated": torch.tensor(terminated, dtype=torch.bool),
            "dones": torch.tensor(dones, dtype=torch.bool),
            "gamma": gamma,
            "lam": lam,
        }

    # hand-picked first. One environment, five steps, an episode truncated at step 1 (its
    # successor is worth 10) and one terminated at step 3 (its "successor" holds junk, 7): every
    # known mistake gives its own answer here.
    rewards = [[1.0], [2.0], [0.5], [-1.0], [1.0]]
    values = [[1.0], [3.0], [2.0], [1.5], [0.5]]
    next_values = [[3.0], [10.0], [1.5], [7.0], [2.0]]
    terminated = [[False], [False], [False], [True], [False]]
    dones = [[False], [True], [False], [True], [False]]
    yield case(rewards, values, next_values, terminated, dones, 0.9, 0.8)
    # one step; lambda = 0 (TD errors); lambda = 1 (Monte-Carlo minus V); gamma = 0
    yield case([[1.0]], [[0.5]], [[2.0]], [[False]], [[False]], 0.99, 0.95)
    yield case(rewards, values, next_values, terminated, dones, 0.9, 0.0)
    yield case(rewards, values, next_values, terminated, dones, 0.9, 1.0)
    yield case(rewards, values, next_values, terminated, dones, 0.0, 0.9)
    for _ in range(n_random):
        t, n = int(rng.integers(3, 10)), int(rng.integers(1, 4))
        ends = rng.random((t, n)) < 0.3
        term = ends & (rng.random((t, n)) < 0.5)
        values = rng.normal(size=(t, n))
        # within an episode the successor is the next slot; where one ended it is the final
        # observation's value (truncated) or junk that must not be used (terminated)
        succ = np.concatenate([values[1:], rng.normal(size=(1, n))])
        succ = np.where(ends, rng.normal(size=(t, n)) * 3, succ)
        yield case(
            rng.normal(size=(t, n)).round(2),
            values,
            succ,
            term,
            ends,
            float(rng.choice([0.99, 0.9, 0.5])),
            float(rng.choice([0.95, 0.9, 0.5, 0.0, 1.0])),
        )


def _gae_reference(rewards, values, next_values, terminated, dones, gamma, lam):
    from rlbook.returns import gae  # local: keeps checks light to import

    truncated = dones & ~terminated
    return gae(rewards, values, next_values, terminated, truncated, gamma, lam)[0]


def _gae_loop(rewards, next_values, values, bootstrap, cut, gamma, lam, discount=None):
    """Backward GAE with explicit masks: bootstrap where ``bootstrap``, stop where ``cut``."""
    discount = gamma if discount is None else discount
    deltas = rewards + discount * next_values * bootstrap.float() - values
    out, running = torch.zeros_like(rewards), torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * lam * (~cut[t]).float() * running
        out[t] = running
    return out


def check_gae(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
    r"""Grade ``fn(rewards, values, next_values, terminated, dones, gamma, lam) -> (T, N)``, GAE.

    .. math::
        \delta_t &= r_t + \gamma\,(1 - \text{terminated}_t)\, V(s_{t+1}) - V(s_t), \\
        \hat A_t &= \delta_t + \gamma\lambda\,(1 - \text{done}_t)\, \hat A_{t+1},
        \qquad \hat A_T = 0

    (Schulman et al., 2016). Inputs, all ``(T, N)``: float32 ``rewards``, ``values``
    (:math:`V(s_t)`) and ``next_values`` (:math:`V` of the state step ``t`` led to: the next
    slot's value within an episode, the final observation's where an episode was truncated, junk
    where it terminated); boolean ``terminated`` and ``dones`` (terminated or truncated); floats
    ``gamma`` and ``lam``. Reference: :func:`rlbook.returns.gae`. Known mistakes recognised: a
    truncation treated as a termination, bootstrapping through terminations, the recursion not
    cut at the end of an episode (or cut at terminations only), :math:`\lambda` and
    :math:`\gamma` swapped in the TD error, a forward instead of a backward recursion,
    :math:`\lambda` left out of the recursion, the cut taken from the next step's flag, the
    value targets :math:`\hat A_t + V(s_t)` returned instead of the advantages.
    See chapter 6 of the book (book/06_ppo.ipynb).
    """
    n_random = validate.non_negative_int("n_random", n_random)
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")

    def truncation_as_termination(
        rewards, values, next_values, terminated, dones, gamma, lam
    ):
        return _gae_loop(rewards, next_values, values, ~dones, dones, gamma, lam)

    def through_terminations(
        rewards, values, next_values, terminated, dones, gamma, lam
    ):
        always = torch.ones_like(dones)
        return _gae_loop(rewards, next_values, values, always, dones, gamma, lam)

    def never_cut(rewards, values, next_values, terminated, dones, gamma, lam):
        never = torch.zeros_like(dones)
        return _gae_loop(rewards, next_values, values, ~terminated, never, gamma, lam)

    def cut_at_terminations(
        rewards, values, next_values, terminated, dones, gamma, lam
    ):
        return _gae_loop(
            rewards, next_values, values, ~terminated, terminated, gamma, lam
        )

    def swapped(rewards, values, next_values, terminated, dones, gamma, lam):
        return _gae_loop(
            rewards, next_values, values, ~terminated, dones, gamma, lam, lam
        )

    def no_lambda(rewards, values, next_values, terminated, dones, gamma, lam):
        return _gae_reference(
            rewards, values, next_values, terminated, dones, gamma, 1.0
        )

    def forward(rewards, values, next_values, terminated, dones, gamma, lam):
        deltas = rewards + gamma * next_values * (~terminated).float() - values
        out, running = torch.zeros_like(rewards), torch.zeros_like(rewards[0])
        for t in range(rewards.shape[0]):
            running = deltas[t] + gamma * lam * running
            out[t] = running
            running = running * (~dones[t]).float()
        return out

    def next_flag(rewards, values, next_values, terminated, dones, gamma, lam):
        later = torch.cat([dones[1:], torch.zeros_like(dones[:1])])
        return _gae_loop(rewards, next_values, values, ~terminated, later, gamma, lam)

    def targets(rewards, values, next_values, terminated, dones, gamma, lam):
        return (
            _gae_reference(rewards, values, next_values, terminated, dones, gamma, lam)
            + values
        )

    return _grade(
        "gae",
        fn,
        _gae_reference,
        _gae_cases(seed, n_random),
        mistakes={
            "a truncation is treated as a termination: where a time limit cut the episode, "
            "delta_t must still bootstrap from next_values (terminated alone means no "
            "future)": truncation_as_termination,
            "delta_t bootstraps from next_values at terminations too; a terminal state has "
            "no future: use (1 - terminated) there": through_terminations,
            "the recursion runs on across the end of an episode; multiply the carried "
            "advantage by (1 - done_t), for terminations and truncations alike": never_cut,
            "the recursion stops at terminations but runs on through truncations into the "
            "next episode; cut it at every done": cut_at_terminations,
            "lambda and gamma are swapped in the TD error: delta_t = r_t + gamma * V(s_t+1) - "
            "V(s_t), and the recursion carries gamma * lambda": swapped,
            "lambda is missing from the recursion (that is lambda = 1): carry gamma * lambda "
            "* A_t+1": no_lambda,
            "the recursion runs forwards in time; A_t depends on the FUTURE TD errors, so walk "
            "backwards from t = T - 1": forward,
            "the recursion is cut with the flag of step t + 1; step t's own done flag says "
            "whether A_t+1 belongs to the same episode": next_flag,
            "these are the value targets A_t + V(s_t); return the advantages": targets,
        },
        hint="delta = rewards + gamma * next_values * (~terminated) - values; then for t from "
        "T - 1 down to 0: A_t = delta_t + gamma * lam * (~dones[t]) * A_t+1, with A_T = 0.",
    )
