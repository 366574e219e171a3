"""The simplest policy gradient with nothing but NumPy: a linear softmax policy and a hand-derived gradient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np

from rlbook import validate
from rlbook.algos.config import Config
from rlbook.history import History
from rlbook.rollout import make_envs
from rlbook.utils import inverse_cdf, offset
from rlbook.utils import rng as seeded_rng


def _numpy(name: str, x) -> np.ndarray:
    """``x`` itself if it is a NumPy array; this module computes with NumPy only."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    return x


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis, computed stably as ``x - max(x) - log(sum(exp(x - max(x))))``.

    Subtracting the maximum keeps ``exp`` from overflowing; it cancels in the result.
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    validate.finite("logits", _numpy("logits", logits))
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis: :math:`\\pi_a = e^{x_a} / \\sum_b e^{x_b}`."""
    return np.exp(log_softmax(logits))


def features(obs: np.ndarray) -> np.ndarray:
    """The observation with a constant 1 appended, so the linear policy has a bias: ``(..., d + 1)``."""
    obs = _numpy("obs", obs)
    return np.concatenate([obs, np.ones(obs.shape[:-1] + (1,))], axis=-1)


def grad_log_softmax_policy(
    theta: np.ndarray, x: np.ndarray, actions: np.ndarray
) -> np.ndarray:
    """Gradient of :math:`\\log\\pi_\\theta(a|x)` for the linear softmax policy, derived by hand.

    With logits :math:`z = x^\\top\\theta` (``theta`` shaped ``(d, K)``),
    :math:`\\log\\pi_\\theta(a|x) = z_a - \\log\\sum_b e^{z_b}` and

    .. math:: \\frac{\\partial \\log\\pi_\\theta(a|x)}{\\partial \\theta_{jk}}
              = x_j \\big(\\mathbb 1[k = a] - \\pi_\\theta(k|x)\\big).

    Parameters
    ----------
    theta : ndarray, (d, K)
    x : ndarray, (B, d)
        Features (see :func:`features`).
    actions : int ndarray, (B,)

    Returns
    -------
    ndarray, (B, d, K)
        One gradient per sample.

    Notes
    -----
    See chapter 1 of the book (book/01_policy_gradient.ipynb).
    """
    theta = validate.float_array("theta", _numpy("theta", theta), ndim=2)
    x = validate.float_array("x", _numpy("x", x), nonempty=False)
    actions = _numpy("actions", actions)
    if x.ndim != 2 or x.shape[1] != theta.shape[0]:
        raise ValueError(f"x must be shaped (B, {theta.shape[0]}), got {x.shape}")
    if actions.dtype.kind not in "iu":
        raise TypeError(f"actions must be an integer array, got dtype {actions.dtype}")
    if actions.shape != (x.shape[0],):
        raise ValueError(f"actions must be shaped ({x.shape[0]},), got {actions.shape}")
    if actions.size and (actions.min() < 0 or actions.max() >= theta.shape[1]):
        raise ValueError(
            f"actions must be in 0 .. {theta.shape[1] - 1}, got values from "
            f"{actions.min()} to {actions.max()}"
        )
    probs = softmax(x @ theta)
    onehot = np.eye(theta.shape[1])[actions]
    return x[:, :, None] * (onehot - probs)[:, None, :]


@dataclass
class NumpyPGConfig(Config):
    """Settings of :func:`train_numpy_pg`."""

    num_episodes: int = 32
    """Episodes per batch (one per environment, run side by side)."""
    iterations: int = 80
    """Gradient-ascent steps."""
    lr: float = 0.2
    """Length of each step in parameter space: theta moves by lr along the gradient's direction."""
    seed: int = 0
    """Seed for the policy's sampling and the environments."""

    CHECKS: ClassVar[dict] = {
        **dict.fromkeys(("num_episodes", "iterations"), validate.positive_int),
        "lr": validate.positive,
        "seed": validate.non_negative_int,
    }


def run_episodes(
    envs: gym.vector.VectorEnv, theta: np.ndarray, rng: np.random.Generator, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run every environment of ``envs`` for one episode with the linear softmax policy.

    Returns features ``(T, N, d)``, actions ``(T, N)``, ``alive`` ``(T, N)`` (the step belongs to
    the first episode) and the episode returns ``(N,)``.
    """
    obs, _ = envs.reset(seed=offset(seed))
    n = envs.num_envs
    alive = np.ones(n, dtype=bool)
    xs, acts, alives, returns = [], [], [], np.zeros(n)
    while alive.any():
        x = features(obs)
        probs = softmax(x @ theta)
        # inverse-CDF sampling, one uniform number in (0, 1] per environment
        a = inverse_cdf(probs.cumsum(axis=1), 1.0 - rng.random(n))
        obs, rewards, terminated, truncated, _ = envs.step(a)
        xs.append(x), acts.append(a), alives.append(alive.copy())
        returns += rewards * alive
        alive &= ~(terminated | truncated)
    return np.stack(xs), np.stack(acts), np.stack(alives), returns


def train_numpy_pg(
    env_id: str = "CartPole-v1", cfg: NumpyPGConfig | None = None
) -> History:
    """Train a linear softmax policy with the simplest policy gradient, NumPy only.

        ĝ = (1/|D|) Σ_τ Σ_t ∇_θ log π_θ(a_t|s_t) R(τ),   θ ← θ + α ĝ / ||ĝ||

    A step of fixed length keeps plain gradient ascent stable although ĝ grows with the
    returns. Logged: env_steps, mean_return; meta["theta"]: the final (d + 1, K) matrix.
    See chapter 1 (book/01_policy_gradient.ipynb).
    """
    cfg = validate.instance("cfg", cfg or NumpyPGConfig(), NumpyPGConfig)
    rng = seeded_rng(cfg.seed)
    envs = make_envs(env_id, cfg.num_episodes)
    if not isinstance(envs.single_action_space, gym.spaces.Discrete):
        raise TypeError(
            f"env_id must have discrete actions, got {envs.single_action_space}"
        )
    d = envs.single_observation_space.shape[0] + 1
    theta = np.zeros((d, int(envs.single_action_space.n)))
    history = History(algo="numpy_pg", env_id=env_id)
    env_steps = 0
    for it in range(cfg.iterations):
        x, a, alive, returns = run_episodes(
            envs, theta, rng, seed=cfg.seed * 10_000 + it
        )
        steps = alive.reshape(-1)
        grads = grad_log_softmax_policy(
            theta, x.reshape(-1, d)[steps], a.reshape(-1)[steps]
        )
        weights = np.broadcast_to(returns, alive.shape).reshape(-1)[steps]
        g = (grads * weights[:, None, None]).sum(axis=0) / cfg.num_episodes
        # a step of fixed length: the raw gradient grows with the returns
        theta = theta + cfg.lr * g / (np.linalg.norm(g) + 1e-8)
        env_steps += int(steps.sum())
        history.log(iteration=it, env_steps=env_steps, mean_return=returns.mean())
    envs.close()
    history.meta["theta"] = theta
    return history
