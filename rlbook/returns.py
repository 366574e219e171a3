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


def _check_rewards_dones(rewards: torch.Tensor, dones: torch.Tensor, gamma: float) -> None:
    if not isinstance(rewards, torch.Tensor):
        raise TypeError(f"rewards must be a torch.Tensor, got {type(rewards).__name__}")
    if not isinstance(dones, torch.Tensor):
        raise TypeError(f"dones must be a torch.Tensor, got {type(dones).__name__}")
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be shaped (T, N), got shape {tuple(rewards.shape)}")
    if rewards.numel() == 0:
        raise ValueError(f"rewards must not be empty, got shape {tuple(rewards.shape)}")
    if dones.shape != rewards.shape:
        raise ValueError(
            f"dones must have the shape of rewards {tuple(rewards.shape)}, got {tuple(dones.shape)}"
        )
    if torch.isnan(rewards).any():
        raise ValueError("rewards contain NaN")
    is_scalar_tensor = isinstance(gamma, torch.Tensor | np.ndarray) and gamma.ndim == 0
    if isinstance(gamma, bool) or not (isinstance(gamma, numbers.Real) or is_scalar_tensor):
        raise ValueError(f"gamma must be a number in [0, 1], got {gamma!r}")
    value = float(gamma)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")


def reward_to_go(rewards: torch.Tensor, dones: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
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


def normalize(x: torch.Tensor, mask: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
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
        raise ValueError(f"mask must have the shape of x {tuple(x.shape)}, got {tuple(mask.shape)}")
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
