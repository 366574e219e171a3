"""Returns, reward-to-go and advantage weights over ``(T, N)`` rollouts with episode boundaries.

All functions take rewards shaped ``(T, N)`` (time first, one column per environment) and a
boolean ``dones`` of the same shape that is True at the last step of an episode. Sums never
cross an episode boundary.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch


def _check_rewards_dones(
    rewards: torch.Tensor, dones: torch.Tensor, gamma: float
) -> None:
    if not isinstance(rewards, torch.Tensor):
        raise TypeError(f"rewards must be a torch.Tensor, got {type(rewards).__name__}")
    if not isinstance(dones, torch.Tensor):
        raise TypeError(f"dones must be a torch.Tensor, got {type(dones).__name__}")
    if rewards.ndim != 2:
        raise ValueError(
            f"rewards must be shaped (T, N), got shape {tuple(rewards.shape)}"
        )
    if rewards.numel() == 0:
        raise ValueError(f"rewards must not be empty, got shape {tuple(rewards.shape)}")
    if dones.shape != rewards.shape:
        raise ValueError(
            f"dones must have the shape of rewards {tuple(rewards.shape)}, got {tuple(dones.shape)}"
        )
    if torch.isnan(rewards).any():
        raise ValueError("rewards contain NaN")
    is_scalar_tensor = isinstance(gamma, torch.Tensor | np.ndarray) and gamma.ndim == 0
    if isinstance(gamma, bool) or not (
        isinstance(gamma, numbers.Real) or is_scalar_tensor
    ):
        raise ValueError(f"gamma must be a number in [0, 1], got {gamma!r}")
    value = float(gamma)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")


def reward_to_go(
    rewards: torch.Tensor, dones: torch.Tensor, gamma: float = 1.0
) -> torch.Tensor:
    """Reward-to-go: the (discounted) sum of rewards from each step to the end of its episode.

    .. math:: \\hat G_t = \\sum_{k=t}^{T_\\text{end}} \\gamma^{k-t} r_k
              = r_t + \\gamma (1 - d_t) \\hat G_{t+1}

    Parameters
    ----------
    rewards : Tensor, (T, N)
    dones : bool Tensor, (T, N)
        True at the last step of an episode (terminated or truncated).
    gamma : float in [0, 1]
        Discount factor; 1 gives the undiscounted reward-to-go.

    Returns
    -------
    Tensor, (T, N)
        For an episode still running at ``T - 1`` the sum stops at the end of the rollout;
        such steps need a bootstrap or a mask.

    Notes
    -----
    Weighting :math:`\\nabla\\log\\pi(a_t|s_t)` by :math:`\\hat G_t` instead of the whole return
    drops rewards that came before :math:`a_t`, which it cannot have caused.
    See chapter 3 of the book (book/03_reward_to_go.ipynb).
    """
    _check_rewards_dones(rewards, dones, gamma)
    gamma = float(gamma)
    not_done = (~dones.bool()).to(rewards.dtype)
    out = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + gamma * not_done[t] * running
        out[t] = running
    return out


def discounted_returns(
    rewards: torch.Tensor,
    dones: torch.Tensor,
    gamma: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The (discounted) return of the whole episode, written at every step of that episode.

    .. math:: R(\\tau) = \\sum_{k=0}^{T_\\text{end}} \\gamma^{k} r_k \\quad
              \\text{for every } t \\text{ in the episode } \\tau

    This is the weight of the simplest policy gradient: every action of a trajectory is
    credited with everything the trajectory earned.

    Parameters
    ----------
    rewards : Tensor, (T, N)
    dones : bool Tensor, (T, N)
        True at the last step of an episode.
    gamma : float in [0, 1]
    mask : bool Tensor, (T, N), optional
        ``Rollout.mask``: False marks padding slots, after which a new episode starts.

    Returns
    -------
    Tensor, (T, N)
        Meaningful for episodes that start and end inside the rollout (collect them with
        ``collect(..., complete_episodes=True)``).

    Notes
    -----
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    to_go = reward_to_go(rewards, dones, gamma)
    if mask is not None and mask.shape != rewards.shape:
        raise ValueError(
            f"mask must have the shape of rewards {tuple(rewards.shape)}, got {tuple(mask.shape)}"
        )
    # an episode starts at t = 0, after a done, and after a padding slot
    starts = torch.zeros_like(dones, dtype=torch.bool)
    starts[0] = True
    starts[1:] = dones[:-1].bool()
    if mask is not None:
        starts[1:] |= ~mask[:-1].bool()
    out = torch.empty_like(to_go)
    current = to_go[0]
    for t in range(rewards.shape[0]):
        current = torch.where(starts[t], to_go[t], current)
        out[t] = current
    return out


def normalize(
    x: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8
) -> torch.Tensor:
    """Shift and scale ``x`` to mean 0 and standard deviation 1 over the entries where ``mask``.

    .. math:: \\tilde x = (x - \\bar x) / (\\mathrm{std}(x) + \\epsilon)

    Safe for constant inputs (all-equal weights give zeros, not NaN) and for a single entry.
    Entries outside ``mask`` are returned as 0.

    Notes
    -----
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if mask is None:
        mask = torch.ones_like(x, dtype=torch.bool)
    if mask.shape != x.shape:
        raise ValueError(
            f"mask must have the shape of x {tuple(x.shape)}, got {tuple(mask.shape)}"
        )
    values = x[mask]
    if values.numel() == 0:
        raise ValueError("x has no entries where mask is True")
    if torch.isnan(values).any():
        raise ValueError("x contains NaN")
    mean = values.mean()
    std = values.std(correction=0)
    # all-equal input: the mean's rounding error would be divided by a std that is itself only
    # rounding error, blowing noise up to order 1; such input carries no signal, return zeros
    if std <= 16 * torch.finfo(x.dtype).eps * values.abs().max():
        return torch.zeros_like(x)
    return torch.where(mask, (x - mean) / (std + eps), torch.zeros_like(x))


def successor_values(
    values: torch.Tensor,
    last_values: torch.Tensor,
    final_values: torch.Tensor,
    dones: torch.Tensor,
) -> torch.Tensor:
    """The value of the state each step led to, :math:`V(s_{t+1})`, for a ``(T, N)`` rollout.

    .. math:: V^\\text{next}_t = \\begin{cases}
                  V(s^\\text{final}_t) & \\text{if the episode ended at } t \\\\
                  V(s_T) & \\text{if } t = T - 1 \\\\
                  V(s_{t+1}) & \\text{otherwise}
              \\end{cases}

    After a step that ended an episode, the next slot of the rollout holds the first state of
    a new episode (or a reset step), not the state the action led to; that state is the
    episode's final observation, ``Rollout.final_obs``. Whether to bootstrap from it at all
    (yes when truncated, no when terminated) is :func:`gae`'s business, not this function's.

    Parameters
    ----------
    values : Tensor, (T, N)
        :math:`V(s_t)` of the stored observations, ``value_fn(rollout.obs)``.
    last_values : Tensor, (N,)
        :math:`V` of the observation after the last step, ``value_fn(rollout.next_obs)``.
    final_values : Tensor, (T, N)
        :math:`V` of the final observations, ``value_fn(rollout.final_obs)``; read only where
        ``dones``.
    dones : bool Tensor, (T, N)
        ``rollout.dones``: the episode ended (terminated or truncated) at this step.

    Returns
    -------
    Tensor, (T, N)

    Notes
    -----
    See chapter 6 of the book (book/06_ppo.ipynb).
    """
    for name, x in (
        ("values", values),
        ("final_values", final_values),
        ("dones", dones),
    ):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if values.ndim != 2:
        raise ValueError(
            f"values must be shaped (T, N), got shape {tuple(values.shape)}"
        )
    if (
        not isinstance(last_values, torch.Tensor)
        or last_values.shape != values.shape[1:]
    ):
        raise ValueError(
            f"last_values must be a tensor of shape {tuple(values.shape[1:])}, got "
            f"{getattr(last_values, 'shape', type(last_values).__name__)}"
        )
    for name, x in (("final_values", final_values), ("dones", dones)):
        if x.shape != values.shape:
            raise ValueError(
                f"{name} must have the shape of values {tuple(values.shape)}, got {tuple(x.shape)}"
            )
    following = torch.cat([values[1:], last_values[None]])
    return torch.where(dones.bool(), final_values, following)


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float = 0.99,
    gae_lambda: float = 0.95,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (GAE) over a ``(T, N)`` rollout; returns advantages and returns.

    .. math::
        \\delta_t &= r_t + \\gamma\\, (1 - \\text{terminated}_t)\\, V(s_{t+1}) - V(s_t), \\\\
        \\hat A_t &= \\delta_t + \\gamma \\lambda\\, (1 - \\text{done}_t)\\, \\hat A_{t+1},
        \\qquad \\hat A_T = 0, \\\\
        \\hat R_t &= \\hat A_t + V(s_t),

    with :math:`\\text{done}_t = \\text{terminated}_t \\lor \\text{truncated}_t`.
    :math:`\\hat A_t = \\sum_{k \\ge 0} (\\gamma\\lambda)^k \\delta_{t+k}`, summed to the end of
    the episode or of the rollout, is an exponentially weighted average of the
    :math:`k`-step advantage estimates (Schulman et al., 2016):

    * :math:`\\lambda = 0` gives the one-step TD error :math:`\\hat A_t = \\delta_t`: low
      variance, biased wherever :math:`V` is wrong;
    * :math:`\\lambda = 1` gives the Monte-Carlo return minus the baseline,
      :math:`\\hat A_t = \\sum_k \\gamma^k r_{t+k} - V(s_t)` (plus the discounted bootstrap
      value where the sum is cut by a time limit or by the end of the rollout): unbiased for
      any :math:`V`, high variance.

    ``returns`` :math:`\\hat R_t` are the regression targets of the value function (the
    :math:`\\lambda`-return).

    Parameters
    ----------
    rewards : Tensor, (T, N)
    values : Tensor, (T, N)
        :math:`V(s_t)`.
    next_values : Tensor, (T, N)
        :math:`V(s_{t+1})`, the value of the state step ``t`` led to: the next observation,
        the final observation where an episode ended (see :func:`successor_values`), and
        ``V(rollout.next_obs)`` at ``t = T - 1``. Ignored where ``terminated``.
    terminated : bool Tensor, (T, N)
        The episode reached a terminal state: nothing follows, no bootstrap.
    truncated : bool Tensor, (T, N)
        A time limit cut the episode: the recursion stops, but :math:`\\delta_t` still
        bootstraps from :math:`V(s_{t+1})`, the value of the state the agent was cut off in.
    gamma : float in [0, 1]
        Discount factor.
    gae_lambda : float in [0, 1]
        :math:`\\lambda`, the bias-variance knob.
    mask : bool Tensor, (T, N), optional
        ``Rollout.mask``; padding slots get advantage and return 0 and pass nothing on (a
        padding slot always follows a finished episode, where the recursion is cut anyway).

    Returns
    -------
    advantages, returns : Tensor, (T, N)

    Notes
    -----
    Treating a truncation as a termination, the common bug, tells the value function that
    the last state of every timed-out episode is worth nothing; Pardo et al. (2018) show that
    bootstrapping from the final observation, as here, is the correct rule for time limits
    that are not part of the task. The estimator and its recursion are from Schulman et al.,
    "High-dimensional continuous control using generalized advantage estimation" (arXiv 2015,
    ICLR 2016).
    See chapter 6 of the book (book/06_ppo.ipynb).
    """
    if not isinstance(rewards, torch.Tensor):
        raise TypeError(f"rewards must be a torch.Tensor, got {type(rewards).__name__}")
    for name, x in (
        ("values", values),
        ("next_values", next_values),
        ("terminated", terminated),
        ("truncated", truncated),
        ("mask", mask),
    ):
        if x is None and name == "mask":
            continue
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.shape != rewards.shape:
            raise ValueError(
                f"{name} must have the shape of rewards {tuple(rewards.shape)}, "
                f"got {tuple(x.shape)}"
            )
    dones = terminated.bool() | truncated.bool()
    _check_rewards_dones(rewards, dones, gamma)
    is_number = isinstance(gae_lambda, numbers.Real) and not isinstance(
        gae_lambda, bool
    )
    if not is_number or math.isnan(float(gae_lambda)) or not 0.0 <= gae_lambda <= 1.0:
        raise ValueError(f"gae_lambda must be a number in [0, 1], got {gae_lambda!r}")
    real = torch.ones_like(dones) if mask is None else mask.bool()
    for name, x in (("values", values), ("next_values", next_values)):
        # only the entries that are read: padding slots and terminal successors may hold junk
        used = real if name == "values" else real & ~terminated.bool()
        if torch.isnan(x[used]).any():
            raise ValueError(f"{name} contain NaN")
    gamma, lam = float(gamma), float(gae_lambda)
    # where, not multiply: junk in an unused slot must not turn into NaN
    bootstrap = torch.where(
        terminated.bool(), torch.zeros_like(next_values), next_values
    )
    deltas = rewards + gamma * bootstrap - values
    deltas = torch.where(real, deltas, torch.zeros_like(deltas))
    # the recursion stops at the end of an episode, and a padding slot passes nothing back
    carry_on = gamma * lam * (~dones & real).to(rewards.dtype)
    advantages = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = deltas[t] + carry_on[t] * running
        advantages[t] = running
    returns = torch.where(real, advantages + values, torch.zeros_like(values))
    return advantages, returns
