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

from rlbook import validate
from rlbook.algos.numpy_pg import grad_log_softmax_policy
from rlbook.returns import discounted_returns, reward_to_go
from rlbook.utils import rng as _seeded_rng


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


def _same(a, b) -> bool:
    """Whether an argument still equals its original (NaN equal to NaN)."""
    if isinstance(a, torch.Tensor | np.ndarray) and isinstance(
        b, torch.Tensor | np.ndarray
    ):
        return bool(np.array_equal(_as_array(a), _as_array(b), equal_nan=True))
    return True


def _crash_hint(exc: Exception) -> str:
    """A hint for the crashes learners meet most often."""
    text = str(exc)
    if "numpy()" in text and "requires grad" in text:
        return (
            "\nHint: .numpy() was called on a tensor that is part of an autograd graph. "
            "Stay in torch (torch.exp, torch.where, ...), or call .detach() first where a "
            "number is only read."
        )
    return ""


# Graders of exercises whose function returns nothing by design (it updates the networks,
# or reports each iteration through ``record``): a function that does nothing is told what it
# failed to do, not asked about ``return``.
PROCEDURES = ("check_ppo_update", "check_reinforce_loop", "check_train_ppo")


def _call(name: str, fn: Callable, args: dict):
    """The learner's ``fn`` on copies of ``args``; a crash or an in-place edit of an input
    becomes an :class:`ExerciseError` that says so, with a hint."""
    copies = {k: _copy(v) for k, v in args.items()}
    try:
        got = fn(**copies)
    except NotImplementedError:
        raise
    except Exception as exc:
        raise ExerciseError(
            f"{name} raised {type(exc).__name__}: {exc}\non the input\n{_fmt(args)}"
            f"{_crash_hint(exc)}"
        ) from exc
    for key, original in args.items():
        if not _same(copies[key], original):
            raise ExerciseError(
                f"{name} changed its argument {key!r} in place, on the input\n{_fmt(args)}\n"
                "Hint: the caller still needs its data. Build the result in a new tensor "
                "(torch.empty_like, torch.zeros_like) or work on a copy (x.clone())."
            )
    return got


def _run_loop(name: str, fn: Callable, env_id: str, cfg, recorder: Callable) -> list:
    """Run the learner's training loop ``fn(env_id, cfg, record)``; return what it recorded.
    A crash becomes an :class:`ExerciseError` naming the input and how far the loop got."""
    got: list = []
    try:
        fn(env_id, cfg, recorder(got))
    except NotImplementedError:
        raise
    except Exception as exc:
        raise ExerciseError(
            f"{name} raised {type(exc).__name__}: {exc}\n"
            f"on the input {env_id!r}, {cfg} (after {len(got)} recorded iterations)"
        ) from exc
    return got


def _numbers(name: str, got) -> np.ndarray:
    """What the learner returned, as a float array, or an ExerciseError saying what it was."""
    if got is None:
        raise ExerciseError(f"{name} returned None; did you forget `return`?")
    try:
        array = _as_array(got)
    except (TypeError, ValueError, RuntimeError) as exc:
        array = np.asarray(None)
        if "requires grad" in str(exc):
            array = _as_array(got.detach())
    if array.dtype.kind not in "biuf":
        shown = repr(got)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ExerciseError(
            f"{name} returned a {type(got).__name__} ({shown}); expected numbers: a torch "
            "tensor (or a NumPy array) of the shape the exercise asks for."
        )
    return array.astype(float)


def _try(name: str, fn: Callable, args: dict) -> np.ndarray | None:
    """``fn``'s answer as a float array, or None when it fails (the full grading reports it)."""
    try:
        return _numbers(name, _call(name, fn, args))
    except ExerciseError:
        return None


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
        got = _numbers(name, _call(name, fn, args))
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
            with np.printoptions(
                precision=3, suppress=True, linewidth=100, threshold=60
            ):
                raise ExerciseError(
                    f"{name} gave a wrong answer on the input\n{_fmt(args)}\n"
                    f"expected:\n  {expected!r}\ngot:\n  {got!r}{diagnosis}\nHint: {hint}"
                )
    print(f"{name}: all {count} cases passed.")
    return True


# ---------------------------------------------------------------- returns over (T, N) rollouts


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


def check_reward_to_go(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
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


def check_discounted_returns(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
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


# ---------------------------------------------------------------- scores: the EGLP lemma (chapter 2)


def _categorical_score_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(logits, actions):
        return {
            "logits": torch.tensor(logits, dtype=torch.float64),
            "actions": torch.tensor(actions, dtype=torch.long),
        }

    # hand-picked edge cases: one distribution (no batch axis), a single action (score 0)
    yield case([0.0, 0.0], 1)
    yield case([2.0, -1.0, 0.5], 0)
    yield case([[0.3]], [0])
    for _ in range(n_random):
        k = int(rng.integers(2, 6))
        batch = tuple(int(n) for n in rng.integers(2, 5, size=int(rng.integers(1, 3))))
        yield case(
            rng.normal(scale=2.0, size=(*batch, k)), rng.integers(0, k, size=batch)
        )
    # last: logits whose exp overflows even in float64
    yield case([[1000.0, 0.0, -1000.0], [0.0, 800.0, 1.0]], [1, 1])


def _categorical_score(logits, actions):
    onehot = torch.nn.functional.one_hot(actions, logits.shape[-1]).to(logits.dtype)
    return onehot - torch.softmax(logits, dim=-1)


def check_score_categorical(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(logits, actions) -> (..., K)``, the score :math:`\nabla_z \log\mathrm{softmax}(z)_a`.

    .. math:: \nabla_z \log \mathrm{softmax}(z)_a = e_a - \mathrm{softmax}(z)

    Inputs: float64 ``logits`` shaped ``(..., K)`` (no batch axis, ``(B, K)`` or ``(T, N, K)``)
    and int64 ``actions`` shaped ``(...)``; the answer has the shape of ``logits``. Known mistakes
    recognised: the sign flipped, the ``- softmax`` term missing, the softmax over a batch axis
    instead of the action axis, the gradient of the probability instead of its logarithm.
    The last case has logits of ±1000, where ``exp`` overflows.
    See chapter 2 of the book (book/02_eglp_lemma.ipynb).
    """

    def flipped(logits, actions):
        return -_categorical_score(logits, actions)

    def no_minus_softmax(logits, actions):
        return torch.nn.functional.one_hot(actions, logits.shape[-1]).to(logits.dtype)

    def softmax_over_first_axis(logits, actions):
        onehot = torch.nn.functional.one_hot(actions, logits.shape[-1]).to(logits.dtype)
        return onehot - torch.softmax(logits, dim=0)

    def grad_of_probability(logits, actions):
        probs = torch.softmax(logits, dim=-1)
        chosen = probs.gather(-1, actions[..., None])  # pi(a), shape (..., 1)
        return chosen * _categorical_score(logits, actions)

    return _grade(
        "score_categorical",
        fn,
        _categorical_score,
        _categorical_score_cases(seed, n_random),
        mistakes={
            "the sign is flipped (softmax - onehot instead of onehot - softmax)": flipped,
            "the gradient of the log-sum-exp term (- softmax) is missing": no_minus_softmax,
            "the softmax normalises over the first (batch) axis instead of the last (action) "
            "axis": softmax_over_first_axis,
            "you differentiated pi(a), not log pi(a): the answer is pi(a) times too small": (
                grad_of_probability
            ),
        },
        hint="log softmax(z)[a] = z[a] - logsumexp(z), so the gradient is onehot(a) - softmax(z), "
        "with the softmax over the last (action) axis. torch.softmax is safe for large logits; "
        "exp(z) / exp(z).sum() overflows.",
    )


def _gaussian_score_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(x, mu, log_std):
        return {
            "x": torch.tensor(x, dtype=torch.float64),
            "mu": torch.tensor(mu, dtype=torch.float64),
            "log_std": torch.tensor(log_std, dtype=torch.float64),
        }

    # hand-picked edge cases: x at the mean; a standard normal (sigma = 1 hides sigma vs sigma^2)
    yield case([0.5], [0.5], [0.0])
    yield case([1.0, -2.0], [0.0, 0.0], [0.0, 0.0])
    for _ in range(n_random):
        b = int(rng.integers(1, 8))
        yield case(
            rng.normal(scale=3.0, size=b), rng.normal(size=b), rng.uniform(-1.5, 1.5, b)
        )


def _gaussian_score(x, mu, log_std):
    var = torch.exp(2.0 * log_std)
    return torch.stack([(x - mu) / var, (x - mu) ** 2 / var - 1.0], dim=-1)


def _gaussian_score_pair(fn: Callable) -> Callable:
    """Wrap ``fn -> (d_mu, d_log_std)`` so that it returns one array ``(..., 2)`` like the reference."""

    def wrapped(x, mu, log_std):
        out = fn(x=x, mu=mu, log_std=log_std)
        if out is None:
            return None
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise TypeError(
                f"expected a pair (d_mu, d_log_std), got {type(out).__name__}"
                + (f" of length {len(out)}" if isinstance(out, tuple | list) else "")
            )
        d_mu, d_log_std = (
            np.broadcast_to(_as_array(v), np.shape(_as_array(x))) for v in out
        )
        return np.stack([d_mu, d_log_std], axis=-1)

    return wrapped


def check_gaussian_score(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(x, mu, log_std) -> (d_mu, d_log_std)``, the score of a 1-D Gaussian.

    .. math:: \frac{\partial \log \mathcal N(x; \mu, \sigma^2)}{\partial \mu}
              = \frac{x - \mu}{\sigma^2}, \qquad
              \frac{\partial \log \mathcal N(x; \mu, \sigma^2)}{\partial \log\sigma}
              = \frac{(x - \mu)^2}{\sigma^2} - 1

    Inputs are float64 tensors ``x``, ``mu``, ``log_std`` of one shape ``(B,)``; the answer is a
    pair of arrays or tensors of that shape. Known mistakes recognised: the ``- 1`` missing,
    ``σ`` where ``σ²`` belongs (in either component or both), the derivative with respect to
    ``σ`` instead of ``log σ``, the sign of ``x - μ`` flipped, the two components swapped.
    See chapter 2 of the book (book/02_eglp_lemma.ipynb).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")

    def parts(x, mu, log_std):
        std = torch.exp(log_std)
        right = _gaussian_score(x, mu, log_std)
        return std, right[..., 0], right[..., 1]

    def no_minus_one(x, mu, log_std):
        std, d_mu, d_log_std = parts(x, mu, log_std)
        return torch.stack([d_mu, d_log_std + 1.0], dim=-1)

    def std_in_mu(x, mu, log_std):
        std, d_mu, d_log_std = parts(x, mu, log_std)
        return torch.stack([(x - mu) / std, d_log_std], dim=-1)

    def std_in_log_std(x, mu, log_std):
        std, d_mu, d_log_std = parts(x, mu, log_std)
        return torch.stack([d_mu, (x - mu) ** 2 / std - 1.0], dim=-1)

    def std_in_both(x, mu, log_std):
        std, d_mu, d_log_std = parts(x, mu, log_std)
        return torch.stack([(x - mu) / std, (x - mu) ** 2 / std - 1.0], dim=-1)

    def wrt_std(x, mu, log_std):
        std, d_mu, d_log_std = parts(x, mu, log_std)
        return torch.stack([d_mu, d_log_std / std], dim=-1)

    def flipped_mean(x, mu, log_std):
        std, d_mu, d_log_std = parts(x, mu, log_std)
        return torch.stack([-d_mu, d_log_std], dim=-1)

    def swapped(x, mu, log_std):
        return _gaussian_score(x, mu, log_std).flip(-1)

    return _grade(
        "gaussian_score",
        _gaussian_score_pair(fn),
        _gaussian_score,
        _gaussian_score_cases(seed, n_random),
        mistakes={
            "the - 1 in d_log_std is missing (it comes from the -log(sigma) "
            "of the normalising constant)": no_minus_one,
            "d_mu divides by sigma where sigma**2 belongs": std_in_mu,
            "d_log_std divides by sigma where sigma**2 belongs": std_in_log_std,
            "both components divide by sigma where sigma**2 belongs": std_in_both,
            "d_log_std is the derivative with respect to sigma, not log(sigma) "
            "(the chain-rule factor d sigma / d log(sigma) = sigma is missing)": wrt_std,
            "the sign of d_mu is flipped (mu - x instead of x - mu)": flipped_mean,
            "the two components are swapped: return (d_mu, d_log_std) in that order": swapped,
        },
        hint="(expected and got show one row per sample: d_mu, d_log_std.) "
        "log N(x; mu, sigma^2) = -(x - mu)^2 / (2 sigma^2) - log(sigma) - log(2 pi) / 2 "
        "with sigma = exp(log_std); differentiate with respect to mu and to log_std "
        "(write sigma^2 = exp(2 log_std)).",
    )


# ---------------------------------------------------------------- reward-to-go estimates (chapter 3)


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


# ---------------------------------------------------------------- REINFORCE (chapters 4 and 4b)


def _normalize_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(x):
        return {"x": torch.tensor(x, dtype=torch.float64)}

    # hand-picked edge cases: all entries equal (std 0; the mean is exact, so the answer is 0),
    # two entries, a (T, N) batch whose columns have very different scales
    yield case([3.0, 3.0, 3.0, 3.0])
    yield case([1.0, 2.0])
    yield case([[1.0, 100.0], [2.0, 300.0], [3.0, 200.0]])
    for _ in range(n_random):
        shape = tuple(int(n) for n in rng.integers(2, 7, size=int(rng.integers(1, 3))))
        loc, scale = rng.uniform(-50, 50), rng.uniform(0.1, 20.0)
        yield case(rng.normal(loc, scale, size=shape))


def _normalize_reference(x):
    # local: keeps the module's imports as they were
    from rlbook.returns import (
        normalize,
    )

    return normalize(x)


def check_normalize(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
    r"""Grade ``fn(x) -> x.shape``: shift and scale a batch of weights to mean 0 and std 1.

    .. math:: \tilde x = \frac{x - \bar x}{\mathrm{std}(x) + \epsilon}, \qquad
              \bar x, \ \mathrm{std}(x) \text{ over all entries}, \ \epsilon = 10^{-8}

    with the population standard deviation (divisor ``n``). Inputs: a float64 tensor ``x`` of
    shape ``(B,)`` or ``(T, N)``. Reference: :func:`rlbook.returns.normalize`. The first case has
    all entries equal, where a division by the bare standard deviation gives NaN. Known mistakes
    recognised: no ``ε`` (NaN), the mean not subtracted, the statistics taken per column or per
    row instead of over the whole batch, the sample standard deviation (divisor ``n - 1``), a
    division by the variance, no division at all.
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    constant = next(iter(_normalize_cases(seed, 0)))
    got = _try("normalize", fn, constant)  # None: _grade below reports the failure
    if got is not None and not np.all(np.isfinite(got)):
        raise ExerciseError(
            f"normalize returned {_as_array(got)!r} on the input\n{_fmt(constant)}\n"
            "whose entries are all equal: their standard deviation is 0 and 0 / 0 is NaN.\n"
            "It looks like the eps is missing: divide by (std + eps), as one batch of equal "
            "returns (every episode lasted 500 steps) would otherwise stop training with NaN."
        )

    def center(x, dim=None):
        return x - x.mean(dim=dim, keepdim=dim is not None)

    def std(x, dim=None, correction=0):
        if dim is None:
            return x.std(correction=correction)
        return x.std(dim=dim, correction=correction, keepdim=True)

    def no_mean(x):
        return x / (std(x) + 1e-8)

    def per_column(x):
        return center(x, 0) / (std(x, 0) + 1e-8)

    def per_row(x):
        return center(x, -1) / (std(x, -1) + 1e-8)

    def std_per_column(x):
        return center(x) / (std(x, 0) + 1e-8)

    def sample_std(x):
        return center(x) / (std(x, correction=1) + 1e-8)

    def by_variance(x):
        return center(x) / (x.var(correction=0) + 1e-8)

    def only_centered(x):
        return center(x)

    return _grade(
        "normalize",
        fn,
        _normalize_reference,
        _normalize_cases(seed, n_random),
        mistakes={
            "the mean is not subtracted: only the scale changed, every weight keeps its sign": no_mean,
            "the mean and std are taken per column (axis 0) instead of over the whole batch": per_column,
            "the mean and std are taken per row (last axis) instead of over the whole batch": per_row,
            "the std is taken per column (axis 0) instead of over the whole batch": std_per_column,
            "you used the sample standard deviation (divisor n - 1); use the population one, "
            "x.std(correction=0), as rlbook.returns.normalize does": sample_std,
            "you divided by the variance instead of the standard deviation": by_variance,
            "the weights are centred but not divided by their standard deviation": only_centered,
        },
        hint="one mean and one standard deviation over all entries: "
        "(x - x.mean()) / (x.std(correction=0) + 1e-8).",
    )


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
    See chapter 4.1 of the book (book/04b_harder_tasks.ipynb).
    """
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


# ---------------------------------------------------------------- importance sampling (chapter 5)


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


# ---------------------------------------------------------------- random search: the ARS step (chapter 7)


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


# ---------------------------------------------------------------- PPO: clipped objective and GAE (chapter 6)


def _clip_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(ratio, advantages, clip_coef):
        return {
            "ratio": torch.tensor(ratio, dtype=torch.float64),
            "advantages": torch.tensor(advantages, dtype=torch.float64),
            "clip_coef": clip_coef,
        }

    # hand-picked first: every region of the two panels (A > 0 and A < 0; ratio below, inside
    # and above [1 - eps, 1 + eps]), so that each known mistake gives its own answer
    yield case(
        [0.5, 0.9, 1.0, 1.1, 1.5, 0.5, 0.9, 1.0, 1.1, 1.5],
        [2.0, 2.0, 2.0, 2.0, 2.0, -2.0, -2.0, -2.0, -2.0, -2.0],
        0.2,
    )
    yield case([1.0, 3.0, 0.1], [0.0, 0.0, 0.0], 0.1)  # zero advantages: zero objective
    yield case([0.7, 1.3], [0.5, -0.5], 0.3)
    for _ in range(n_random):
        b = int(rng.integers(1, 12))
        ratio = np.exp(rng.normal(0.0, 0.4, b))
        advantages = rng.normal(0.0, 1.5, b)
        yield case(ratio, advantages, float(rng.choice([0.1, 0.2, 0.3])))


def _clip_objective_reference(ratio, advantages, clip_coef):
    return torch.minimum(
        ratio * advantages,
        torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef) * advantages,
    )


def check_clip_objective(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(ratio, advantages, clip_coef)``, PPO's clipped objective of each sample.

    .. math:: \ell_t = \min\big(\rho_t \hat A_t,\;
              \mathrm{clip}(\rho_t, 1 - \epsilon, 1 + \epsilon)\, \hat A_t\big)

    (Schulman et al., 2017), the quantity PPO *maximises* (its mean over the batch; the
    library's :func:`rlbook.losses.ppo_clip_loss` is minus that mean). Inputs: float64 tensors
    ``ratio`` (positive) and ``advantages``, both ``(B,)``, and a float ``clip_coef``; the answer
    has shape ``(B,)``. After the values, the gradient with respect to ``ratio`` is checked:
    :math:`\hat A_t` where the unclipped term is the minimum, exactly 0 where the clip is
    active. Known mistakes recognised: the maximum instead of the minimum, the clipped term
    alone (the unclipped term forgotten), the product :math:`\rho_t \hat A_t` clipped instead of
    the ratio, the advantage clipped instead of the ratio, the clip range
    :math:`[-\epsilon, \epsilon]` instead of :math:`[1 - \epsilon, 1 + \epsilon]`, the loss
    (minus the objective) returned, the mean over the batch returned.
    See chapter 6.1 of the book (book/06b_ppo_in_practice.ipynb).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")

    def clamp(x, clip_coef):
        return torch.clamp(x, 1.0 - clip_coef, 1.0 + clip_coef)

    def maximum(ratio, advantages, clip_coef):
        return torch.maximum(ratio * advantages, clamp(ratio, clip_coef) * advantages)

    def clipped_only(ratio, advantages, clip_coef):
        return clamp(ratio, clip_coef) * advantages

    def product_clipped(ratio, advantages, clip_coef):
        return torch.minimum(ratio * advantages, clamp(ratio * advantages, clip_coef))

    def advantage_clipped(ratio, advantages, clip_coef):
        return torch.minimum(ratio * advantages, ratio * clamp(advantages, clip_coef))

    def epsilon_range(ratio, advantages, clip_coef):
        return torch.minimum(
            ratio * advantages, torch.clamp(ratio, -clip_coef, clip_coef) * advantages
        )

    def loss(ratio, advantages, clip_coef):
        return -_clip_objective_reference(ratio, advantages, clip_coef)

    def loss_of_mean(ratio, advantages, clip_coef):
        return -_clip_objective_reference(ratio, advantages, clip_coef).mean()

    def mean(ratio, advantages, clip_coef):
        return _clip_objective_reference(ratio, advantages, clip_coef).mean()

    name = "clip_objective"
    first = next(iter(_clip_cases(0, 0)))
    got = _try(name, fn, first)  # None: _grade reports the failure
    if got is not None and got.shape == ():
        value = float(got)
        for description, mistake in (
            ("the mean over the batch was returned", mean),
            ("the loss was returned: minus the mean over the batch", loss_of_mean),
        ):
            if abs(value - float(mistake(**first))) < 1e-6:
                raise ExerciseError(
                    f"{name} returned one number, {value:.4f}; expected one objective per "
                    f"sample, shape {tuple(first['ratio'].shape)}.\nIt looks like "
                    f"{description}. Return min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A) "
                    "for each sample; the training loop takes the mean."
                )
    _grade(
        name,
        fn,
        _clip_objective_reference,
        _clip_cases(seed, n_random),
        mistakes={
            "you took the maximum of the two terms; PPO takes the minimum, a pessimistic bound "
            "that never rewards moving the ratio beyond the clip range": maximum,
            "only the clipped term is there; without min(unclipped, clipped) a move that makes "
            "the objective worse is clipped too, and its gradient is lost": clipped_only,
            "the product ratio * A was clipped; clip the ratio, then multiply by A": product_clipped,
            "the advantage was clipped; the clip applies to the ratio": advantage_clipped,
            "the ratio was clipped to [-eps, eps]; the range is [1 - eps, 1 + eps], around the "
            "ratio 1 of the unchanged policy": epsilon_range,
            "the sign is flipped: this is the loss, minus the objective; return the objective "
            "(the quantity to maximise)": loss,
        },
        hint="torch.minimum(ratio * A, torch.clamp(ratio, 1 - eps, 1 + eps) * A), elementwise.",
    )

    # the gradient: the unclipped term's where it is the minimum, exactly zero where the clip is
    ratio = torch.tensor([0.5, 0.9, 1.1, 1.5, 0.5, 0.9, 1.1, 1.5], dtype=torch.float64)
    advantages = torch.tensor(
        [2.0, 2.0, 2.0, 2.0, -2.0, -2.0, -2.0, -2.0], dtype=torch.float64
    )
    leaf = ratio.clone().requires_grad_(True)
    out = _call(name, fn, dict(ratio=leaf, advantages=advantages, clip_coef=0.2))
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise ExerciseError(
            f"{name} returned the right values but no gradient with respect to ratio: PPO "
            "differentiates this objective. Compute it with torch operations on the ratio "
            "tensor, without .detach(), .item(), .numpy() or torch.tensor(...) around it."
        )
    (grad,) = torch.autograd.grad(out.sum(), leaf)
    clipped = ((advantages > 0) & (ratio > 1.2)) | ((advantages < 0) & (ratio < 0.8))
    expected = torch.where(clipped, torch.zeros_like(advantages), advantages)
    if not torch.allclose(grad, expected):
        raise ExerciseError(
            f"{name} has the right values but the wrong gradient with respect to ratio:\n"
            f"  ratio = {ratio.numpy()!r}\n  advantages = {advantages.numpy()!r}\n"
            f"expected d/d ratio:\n  {expected.numpy()!r}\ngot:\n  {grad.numpy()!r}\n"
            "Hint: the gradient must be A where the unclipped term is the minimum and exactly 0 "
            "where the clip is active; torch.minimum and torch.clamp give exactly that."
        )
    print(f"{name}: gradient zero exactly where the clip is active.")
    return True


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


# ---------------------------------------------------------------- trust regions and TRPO (chapter 5.1)


def _fisher_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(probs, visits, v):
        return {
            "probs": torch.tensor(probs, dtype=torch.float64),
            "visits": torch.tensor(visits, dtype=torch.float64),
            "v": torch.tensor(v, dtype=torch.float64),
        }

    # one action: the policy cannot change, F = 0
    yield case([[1.0]], [2.0], [[3.0]])
    # a constant v in a state changes no probability: F v = 0 there
    yield case([[0.2, 0.8], [0.5, 0.5]], [1.0, 3.0], [[1.0, 1.0], [2.0, -1.0]])
    for _ in range(n_random):
        s, a = int(rng.integers(1, 6)), int(rng.integers(2, 5))
        logits = rng.normal(scale=1.5, size=(s, a))
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        yield case(probs, rng.uniform(0.1, 4.0, s), rng.normal(size=(s, a)))


def _fisher_vector_product_reference(probs, visits, v):
    # block s of F is visits_s (diag pi_s - pi_s pi_s^T)
    return visits[:, None] * probs * (v - (probs * v).sum(-1, keepdim=True))


def check_fisher_vector_product(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(probs, visits, v) -> (S, A)``, the Fisher matrix of a tabular softmax times v.

    .. math:: (F v)_{s,a} = n_s\, \pi_s(a) \Big(v_{s,a} - \sum_b \pi_s(b)\, v_{s,b}\Big)

    for the Fisher matrix ``F`` of :func:`rlbook.exact.fisher_matrix`, whose block ``s`` is
    ``n_s (diag π_s − π_s π_sᵀ)`` with ``n_s`` the expected visits of state ``s``. Inputs:
    float64 tensors ``probs`` (S, A) with rows summing to 1, ``visits`` (S,) and ``v`` (S, A).
    Known mistakes recognised: the ``−π πᵀ`` part of the blocks left out, the visits left out,
    ``v`` centred by its plain mean instead of its ``π``-weighted mean, the correction's sign
    flipped. See chapter 5.1 of the book (book/05b_trust_regions.ipynb).
    """

    def diagonal_only(probs, visits, v):
        return visits[:, None] * probs * v

    def no_visits(probs, visits, v):
        return probs * (v - (probs * v).sum(-1, keepdim=True))

    def plain_mean(probs, visits, v):
        return visits[:, None] * probs * (v - v.mean(-1, keepdim=True))

    def flipped(probs, visits, v):
        return visits[:, None] * probs * (v + (probs * v).sum(-1, keepdim=True))

    return _grade(
        "fisher_vector_product",
        fn,
        _fisher_vector_product_reference,
        _fisher_cases(seed, n_random),
        mistakes={
            "only the diagonal diag(pi_s) of each block is used; the block is "
            "diag(pi_s) - pi_s pi_s^T": diagonal_only,
            "the expected visits n_s are missing: each state's block is weighted by how "
            "often the policy is there": no_visits,
            "v is centred by its plain mean over the actions; pi_s pi_s^T v_s subtracts "
            "the pi-weighted mean sum_b pi_s(b) v_s,b": plain_mean,
            "the sign of the pi_s pi_s^T term is flipped": flipped,
        },
        hint="in state s, (F v)_s = n_s * pi_s * (v_s - (pi_s * v_s).sum()); no S*A by S*A "
        "matrix is needed.",
    )


class _MatVec:
    """``v ↦ A v`` for a grading case; ``np.asarray`` of it is ``A``, so reports show the matrix."""

    def __init__(self, matrix: torch.Tensor):
        self.matrix = matrix

    def __call__(self, v):
        return self.matrix @ torch.as_tensor(v, dtype=self.matrix.dtype)

    def __array__(self, dtype=None, copy=None):
        return self.matrix.numpy()


def _cg_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(matrix, b, iters):
        return {
            "matvec": _MatVec(torch.tensor(matrix, dtype=torch.float64)),
            "b": torch.tensor(b, dtype=torch.float64),
            "iters": iters,
        }

    yield case([[2.0]], [4.0], 1)  # one dimension: one step solves it
    yield case([[3.0, 1.0], [1.0, 2.0]], [1.0, -1.0], 2)
    yield case([[3.0, 1.0], [1.0, 2.0]], [0.0, 0.0], 3)  # b = 0: x = 0, no 0/0
    for _ in range(n_random):
        n = int(rng.integers(2, 9))
        q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        matrix = q @ np.diag(np.exp(rng.uniform(0.0, 3.0, n))) @ q.T
        yield case(matrix, rng.normal(size=n), int(rng.integers(1, n + 1)))


def _cg_reference(matvec, b, iters):
    from rlbook.optim import conjugate_gradient

    return conjugate_gradient(matvec, b, iters=iters)


def _cg_variant(matvec, b, iters, conjugate=True, x_along_r=False, r_sign=-1.0):
    x, r = torch.zeros_like(b), b.clone()
    p, rr = r.clone(), r @ r
    for _ in range(iters):
        if rr < 1e-10:
            break
        Ap = matvec(p)
        alpha = rr / (p @ Ap)
        x = x + alpha * (r if x_along_r else p)
        r = r + r_sign * alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p if conjugate else r
        rr = rr_new
    return x


def check_conjugate_gradient(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(matvec, b, iters) -> x``, conjugate gradient for ``A x = b`` from ``x = 0``.

    ``matvec`` is a function ``v ↦ A v`` for a symmetric positive-definite ``A`` (never the
    matrix), ``b`` a float64 tensor (n,), ``iters`` the number of iterations. The answer must
    equal :func:`rlbook.optim.conjugate_gradient` after exactly ``iters`` iterations (the
    iterates of CG are unique), stopping early once ``r·r < 1e-10``. Known mistakes recognised:
    steepest descent (every direction the residual, with no conjugation), ``x`` moved along the
    residual instead of the direction, the residual updated with the wrong sign. See chapter
    5.1 of the book (book/05b_trust_regions.ipynb).
    """

    def steepest(matvec, b, iters):
        return _cg_variant(matvec, b, iters, conjugate=False)

    def along_residual(matvec, b, iters):
        return _cg_variant(matvec, b, iters, x_along_r=True)

    def residual_sign(matvec, b, iters):
        return _cg_variant(matvec, b, iters, r_sign=1.0)

    return _grade(
        "conjugate_gradient",
        fn,
        _cg_reference,
        _cg_cases(seed, n_random),
        mistakes={
            "this is steepest descent: each new direction must be the residual PLUS beta "
            "times the previous direction, beta = (r_new . r_new) / (r . r)": steepest,
            "x moves along the residual r; it must move along the direction p": along_residual,
            "the residual is updated with the wrong sign: r = b - A x, so r -= alpha * A p": (
                residual_sign
            ),
        },
        hint="x = 0, r = p = b; repeat: alpha = (r . r) / (p . A p), x += alpha p, "
        "r -= alpha A p, p = r + ((r_new . r_new) / (r_old . r_old)) p; stop when r . r < "
        "1e-10 (with b = 0 the first alpha would be 0/0).",
    )


# ---------------------------------------------------------------- writing REINFORCE (chapter 4)
# The learner writes a whole training loop. The grader runs it next to a reference loop that
# gives train_reinforce's numbers, compares what each iteration recorded, stage by stage, and
# names the first stage that differs. Known mistakes are switches of the reference loop: the
# one whose records match the learner's at that stage is the diagnosis.

_LOOP_STAGES = ("rollout", "weights", "loss", "policy update", "value update")


def _reinforce_loop(env_id, cfg, record, mistake: str | None = None):
    """The REINFORCE loop of chapter 4 written out (train_reinforce with baseline="value",
    reward-to-go and normalisation), or with one known ``mistake``."""
    from rlbook.losses import pg_loss, value_loss
    from rlbook.policies import ValueNet, make_policy
    from rlbook.returns import discounted_returns, normalize
    from rlbook.rollout import collect, make_envs
    from rlbook.utils import device, set_seed

    set_seed(cfg.seed)
    envs = make_envs(env_id, cfg.num_envs)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    policy = make_policy(obs_space, act_space, cfg.hidden).to(device())
    value_fn = ValueNet(obs_space.shape[0], cfg.hidden).to(device())
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    value_optimizer = torch.optim.Adam(value_fn.parameters(), lr=cfg.value_lr)
    gamma = 1.0 if mistake == "no discount" else cfg.gamma

    def fit_value(batch, targets):
        steps = 1 if mistake == "one value step" else cfg.value_steps
        for _ in range(steps):
            v_loss = value_loss(value_fn(batch.obs), targets, batch.mask)
            if mistake != "value grads accumulate":
                value_optimizer.zero_grad()
            v_loss.backward()
            value_optimizer.step()

    try:
        for it in range(cfg.iterations):
            batch = collect(
                envs,
                policy,
                cfg.steps_per_env,
                seed=cfg.seed * 10_000 + it,
                complete_episodes=True,
            )
            to_go = reward_to_go(batch.rewards, batch.dones, gamma)
            if mistake == "value fitted first":
                fit_value(batch, to_go)
            with torch.no_grad():
                values = value_fn(batch.obs)
            if mistake == "whole return":
                to_go = discounted_returns(
                    batch.rewards, batch.dones, gamma, batch.mask
                )
            advantages = to_go if mistake == "no baseline" else to_go - values
            if mistake == "not normalised":
                weights = advantages * batch.mask
            elif mistake == "padding normalised":
                weights = normalize(advantages)
            else:
                weights = normalize(advantages, batch.mask)
            log_probs = policy.dist(batch.obs).log_prob(batch.actions)
            if mistake == "loss sign":
                loss = -pg_loss(log_probs, weights, batch.mask)
            elif mistake == "padding in the mean":
                loss = -(log_probs * weights * batch.mask).mean()
            elif mistake == "sum":
                loss = -(log_probs * weights)[batch.mask].sum()
            elif mistake == "mean over time first":
                per_env = (log_probs * weights * batch.mask).sum(0) / batch.mask.sum(0)
                loss = -per_env.mean()
            else:
                loss = pg_loss(log_probs, weights, batch.mask)
            if mistake != "no zero_grad":
                optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if mistake == "value fitted to the weights":
                fit_value(batch, weights)
            elif mistake not in ("no value fit", "value fitted first"):
                fit_value(batch, to_go)
            record(batch, weights, loss, policy, value_fn)
    finally:
        envs.close()
    return policy, value_fn


# stage -> {mistake switch of _reinforce_loop: diagnosis}
_REINFORCE_MISTAKES = {
    "weights": {
        "whole return": "every step is weighted by the whole return of its episode; "
        "REINFORCE weights a step by its reward-to-go, the rewards from that step on "
        "(reward_to_go(batch.rewards, batch.dones, cfg.gamma))",
        "no baseline": "V(s_t) was not subtracted: the weights must be reward-to-go minus "
        "the value network's prediction (computed under torch.no_grad())",
        "not normalised": "the weights were not normalised: shift and scale them to mean 0, "
        "std 1 over the real steps, normalize(weights, batch.mask)",
        "padding normalised": "the normalisation ran over every slot of the (T, N) tensors, "
        "padding included; pass batch.mask so the mean and std are over real steps only",
        "no discount": "the discount is missing: use cfg.gamma in the reward-to-go",
        "value fitted first": "the value network was fitted on this batch BEFORE the weights "
        "were computed; the baseline must come from V as it was before it saw the batch "
        "(fit it after the policy step)",
    },
    "loss": {
        "loss sign": "the loss has the wrong sign: it is MINUS the mean of log-probability "
        "times weight; with this sign the optimiser makes the good actions less likely",
        "padding in the mean": "the mean runs over every (T, N) slot, padding included; "
        "average over the real steps only (pg_loss(log_probs, weights, batch.mask))",
        "sum": "the loss is a sum over steps, not a mean: its size then grows with the "
        "batch; take the mean over the real steps",
        "mean over time first": "the mean is taken over time within each environment, "
        "then over environments (the wrong axis first): that weights each episode "
        "equally instead of each step; take one mean over all real steps",
    },
    "policy update": {
        "no zero_grad": "optimizer.zero_grad() is missing: loss.backward() ADDS to the "
        ".grad of every parameter, so each step followed the sum of all the gradients "
        "so far",
    },
    "value update": {
        "value fitted to the weights": "the value network was fitted to the normalised "
        "weights; its target is the reward-to-go",
        "one value step": "the value network took one step per batch; take cfg.value_steps "
        "steps",
        "value grads accumulate": "value_optimizer.zero_grad() is missing in the value "
        "steps: their gradients accumulate",
        "no value fit": "the value network was never fitted: take cfg.value_steps steps "
        "of value_loss(value_fn(batch.obs), to_go, batch.mask) after the policy step",
    },
}


def _flat_params(module) -> torch.Tensor:
    return torch.cat(
        [p.detach().reshape(-1).cpu().double() for p in module.parameters()]
    )


def _loop_recorder(store: list):
    """A ``record(batch, weights, loss, policy, value_fn)`` that keeps copies in ``store``."""

    def record(batch, weights, loss, policy, value_fn):
        if not isinstance(weights, torch.Tensor) or not isinstance(loss, torch.Tensor):
            raise TypeError("record(batch, weights, loss, ...) expects tensors")
        store.append(
            {
                "batch": batch,
                "weights": weights.detach().cpu().double().clone(),
                "loss": float(loss.detach()),
                "policy update": _flat_params(policy),
                "value update": _flat_params(value_fn),
            }
        )

    return record


def _rollout_differs(got, ref) -> str | None:
    """Why two rollouts differ (None when they agree)."""
    a, b = got["batch"], ref["batch"]
    if a.obs.shape != b.obs.shape or not torch.equal(a.mask, b.mask):
        if torch.equal(a.obs[0], b.obs[0]):
            return (
                "the batch has another length: collect with cfg.steps_per_env steps and "
                "complete_episodes=True, so that every environment finishes its episode"
            )
    elif torch.equal(a.obs, b.obs) and torch.equal(a.actions, b.actions):
        if torch.equal(a.rewards, b.rewards):
            return None
    if not torch.equal(a.obs[0], b.obs[0]):
        return (
            "the environments start from other states: reset them through collect(envs, "
            "policy, cfg.steps_per_env, seed=cfg.seed * 10_000 + it, "
            "complete_episodes=True), a new seed each iteration"
        )
    return (
        "the same start states but other actions: the policy's weights or the random "
        "stream differ. Call set_seed(cfg.seed) first, then make the environments, the "
        "policy and the value network in that order, as train_reinforce does"
    )


def _stage_differs(stage: str, got: dict, ref: dict) -> bool:
    if stage == "weights":
        mask = ref["batch"].mask
        if got["weights"].shape != ref["weights"].shape:
            return True
        return not torch.allclose(
            got["weights"][mask], ref["weights"][mask], rtol=1e-4, atol=1e-5
        )
    if stage == "loss":
        return abs(got["loss"] - ref["loss"]) > max(1e-6, 1e-4 * abs(ref["loss"]))
    return got[stage].shape != ref[stage].shape or not torch.allclose(
        got[stage], ref[stage], rtol=1e-4, atol=1e-5
    )


def check_reinforce_loop(
    fn: Callable, env_id: str = "CartPole-v1", iterations: int = 3, seed: int = 0
) -> bool:
    """Grade ``fn(env_id, cfg, record)``, a REINFORCE training loop, against ``train_reinforce``.

    ``cfg`` is a :class:`rlbook.algos.reinforce.ReinforceConfig` (reward-to-go, a learned
    value baseline, normalised weights: chapter 4's algorithm). At the end of every iteration
    ``fn`` calls ``record(batch, weights, loss, policy, value_fn)`` with the rollout, the
    ``(T, N)`` weights, the loss tensor, and the two networks after their updates. The grader
    runs the reference loop on the same seed, checks that it reproduces
    :func:`~rlbook.algos.reinforce.train_reinforce`, and compares the records in the order of
    the algorithm: rollout, weights, loss, policy update, value update. The first stage that
    differs is reported, with the mistake it matches where it matches a known one: the whole
    return instead of the reward-to-go, no baseline, no normalisation or one over the padding,
    no discount, the value network fitted before the weights; the loss's sign, a sum, a mean
    over the padding or over time first; a missing ``zero_grad``; the value network fitted to
    the weights, for one step, or not at all.
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    from rlbook.algos.reinforce import ReinforceConfig, train_reinforce

    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    iterations = validate.integer("iterations", iterations, low=2)
    cfg = ReinforceConfig(iterations=iterations, seed=seed)
    name = "reinforce_loop"

    ref: list[dict] = []
    policy, _ = _reinforce_loop(env_id, cfg, _loop_recorder(ref))
    library = train_reinforce(env_id, cfg)
    if not (
        torch.equal(_flat_params(policy), _flat_params(library.meta["policy"]))
        and np.allclose([r["loss"] for r in ref], library["loss"])
    ):  # a defect of the book, not of the learner's loop
        raise RuntimeError(
            "the grader's reference loop no longer matches train_reinforce"
        )

    got = _run_loop(name, fn, env_id, cfg, _loop_recorder)
    if len(got) != iterations:
        raise ExerciseError(
            f"{name} called record {len(got)} times in {iterations} iterations; call "
            "record(batch, weights, loss, policy, value_fn) once at the end of every "
            "iteration, for it in range(cfg.iterations)."
        )
    for it, (g, r) in enumerate(zip(got, ref, strict=True)):
        why = _rollout_differs(g, r)
        if why is not None:
            raise ExerciseError(
                f"{name}: iteration {it} differs first at the rollout: {why}."
            )
        for stage in _LOOP_STAGES[1:]:
            if not _stage_differs(stage, g, r):
                continue
            matched = {0: "", 1: "iteration 0 matches train_reinforce; "}.get(
                it, f"iterations 0 to {it - 1} match train_reinforce; "
            )
            message = f"{name}: {matched}iteration {it} differs first at the {stage}"
            if stage == "weights" and g["weights"].shape != r["weights"].shape:
                raise ExerciseError(
                    f"{message}: weights have shape {tuple(g['weights'].shape)}, expected "
                    f"{tuple(r['weights'].shape)}, the (T, N) shape of batch.rewards."
                )
            before = got[it - 1] if it else None
            if stage.endswith("update") and (
                (before is not None and torch.equal(g[stage], before[stage]))
                or (before is None and _stage_unmoved(stage, g, env_id, cfg))
            ):
                net = "policy" if stage == "policy update" else "value network"
                raise ExerciseError(
                    f"{message}: the {net} did not change in this iteration. Call "
                    "zero_grad(), then backward(), then the optimizer's step(), in this "
                    "order, with the optimizer of this network."
                )
            for mistake, diagnosis in _REINFORCE_MISTAKES.get(stage, {}).items():
                variant: list[dict] = []
                _reinforce_loop(env_id, cfg, _loop_recorder(variant), mistake)
                rest = _LOOP_STAGES[: _LOOP_STAGES.index(stage) + 1]
                if _rollout_differs(g, variant[it]) is None and not any(
                    _stage_differs(s, g, variant[it]) for s in rest[1:]
                ):
                    raise ExerciseError(f"{message}.\nIt looks like {diagnosis}.")
            detail = (
                f" (loss {g['loss']:.6f}, expected {r['loss']:.6f})"
                if stage == "loss"
                else ""
            )
            raise ExerciseError(
                f"{message}{detail}. Compare that step with algorithm alg4-reinforce: "
                "weights = normalize(reward_to_go - V(s_t), batch.mask), loss = "
                "pg_loss(log_probs, weights, batch.mask), one Adam step on the policy, then "
                "cfg.value_steps Adam steps of value_loss towards the reward-to-go."
            )
    print(
        f"{name}: {iterations} iterations identical to train_reinforce "
        "(rollout, weights, loss, policy update, value update)."
    )
    return True


def _stage_unmoved(stage: str, got: dict, env_id: str, cfg) -> bool:
    """Whether the learner's network after iteration 0 still has its initial weights."""
    from rlbook.policies import ValueNet, make_policy
    from rlbook.rollout import make_envs
    from rlbook.utils import set_seed

    set_seed(cfg.seed)
    envs = make_envs(env_id, cfg.num_envs)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    envs.close()
    policy = make_policy(obs_space, act_space, cfg.hidden)
    value_fn = ValueNet(obs_space.shape[0], cfg.hidden)
    net = policy if stage == "policy update" else value_fn
    return torch.allclose(got[stage], _flat_params(net))


# ---------------------------------------------------------------- building PPO (chapter 6.2)


def _value_loss_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(new_values, old_values, advantages):
        return {
            "new_values": torch.tensor(new_values, dtype=torch.float64),
            "old_values": torch.tensor(old_values, dtype=torch.float64),
            "advantages": torch.tensor(advantages, dtype=torch.float64),
        }

    # hand-picked first: every known mistake gives its own number here
    yield case([1.0, 2.0, 0.5, -1.0], [0.5, 1.0, 2.0, 0.0], [1.0, -2.0, 0.5, 3.0])
    yield case([0.0], [1.0], [2.0])
    for _ in range(n_random):
        b = int(rng.integers(2, 12))
        yield case(
            rng.normal(0, 2, b), rng.normal(0, 2, b), rng.normal(0, 1.5, b).round(2)
        )


def _value_loss_reference(new_values, old_values, advantages):
    # the value targets: GAE's lambda-returns, from the values at collection time
    returns = advantages + old_values
    return 0.5 * ((new_values - returns) ** 2).mean()


def check_value_loss(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
    r"""Grade ``fn(new_values, old_values, advantages) -> scalar``, PPO's value loss.

    .. math:: L_V = \tfrac12\, \mathrm{mean}_t \big(V_\phi(s_t) - \hat R_t\big)^2, \qquad
              \hat R_t = \hat A_t + V_{\phi_\text{old}}(s_t)

    The targets :math:`\hat R_t` are GAE's :math:`\lambda`-returns: the advantages plus the
    values the critic gave when the batch was collected (constants during the update), as in
    :func:`rlbook.algos.ppo.ppo_advantages`. Inputs: float64 tensors, ``(B,)`` each;
    ``new_values`` carries the gradient. After the values, the gradient with respect to
    ``new_values`` is checked: :math:`(V_\phi(s_t) - \hat R_t)/B`. Known mistakes recognised:
    the advantages as the targets, targets built from the new values, targets from normalised
    advantages, the factor 1/2 missing, a sum instead of a mean, the sign, the absolute error.
    See chapter 6.2 of the book (book/06c_building_ppo.ipynb).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    from rlbook.returns import normalize

    def mse(new_values, targets):
        return 0.5 * ((new_values - targets) ** 2).mean()

    def advantage_targets(new_values, old_values, advantages):
        return mse(new_values, advantages)

    def new_value_targets(new_values, old_values, advantages):
        return mse(new_values, advantages + new_values.detach())

    def normalised_targets(new_values, old_values, advantages):
        return mse(new_values, normalize(advantages) + old_values)

    def no_half(new_values, old_values, advantages):
        return 2 * _value_loss_reference(new_values, old_values, advantages)

    def summed(new_values, old_values, advantages):
        n = new_values.numel()
        return n * _value_loss_reference(new_values, old_values, advantages)

    def sign(new_values, old_values, advantages):
        return -_value_loss_reference(new_values, old_values, advantages)

    def absolute(new_values, old_values, advantages):
        return 0.5 * (new_values - advantages - old_values).abs().mean()

    mistakes = {
        "the advantages are the targets; the critic predicts the return, so its target "
        "is advantages + old_values": advantage_targets,
        "the targets were built from the NEW values (advantages + new_values): the error "
        "is then minus the advantage whatever the critic does; build them from "
        "old_values, the values at collection": new_value_targets,
        "the targets were built from normalised advantages; normalisation is for the "
        "policy loss only, the value targets use the raw advantages": normalised_targets,
        "the factor 1/2 is missing (train_ppo's vf_coef = 0.5 assumes it)": no_half,
        "this is a sum over the samples; take the mean": summed,
        "the sign is flipped: minimising this pushes the values AWAY from their "
        "targets": sign,
        "this is the mean absolute error; square the errors": absolute,
    }
    name = "value_loss"
    first = next(iter(_value_loss_cases(0, 0)))
    try:
        got = fn(**{k: _copy(v) for k, v in first.items()})
    except NotImplementedError:
        raise
    except Exception:
        got = None  # _grade reports the crash with its input
    if got is not None and _as_array(got).shape == first["new_values"].shape:
        raise ExerciseError(
            f"{name} returned one loss per sample, shape {_as_array(got).shape}; return "
            "one number, the mean over the batch."
        )
    _grade(
        name,
        fn,
        _value_loss_reference,
        _value_loss_cases(seed, n_random),
        mistakes=mistakes,
        hint="returns = advantages + old_values; "
        "0.5 * ((new_values - returns) ** 2).mean().",
    )
    new = first["new_values"].clone().requires_grad_(True)
    out = fn(new, first["old_values"].clone(), first["advantages"].clone())
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise ExerciseError(
            f"{name} gives the right number but no gradient with respect to new_values: "
            "compute it with torch operations, without .item(), .detach() or .numpy()."
        )
    (grad,) = torch.autograd.grad(out, new)
    returns = first["advantages"] + first["old_values"]
    expected = (first["new_values"] - returns) / returns.numel()
    if not torch.allclose(grad, expected):
        raise ExerciseError(
            f"{name} has the right value but the wrong gradient with respect to "
            f"new_values:\nexpected {expected.numpy()!r}\ngot {grad.numpy()!r}\n"
            "Hint: the targets are constants; only new_values carries a gradient."
        )
    print(f"{name}: gradient (V - R) / B with respect to the new values.")
    return True


def _minibatches_reference(batch_size, num_minibatches, update_epochs):
    size = -(-batch_size // num_minibatches)  # ceil: the last minibatch may be smaller
    out = []
    for _ in range(update_epochs):
        order = torch.randperm(batch_size)
        out += [order[lo : lo + size] for lo in range(0, batch_size, size)]
    return out


def check_minibatches(fn: Callable) -> bool:
    r"""Grade ``fn(batch_size, num_minibatches, update_epochs) -> list of index tensors``.

    The minibatches of one PPO update, in the order they are used: for each of
    ``update_epochs`` epochs, a fresh ``torch.randperm(batch_size)`` cut into pieces of
    :math:`\lceil B / M \rceil` indices (the last may be smaller), exactly as
    :func:`rlbook.algos.ppo.train_ppo` does, so that a loop built on it reproduces the library's
    numbers. Each case seeds torch, then calls ``fn`` on the CPU (an optional fourth argument,
    ``device``, is left out; ``train_ppo`` shuffles on the batch's device, and a GPU's random
    stream is not the CPU's). Known mistakes recognised: one epoch
    only, one shuffle reused by every epoch, no shuffle, sampling with replacement, the
    minibatch size from a floor division, ``num_minibatches`` taken as the minibatch size.
    See chapter 6.2 of the book (book/06c_building_ppo.ipynb).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")

    def shuffled_once(batch_size, num_minibatches, update_epochs):
        size = -(-batch_size // num_minibatches)
        order = torch.randperm(batch_size)
        one = [order[lo : lo + size] for lo in range(0, batch_size, size)]
        return one * update_epochs

    def not_shuffled(batch_size, num_minibatches, update_epochs):
        size = -(-batch_size // num_minibatches)
        order = torch.arange(batch_size)
        return [order[lo : lo + size] for lo in range(0, batch_size, size)] * (
            update_epochs
        )

    def with_replacement(batch_size, num_minibatches, update_epochs):
        size = -(-batch_size // num_minibatches)
        out = []
        for _ in range(update_epochs):
            order = torch.randint(batch_size, (batch_size,))
            out += [order[lo : lo + size] for lo in range(0, batch_size, size)]
        return out

    def floor_size(batch_size, num_minibatches, update_epochs):
        size = batch_size // num_minibatches
        out = []
        for _ in range(update_epochs):
            order = torch.randperm(batch_size)
            out += [order[lo : lo + size] for lo in range(0, batch_size, size)]
        return out

    def size_as_count(batch_size, num_minibatches, update_epochs):
        out = []
        for _ in range(update_epochs):
            order = torch.randperm(batch_size)
            out += [
                order[lo : lo + num_minibatches]
                for lo in range(0, batch_size, num_minibatches)
            ]
        return out

    def one_epoch(batch_size, num_minibatches, update_epochs):
        return _minibatches_reference(batch_size, num_minibatches, 1)

    mistakes = {
        "there is one epoch only: repeat the shuffle-and-cut update_epochs times": one_epoch,
        "every epoch reuses the first shuffle; draw a new torch.randperm at the start of "
        "each epoch": shuffled_once,
        "the indices are not shuffled: minibatches of consecutive steps are correlated "
        "(the same environment, neighbouring times); use torch.randperm": not_shuffled,
        "the indices are drawn with replacement (some steps twice, some never); an epoch "
        "is one pass over every step: torch.randperm": with_replacement,
        "the minibatch size is a floor division: with a remainder that makes an extra, "
        "tiny minibatch; use ceil(batch_size / num_minibatches)": floor_size,
        "num_minibatches was taken as the minibatch SIZE; the size is "
        "ceil(batch_size / num_minibatches)": size_as_count,
    }
    name = "minibatches"
    cases = [(8, 2, 2), (10, 4, 3), (9, 4, 2), (256, 4, 10), (7, 7, 1), (5, 1, 3)]
    for i, (batch_size, num_minibatches, update_epochs) in enumerate(cases):
        args = dict(
            batch_size=batch_size,
            num_minibatches=num_minibatches,
            update_epochs=update_epochs,
        )
        torch.manual_seed(100 + i)
        expected = _minibatches_reference(**args)
        torch.manual_seed(100 + i)
        try:
            got = fn(**args)
        except NotImplementedError:
            raise
        except Exception as exc:
            raise ExerciseError(
                f"{name} raised {type(exc).__name__}: {exc}\non the input {args}"
            ) from exc
        if not isinstance(got, list | tuple) or not all(
            isinstance(mb, torch.Tensor) for mb in got
        ):
            raise ExerciseError(
                f"{name} must return a list of index tensors, got {type(got).__name__}"
            )
        if len(got) == len(expected) and all(
            torch.equal(g.long().cpu(), e) for g, e in zip(got, expected, strict=True)
        ):
            continue
        diagnosis = ""
        for description, mistake in mistakes.items():
            torch.manual_seed(100 + i)
            wrong = mistake(**args)
            if len(wrong) == len(got) and all(
                torch.equal(g.long().cpu(), w) for g, w in zip(got, wrong, strict=True)
            ):
                diagnosis = f"\nIt looks like {description}."
                break
        if not diagnosis:
            counts = torch.bincount(
                torch.cat([g.long().cpu() for g in got]), minlength=batch_size
            )
            if torch.all(counts == update_epochs):
                diagnosis = (
                    "\nEvery step is used once per epoch, but in another random order: "
                    "draw torch.randperm(batch_size) once at the start of each epoch, with "
                    "no other random call in between, and cut it in order."
                )
        sizes = [len(g) for g in got]
        raise ExerciseError(
            f"{name} gave other minibatches on the input {args} (after "
            f"torch.manual_seed({100 + i})):\n{len(got)} minibatches of sizes {sizes}, "
            f"expected {len(expected)} of sizes {[len(e) for e in expected]}.{diagnosis}"
        )
    print(f"{name}: all {len(cases)} cases give train_ppo's minibatches.")
    return True


def _minibatch_advantage_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = _seeded_rng(seed)

    def case(advantages, mb):
        return {
            "b_advantages": torch.tensor(advantages, dtype=torch.float32),
            "mb": torch.tensor(mb, dtype=torch.int64),
        }

    # hand-picked: a minibatch whose statistics differ from the batch's
    yield case([3.0, -1.0, 0.5, 2.0, -4.0, 1.0], [0, 3, 5])
    yield case([1.0, 2.0, 3.0], [1])  # one sample: std 0
    yield case([0.5, 0.5, 0.5, 2.0], [0, 1, 2])  # equal advantages in the minibatch
    for _ in range(n_random):
        b = int(rng.integers(4, 40))
        m = int(rng.integers(2, b + 1))
        yield case(rng.normal(1.0, 3.0, b), rng.permutation(b)[:m])


def _minibatch_advantages_reference(b_advantages, mb):
    from rlbook.returns import normalize

    return normalize(b_advantages[mb])


def check_minibatch_advantages(
    fn: Callable, seed: int | None = None, n_random: int = 30
) -> bool:
    r"""Grade ``fn(b_advantages, mb) -> Tensor``, the normalised advantages of one minibatch.

    .. math:: \tilde A_i = \frac{A_i - \bar A_{\text{mb}}}{\mathrm{std}(A_{\text{mb}})
              + \epsilon}, \qquad i \in \text{mb}

    with the mean and the population standard deviation of the *minibatch*
    (:func:`rlbook.returns.normalize`, :math:`\epsilon = 10^{-8}`), as CleanRL and
    :func:`rlbook.algos.ppo.train_ppo` do. Inputs: float32 ``b_advantages`` ``(B,)``, the
    whole batch, and ``mb``, a tensor of indices; the answer has shape ``mb.shape``. Known
    mistakes recognised: the whole batch's statistics, the sample standard deviation, the mean
    not subtracted, a division by the variance, no normalisation, NaN where the standard
    deviation is 0 (no epsilon), the whole batch returned.
    See chapter 6.2 of the book (book/06c_building_ppo.ipynb).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    from rlbook.returns import normalize

    def whole_batch(b_advantages, mb):
        return normalize(b_advantages)[mb]

    def sample_std(b_advantages, mb):
        x = b_advantages[mb]
        return (x - x.mean()) / (x.std() + 1e-8) if len(x) > 1 else x * 0

    def no_mean(b_advantages, mb):
        x = b_advantages[mb]
        return x / (x.std(correction=0) + 1e-8)

    def variance(b_advantages, mb):
        x = b_advantages[mb]
        return (x - x.mean()) / (x.var(correction=0) + 1e-8)

    def raw(b_advantages, mb):
        return b_advantages[mb]

    name = "minibatch_advantages"
    for args in _minibatch_advantage_cases(0, 0):
        try:
            got = fn(**{k: _copy(v) for k, v in args.items()})
        except NotImplementedError:
            raise
        except Exception:
            break  # _grade reports the crash with its input
        got = _numbers(name, got)
        if got.shape == args["b_advantages"].shape != args["mb"].shape:
            raise ExerciseError(
                f"{name} returned one advantage per step of the whole batch, shape "
                f"{got.shape}; return the minibatch's, shape {tuple(args['mb'].shape)}."
            )
        if np.isnan(got).any():
            raise ExerciseError(
                f"{name} returned NaN on the input\n{_fmt(args)}\nA minibatch of one "
                "sample, or of equal advantages, has standard deviation 0: add "
                "eps = 1e-8 to it before dividing."
            )
    return _grade(
        name,
        fn,
        _minibatch_advantages_reference,
        _minibatch_advantage_cases(seed, n_random),
        mistakes={
            "the advantages were normalised over the whole batch, then indexed; train_ppo "
            "normalises each minibatch with its own mean and std (CleanRL's choice)": (
                whole_batch
            ),
            "this is the sample standard deviation (divide by n - 1); use the population "
            "one, std(correction=0)": sample_std,
            "the mean is not subtracted": no_mean,
            "you divided by the variance; divide by the standard deviation": variance,
            "the advantages are not normalised": raw,
        },
        hint="x = b_advantages[mb]; (x - x.mean()) / (x.std(correction=0) + 1e-8).",
    )


def _ppo_update(policy, value_fn, optimizer, batch, cfg, mistake: str | None = None):
    """The update of :func:`rlbook.algos.ppo.train_ppo` written out (epochs of shuffled
    minibatches, each one Adam step on the joint loss), or with one known ``mistake``."""
    from torch import nn

    from rlbook.losses import ppo_clip_loss, value_loss
    from rlbook.returns import normalize

    params = [*policy.parameters(), *value_fn.parameters()]
    b_obs, b_actions, b_log_probs = batch["obs"], batch["actions"], batch["log_probs"]
    b_advantages, b_values = batch["advantages"], batch["values"]
    b_returns = b_advantages + b_values
    batch_size = b_obs.shape[0]
    size = -(-batch_size // cfg.num_minibatches)
    clip_coef = (
        float("inf") if mistake == "unclipped" or not cfg.clip else cfg.clip_coef
    )
    if mistake == "whole-batch normalisation":
        b_advantages = normalize(b_advantages)
    order = None
    for _ in range(cfg.update_epochs):
        if order is None or mistake != "shuffled once":
            order = torch.randperm(batch_size, device=b_obs.device)
        for lo in range(0, batch_size, size):
            mb = order[lo : lo + size]
            dist = policy.dist(b_obs[mb])
            new_log_probs = dist.log_prob(b_actions[mb])
            entropy = dist.entropy().mean()
            mb_advantages = b_advantages[mb]
            if cfg.norm_adv and mistake not in (
                "no advantage normalisation",
                "whole-batch normalisation",
            ):
                mb_advantages = normalize(mb_advantages)
            if mistake == "undetached old log-probs":
                # "old" log-probabilities recomputed from the policy being optimised
                ratio = torch.exp(new_log_probs - new_log_probs)
                pg = -(ratio * mb_advantages).mean()
            else:
                pg = ppo_clip_loss(
                    new_log_probs, b_log_probs[mb], mb_advantages, clip_coef
                )
            if mistake == "policy loss sign":
                pg = -pg
            v_loss = value_loss(value_fn(b_obs[mb]), b_returns[mb])
            ent_coef = -cfg.ent_coef if mistake == "entropy sign" else cfg.ent_coef
            vf_coef = {"value loss left out": 0.0, "vf_coef missing": 1.0}.get(
                mistake, cfg.vf_coef
            )
            loss = pg - ent_coef * entropy + vf_coef * v_loss
            if mistake != "no zero_grad":
                optimizer.zero_grad()
            loss.backward()
            if mistake != "no gradient clipping":
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()


# the mistakes of one gradient step (the loss), then those of the loop around it
_UPDATE_STEP_MISTAKES = {
    "undetached old log-probs": "the ratio's 'old' log-probabilities come from the policy "
    "being optimised, with gradient: the ratio is then exactly 1 and its gradient 0, so "
    "the policy never moves. Use batch['log_probs'], stored at collection",
    "policy loss sign": "the policy loss has the wrong sign: PPO MAXIMISES the clipped "
    "objective, so the loss to minimise is minus its mean (ppo_clip_loss is already that)",
    "entropy sign": "the entropy bonus has the wrong sign: loss = policy loss - ent_coef "
    "* entropy + vf_coef * value loss (a bonus for entropy lowers the loss)",
    "value loss left out": "the value loss is not in the loss: the critic never learns",
    "vf_coef missing": "the value loss is not weighted by cfg.vf_coef",
    "no advantage normalisation": "the advantages were not normalised (cfg.norm_adv)",
    "no gradient clipping": "the gradients were not clipped to norm cfg.max_grad_norm "
    "(nn.utils.clip_grad_norm_ over the parameters of BOTH networks, between backward() "
    "and step(); after step() is too late)",
}
_UPDATE_LOOP_MISTAKES = {
    "no zero_grad": "optimizer.zero_grad() is missing: gradients accumulate over the "
    "minibatches",
    "unclipped": "the ratio is not clipped: use cfg.clip_coef in the clipped objective",
    "shuffled once": "every epoch reuses the first shuffle",
    "whole-batch normalisation": "the advantages were normalised over the whole batch; "
    "train_ppo normalises each minibatch",
}


def _ppo_update_case(cfg):
    """A batch of CartPole steps from a fresh agent, and a way to rebuild that agent."""
    from rlbook.algos.ppo import orthogonal_init, ppo_advantages
    from rlbook.policies import ValueNet, make_policy
    from rlbook.rollout import collect, make_envs
    from rlbook.utils import device, set_seed

    set_seed(cfg.seed)
    envs = make_envs("CartPole-v1", cfg.num_envs)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    policy = make_policy(obs_space, act_space, cfg.hidden)
    value_fn = ValueNet(obs_space.shape[0], cfg.hidden)
    orthogonal_init(policy.logits_net, 0.01)
    orthogonal_init(value_fn.v_net, 1.0)
    policy, value_fn = policy.to(device()), value_fn.to(device())
    rollout = collect(envs, policy, cfg.num_steps, seed=cfg.seed)
    envs.close()
    values, advantages, _ = ppo_advantages(rollout, value_fn, cfg.gamma, cfg.gae_lambda)
    real = rollout.mask
    batch = {
        "obs": rollout.obs[real],
        "actions": rollout.actions[real],
        "log_probs": rollout.log_probs[real],
        "advantages": advantages[real],
        "values": values[real],
    }
    states = (policy.state_dict(), value_fn.state_dict())

    def agent():
        import copy

        p, v = copy.deepcopy(policy), copy.deepcopy(value_fn)
        p.load_state_dict(states[0])
        v.load_state_dict(states[1])
        return (
            p,
            v,
            torch.optim.Adam([*p.parameters(), *v.parameters()], cfg.lr, eps=1e-5),
        )

    return batch, agent


def check_ppo_update(fn: Callable) -> bool:
    """Grade ``fn(policy, value_fn, optimizer, batch, cfg)``, one whole PPO update, in place.

    ``batch`` is a dict of flat tensors over the batch's ``B`` real steps: ``obs``,
    ``actions``, ``log_probs`` (at collection), ``advantages`` (GAE, not normalised) and
    ``values`` (at collection); ``cfg`` a :class:`rlbook.algos.ppo.PPOConfig`. ``fn`` runs
    ``cfg.update_epochs`` epochs of shuffled minibatches, each one step of ``optimizer`` (Adam
    over both networks) on ``policy loss - ent_coef * entropy + vf_coef * value loss``,
    with the gradients clipped to ``cfg.max_grad_norm``, exactly as
    :func:`rlbook.algos.ppo.train_ppo` does. The grader runs it twice on a batch of CartPole
    steps, from the same networks and the same torch seed as its reference: first with one
    epoch of one minibatch (a single gradient step: the loss), then with several epochs and
    minibatches (the loop), and compares the weights after. Known mistakes recognised: the
    signs of the policy loss and of the entropy bonus, the value loss left out or unweighted,
    no advantage normalisation, no gradient clipping; old log-probabilities that are not the
    stored constants, a missing ``zero_grad``, no clip, one shuffle for every epoch, advantages
    normalised over the whole batch.
    See chapter 6.2 of the book (book/06c_building_ppo.ipynb).
    """
    from dataclasses import replace

    from rlbook.algos.ppo import PPOConfig

    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    name = "ppo_update"
    full = PPOConfig(seed=0, ent_coef=0.01, update_epochs=3, num_minibatches=4)
    one = replace(full, update_epochs=1, num_minibatches=1)
    batch, agent = _ppo_update_case(full)

    def run(update, cfg, mistake=None):
        policy, value_fn, optimizer = agent()
        torch.manual_seed(1234)
        args = (
            policy,
            value_fn,
            optimizer,
            {k: v.clone() for k, v in batch.items()},
            cfg,
        )
        if mistake is None:
            update(*args)
        else:
            update(*args, mistake=mistake)
        return torch.cat([_flat_params(policy), _flat_params(value_fn)])

    for cfg, what, mistakes in (
        (
            one,
            "one epoch of one minibatch (a single gradient step)",
            _UPDATE_STEP_MISTAKES,
        ),
        # some mistakes hardly show in one step (the entropy's gradient is ~0 at the
        # uniform policy): after 12 steps every known mistake is tried
        (
            full,
            "3 epochs of 4 minibatches",
            {**_UPDATE_STEP_MISTAKES, **_UPDATE_LOOP_MISTAKES},
        ),
    ):
        expected = run(_ppo_update, cfg)
        try:
            got = run(fn, cfg)
        except NotImplementedError:
            raise
        except Exception as exc:
            raise ExerciseError(
                f"{name} raised {type(exc).__name__}: {exc}\non the input: {what}"
            ) from exc
        if torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
            continue
        start = run(lambda *args: None, cfg)
        if torch.equal(got, start):
            raise ExerciseError(
                f"{name} did not change the networks ({what}). Call optimizer.zero_grad(), "
                "loss.backward(), optimizer.step() for every minibatch."
            )
        message = f"{name}: with {what} the weights differ from train_ppo's"
        if cfg is one:
            message += "; the loss of a gradient step is wrong"
        else:
            message += " (a single gradient step matched)"
        for mistake, diagnosis in mistakes.items():
            if torch.allclose(
                got, run(_ppo_update, cfg, mistake), rtol=1e-4, atol=1e-5
            ):
                raise ExerciseError(f"{message}.\nIt looks like {diagnosis}.")
        raise ExerciseError(
            f"{message}.\nHint: for each epoch, a fresh torch.randperm(B) cut into "
            "minibatches; for each, normalise its advantages, ppo_clip_loss with the "
            "stored log_probs, value loss towards advantages + values, loss = pg - "
            "ent_coef * entropy + vf_coef * v_loss, zero_grad, backward, "
            "clip_grad_norm_, step."
        )
    print(
        f"{name}: the same weights as train_ppo's update, after one step and after 12."
    )
    return True


def _ppo_loop(env_id, cfg, record, mistake: str | None = None):
    """:func:`rlbook.algos.ppo.train_ppo` written out (no evaluation, no logging), or with one
    known ``mistake``; calls ``record(rollout, advantages, policy, value_fn)`` per iteration."""
    from rlbook.algos.ppo import orthogonal_init, ppo_advantages
    from rlbook.policies import ValueNet, make_policy
    from rlbook.rollout import collect, make_envs
    from rlbook.utils import device, set_seed

    set_seed(cfg.seed)
    envs = make_envs(env_id, cfg.num_envs)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    policy = make_policy(obs_space, act_space, cfg.hidden)
    value_fn = ValueNet(obs_space.shape[0], cfg.hidden)
    if mistake != "no orthogonal init":
        orthogonal_init(policy.logits_net, 0.01)
        orthogonal_init(value_fn.v_net, 1.0)
    policy, value_fn = policy.to(device()), value_fn.to(device())
    params = [*policy.parameters(), *value_fn.parameters()]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, eps=1e-5)
    env_steps, rollout = 0, None
    try:
        while env_steps < cfg.total_steps:
            if cfg.anneal_lr and mistake != "no annealing":
                for group in optimizer.param_groups:
                    group["lr"] = cfg.lr * (1.0 - env_steps / cfg.total_steps)
            previous = None if mistake == "reset every iteration" else rollout
            rollout = collect(
                envs, policy, cfg.num_steps, previous=previous, seed=cfg.seed
            )
            values, advantages, _ = ppo_advantages(
                rollout, value_fn, cfg.gamma, cfg.gae_lambda
            )
            real = (
                torch.ones_like(rollout.mask)
                if mistake == "padding kept"
                else rollout.mask
            )
            batch = {
                "obs": rollout.obs[real],
                "actions": rollout.actions[real],
                "log_probs": rollout.log_probs[real],
                "advantages": advantages[real],
                "values": values[real],
            }
            _ppo_update(policy, value_fn, optimizer, batch, cfg)
            env_steps += rollout.num_steps
            record(rollout, advantages, policy, value_fn)
    finally:
        envs.close()
    return policy, value_fn


_PPO_LOOP_MISTAKES = {
    "rollout": {
        "reset every iteration": "the environments are reset at every iteration: pass "
        "previous=rollout to collect, so that episodes run on across rollouts (a reset "
        "every 32 steps means CartPole never sees a long episode)",
        "no orthogonal init": "the networks keep PyTorch's default initialisation: apply "
        "orthogonal_init(policy.logits_net, 0.01) and orthogonal_init(value_fn.v_net, 1.0)",
    },
    "update": {
        "no annealing": "the learning rate is not annealed: set lr = cfg.lr * (1 - "
        "env_steps / cfg.total_steps) in every parameter group before each rollout",
        "padding kept": "the batch keeps the padding slots of the rollout (the reset steps "
        "of NEXT_STEP autoreset, which are no transitions): index every tensor with "
        "rollout.mask",
    },
}


def check_train_ppo(
    fn: Callable, env_id: str = "CartPole-v1", iterations: int = 3, seed: int = 0
) -> bool:
    """Grade ``fn(env_id, cfg, record)``, a whole PPO training loop, against ``train_ppo``.

    ``cfg`` is a :class:`rlbook.algos.ppo.PPOConfig` with ``total_steps`` for ``iterations``
    rollouts. After each iteration's update ``fn`` calls ``record(rollout, advantages, policy,
    value_fn)``. The grader runs the reference loop on the same seed, checks that it gives
    :func:`rlbook.algos.ppo.train_ppo`'s weights, and compares each iteration's rollout,
    advantages (``(T, N)``, on the real steps) and weights after the update, naming the first
    that differs. Known mistakes recognised: environments reset at every iteration, no
    orthogonal initialisation, no learning-rate annealing, padding slots kept in the batch.
    See chapter 6.2 of the book (book/06c_building_ppo.ipynb).
    """
    from rlbook.algos.ppo import PPOConfig, train_ppo

    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    iterations = validate.integer("iterations", iterations, low=2)
    cfg = PPOConfig(seed=seed, total_steps=iterations * 8 * 32)
    name = "train_ppo"

    def recorder(store):
        def record(rollout, advantages, policy, value_fn):
            store.append(
                {
                    "rollout": rollout,
                    "advantages": advantages.detach().cpu().double().clone(),
                    "update": torch.cat([_flat_params(policy), _flat_params(value_fn)]),
                }
            )

        return record

    ref: list[dict] = []
    policy, _ = _ppo_loop(env_id, cfg, recorder(ref))
    library = train_ppo(env_id, cfg)
    if not torch.allclose(
        _flat_params(policy), _flat_params(library.meta["policy"]), rtol=1e-4, atol=1e-5
    ):  # a defect of the book, not of the learner's loop
        raise RuntimeError("the grader's reference loop no longer matches train_ppo")

    got = _run_loop(name, fn, env_id, cfg, recorder)
    if len(got) != len(ref):
        raise ExerciseError(
            f"{name} called record {len(got)} times; expected {len(ref)}, one per "
            f"rollout of cfg.num_envs * cfg.num_steps steps until cfg.total_steps real "
            "steps are collected (count rollout.num_steps, not the padded slots)."
        )

    def differs(stage, g, r):
        if stage == "rollout":
            a, b = g["rollout"], r["rollout"]
            return a.obs.shape != b.obs.shape or not (
                torch.equal(a.obs, b.obs)
                and torch.equal(a.actions, b.actions)
                and torch.equal(a.mask, b.mask)
            )
        if stage == "advantages":
            mask = r["rollout"].mask
            if g["advantages"].shape != r["advantages"].shape:
                return True
            return not torch.allclose(
                g["advantages"][mask], r["advantages"][mask], rtol=1e-4, atol=1e-5
            )
        return not torch.allclose(g["update"], r["update"], rtol=1e-4, atol=1e-5)

    for it, (g, r) in enumerate(zip(got, ref, strict=True)):
        for stage in ("rollout", "advantages", "update"):
            if not differs(stage, g, r):
                continue
            matched = {0: "", 1: "iteration 0 matches train_ppo; "}.get(
                it, f"iterations 0 to {it - 1} match train_ppo; "
            )
            message = f"{name}: {matched}iteration {it} differs first at the {stage}"
            for mistake, diagnosis in _PPO_LOOP_MISTAKES.get(stage, {}).items():
                variant: list[dict] = []
                _ppo_loop(env_id, cfg, recorder(variant), mistake)
                stages = ("rollout", "advantages", "update")
                upto = stages[: stages.index(stage) + 1]
                if it < len(variant) and not any(
                    differs(s, g, variant[it]) for s in upto
                ):
                    raise ExerciseError(f"{message}.\nIt looks like {diagnosis}.")
            hints = {
                "rollout": "set_seed(cfg.seed); make the environments, the policy and the "
                "value network in that order, with orthogonal_init; collect(envs, policy, "
                "cfg.num_steps, previous=rollout, seed=cfg.seed)",
                "advantages": "values, advantages, returns = ppo_advantages(rollout, "
                "value_fn, cfg.gamma, cfg.gae_lambda), before the update",
                "update": "anneal the learning rate, keep the real steps (rollout.mask), "
                "and run the update of the previous exercise with Adam(eps=1e-5) over both "
                "networks",
            }
            raise ExerciseError(f"{message}.\nHint: {hints[stage]}.")
    print(
        f"{name}: {len(ref)} iterations identical to rlbook's train_ppo "
        "(rollout, advantages, update)."
    )
    return True
