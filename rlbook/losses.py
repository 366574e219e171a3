"""Surrogate losses whose gradients are policy-gradient estimates."""

from __future__ import annotations

import math

import torch

from rlbook import validate
from rlbook.importance import importance_weights


def check_batch(
    mask: torch.Tensor | None = None, **tensors: torch.Tensor
) -> torch.Tensor | None:
    """Check the tensors of a loss: real, non-empty, finite, all of one shape, and ``mask``.

    The first keyword sets the shape; ``mask`` (optional) must be a bool tensor of that shape
    (or hold only 0 and 1) selecting at least one step. Returns ``mask`` as a bool tensor.
    Raises TypeError or ValueError naming the bad argument.
    """
    (first, ref), *others = tensors.items()
    for name, x in tensors.items():
        validate.float_tensor(name, x, check_finite=True)
        validate.same_shape(name, x, first, ref)
    if mask is not None:
        mask = validate.bool_tensor("mask", mask, like=(first, ref))
        if not mask.any():
            raise ValueError("mask must select at least one step, got none")
    return mask


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean()
    # where, not multiply: an inf in a padding slot must not turn the mean into NaN
    return torch.where(mask, x, torch.zeros_like(x)).sum() / mask.sum()


def pg_loss(
    log_probs: torch.Tensor,
    weights: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    check: bool = True,
) -> torch.Tensor:
    """The policy-gradient "loss", whose gradient is minus the sample policy gradient.

        L(θ) = -mean_t log π_θ(a_t|s_t) w_t,   -∇L(θ) = ĝ

    log_probs (with gradient), weights (constants) and mask: (T, N) or (B,); the mean is
    over the steps where mask is True. Its value means nothing, only its gradient.
    See chapter 1 (book/01_policy_gradient.ipynb).
    """
    if check:
        mask = check_batch(mask, log_probs=log_probs, weights=weights)
    # the weights are data, not functions of theta: no gradient may flow into them
    return -_masked_mean(log_probs * weights.detach(), mask)


def value_loss(
    values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    check: bool = True,
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
    check : bool
        False skips the input checks, for a loop that checked the whole batch once.

    Notes
    -----
    Not named in the book; :func:`train_reinforce` (chapter 4) and :func:`train_ppo`
    (chapter 6) minimise it.
    """
    if check:
        mask = check_batch(mask, values=values, returns=returns)
    return 0.5 * _masked_mean((values - returns.detach()) ** 2, mask)


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
    Not named in the book; chapter 6 writes the ratio inline.
    """
    check_batch(new_log_probs=new_log_probs, old_log_probs=old_log_probs)
    return importance_weights(new_log_probs, old_log_probs.detach())


def check_clip_args(
    new_log_probs, old_log_probs, advantages, clip_coef, mask
) -> tuple[float, torch.Tensor | None]:
    """Check the arguments of :func:`ppo_clip_loss`; return ``clip_coef`` and ``mask``."""
    mask = check_batch(
        mask,
        new_log_probs=new_log_probs,
        old_log_probs=old_log_probs,
        advantages=advantages,
    )
    return validate.positive("clip_coef", clip_coef, allow_inf=True), mask


def ppo_clip_loss(
    new_log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    clip_coef: float = 0.2,
    mask: torch.Tensor | None = None,
    *,
    check: bool = True,
) -> torch.Tensor:
    """PPO's clipped loss -L^CLIP (Schulman et al., 2017), to minimise.

        ρ_t = exp(log π_θ(a_t|s_t) - log π_old(a_t|s_t))
        L^CLIP(θ) = mean_t min(ρ_t A_t, clip(ρ_t, 1 - ε, 1 + ε) A_t)

    Tensors (B,) or (T, N): new_log_probs with gradient, old_log_probs and advantages
    constants. clip_coef = ε > 0 (math.inf: no clip). check=False skips the checks.
    See chapter 6 (book/06_ppo.ipynb).
    """
    if check:
        clip_coef, mask = check_clip_args(
            new_log_probs, old_log_probs, advantages, clip_coef, mask
        )
    ratio = torch.exp(new_log_probs - old_log_probs.detach())
    advantages = advantages.detach()
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef) * advantages
    return -_masked_mean(torch.minimum(unclipped, clipped), mask)


def approx_kl(
    new_log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """An estimate of KL(π_old || π_θ) from the batch, without gradient.

        KL ≈ mean_t ((ρ_t - 1) - log ρ_t),  ρ_t = π_θ(a_t|s_t) / π_old(a_t|s_t)

    Each term is >= 0 and the estimate is unbiased for actions drawn from π_old
    (Schulman's "k3", as in CleanRL). Tensors of one shape.
    See chapter 6 (book/06_ppo.ipynb).
    """
    mask = check_batch(mask, new_log_probs=new_log_probs, old_log_probs=old_log_probs)
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
    clip_coef, mask = check_clip_args(
        new_log_probs, old_log_probs, old_log_probs, clip_coef, mask
    )
    with torch.no_grad():
        ratio = torch.exp(new_log_probs - old_log_probs)
        return _masked_mean(((ratio - 1.0).abs() > clip_coef).to(ratio.dtype), mask)


def explained_variance(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """:math:`1 - \\mathrm{Var}(y - \\hat y) / \\mathrm{Var}(y)`: 1 is a perfect value function,
    0 no better than a constant, negative worse. NaN when the targets are constant.

    Not named in the book; :func:`train_ppo` logs it.
    """
    check_batch(predictions=predictions, targets=targets)
    var = targets.var(correction=0)
    if var == 0:
        return math.nan
    return float(1.0 - (targets - predictions).var(correction=0) / var)
