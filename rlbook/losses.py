"""Surrogate losses whose gradients are policy-gradient estimates."""

from __future__ import annotations

import numbers

import torch

from rlbook.importance import importance_weights


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean()
    if mask.shape != x.shape:
        raise ValueError(
            f"mask must have shape {tuple(x.shape)}, got {tuple(mask.shape)}"
        )
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
    Dividing by the number of steps rather than the number of episodes scales the gradient by
    one over the batch's mean episode length: a random factor that changes with the policy, not
    a constant. With Adam it hardly matters, since Adam's step does not depend on the scale of
    the gradient. See chapter 1 of the book (book/01_policy_gradient.ipynb).
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


def _check_log_probs(new_log_probs: torch.Tensor, old_log_probs: torch.Tensor) -> None:
    for name, x in (("new_log_probs", new_log_probs), ("old_log_probs", old_log_probs)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if torch.isnan(x).any():
            raise ValueError(f"{name} contain NaN")
    if new_log_probs.shape != old_log_probs.shape:
        raise ValueError(
            f"old_log_probs must have the shape of new_log_probs {tuple(new_log_probs.shape)}, "
            f"got {tuple(old_log_probs.shape)}"
        )


def importance_ratio(
    new_log_probs: torch.Tensor, old_log_probs: torch.Tensor
) -> torch.Tensor:
    """The probability ratio of the new policy to the one that collected the data.

    .. math:: \\rho_t(\\theta) = \\frac{\\pi_\\theta(a_t \\mid s_t)}{\\pi_{\\theta_\\text{old}}(a_t \\mid s_t)}
              = \\exp\\big(\\log\\pi_\\theta(a_t|s_t) - \\log\\pi_{\\theta_\\text{old}}(a_t|s_t)\\big)

    This is chapter 5's importance weight (:func:`rlbook.importance.importance_weights`) of one
    action, with the old log-probabilities detached: the data were collected by
    :math:`\\pi_{\\theta_\\text{old}}`, and only :math:`\\pi_\\theta` is being changed. Computed from
    log-probabilities: a ratio of two tiny probabilities would underflow.

    Parameters
    ----------
    new_log_probs : Tensor, any shape
        :math:`\\log\\pi_\\theta(a_t|s_t)`, with gradient.
    old_log_probs : Tensor, same shape
        :math:`\\log\\pi_{\\theta_\\text{old}}(a_t|s_t)` stored at collection; treated as constants.

    Notes
    -----
    See chapter 6 of the book (book/06_ppo.ipynb).
    """
    _check_log_probs(new_log_probs, old_log_probs)
    return importance_weights(new_log_probs, old_log_probs.detach())


def ppo_clip_loss(
    new_log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    clip_coef: float = 0.2,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """PPO's clipped loss :math:`-L^\\text{CLIP}` (Schulman et al., 2017), to minimise.

    .. math:: L^\\text{CLIP}(\\theta) = \\mathrm{mean}_t \\min\\big(\\rho_t(\\theta) \\hat A_t,\\;
              \\mathrm{clip}(\\rho_t(\\theta), 1 - \\epsilon, 1 + \\epsilon)\\, \\hat A_t\\big)

    is the objective PPO maximises; this function returns its negative. The minimum makes
    :math:`L^\\text{CLIP}` a pessimistic bound on the unclipped surrogate
    :math:`\\rho_t \\hat A_t`: once the ratio has moved past :math:`1 + \\epsilon` on an action
    with positive advantage (or below :math:`1 - \\epsilon` on one with negative advantage), that
    sample's term is constant and its gradient is exactly zero. Moves that make the objective
    worse are never clipped. At :math:`\\rho = 1` (the first minibatch of an update) the gradient
    of :math:`L^\\text{CLIP}` is the policy-gradient estimate with the advantages as weights,
    :math:`\\mathrm{mean}_t \\nabla\\log\\pi_\\theta(a_t|s_t) \\hat A_t`, and this loss's gradient
    is its negative.

    Parameters
    ----------
    new_log_probs : Tensor, (B,) or (T, N)
        :math:`\\log\\pi_\\theta(a_t|s_t)`, with gradient.
    old_log_probs : Tensor, same shape
        Log-probabilities at collection time; constants.
    advantages : Tensor, same shape
        :math:`\\hat A_t`, e.g. from :func:`rlbook.returns.gae`; constants.
    clip_coef : float
        :math:`\\epsilon > 0`. ``math.inf`` removes the clip: the loss is then minus the plain
        surrogate, :math:`-\\mathrm{mean}_t\\, \\rho_t \\hat A_t` (the ablation of chapter 6).
    mask : bool Tensor, same shape, optional
        Steps to include.

    Returns
    -------
    Tensor, scalar

    Notes
    -----
    See chapter 6 of the book (book/06_ppo.ipynb).
    """
    ratio = importance_ratio(new_log_probs, old_log_probs)
    if not isinstance(advantages, torch.Tensor):
        raise TypeError(
            f"advantages must be a torch.Tensor, got {type(advantages).__name__}"
        )
    if advantages.shape != ratio.shape:
        raise ValueError(
            f"advantages must have the shape of new_log_probs {tuple(ratio.shape)}, "
            f"got {tuple(advantages.shape)}"
        )
    if torch.isnan(advantages).any():
        raise ValueError("advantages contain NaN")
    is_number = isinstance(clip_coef, numbers.Real) and not isinstance(clip_coef, bool)
    if not (is_number and clip_coef > 0):  # NaN fails too
        raise ValueError(
            f"clip_coef must be a positive number (or math.inf), got {clip_coef!r}"
        )
    clip_coef = float(clip_coef)
    advantages = advantages.detach()
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef) * advantages
    return -_masked_mean(torch.minimum(unclipped, clipped), mask)


def approx_kl(
    new_log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """An estimate of :math:`\\mathrm{KL}(\\pi_{\\theta_\\text{old}} \\,\\|\\, \\pi_\\theta)` from the batch.

    .. math:: \\widehat{\\mathrm{KL}} = \\mathrm{mean}_t \\big((\\rho_t - 1) - \\log\\rho_t\\big)

    With actions drawn from the old policy, :math:`\\mathbb E[\\rho_t] = 1`, so this has the
    expectation of :math:`-\\log\\rho_t` (the KL divergence), yet each term is
    :math:`\\ge 0` (since :math:`\\log x \\le x - 1`) and its variance is low. PPO
    implementations log it to see how far an update moved the policy, and may stop the
    update's epochs early when it exceeds a target. No gradient.

    Parameters
    ----------
    new_log_probs, old_log_probs : Tensor, same shape
    mask : bool Tensor, same shape, optional

    Notes
    -----
    The estimator is the "k3" of Schulman's note "Approximating KL divergence" (2020), used by
    CleanRL's PPO (Huang et al., 2022). See chapter 6 of the book (book/06_ppo.ipynb).
    """
    _check_log_probs(new_log_probs, old_log_probs)
    with torch.no_grad():
        log_ratio = new_log_probs - old_log_probs
        return _masked_mean(torch.expm1(log_ratio) - log_ratio, mask)


def clip_fraction(
    new_log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    clip_coef: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The fraction of samples whose ratio lies outside :math:`[1 - \\epsilon, 1 + \\epsilon]`.

    .. math:: \\mathrm{mean}_t\\, \\mathbb 1\\big[\\,|\\rho_t - 1| > \\epsilon\\,\\big]

    A diagnostic of how far PPO's epochs moved the policy; no gradient.

    Notes
    -----
    See chapter 6 of the book (book/06_ppo.ipynb).
    """
    with torch.no_grad():
        ratio = importance_ratio(new_log_probs, old_log_probs)
        return _masked_mean(((ratio - 1.0).abs() > clip_coef).to(ratio.dtype), mask)
