"""Surrogate losses whose gradients are policy-gradient estimates."""

from __future__ import annotations

import torch


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean()
    if mask.shape != x.shape:
        raise ValueError(f"mask must have shape {tuple(x.shape)}, got {tuple(mask.shape)}")
    n = mask.sum()
    if n == 0:
        raise ValueError("mask selects no steps")
    # where, not multiply: an inf in a padding slot must not turn the mean into NaN
    return torch.where(mask, x, torch.zeros_like(x)).sum() / n


def pg_loss(
    log_probs: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The policy-gradient "loss": minus the mean of log-probability times weight.

    .. math:: L(\\theta) = -\\frac{1}{|\\mathcal D|} \\sum_{(s_t, a_t) \\in \\mathcal D}
              \\log\\pi_\\theta(a_t \\mid s_t)\\, w_t,
       \\qquad -\\nabla_\\theta L(\\theta) = \\hat g

    Its gradient is the sample policy gradient :math:`\\hat g`; its *value* means nothing
    (it is not the expected return, and going down does not mean the policy improved).

    Parameters
    ----------
    log_probs : Tensor, (T, N) or (B,)
        :math:`\\log\\pi_\\theta(a_t|s_t)`, with gradient.
    weights : Tensor, same shape
        Returns, reward-to-go or advantages; treated as constants (detached).
    mask : bool Tensor, same shape, optional
        Steps to include (``Rollout.mask``); the mean is over these.

    Notes
    -----
    Dividing by the number of steps rather than the number of episodes rescales the gradient
    by a constant, which the learning rate absorbs. See chapter 1 of the book
    (book/01_policy_gradient.ipynb).
    """
    if not isinstance(log_probs, torch.Tensor) or not isinstance(weights, torch.Tensor):
        raise TypeError("log_probs and weights must be torch tensors")
    if log_probs.shape != weights.shape:
        raise ValueError(
            f"weights must have the shape of log_probs {tuple(log_probs.shape)}, "
            f"got {tuple(weights.shape)}"
        )
    if torch.isnan(weights).any():
        raise ValueError("weights contain NaN")
    if torch.isnan(log_probs).any():
        raise ValueError("log_probs contain NaN")
    # the weights are data, not functions of theta: no gradient may flow into them
    return -_masked_mean(log_probs * weights.detach(), mask)


def value_loss(
    values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error of a value function against its regression targets.

    .. math:: L_V(\\phi) = \\tfrac12 \\, \\mathrm{mean}_t \\big(V_\\phi(s_t) - \\hat G_t\\big)^2

    Parameters
    ----------
    values : Tensor, (T, N) or (B,)
        :math:`V_\\phi(s_t)`, with gradient.
    returns : Tensor, same shape
        Targets (reward-to-go, or GAE returns); treated as constants.
    mask : bool Tensor, same shape, optional

    Notes
    -----
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    if values.shape != returns.shape:
        raise ValueError(
            f"returns must have the shape of values {tuple(values.shape)}, "
            f"got {tuple(returns.shape)}"
        )
    if torch.isnan(returns).any():
        raise ValueError("returns contain NaN")
    return 0.5 * _masked_mean((values - returns.detach()) ** 2, mask)
