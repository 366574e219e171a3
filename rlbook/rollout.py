"""Collecting experience from a gymnasium vector environment into ``(T, N)`` tensors.

``collect`` steps ``N`` environments in lockstep for ``T`` steps with a policy and returns a
:class:`Rollout`. Two details that tutorials often get wrong are handled here once:

* ``terminated`` (the MDP reached a terminal state: no future reward) and ``truncated`` (a time
  limit cut the episode: the future was still there) are kept apart, and the real final
  observation of every finished episode is stored, so that later code can bootstrap from it.
* Vector environments reset finished episodes automatically, in one of two modes, read from
  ``envs.metadata["autoreset_mode"]``. In ``SAME_STEP`` mode the step that ends an episode
  already returns the first observation of the next one (the final observation sits in
  ``info["final_obs"]``). In ``NEXT_STEP`` mode (gymnasium's default, and the only mode of its
  fast NumPy CartPole) the step that ends an episode returns the final observation, and the
  *next* call to ``step`` ignores its action and only resets. That reset step is not a
  transition; its slot is kept so that all tensors stay ``(T, N)``, and ``mask`` marks it False.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import nn

from rlbook.policies import check_policy_fits


@dataclass
class Rollout:
    """Experience from ``N`` environments over ``T`` steps; every tensor starts with ``(T, N)``.

    Attributes
    ----------
    obs : Tensor, (T, N, *obs_shape)
        Observation the action was chosen in.
    actions : Tensor, (T, N) for discrete or (T, N, act_dim) for continuous actions
        Sampled actions (before any clipping to the action space).
    rewards : Tensor, (T, N)
        Reward received for the action.
    terminated, truncated : Tensor of bool, (T, N)
        The episode ended in a terminal state / was cut by a time limit at this step.
    mask : Tensor of bool, (T, N)
        True where the slot holds a real transition. False for the reset step of ``NEXT_STEP``
        autoreset, and, with ``complete_episodes=True``, for steps after an environment
        finished its last episode. Every False slot follows a finished episode or another False
        slot, so backward recursions (returns, GAE) never carry padding into real steps.
    log_probs : Tensor, (T, N)
        :math:`\\log\\pi_{\\theta_\\text{old}}(a_t \\mid s_t)` of the sampled action, no gradient.
    values : Tensor (T, N) or None
        :math:`V(s_t)` when ``collect`` was given a value function.
    final_obs : Tensor, (T, N, *obs_shape)
        The last observation of an episode that ended at this step (zeros elsewhere): the
        state to bootstrap from when the episode was truncated.
    next_obs : Tensor, (N, *obs_shape)
        The observation after the last step, where the next rollout starts.
    episode_returns, episode_lengths : list
        Undiscounted return and length of every episode that finished during this rollout.

    Notes
    -----
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    mask: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor | None
    final_obs: torch.Tensor
    next_obs: torch.Tensor
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    # state carried into the next call of ``collect`` (pending resets, running episode sums)
    carry: dict = field(default_factory=dict, repr=False)

    @property
    def dones(self) -> torch.Tensor:
        """``terminated | truncated``: the episode ended here, for whatever reason."""
        return self.terminated | self.truncated

    @property
    def num_steps(self) -> int:
        """Number of real environment transitions (``mask.sum()``)."""
        return int(self.mask.sum())


def autoreset_mode(envs: gym.vector.VectorEnv) -> AutoresetMode:
    """The autoreset mode of ``envs``; only ``NEXT_STEP`` and ``SAME_STEP`` are supported."""
    mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if isinstance(mode, str):
        mode = AutoresetMode(mode)
    if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        raise ValueError(
            f"envs must autoreset in NEXT_STEP or SAME_STEP mode, got {mode}: "
            "pass vector_kwargs={'autoreset_mode': AutoresetMode.SAME_STEP} to gym.make_vec"
        )
    return mode


def make_envs(env_id: str, num_envs: int, **kwargs) -> gym.vector.VectorEnv:
    """Make ``num_envs`` copies of ``env_id`` as one vector environment, the fastest way available.

    Environments with a NumPy-vectorized implementation (CartPole) use it; the rest run in a
    ``SyncVectorEnv`` with ``SAME_STEP`` autoreset. ``kwargs`` go to ``gym.make_vec``.
    """
    if not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    spec = gym.spec(env_id)
    if spec.vector_entry_point is not None:
        return gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point", **kwargs)
    return gym.make_vec(
        env_id,
        num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        **kwargs,
    )


def _to_env_actions(actions: torch.Tensor, space: gym.Space) -> np.ndarray:
    a = actions.cpu().numpy()
    if isinstance(space, gym.spaces.Box):
        # clip only what the environment sees; the stored action and its log-prob stay unclipped
        return np.clip(a, space.low, space.high).astype(space.dtype)
    return a


@torch.no_grad()
def collect(
    envs: gym.vector.VectorEnv,
    policy: nn.Module,
    num_steps: int,
    *,
    previous: Rollout | None = None,
    seed: int | None = None,
    value_fn: nn.Module | None = None,
    complete_episodes: bool = False,
) -> Rollout:
    """Step ``envs`` with ``policy`` for ``num_steps`` steps and return a :class:`Rollout`.

    Parameters
    ----------
    envs : gymnasium.vector.VectorEnv
        ``N`` environments; autoreset mode ``NEXT_STEP`` or ``SAME_STEP``.
    policy : nn.Module with ``dist(obs)``
        Actions are sampled from ``policy.dist(obs)``.
    num_steps : int
        ``T``, the number of lockstep steps (at least 1).
    previous : Rollout, optional
        Continue where this rollout stopped. When omitted, the environments are reset.
    seed : int, optional
        Seed for that reset (ignored when ``previous`` is given).
    value_fn : nn.Module, optional
        When given, ``values`` holds ``value_fn(obs)``.
    complete_episodes : bool
        After ``num_steps`` steps, keep stepping until every environment has finished the
        episode it was in, and mask out steps of episodes that started after ``num_steps``.
        Then every real step belongs to a complete episode, which Monte-Carlo returns need.
        ``T`` grows to the number of steps that took.

    Returns
    -------
    Rollout
        Tensors shaped ``(T, N, ...)`` on ``rlbook.utils.device()``.

    Notes
    -----
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    if not isinstance(envs, gym.vector.VectorEnv):
        raise TypeError(f"envs must be a gymnasium VectorEnv, got {type(envs).__name__}")
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    check_policy_fits(policy, envs.single_action_space)
    mode = autoreset_mode(envs)
    dev = next(policy.parameters()).device
    n = envs.num_envs

    if previous is None:
        obs, _ = envs.reset(seed=seed)
        pending_reset = np.zeros(n, dtype=bool)  # NEXT_STEP: this env's next step only resets
        ep_ret, ep_len = np.zeros(n), np.zeros(n, dtype=np.int64)
    else:
        obs = previous.next_obs.cpu().numpy()
        pending_reset = previous.carry["pending_reset"].copy()
        ep_ret, ep_len = previous.carry["ep_ret"].copy(), previous.carry["ep_len"].copy()

    steps: list[tuple] = []
    episode_returns: list[float] = []
    episode_lengths: list[int] = []
    in_first_episode_after = np.ones(n, dtype=bool)  # for complete_episodes: still collecting
    t = 0
    while True:
        if t >= num_steps and (not complete_episodes or not in_first_episode_after.any()):
            break
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=dev)
        dist = policy.dist(obs_t)
        actions = dist.sample()
        log_probs = dist.log_prob(actions)
        values = value_fn(obs_t) if value_fn is not None else None
        next_obs, rewards, terminated, truncated, info = envs.step(
            _to_env_actions(actions, envs.single_action_space)
        )
        valid = ~pending_reset
        if complete_episodes and t >= num_steps:
            valid &= in_first_episode_after
        dones = (terminated | truncated) & ~pending_reset
        final_obs = np.zeros_like(obs)
        if mode is AutoresetMode.SAME_STEP:
            if "final_obs" in info:
                for i in np.flatnonzero(info["_final_obs"]):
                    final_obs[i] = info["final_obs"][i]
        else:
            final_obs[dones] = next_obs[dones]

        ep_ret += np.where(pending_reset, 0.0, rewards)
        ep_len += ~pending_reset
        for i in np.flatnonzero(dones & valid):
            episode_returns.append(float(ep_ret[i]))
            episode_lengths.append(int(ep_len[i]))
        ep_ret[dones], ep_len[dones] = 0.0, 0
        if complete_episodes and t >= num_steps:
            in_first_episode_after &= ~dones
        elif complete_episodes and t == num_steps - 1:
            in_first_episode_after = ~dones

        steps.append(
            (obs, actions, rewards * valid, terminated & valid, truncated & valid, valid,
             log_probs, values, final_obs)
        )  # fmt: skip
        pending_reset = dones if mode is AutoresetMode.NEXT_STEP else np.zeros(n, dtype=bool)
        obs = next_obs
        t += 1

    def stack_np(i, dtype):
        return torch.as_tensor(np.stack([s[i] for s in steps]), dtype=dtype, device=dev)

    return Rollout(
        obs=stack_np(0, torch.float32),
        actions=torch.stack([s[1] for s in steps]),
        rewards=stack_np(2, torch.float32),
        terminated=stack_np(3, torch.bool),
        truncated=stack_np(4, torch.bool),
        mask=stack_np(5, torch.bool),
        log_probs=torch.stack([s[6] for s in steps]),
        values=torch.stack([s[7] for s in steps]) if value_fn is not None else None,
        final_obs=stack_np(8, torch.float32),
        next_obs=torch.as_tensor(obs, dtype=torch.float32, device=dev),
        episode_returns=episode_returns,
        episode_lengths=episode_lengths,
        carry={"pending_reset": pending_reset, "ep_ret": ep_ret, "ep_len": ep_len},
    )


@torch.no_grad()
def evaluate(
    env_id: str,
    policy: nn.Module,
    num_episodes: int = 10,
    *,
    deterministic: bool = True,
    seed: int = 0,
    **make_kwargs,
) -> tuple[float, float]:
    """Mean and standard deviation of the undiscounted return over ``num_episodes`` episodes.

    Runs ``num_episodes`` environments side by side, one episode each.

    Parameters
    ----------
    env_id : str
        A registered environment id.
    policy : nn.Module with ``dist(obs)``
    num_episodes : int
        Number of episodes (at least 1).
    deterministic : bool
        Act with the distribution's mode (argmax for categorical, mean for Gaussian) instead of
        sampling.
    seed : int
        Seed of the evaluation environments.

    Returns
    -------
    (mean, std) : tuple of float

    Notes
    -----
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    if not isinstance(num_episodes, int) or num_episodes < 1:
        raise ValueError(f"num_episodes must be a positive integer, got {num_episodes!r}")
    envs = make_envs(env_id, num_episodes, **make_kwargs)
    try:
        check_policy_fits(policy, envs.single_action_space)
        dev = next(policy.parameters()).device
        obs, _ = envs.reset(seed=seed)
        returns = np.zeros(num_episodes)
        running = np.ones(num_episodes, dtype=bool)
        while running.any():
            dist = policy.dist(torch.as_tensor(obs, dtype=torch.float32, device=dev))
            actions = dist.mode if deterministic else dist.sample()
            obs, rewards, terminated, truncated, _ = envs.step(
                _to_env_actions(actions, envs.single_action_space)
            )
            returns += rewards * running
            running &= ~(terminated | truncated)
    finally:
        envs.close()
    return float(returns.mean()), float(returns.std())


class Evaluator:
    """Evaluate a policy on a fixed schedule of environment steps, the way benchmarks do.

    ``evaluator.maybe(policy, env_steps)`` runs :func:`evaluate` each time ``env_steps`` passes a
    multiple of ``every`` and returns ``{"eval_steps": ..., "eval_mean": ..., "eval_std": ...}``,
    otherwise ``None``. Protocol of the book's benchmarks: deterministic actions, 10 episodes.

    Notes
    -----
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """

    def __init__(
        self,
        env_id: str,
        every: int,
        num_episodes: int = 10,
        *,
        deterministic: bool = True,
        seed: int = 12_345,
    ):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.env_id, self.every, self.num_episodes = env_id, every, num_episodes
        self.deterministic, self.seed = deterministic, seed
        self.next_at = every
        self.count = 0

    def maybe(self, policy: nn.Module, env_steps: int) -> dict[str, float] | None:
        """Evaluate if ``env_steps`` reached the next scheduled point; else return None."""
        if env_steps < self.next_at:
            return None
        # one evaluation even if a big batch jumped over several scheduled points
        self.next_at = (env_steps // self.every + 1) * self.every
        mean, std = evaluate(
            self.env_id,
            policy,
            self.num_episodes,
            deterministic=self.deterministic,
            seed=self.seed + self.count,  # fresh start states each time, same for every run
        )
        self.count += 1
        return {"eval_steps": env_steps, "eval_mean": mean, "eval_std": std}
