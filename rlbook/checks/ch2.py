"""Graders of chapter 2 (book/02_eglp_lemma.ipynb): categorical and Gaussian scores."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from rlbook import validate
from rlbook.checks._harness import _as_array, _grade
from rlbook.utils import rng as _seeded_rng


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
    n_random = validate.non_negative_int("n_random", n_random)

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
    n_random = validate.non_negative_int("n_random", n_random)
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
