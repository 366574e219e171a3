"""Returns, reward-to-go and advantage weights over ``(T, N)`` rollouts with episode boundaries.

All functions take rewards shaped ``(T, N)`` (time first, one column per environment) and a
boolean ``dones`` of the same shape that is True at the last step of an episode. Sums never
cross an episode boundary. Integer rewards are promoted to floating point; NaN or infinite
rewards are refused (an infinite reward would turn the returns of finished episodes into NaN).

Generalized advantage estimation (:func:`gae`, Schulman et al., 2016) sums the TD errors
:math:`\\delta_{t+k}` with weights :math:`(\\gamma\\lambda)^k` to the end of the episode or of
the rollout. Its two limits: :math:`\\lambda = 0` gives the one-step TD error
:math:`\\hat A_t = \\delta_t` (low variance, biased wherever :math:`V` is wrong);
:math:`\\lambda = 1` gives the Monte-Carlo return minus the baseline (unbiased for any
:math:`V`, high variance). Its ``returns`` :math:`\\hat A_t + V(s_t)` are the
:math:`\\lambda`-returns, the value function's regression targets. A time limit that cuts an
episode is not a terminal state: the recursion stops there, but :math:`\\delta_t` still
bootstraps from the value of the state the agent was cut off in (Pardo et al., 2018). Treating
a truncation as a termination, the common bug, tells the value function that the last state of
every timed-out episode is worth nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from rlbook import validate
from rlbook.rollout import Rollout


def check_rewards(
    rewards: torch.Tensor, dones: torch.Tensor, gamma: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Check a ``(T, N)`` batch of rewards and episode ends and a discount factor.

    Returns ``(rewards, dones, gamma)`` as a finite floating-point tensor (integers promoted),
    a bool tensor and a float; raises TypeError or ValueError naming the bad argument.
    """
    rewards = validate.float_tensor("rewards", rewards, ndim=2, check_finite=True)
    dones = validate.bool_tensor("dones", dones, like=("rewards", rewards))
    return rewards, dones, validate.unit_interval("gamma", gamma)


def reward_to_go(
    rewards: torch.Tensor, dones: torch.Tensor, gamma: float = 1.0
) -> torch.Tensor:
    """Reward-to-go: the discounted rewards from each step to the end of its episode.

        G_t = r_t + γ (1 - done_t) G_{t+1},  G_T = 0

    rewards, dones: (T, N), dones True at the last step of an episode. Returns (T, N);
    an episode still running at T - 1 is summed to the end of the rollout.
    See chapter 3 (book/03_reward_to_go.ipynb).
    """
    rewards, dones, gamma = check_rewards(rewards, dones, gamma)
    not_done = (~dones).to(rewards.dtype)
    out = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
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
    dones = validate.bool_tensor("dones", dones)
    if mask is not None:
        mask = validate.bool_tensor("mask", mask, like=("rewards", to_go))
    # an episode starts at t = 0, after a done, and after a padding slot
    starts = torch.zeros_like(dones, dtype=torch.bool)
    starts[0] = True
    starts[1:] = dones[:-1]
    if mask is not None:
        starts[1:] |= ~mask[:-1]
    out = torch.empty_like(to_go)
    current = to_go[0]
    for t in range(to_go.shape[0]):
        current = torch.where(starts[t], to_go[t], current)
        out[t] = current
    return out


def normalize(
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    eps: float = 1e-8,
    *,
    check: bool = True,
) -> torch.Tensor:
    """Shift and scale ``x`` to mean 0 and standard deviation 1 over the entries where ``mask``.

    .. math:: \\tilde x = (x - \\bar x) / (\\mathrm{std}(x) + \\epsilon)

    Safe for constant inputs (all-equal weights give zeros, not NaN) and for a single entry.
    Entries outside ``mask`` are returned as 0. ``check=False`` skips the input checks, for a
    training loop that checked the whole batch once.

    Notes
    -----
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    if check:
        x = validate.float_tensor("x", x, nonempty=False)
        eps = validate.non_negative("eps", eps)
        if mask is not None:
            mask = validate.bool_tensor("mask", mask, like=("x", x))
    if mask is None:
        mask = torch.ones_like(x, dtype=torch.bool)
    values = x[mask]
    if check:
        if values.numel() == 0:
            raise ValueError("mask must select at least one entry of x, got none")
        validate.finite("x", values)
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
    values = validate.float_tensor("values", values, ndim=2)
    last_values = validate.tensor("last_values", last_values)
    validate.same_shape("last_values", last_values, "values[0]", values[0])
    final_values = validate.tensor("final_values", final_values)
    validate.same_shape("final_values", final_values, "values", values)
    dones = validate.bool_tensor("dones", dones, like=("values", values))
    following = torch.cat([values[1:], last_values[None]])
    return torch.where(dones, final_values, following)


def check_gae_args(
    rewards, values, next_values, terminated, truncated, gamma, gae_lambda, mask
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float, float]:
    """Check the arguments of :func:`gae`; raise TypeError or ValueError naming the bad one.

    Returns ``(rewards, terminated, truncated, real, gamma, gae_lambda)``: float rewards, bool
    flags, ``real`` the mask (all True when ``mask`` is None), and the two rates as floats.
    Values must be finite where they are read: padding slots and the successors of terminal
    states may hold anything.
    """
    rewards = validate.float_tensor("rewards", rewards, ndim=2, check_finite=True)
    like = ("rewards", rewards)
    terminated = validate.bool_tensor("terminated", terminated, like=like)
    truncated = validate.bool_tensor("truncated", truncated, like=like)
    real = torch.ones_like(terminated)
    if mask is not None:
        real = validate.bool_tensor("mask", mask, like=like)
    for name, x, read in (
        ("values", values, real),
        ("next_values", next_values, real & ~terminated),
    ):
        validate.tensor(name, x)
        validate.same_shape(name, x, "rewards", rewards)
        validate.finite(name, x, where=read)
    gamma = validate.unit_interval("gamma", gamma)
    lam = validate.unit_interval("gae_lambda", gae_lambda)
    return rewards, terminated, truncated, real, gamma, lam


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
    """Generalized advantage estimation (Schulman et al., 2016) over a (T, N) rollout.

        δ_t = r_t + γ (1 - terminated_t) V(s_{t+1}) - V(s_t)
        A_t = δ_t + γλ (1 - done_t) A_{t+1},  A_T = 0,  returns_t = A_t + V(s_t)

    All tensors (T, N). next_values[t] is V of the state step t led to (see
    successor_values), so a truncated step still bootstraps. Padding (mask False): 0.
    Returns (advantages, returns). See chapter 6 (book/06_ppo.ipynb).
    """
    rewards, terminated, truncated, real, gamma, lam = check_gae_args(
        rewards, values, next_values, terminated, truncated, gamma, gae_lambda, mask
    )
    # where, not multiply: a value never read may be junk, and 0 * junk can be NaN
    bootstrap = torch.where(terminated, 0.0, next_values)
    deltas = torch.where(real, rewards + gamma * bootstrap - values, 0.0)
    # the recursion stops where an episode ended; a padding slot passes nothing back
    carry_on = gamma * lam * (~(terminated | truncated) & real).to(rewards.dtype)
    advantages = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = deltas[t] + carry_on[t] * running
        advantages[t] = running
    returns = torch.where(real, advantages + values, 0.0)
    return advantages, returns


def ppo_advantages(
    rollout: Rollout,
    value_fn: nn.Module,
    gamma: float,
    gae_lambda: float,
    handle_truncation: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Values, GAE advantages and value targets of a rollout, each (T, N).

    The successor of a step that ended an episode is its final observation, which a
    truncated episode bootstraps from; handle_truncation=False treats a truncation as a
    termination (the common bug, kept for the ablation).
    Used by PPO and TRPO. See chapter 6 (book/06_ppo.ipynb).
    """
    handle_truncation = _check_advantage_args(rollout, value_fn, handle_truncation)
    dones = rollout.dones
    with torch.no_grad():
        values = value_fn(rollout.obs)
        last_values = value_fn(rollout.next_obs)
        # V of a final observation is needed only where an episode ended
        final_values = torch.zeros_like(values)
        if dones.any():
            final_values[dones] = value_fn(rollout.final_obs[dones])
    next_values = successor_values(values, last_values, final_values, dones)
    terminated = rollout.terminated if handle_truncation else dones
    advantages, returns = gae(
        rollout.rewards,
        values,
        next_values,
        terminated,
        rollout.truncated,
        gamma,
        gae_lambda,
        mask=rollout.mask,
    )
    return values, advantages, returns


def _check_advantage_args(rollout, value_fn, handle_truncation) -> bool:
    """Raise unless :func:`ppo_advantages` got a Rollout and a network; the flag as bool."""
    validate.instance("rollout", rollout, Rollout)
    validate.instance("value_fn", value_fn, nn.Module)
    return validate.flag("handle_truncation", handle_truncation)
