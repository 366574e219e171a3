"""Augmented random search (ARS): finite differences in parameter space, for linear policies.

ARS (Mania, Guy & Recht, 2018) never differentiates a log-probability. Each iteration draws
``N`` random directions :math:`\\delta_k` in the space of the policy's weight matrix ``M``,
plays the two policies :math:`M \\pm \\nu\\delta_k`, and steps along the directions whose
antithetic pair differed most in return:

.. math:: M \\leftarrow M + \\frac{\\alpha}{b\\,\\sigma_R} \\sum_{k \\in \\text{top } b}
          \\big(r(M + \\nu\\delta_k) - r(M - \\nu\\delta_k)\\big)\\, \\delta_k .

The three "augmentations" of basic random search are switches of :class:`ARSConfig`:
dividing by :math:`\\sigma_R`, the standard deviation of the :math:`2b` returns used
(``scale_by_reward_std``); keeping only the ``top_directions`` best directions, ranked by
:math:`\\max(r^+_k, r^-_k)`; and whitening observations with their running mean and standard
deviation (``normalize_obs``, the paper's "V2").

All ``2N`` perturbed policies run side by side in :class:`PairedEnvs`, two vector environments
of ``N`` copies each (times ``episodes_per_direction``), and their actions come from one batched
matrix product. The two episodes of a pair use common random numbers: copy ``i`` of the + half
and copy ``i`` of the - half are reset with the same seed, so they start from the same state and
draw the same environment randomness, and their difference keeps little of that noise.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Independent, Normal
from tqdm.auto import tqdm

from rlbook import validate
from rlbook.algos.config import Config, TrainingLog, optional
from rlbook.history import History
from rlbook.rollout import Evaluator, make_envs
from rlbook.utils import offset
from rlbook.utils import rng as seeded_rng

# ---------------------------------------------------------------------------------------------
# The update
# ---------------------------------------------------------------------------------------------


def ars_update(
    r_plus: np.ndarray,
    r_minus: np.ndarray,
    deltas: np.ndarray,
    b: int,
    step_size: float,
    scale_by_reward_std: bool = True,
) -> np.ndarray:
    """The ARS step: a finite-difference gradient estimate from the b best directions.

        ΔM = α / (b σ_R) Σ_{k in top b} (r⁺_k - r⁻_k) δ_k

    top b: the b directions with the largest max(r⁺_k, r⁻_k); σ_R: the standard
    deviation of their 2b returns (1 when it is 0, or with scale_by_reward_std=False).
    r_plus, r_minus: (N,); deltas: (N, *param_shape). Returns ΔM, param_shape. Mania,
    Guy and Recht (2018), Algorithm 2. See chapter 7 (book/07_beyond_gradients.ipynb).
    """
    r_plus, r_minus, deltas, b = check_ars_args(
        r_plus, r_minus, deltas, b, step_size, scale_by_reward_std
    )
    # stable sort: on ties the earlier direction wins, whatever the luck
    top = np.argsort(-np.maximum(r_plus, r_minus), kind="stable")[:b]
    used = np.concatenate([r_plus[top], r_minus[top]])
    sigma = used.std() if scale_by_reward_std else 1.0
    if sigma == 0:  # all 2b returns equal: every difference is 0 as well
        sigma = 1.0
    diffs = r_plus[top] - r_minus[top]
    return step_size / (b * sigma) * np.tensordot(diffs, deltas[top], axes=1)


def check_ars_args(r_plus, r_minus, deltas, b, step_size=1.0, scale=True):
    """Check the arguments of :func:`ars_update`; return the first four as float arrays and
    an int."""
    validate.positive("step_size", step_size)
    validate.flag("scale_by_reward_std", scale)
    r_plus = validate.finite("r_plus", validate.float_array("r_plus", r_plus, ndim=1))
    r_minus = validate.finite("r_minus", validate.float_array("r_minus", r_minus))
    validate.same_shape("r_minus", r_minus, "r_plus", r_plus)
    deltas = validate.finite("deltas", validate.float_array("deltas", deltas))
    n = r_plus.shape[0]
    if deltas.ndim < 2 or deltas.shape[0] != n:
        raise ValueError(f"deltas must be shaped ({n}, ...), got {deltas.shape}")
    b = validate.positive_int("b", b)
    if b > n:
        raise ValueError(f"b must be at most the number of directions {n}, got {b}")
    return r_plus, r_minus, deltas, b


# ---------------------------------------------------------------------------------------------
# Observation normalisation
# ---------------------------------------------------------------------------------------------


class RunningMeanStd:
    """Mean and variance of every observation seen so far, updated a batch at a time.

    Merging a batch of ``m`` rows with mean :math:`\\bar x_B` and sum of squared deviations
    :math:`S_B` into ``n`` rows with :math:`\\bar x_A, S_A` (Chan, Golub & LeVeque, 1983):

    .. math:: \\bar x = \\bar x_A + \\frac{m}{n + m}(\\bar x_B - \\bar x_A), \\qquad
              S = S_A + S_B + \\frac{n m}{n + m}(\\bar x_B - \\bar x_A)^2,

    and the variance is :math:`S / (n + m)` (over all rows, ``ddof=0``). This stays accurate
    where the naive :math:`E[x^2] - E[x]^2` loses every digit.

    Parameters
    ----------
    shape : tuple of int
        Shape of one observation.

    Notes
    -----
    See chapter 7 of the book (book/07_beyond_gradients.ipynb).
    """

    def __init__(self, shape: tuple[int, ...]):
        shape = validate.layer_sizes("shape", shape, allow_empty=True)
        self.count = 0
        self.mean = np.zeros(shape)
        self._sq_dev = np.zeros(shape)  # sum of squared deviations from the mean

    def update(self, x: np.ndarray) -> None:
        """Add the rows of ``x`` (shape ``(m, *shape)``) to the statistics."""
        x = validate.finite("x", validate.float_array("x", x, nonempty=False))
        if x.shape[1:] != self.mean.shape:
            raise ValueError(f"x must be shaped (m, *{self.mean.shape}), got {x.shape}")
        m = x.shape[0]
        if m == 0:
            return
        batch_mean = x.mean(axis=0)
        batch_sq_dev = ((x - batch_mean) ** 2).sum(axis=0)
        n = self.count
        diff = batch_mean - self.mean
        self.mean = self.mean + diff * m / (n + m)
        self._sq_dev = self._sq_dev + batch_sq_dev + diff**2 * n * m / (n + m)
        self.count = n + m

    @property
    def var(self) -> np.ndarray:
        """Variance over all rows seen (``ddof=0``); ones before any row was seen."""
        return self._sq_dev / self.count if self.count else np.ones_like(self.mean)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation, with 1 where a coordinate has (almost) not varied, so that
        dividing by it leaves a constant coordinate alone instead of blowing it up."""
        std = np.sqrt(self.var)
        return np.where(std < 1e-8, 1.0, std)


# ---------------------------------------------------------------------------------------------
# The policy
# ---------------------------------------------------------------------------------------------


def linear_actions(
    weights: np.ndarray, obs: np.ndarray, action_space: gym.Space
) -> np.ndarray:
    """Actions of linear policies, one weight matrix per row of (normalised) ``obs``.

    Discrete actions: :math:`a = \\arg\\max_k (M x)_k`; continuous actions:
    :math:`a = \\operatorname{clip}(M x, \\text{low}, \\text{high})`.

    Parameters
    ----------
    weights : ndarray, (B, out, d)
        One matrix per policy; ``out`` is the number of actions (discrete) or the action size.
    obs : ndarray, (B, d)
    action_space : gymnasium Discrete or Box

    Returns
    -------
    ndarray, (B,) of int for discrete, (B, out) of floats for continuous actions.

    Notes
    -----
    Not named in the book; :func:`run_linear_policies` (chapter 7) calls it.
    """
    if weights.ndim != 3 or obs.ndim != 2 or weights.shape[::2] != obs.shape:
        raise ValueError(
            f"weights (B, out, d) and obs (B, d) must agree, got {weights.shape} and "
            f"{obs.shape}"
        )
    outputs = np.einsum("bod,bd->bo", weights, obs)
    if isinstance(action_space, gym.spaces.Discrete):
        return outputs.argmax(axis=1)
    return np.clip(outputs, action_space.low, action_space.high).astype(
        action_space.dtype
    )


class LinearPolicy(nn.Module):
    """A deterministic linear policy on normalised observations, as a torch module with ``dist``.

    Outputs :math:`y = M\\,(s - \\mu) / \\sigma`. ``dist(obs)`` is a distribution whose mode is
    the ARS action: ``Categorical(logits=y)`` for discrete actions (mode: the argmax) and a
    Gaussian with mean ``y`` for continuous ones (mode: ``y``, clipped by the environment). The
    distribution exists so that the book's evaluation code, :class:`rlbook.rollout.Evaluator`,
    runs ARS exactly as it runs PPO; ARS itself never samples from it.

    Parameters
    ----------
    weights : ndarray, (out, d)
        ``M``.
    obs_mean, obs_std : ndarray, (d,)
        Observation statistics (zeros and ones: no normalisation).
    action_kind : {"discrete", "continuous"}

    Notes
    -----
    See chapter 7 of the book (book/07_beyond_gradients.ipynb).
    """

    def __init__(
        self,
        weights: np.ndarray,
        obs_mean: np.ndarray,
        obs_std: np.ndarray,
        action_kind: str,
    ):
        super().__init__()
        self.action_kind = validate.choice(
            "action_kind", action_kind, ("discrete", "continuous")
        )
        weights = validate.finite(
            "weights", validate.float_array("weights", weights, ndim=2)
        )
        d = weights.shape[1]
        for name, x in (("obs_mean", obs_mean), ("obs_std", obs_std)):
            x = validate.finite(name, validate.float_array(name, x, ndim=1))
            if x.shape != (d,):
                raise ValueError(f"{name} must have shape ({d},), got {x.shape}")
        if (np.asarray(obs_std) <= 0).any():
            raise ValueError("obs_std must be positive: it divides the observations")
        # a parameter (not a buffer) so that evaluation code finds the device with parameters();
        # ARS changes it by its own update, never by autograd
        self.weights = nn.Parameter(
            torch.as_tensor(weights, dtype=torch.float32), requires_grad=False
        )
        self.register_buffer("obs_mean", torch.as_tensor(obs_mean, dtype=torch.float32))
        self.register_buffer("obs_std", torch.as_tensor(obs_std, dtype=torch.float32))
        if action_kind == "discrete":
            self.n_actions = self.weights.shape[0]
        else:
            self.act_dim = self.weights.shape[0]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return ((obs - self.obs_mean) / self.obs_std) @ self.weights.T

    def dist(self, obs: torch.Tensor) -> Categorical | Independent:
        """A distribution whose mode is the deterministic action (see the class)."""
        y = self(obs)
        if self.action_kind == "discrete":
            return Categorical(logits=y, validate_args=False)
        # a vanishing scale: samples equal the mean to float precision
        return Independent(Normal(y, torch.full_like(y, 1e-6), validate_args=False), 1)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@dataclass
class ARSConfig(Config):
    """Settings of :func:`train_ars`.

    The defaults were tuned on CartPole-v1 and rlbook/ContinuousCartPole-v1 (16 seeds each,
    ``step_size`` in {0.05, 0.1, 0.2} x ``noise`` in {1, 2, 3}), before the pairs used common
    random numbers, and were kept, not retuned, when they began to; they solve both in a few
    thousand steps (``benchmarks/ars_vs_ppo.py``). With argmax actions only the ratio
    ``step_size / noise`` matters: scaling ``M`` by a positive number changes no action.
    See chapter 7 of the book (book/07_beyond_gradients.ipynb).
    """

    num_directions: int = 8
    """N: random directions per iteration; each is played twice (+ and -), so 2N policies."""
    top_directions: int | None = 4
    """b: the update uses the b directions with the largest max(r+, r-); None: all N."""
    step_size: float = 0.1
    """alpha: learning rate of the update."""
    noise: float = 2.0
    """nu: scale of the perturbations of the weights (which act on normalised observations)."""
    total_steps: int = 30_000
    """Environment steps to train for, counting every step of every perturbed rollout."""
    episodes_per_direction: int = 1
    """Episodes each perturbed policy plays; its return r is their mean."""
    normalize_obs: bool = True
    """Whiten observations with their running mean and standard deviation (ARS "V2"); False:
    raw observations ("V1")."""
    scale_by_reward_std: bool = True
    """Divide the step by the standard deviation of the 2b returns used; False: basic random
    search's fixed step (ablation switch)."""
    common_random_numbers: bool = True
    """Play the two episodes of each pair from the same start state, with the same environment
    randomness (PairedEnvs); False: from independent ones (ablation switch)."""
    seed: int = 0
    """Seed for the directions and the environments."""
    eval_every: int | None = None
    """Evaluate the current policy M (not a perturbed one) on 10 episodes each time this many
    environment steps have passed (rlbook.rollout.Evaluator); None: never."""
    stop_at_eval: float | None = None
    """Stop training at the first evaluation whose mean return reaches this; None: never."""
    progress: bool = False
    """Show a tqdm progress bar."""

    CHECKS: ClassVar[dict] = {
        **dict.fromkeys(
            ("num_directions", "total_steps", "episodes_per_direction"),
            validate.positive_int,
        ),
        "top_directions": optional(validate.positive_int),
        **dict.fromkeys(("step_size", "noise"), validate.positive),
        "seed": validate.non_negative_int,
        **dict.fromkeys(
            (
                "normalize_obs",
                "scale_by_reward_std",
                "common_random_numbers",
                "progress",
            ),
            validate.flag,
        ),
    }

    def check(self) -> None:
        if (
            self.top_directions is not None
            and self.top_directions > self.num_directions
        ):
            raise ValueError(
                f"top_directions must be at most num_directions = {self.num_directions}, "
                f"got {self.top_directions}"
            )


class PairedEnvs:
    """``2 n`` copies of an environment as one vector environment, in two halves that share
    their random numbers: copy ``i`` and copy ``n + i``.

    The halves are two vector environments of ``n`` copies (``rlbook.rollout.make_envs``).
    ``reset(seed=s)`` resets both with the seed ``s``, so that copy ``n + i`` starts from the
    same state as copy ``i`` and, in an environment whose copies have their own random
    generators, draws the same random numbers after it: the two episodes of an antithetic
    pair differ only by their policies (*common random numbers*). CartPole's dynamics are
    deterministic given the start state, so there its two copies differ in nothing else.
    With ``common=False`` the second half is reset with ``s + n``, as if one vector
    environment of ``2 n`` copies had been seeded with ``s`` (copy ``i`` with ``s + i``): the
    two episodes of a pair are independent.

    ``step`` and ``reset`` take and return arrays over all ``2 n`` copies, first half first;
    ``info`` is empty. See chapter 7 (book/07_beyond_gradients.ipynb).
    """

    def __init__(self, env_id: str, n: int, common: bool = True):
        self.n, self.num_envs, self.common = n, 2 * n, common
        self.halves = (make_envs(env_id, n), make_envs(env_id, n))
        self.single_observation_space = self.halves[0].single_observation_space
        self.single_action_space = self.halves[0].single_action_space

    def reset(self, *, seed: int | None = None) -> tuple[np.ndarray, dict]:
        other = seed if self.common or seed is None else seed + self.n
        first, _ = self.halves[0].reset(seed=seed)
        second, _ = self.halves[1].reset(seed=other)
        return np.concatenate([first, second]), {}

    def step(self, actions: np.ndarray) -> tuple:
        first = self.halves[0].step(actions[: self.n])
        second = self.halves[1].step(actions[self.n :])
        arrays = [
            np.concatenate(pair) for pair in zip(first[:4], second[:4], strict=True)
        ]
        return (*arrays, {})

    def close(self) -> None:
        for half in self.halves:
            half.close()


def run_linear_policies(
    envs: gym.vector.VectorEnv,
    weights: np.ndarray,
    obs_mean: np.ndarray,
    obs_std: np.ndarray,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Play one episode in each environment, environment i with the policy weights[i].

    Environments that finish early keep being stepped (and reset), but not counted.
    weights: (B, out, d); obs_mean, obs_std: (d,), to normalise observations. Returns
    the returns (B,), the lengths (B,) and every observation acted in,
    (sum(lengths), d).
    See chapter 7 (book/07_beyond_gradients.ipynb).
    """
    obs, _ = envs.reset(seed=offset(seed))
    n = envs.num_envs
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    running = np.ones(n, dtype=bool)
    states = []
    while running.any():
        states.append(obs[running])
        actions = linear_actions(
            weights, (obs - obs_mean) / obs_std, envs.single_action_space
        )
        obs, rewards, terminated, truncated, _ = envs.step(actions)
        returns += rewards * running
        lengths += running
        running &= ~(terminated | truncated)
    return returns, lengths, np.concatenate(states)


def _linear_policy_shape(envs: gym.vector.VectorEnv) -> tuple[str, int, int]:
    """The action kind, output size and input size of a linear policy for ``envs``."""
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    kind = None
    if isinstance(act_space, gym.spaces.Discrete):
        kind, out = "discrete", int(act_space.n)
    elif isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        kind, out = "continuous", act_space.shape[0]
    if kind is None or not (
        isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1
    ):
        envs.close()
        raise ValueError(
            "env_id must have a flat Box observation space and a Discrete or flat Box "
            f"action space, got {obs_space} and {act_space}"
        )
    return kind, out, obs_space.shape[0]


def train_ars(env_id: str, cfg: ARSConfig | None = None) -> History:
    """Train a linear policy with augmented random search and return its History.

    One iteration: draw N directions δ_k shaped like M; play the 2N policies M ± ν δ_k
    side by side, episodes_per_direction episodes each, the two sides of a pair with common
    random numbers (PairedEnvs), with the observation statistics frozen; step M by ars_update; then add the iteration's states to the statistics.
    Logged: iteration, env_steps (every perturbed step), mean_return and max_return of
    the 2N policies, reward_std (σ_R), weight_norm, wall_time, and eval_steps,
    eval_mean, eval_std where an evaluation ran. meta["policy"]: the final LinearPolicy.
    Mania, Guy and Recht (2018), Algorithm 2.
    See chapter 7 (book/07_beyond_gradients.ipynb).
    """
    cfg = validate.instance("cfg", cfg or ARSConfig(), ARSConfig)
    start = time.perf_counter()
    rng = seeded_rng(cfg.seed)
    n, b = cfg.num_directions, cfg.top_directions or cfg.num_directions
    m = cfg.episodes_per_direction
    # copy i and copy n m + i play the two sides of a pair (the same direction, the same
    # episode) from the same start, with common random numbers unless switched off
    envs = PairedEnvs(env_id, n * m, cfg.common_random_numbers)
    kind, out, d = _linear_policy_shape(envs)
    weights = np.zeros((out, d))  # M; the paper starts from zero
    stats = RunningMeanStd((d,))
    evaluator = Evaluator(env_id, cfg.eval_every) if cfg.eval_every else None
    history = History(algo="ars", env_id=env_id, **asdict(cfg))

    def obs_stats() -> tuple[np.ndarray, np.ndarray]:
        # without normalisation, the policy sees raw observations: mean 0, std 1
        return (
            (stats.mean, stats.std) if cfg.normalize_obs else (np.zeros(d), np.ones(d))
        )

    def current_policy() -> LinearPolicy:
        return LinearPolicy(weights, *obs_stats(), kind)

    env_steps, iteration = 0, 0
    bar = tqdm(total=cfg.total_steps, disable=not cfg.progress, desc="ars", unit="step")
    log = TrainingLog(history, cfg, evaluator, bar, start)
    while env_steps < cfg.total_steps:
        deltas = rng.standard_normal((n, out, d))
        # rows M + nu delta_0, ..., M + nu delta_{N-1}, M - nu delta_0, ...; m of each
        perturbed = weights + cfg.noise * np.concatenate([deltas, -deltas])
        perturbed = np.repeat(perturbed, m, axis=0)
        returns, lengths, states = run_linear_policies(
            envs, perturbed, *obs_stats(), seed=cfg.seed * 100_003 + iteration
        )
        returns = returns.reshape(2 * n, m).mean(axis=1)
        r_plus, r_minus = returns[:n], returns[n:]
        weights = weights + ars_update(
            r_plus, r_minus, deltas, b, cfg.step_size, cfg.scale_by_reward_std
        )
        if cfg.normalize_obs:
            stats.update(states)
        env_steps += int(lengths.sum())
        bar.update(int(lengths.sum()))
        top = np.argsort(-np.maximum(r_plus, r_minus), kind="stable")[:b]
        row = dict(
            iteration=iteration,
            env_steps=env_steps,
            mean_return=returns.mean(),
            max_return=returns.max(),
            reward_std=np.concatenate([r_plus[top], r_minus[top]]).std(),
            weight_norm=np.linalg.norm(weights),
        )
        iteration += 1
        if log(row, current_policy(), env_steps):
            break
    policy = current_policy()
    return log.close(
        envs,
        policy=policy,
        weights=weights,
        obs_mean=policy.obs_mean.numpy().astype(np.float64),
        obs_std=policy.obs_std.numpy().astype(np.float64),
    )
