"""Importance sampling: expectations under one distribution from samples of another.

With samples ``x ~ q`` (the *behaviour* distribution, which produced the data) and a *target*
distribution ``p``, the importance weight ``w(x) = p(x) / q(x)`` turns an average under ``q``
into an estimate of an expectation under ``p``:

.. math:: \\mathbb E_{x \\sim p}[f(x)] = \\mathbb E_{x \\sim q}\\Big[\\frac{p(x)}{q(x)}\\, f(x)\\Big]
          \\quad\\text{whenever } q(x) > 0 \\text{ wherever } p(x) f(x) \\neq 0.

For trajectories of a policy the dynamics cancel from the ratio, which becomes a product of
per-step policy ratios ``π_target(a_t|s_t) / π_behaviour(a_t|s_t)``. Every weight here is
computed from *log*-probabilities, as ``exp(log p − log q)``: the probabilities of long
trajectories underflow to 0 in floating point, and ``0 / 0`` is NaN, while their logarithms
are ordinary numbers.

Shapes: ``M`` samples or trajectories, horizon ``H``; per-step tensors are ``(M, H)``.

See chapter 5 of the book (book/05_importance_sampling.ipynb).
"""

from __future__ import annotations

import torch

from rlbook import validate

__all__ = [
    "ess",
    "importance_weights",
    "is_estimate",
    "per_decision_is",
    "trajectory_weights",
    "weighted_is_estimate",
]


def _as_tensor(x: object, name: str) -> torch.Tensor:
    """``x`` as a floating-point tensor (autograd history kept); NaN refused.

    Arrays and lists become float64 tensors; integer tensors are promoted.
    """
    if not isinstance(x, torch.Tensor):
        x = torch.from_numpy(validate.float_array(name, x, nonempty=False))
    x = validate.float_tensor(name, x, nonempty=False)
    if torch.isnan(x).any():
        raise ValueError(f"{name} must not contain NaN")
    return x


def _log_ratio(log_p_target: object, log_p_behaviour: object) -> torch.Tensor:
    """``log p - log q`` elementwise, after checking shapes and the support condition."""
    log_p = _as_tensor(log_p_target, "log_p_target")
    log_q = _as_tensor(log_p_behaviour, "log_p_behaviour")
    validate.same_shape("log_p_behaviour", log_q, "log_p_target", log_p)
    for name, x in (("log_p_target", log_p), ("log_p_behaviour", log_q)):
        if (x == float("inf")).any():
            raise ValueError(f"{name} must be a log-probability, got +inf")
    if (log_q == float("-inf")).any():
        # a sample the behaviour distribution could not have produced: the data are not from q
        raise ValueError(
            "log_p_behaviour must be finite: it contains -inf (probability 0), but every "
            "sample must be one the behaviour distribution can produce"
        )
    return log_p - log_q


def importance_weights(
    log_p_target: torch.Tensor, log_p_behaviour: torch.Tensor
) -> torch.Tensor:
    """Importance weights p(x) / q(x) from log-probabilities, elementwise.

        w = p(x) / q(x) = exp(log p(x) - log q(x))

    The difference comes before the exponential: exp(log p) / exp(log q) is 0 / 0 = NaN
    once both are below about -745 (float64). log_p_target, log_p_behaviour: same shape;
    the target keeps its gradient (-inf gives weight 0), the behaviour must be finite.
    See chapter 5 (book/05_importance_sampling.ipynb).
    """
    return torch.exp(_log_ratio(log_p_target, log_p_behaviour))


def trajectory_weights(
    log_p_target: torch.Tensor, log_p_behaviour: torch.Tensor
) -> torch.Tensor:
    """Trajectory importance weights: the product over time of the per-step ratios.

        W(τ) = Π_t π_θ'(a_t|s_t) / π_θ(a_t|s_t)
             = exp Σ_t (log π_θ'(a_t|s_t) - log π_θ(a_t|s_t))

    The initial-state distribution and the dynamics cancel; the log-ratios are summed
    before the exponential. log_p_target, log_p_behaviour: (..., H), e.g. (M, H).
    Returns one weight per trajectory, (...).
    See chapter 5 (book/05_importance_sampling.ipynb).
    """
    log_ratio = _log_ratio(log_p_target, log_p_behaviour)
    if log_ratio.ndim < 1:
        raise ValueError("log_p_target must have shape (..., H), with a time axis")
    return torch.exp(log_ratio.sum(-1))


def is_estimate(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    r"""Ordinary importance-sampling estimate of ``E_p[f]``: the mean of ``w_i f(x_i)``.

    .. math:: \hat\mu_{\mathrm{IS}} = \frac1M \sum_{i=1}^M w_i\, f(x_i), \qquad x_i \sim q

    Unbiased when ``q > 0`` wherever ``p f ≠ 0``; its variance is
    ``(E_q[w² f²] − E_p[f]²) / M``, which grows with the mismatch between ``p`` and ``q``.

    Parameters
    ----------
    weights : torch.Tensor, shape (M,)
        Importance weights ``w_i = p(x_i) / q(x_i)``, e.g. from :func:`importance_weights`.
    values : torch.Tensor, shape (M, ...)
        ``f(x_i)``; trailing axes (e.g. the ``(S, A)`` of a gradient) are averaged separately.

    Returns
    -------
    torch.Tensor, shape (...)

    See chapter 5 of the book (book/05_importance_sampling.ipynb).
    """
    w, f = _check_weights_values(weights, values)
    validate.finite("weights", w)
    return (_expand(w, f) * f).mean(0)


def weighted_is_estimate(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    r"""Self-normalised (weighted) importance-sampling estimate of ``E_p[f]``.

    .. math:: \hat\mu_{\mathrm{WIS}} = \frac{\sum_i w_i\, f(x_i)}{\sum_i w_i}, \qquad x_i \sim q

    Dividing by the sum of the weights instead of ``M`` makes the estimate a weighted average of
    the ``f(x_i)``: it never leaves their range, and the weights need only be known up to a
    common factor (unnormalised densities suffice). The price is a bias of order ``1/M``; the
    estimate is consistent (Owen, 2013, ch. 9).

    Parameters
    ----------
    weights : torch.Tensor, shape (M,)
        Non-negative importance weights, not all zero; any common scale.
    values : torch.Tensor, shape (M, ...)

    Returns
    -------
    torch.Tensor, shape (...)

    See chapter 5 of the book (book/05_importance_sampling.ipynb).
    """
    w, f = _check_weights_values(weights, values)
    if not torch.isfinite(w).all():
        raise ValueError(
            "weights must be finite, got inf; compute them in log space and subtract the max"
        )
    if not w.sum() > 0:
        raise ValueError(
            "weights must not all be zero: the self-normalised estimate would be 0 / 0"
        )
    # divide by the largest weight first: the ratio is unchanged and huge weights cannot overflow
    w = w / w.max()
    return (_expand(w, f) * f).sum(0) / w.sum()


def per_decision_is(
    rewards: torch.Tensor,
    log_p_target: torch.Tensor,
    log_p_behaviour: torch.Tensor,
    gamma: float = 1.0,
) -> torch.Tensor:
    """Per-decision importance-sampling return of each trajectory (Precup et al., 2000).

        G_PD(τ) = Σ_t γ^t W_{0:t} r_t,   W_{0:t} = Π_{k<=t} π_θ'(a_k|s_k) / π_θ(a_k|s_k)

    Each reward is weighted only by the ratios up to its own step: still unbiased for
    J(θ'), usually with less variance. rewards, log_p_target, log_p_behaviour: (M, H).
    Returns (M,). See chapter 5 (book/05_importance_sampling.ipynb).
    """
    r, log_ratio, gamma = _check_per_decision_args(
        rewards, log_p_target, log_p_behaviour, gamma
    )
    # W_{0:t}: ratios of steps 0..t, in log space
    cumulative = torch.exp(log_ratio.cumsum(-1))
    discounts = gamma ** torch.arange(r.shape[1], dtype=r.dtype)
    return (discounts * cumulative * r).sum(-1)


def _check_per_decision_args(rewards, log_p_target, log_p_behaviour, gamma):
    """Check the arguments of :func:`per_decision_is`; return rewards, log-ratios, gamma."""
    gamma = validate.unit_interval("gamma", gamma)
    log_ratio = _log_ratio(log_p_target, log_p_behaviour)
    r = validate.finite("rewards", _as_tensor(rewards, "rewards"))
    if log_ratio.ndim != 2:
        raise ValueError(
            f"log_p_target must have shape (M, H), got {tuple(log_ratio.shape)}"
        )
    validate.same_shape("rewards", r, "log_p_target", log_ratio)
    return r, log_ratio, gamma


def ess(weights: torch.Tensor) -> float:
    """Kish's effective sample size of importance weights, between 1 and M.

        ESS = (Σ_i w_i)² / Σ_i w_i²

    Unchanged when every weight is scaled; about M / E_q[w²] for weights of mean 1
    (Owen, 2013). weights: (M,), non-negative, finite, not all zero. Returns a float.
    See chapter 5 (book/05_importance_sampling.ipynb).
    """
    w = _weights(weights).detach().to(torch.float64)
    validate.finite("weights", w)
    if not w.max() > 0:
        raise ValueError("weights must not all be zero")
    w = w / w.max()  # scale-free; keeps w**2 from overflowing
    return (w.sum() ** 2 / (w**2).sum()).item()


def _check_weights_values(
    weights: object, values: object
) -> tuple[torch.Tensor, torch.Tensor]:
    w = _weights(weights)
    f = validate.finite("values", _as_tensor(values, "values"))
    if f.ndim < 1 or f.shape[0] != w.shape[0]:
        raise ValueError(
            f"values must have shape (M, ...) with M = {w.shape[0]} like weights, "
            f"got {tuple(f.shape)}"
        )
    return w, f


def _weights(weights: object) -> torch.Tensor:
    """Importance weights: a non-empty (M,) tensor of non-negative numbers."""
    w = _as_tensor(weights, "weights")
    if w.ndim != 1 or w.numel() == 0:
        raise ValueError(
            f"weights must have shape (M,) with M >= 1, got {tuple(w.shape)}"
        )
    if (w < 0).any():
        raise ValueError("weights must be non-negative, got a negative weight")
    return w


def _expand(w: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """``w`` of shape (M,) reshaped to broadcast against ``f`` of shape (M, ...)."""
    return w.reshape(-1, *([1] * (f.ndim - 1)))
