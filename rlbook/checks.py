"""Exercise graders: run a learner's function on fresh random cases and say what went wrong.

Each ``check_*`` function calls the learner's implementation on a few hand-picked edge cases
and many random ones, compares with the library's reference, and on the first mismatch raises
:class:`ExerciseError` naming the input, the expected output, what came back, and, where the
answer matches a known mistake, a hint. When all cases pass it prints a short report and
returns True.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from rlbook.algos.numpy_pg import grad_log_softmax_policy
from rlbook.returns import discounted_returns, reward_to_go


class ExerciseError(AssertionError):
    """A learner's function gave a wrong answer (or crashed) on a graded case."""


def _as_array(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _copy(value):
    # the learner's function gets copies: changing its inputs in place must not change the case
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def _fmt(args: dict) -> str:
    with np.printoptions(precision=3, suppress=True, linewidth=100, threshold=60):
        return "\n".join(
            f"  {k} = {v!r}" if isinstance(v, float) else f"  {k} = {_as_array(v)!r}"
            for k, v in args.items()
        )


def _grade(
    name: str,
    fn: Callable,
    reference: Callable,
    cases: Iterable[dict],
    mistakes: dict[str, Callable] | None = None,
    hint: str = "",
    atol: float = 1e-5,
) -> bool:
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    count = 0
    for args in cases:
        count += 1
        expected = _as_array(reference(**args))
        try:
            got = fn(**{k: _copy(v) for k, v in args.items()})
        except NotImplementedError:
            raise
        except Exception as exc:
            raise ExerciseError(
                f"{name} raised {type(exc).__name__}: {exc}\non the input\n{_fmt(args)}"
            ) from exc
        if got is None:
            raise ExerciseError(f"{name} returned None; did you forget `return`?")
        got = _as_array(got).astype(float)
        if got.shape != expected.shape:
            raise ExerciseError(
                f"{name} returned shape {got.shape}, expected {expected.shape}, on the input\n"
                f"{_fmt(args)}"
            )
        if not np.allclose(got, expected, atol=atol, rtol=1e-4):
            diagnosis = ""
            for description, mistake in (mistakes or {}).items():
                if np.allclose(got, _as_array(mistake(**args)), atol=atol, rtol=1e-4):
                    diagnosis = f"\nIt looks like {description}."
                    break
            with np.printoptions(precision=3, suppress=True, linewidth=100, threshold=60):
                raise ExerciseError(
                    f"{name} gave a wrong answer on the input\n{_fmt(args)}\n"
                    f"expected:\n  {expected!r}\ngot:\n  {got!r}{diagnosis}\nHint: {hint}"
                )
    print(f"{name}: all {count} cases passed.")
    return True


# ---------------------------------------------------------------- returns over (T, N) rollouts


def _episode_cases(seed: int | None, n_random: int, with_gamma: bool) -> Iterable[dict]:
    rng = np.random.default_rng(seed)

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


def check_reward_to_go(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
    """Grade ``fn(rewards, dones, gamma) -> (T, N)`` against :func:`rlbook.returns.reward_to_go`.

    Inputs are float tensors ``rewards`` and boolean ``dones`` shaped ``(T, N)`` and a float
    ``gamma``. Known mistakes recognised: summing from the start of the episode, summing across
    episode boundaries, discounting from the start of the episode.
    See chapter 3 of the book (book/03_reward_to_go.ipynb).
    """
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


def _total_return_ignoring_dones(rewards, dones, gamma=1.0):
    return torch.broadcast_to(
        reward_to_go(rewards, torch.zeros_like(dones), gamma)[0], rewards.shape
    )


def check_discounted_returns(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
    """Grade ``fn(rewards, dones, gamma) -> (T, N)``: the episode's whole return at each of its steps.

    Reference: :func:`rlbook.returns.discounted_returns`. Known mistakes recognised: returning the
    reward-to-go instead of the whole return, one return per column ignoring episode boundaries.
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
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


# ---------------------------------------------------------------- the linear softmax policy


def _softmax_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = np.random.default_rng(seed)
    yield {"theta": np.zeros((2, 2)), "x": np.array([[1.0, 0.0]]), "actions": np.array([1])}
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


def check_grad_log_softmax(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
    """Grade ``fn(theta, x, actions) -> (B, d, K)``, the per-sample :math:`\\nabla_\\theta\\log\\pi`.

    Reference: :func:`rlbook.algos.numpy_pg.grad_log_softmax_policy`. Known mistakes recognised:
    dropping the ``- pi`` term, the softmax over the batch axis instead of the actions, the
    sign flipped. See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """

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
