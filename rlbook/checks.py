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


# ---------------------------------------------------------------- scores: the EGLP lemma (chapter 2)


def _categorical_score_cases(seed: int | None, n_random: int) -> Iterable[dict]:
    rng = np.random.default_rng(seed)

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
        yield case(rng.normal(scale=2.0, size=(*batch, k)), rng.integers(0, k, size=batch))
    # last: logits whose exp overflows even in float64
    yield case([[1000.0, 0.0, -1000.0], [0.0, 800.0, 1.0]], [1, 1])


def _categorical_score(logits, actions):
    onehot = torch.nn.functional.one_hot(actions, logits.shape[-1]).to(logits.dtype)
    return onehot - torch.softmax(logits, dim=-1)


def check_score_categorical(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
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
    rng = np.random.default_rng(seed)

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
        yield case(rng.normal(scale=3.0, size=b), rng.normal(size=b), rng.uniform(-1.5, 1.5, b))


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
        d_mu, d_log_std = (np.broadcast_to(_as_array(v), np.shape(_as_array(x))) for v in out)
        return np.stack([d_mu, d_log_std], axis=-1)

    return wrapped


def check_gaussian_score(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
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
    rng = np.random.default_rng(seed)

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
    yield case([[4.0, -4.0, 0.0]], [[0, 0], [0, 0]], [[0, 2], [1, 0]], [[1.0, -1.0], [0.5, 2.0]])
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
    from rlbook.exact import grad_log_probs, policy_probs  # local: keeps checks light to import

    if minus_pi:
        scores = grad_log_probs(theta, states, actions)
    else:
        scores = grad_log_probs(theta, states, actions) + (
            torch.nn.functional.one_hot(states, theta.shape[0]).to(torch.float64)[..., None]
            * policy_probs(theta)[states][..., None, :]
        )
    return torch.einsum("mh,mhsa->msa", weights.to(torch.float64), scores)


def _tabular_reward_to_go_estimates(theta, states, actions, rewards):
    from rlbook.exact import Trajectories, estimator_weights

    traj = Trajectories(states=states, actions=actions, rewards=rewards)
    return _score_weighted(theta, states, actions, estimator_weights(traj, "reward_to_go"))


def _rtg(rewards):
    return rewards.flip(-1).cumsum(-1).flip(-1)


def check_reward_to_go_estimates(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
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
    rng = np.random.default_rng(seed)

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
    from rlbook.returns import normalize  # local: keeps the module's imports as they were

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
    try:
        got = fn(**{k: _copy(v) for k, v in constant.items()})
    except NotImplementedError:
        raise
    except Exception:
        got = None  # _grade below reports the crash with its input
    if got is not None and not np.all(np.isfinite(_as_array(got).astype(float))):
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
    rng = np.random.default_rng(seed)

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
        [[1.0, -1.0], [0.5, 2.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 1.0], [0.3, -0.3]], [0.5, -1.0]
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


def check_gaussian_log_prob(fn: Callable, seed: int | None = None, n_random: int = 30) -> bool:
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
    See chapter 4b of the book (book/04b_harder_tasks.ipynb).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    batch_case = list(_gaussian_log_prob_cases(seed, 0))[1]
    try:
        got = fn(**{k: _copy(v) for k, v in batch_case.items()})
    except NotImplementedError:
        raise
    except Exception:
        got = None  # _grade below reports the crash with its input
    if got is not None and np.shape(_as_array(got)) == tuple(batch_case["actions"].shape):
        raise ExerciseError(
            f"gaussian_log_prob returned shape {np.shape(_as_array(got))} for actions of shape "
            f"{tuple(batch_case['actions'].shape)}: one number per action dimension.\n"
            "The dimensions are independent, so the joint density is the product of the "
            "per-dimension densities: sum the log-densities over the last axis."
        )

    def per_dim(actions, mean, log_std):
        std = torch.exp(log_std)
        return -((actions - mean) ** 2) / (2 * std**2) - log_std - 0.5 * np.log(2 * np.pi)

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
