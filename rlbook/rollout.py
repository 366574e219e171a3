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

import math
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import nn
from torch.distributions import Categorical

from rlbook import validate
from rlbook.policies import CategoricalPolicy, check_net_fits, check_policy_fits
from rlbook.utils import inverse_cdf, offset


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
    See chapter 6 of the book (book/06_ppo.ipynb).
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

    def episode_stats(self) -> dict[str, float]:
        """The columns every ``train_*`` logs about the episodes that ended in this rollout:
        ``mean_return``, ``mean_length`` (NaN when none ended) and ``episodes``."""
        if not self.episode_returns:
            return {"mean_return": math.nan, "mean_length": math.nan, "episodes": 0}
        return {
            "mean_return": np.mean(self.episode_returns),
            "mean_length": np.mean(self.episode_lengths),
            "episodes": len(self.episode_returns),
        }


def autoreset_mode(envs: gym.vector.VectorEnv) -> AutoresetMode:
    """The autoreset mode of ``envs``; only ``NEXT_STEP`` and ``SAME_STEP`` are supported."""
    if not isinstance(getattr(envs, "metadata", None), dict):
        raise TypeError(
            f"envs must be a gymnasium vector environment, got {type(envs).__name__}"
        )
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
    num_envs = validate.positive_int("num_envs", num_envs)
    spec = gym.spec(validate.env_id("env_id", env_id))
    if spec.vector_entry_point is not None:
        return gym.make_vec(
            env_id, num_envs, vectorization_mode="vector_entry_point", **kwargs
        )
    return gym.make_vec(
        env_id,
        num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        **kwargs,
    )


def _to_env_actions(actions: torch.Tensor | np.ndarray, space: gym.Space) -> np.ndarray:
    a = actions.cpu().numpy() if isinstance(actions, torch.Tensor) else actions
    if isinstance(space, gym.spaces.Box):
        # clip only what the environment sees; the stored action and its log-prob stay unclipped
        return np.clip(a, space.low, space.high).astype(space.dtype)
    return a


def _categorical_shortcut(policy: nn.Module) -> bool:
    """True when ``policy.dist(obs)`` is ``Categorical(logits=policy(obs))``: a
    :class:`~rlbook.policies.CategoricalPolicy`, or a subclass that overrides neither method."""
    kind = type(policy)
    return (
        isinstance(policy, CategoricalPolicy)
        and kind.dist is CategoricalPolicy.dist
        and kind.forward is CategoricalPolicy.forward
    )


def _sample(
    policy: nn.Module,
    obs: torch.Tensor,
    shortcut: bool,
    u: np.ndarray,
    rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample an action for every row of ``obs``; return it and its log-probability (NumPy).

    A categorical distribution is sampled by inverting its CDF at the uniform draw ``u`` of the
    row: action :math:`k` when :math:`c_{k-1} < u \\le c_k`, with :math:`c_k = \\sum_{j \\le k} p_j`.
    For a few actions and a few dozen rows this costs a fraction of ``Categorical.sample``
    (``torch.multinomial``) plus ``Categorical.log_prob``, and draws from the same distribution.
    Other distributions (Gaussian) use their own ``sample`` and ``log_prob``.
    """
    if shortcut:
        # the log-probabilities policy.dist(obs) would hold, without building the object
        log_p = torch.log_softmax(policy(obs), dim=-1).cpu().numpy()
    else:
        dist = policy.dist(obs)
        if not isinstance(dist, Categorical):
            actions = dist.sample()
            return actions.cpu().numpy(), dist.log_prob(actions).cpu().numpy()
        # torch keeps these normalised: log-probabilities
        log_p = dist.logits.cpu().numpy()
    actions = inverse_cdf(np.exp(log_p).cumsum(axis=-1), u)
    return actions, log_p[rows, actions]


def _check_finite(name: str, x: np.ndarray) -> None:
    """Refuse NaN or infinite observations and rewards where they enter: from the env."""
    bad = ~np.isfinite(x)
    if bad.any():
        t, i = np.argwhere(bad)[0][:2]
        raise ValueError(
            f"envs must return finite {name}, got {x[t, i]!r} at step {t} of environment "
            f"{i}"
        )


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
    Written for speed, since every chapter waits on it: steps go into preallocated ``(T, N)``
    NumPy arrays that become tensors once, at the end; the policy runs once per step on all
    ``N`` observations; categorical actions are drawn by inverting the CDF at uniforms drawn
    from torch's generator for the whole rollout at once (so ``torch.manual_seed`` still fixes
    the rollout); only finished episodes are looked at one by one.
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    validate.instance("envs", envs, gym.vector.VectorEnv)
    num_steps = validate.positive_int("num_steps", num_steps)
    validate.flag("complete_episodes", complete_episodes)
    validate.optional(validate.instance, "previous", previous, cls=Rollout)
    space = envs.single_action_space
    check_policy_fits(policy, space)
    check_net_fits("policy", policy, envs.single_observation_space)
    if value_fn is not None:
        check_net_fits("value_fn", value_fn, envs.single_observation_space)
    same_step = autoreset_mode(envs) is AutoresetMode.SAME_STEP
    dev = next(policy.parameters()).device
    n = envs.num_envs
    rows = np.arange(n)

    if previous is None:
        obs, _ = envs.reset(seed=offset(seed))
        # NEXT_STEP: this env's next step only resets
        pending_reset = np.zeros(n, dtype=bool)
        ep_ret, ep_len = np.zeros(n), np.zeros(n, dtype=np.int64)
    else:
        obs = previous.next_obs.cpu().numpy()
        pending_reset = previous.carry["pending_reset"].copy()
        ep_ret, ep_len = (
            previous.carry["ep_ret"].copy(),
            previous.carry["ep_len"].copy(),
        )

    # policy.dist checks the observation's shape; the shortcut skips it, so check once here
    policy.dist(torch.as_tensor(obs, dtype=torch.float32, device=dev))
    shortcut = _categorical_shortcut(policy)
    discrete = isinstance(space, gym.spaces.Discrete)

    def allocate(length: int) -> dict[str, np.ndarray]:
        out = {
            "obs": np.zeros((length, n, *obs.shape[1:]), dtype=np.float32),
            "final_obs": np.zeros((length, n, *obs.shape[1:]), dtype=np.float32),
            "actions": np.zeros((length, n, *space.shape), dtype=space.dtype),
            "rewards": np.zeros((length, n)),
            "terminated": np.zeros((length, n), dtype=bool),
            "truncated": np.zeros((length, n), dtype=bool),
            "mask": np.zeros((length, n), dtype=bool),
            "log_probs": np.zeros((length, n), dtype=np.float32),
            "values": np.zeros((length, n), dtype=np.float32),
        }
        if discrete:  # u in (0, 1], from torch's generator
            out["uniforms"] = 1.0 - torch.rand(length, n, dtype=torch.float64).numpy()
        return out

    buf = allocate(num_steps)
    episode_returns: list[float] = []
    episode_lengths: list[int] = []
    # for complete_episodes: still collecting
    in_first_episode_after = np.ones(n, dtype=bool)
    t = 0
    while t < num_steps or (complete_episodes and in_first_episode_after.any()):
        if t == len(buf["obs"]):  # complete_episodes outgrew the arrays: double them
            more = allocate(t)
            buf = {k: np.concatenate([v, more[k]]) for k, v in buf.items()}
        buf["obs"][t] = obs
        obs_t = torch.from_numpy(buf["obs"][t]).to(dev)
        u = buf["uniforms"][t] if discrete else None
        buf["actions"][t], buf["log_probs"][t] = _sample(
            policy, obs_t, shortcut, u, rows
        )
        if value_fn is not None:
            buf["values"][t] = value_fn(obs_t).cpu().numpy()
        next_obs, rewards, terminated, truncated, info = envs.step(
            _to_env_actions(buf["actions"][t], space)
        )

        live = ~pending_reset  # a real transition, not the reset step of NEXT_STEP mode
        if complete_episodes and t >= num_steps:
            buf["mask"][t] = live & in_first_episode_after
        else:
            buf["mask"][t] = live
        buf["rewards"][t], buf["terminated"][t], buf["truncated"][t] = (
            rewards,
            terminated,
            truncated,
        )
        dones = (terminated | truncated) & live
        ep_ret += rewards * live
        ep_len += live
        if dones.any():
            # the step that ended the episode returned its last observation
            if not same_step:
                buf["final_obs"][t, dones] = next_obs[dones]
            finished = np.flatnonzero(dones & buf["mask"][t])
            episode_returns.extend(ep_ret[finished].tolist())
            episode_lengths.extend(ep_len[finished].tolist())
            ep_ret[dones], ep_len[dones] = 0.0, 0
        if same_step and "final_obs" in info:
            for i in np.flatnonzero(info["_final_obs"]):
                buf["final_obs"][t, i] = info["final_obs"][i]
        if complete_episodes and t >= num_steps:
            in_first_episode_after &= ~dones
        elif complete_episodes and t == num_steps - 1:
            in_first_episode_after = ~dones
        if not same_step:
            pending_reset = dones
        obs = next_obs
        t += 1

    for name, key in (("observations", "obs"), ("rewards", "rewards")):
        _check_finite(name, buf[key][:t])
    _check_finite("observations", buf["final_obs"][:t])
    _check_finite("observations", obs[None])
    # padding slots carry no reward and no episode end
    mask = buf["mask"][:t]
    for key in ("rewards", "terminated", "truncated"):
        buf[key][:t] *= mask

    def tensor(key: str, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(buf[key][:t], dtype=dtype, device=dev)

    return Rollout(
        obs=tensor("obs", torch.float32),
        actions=tensor("actions", torch.int64 if discrete else torch.float32),
        rewards=tensor("rewards", torch.float32),
        terminated=tensor("terminated", torch.bool),
        truncated=tensor("truncated", torch.bool),
        mask=tensor("mask", torch.bool),
        log_probs=tensor("log_probs", torch.float32),
        values=tensor("values", torch.float32) if value_fn is not None else None,
        final_obs=tensor("final_obs", torch.float32),
        next_obs=torch.tensor(obs, dtype=torch.float32, device=dev),
        episode_returns=episode_returns,
        episode_lengths=episode_lengths,
        carry={"pending_reset": pending_reset, "ep_ret": ep_ret, "ep_len": ep_len},
    )


def collect_episodes(
    envs: gym.vector.VectorEnv,
    policy: nn.Module,
    steps_per_env: int,
    seed: int,
    iteration: int,
) -> Rollout:
    """Batch ``iteration`` of a Monte-Carlo policy-gradient run (REINFORCE, VPG): complete
    episodes, at least ``steps_per_env`` steps in each environment, from a reset with seed
    ``seed * 10_000 + iteration``, so that every batch starts from fresh states and a run
    repeats exactly. See :func:`collect` (``complete_episodes=True``).

    Notes
    -----
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    seed = validate.non_negative_int("seed", seed)
    iteration = validate.non_negative_int("iteration", iteration)
    return collect(
        envs,
        policy,
        steps_per_env,
        seed=seed * 10_000 + iteration,
        complete_episodes=True,
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
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    returns = episode_returns(
        env_id,
        policy,
        num_episodes,
        deterministic=deterministic,
        seed=seed,
        **make_kwargs,
    )
    return float(returns.mean()), float(returns.std())


@torch.no_grad()
def episode_returns(
    env_id: str,
    policy: nn.Module,
    num_episodes: int = 10,
    *,
    deterministic: bool = True,
    seed: int = 0,
    **make_kwargs,
) -> np.ndarray:
    """The undiscounted return of each of ``num_episodes`` episodes, in a fixed order.

    Episode ``i`` starts from ``reset(seed=offset(seed) + i)``: two policies evaluated with
    the same ``seed`` meet the same start states (on Pixelcopter, the same caves), so their
    returns can be compared episode by episode. :func:`evaluate` is their mean and std.

    Returns
    -------
    np.ndarray, shape (num_episodes,), float64

    Notes
    -----
    See section 4.1 of the book (book/04_1_harder_tasks.ipynb).
    """
    num_episodes = validate.positive_int("num_episodes", num_episodes)
    deterministic = validate.flag("deterministic", deterministic)
    validate.non_negative_int("seed", seed)
    envs = make_envs(env_id, num_episodes, **make_kwargs)
    try:
        check_policy_fits(policy, envs.single_action_space)
        check_net_fits("policy", policy, envs.single_observation_space)
        dev = next(policy.parameters()).device
        obs, _ = envs.reset(seed=offset(seed))
        returns = np.zeros(num_episodes)
        running = np.ones(num_episodes, dtype=bool)
        # greedy categorical: the argmax of the logits, without building a distribution
        argmax = deterministic and _categorical_shortcut(policy)
        while running.any():
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=dev)
            if argmax:
                actions = policy.net(obs_t).argmax(-1)
            else:
                dist = policy.dist(obs_t)
                actions = dist.mode if deterministic else dist.sample()
            obs, rewards, terminated, truncated, _ = envs.step(
                _to_env_actions(actions, envs.single_action_space)
            )
            _check_finite("observations", obs[None])
            _check_finite("rewards", rewards[None])
            returns += rewards * running
            running &= ~(terminated | truncated)
    finally:
        envs.close()
    return returns


class Evaluator:
    """Evaluate a policy on a fixed schedule of environment steps, the way benchmarks do.

    ``evaluator.maybe(policy, env_steps)`` runs :func:`evaluate` each time ``env_steps`` passes a
    multiple of ``every`` and returns ``{"eval_steps": ..., "eval_mean": ..., "eval_std": ...}``,
    otherwise ``None``. Protocol of the book's benchmarks: deterministic actions, 10 episodes.

    Notes
    -----
    See chapter 7 of the book (book/07_beyond_gradients.ipynb).
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
        env_id = validate.env_id("env_id", env_id)
        every = validate.positive_int("every", every)
        num_episodes = validate.positive_int("num_episodes", num_episodes)
        self.env_id, self.every, self.num_episodes = env_id, every, num_episodes
        self.deterministic = validate.flag("deterministic", deterministic)
        self.seed = validate.non_negative_int("seed", seed)
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
            seed=self.seed
            + self.count,  # fresh start states each time, same for every run
        )
        self.count += 1
        return {"eval_steps": env_steps, "eval_mean": mean, "eval_std": std}
