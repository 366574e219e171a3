"""Trust region policy optimization (TRPO): a natural-gradient step inside a KL ball.

One iteration of :func:`train_trpo`:

1. collect ``num_steps`` steps in each of ``num_envs`` environments with the current policy;
2. compute GAE advantages (as PPO does, :func:`rlbook.returns.ppo_advantages`);
3. the gradient ``g`` of the surrogate ``L(θ') = mean[π_θ'(a|s) / π_θ(a|s) · Â]`` at ``θ``;
4. ``x ≈ F⁻¹ g`` by conjugate gradient, with Fisher-vector products from the mean KL
   (:mod:`rlbook.optim`), never forming ``F``;
5. the step ``β x`` with ``β = sqrt(2 δ / xᵀ F x)``, which has ``½ stepᵀ F step = δ``: the
   quadratic model of the mean KL sits exactly on the trust region's edge;
6. a backtracking line search that shrinks the step until the surrogate improves and the
   *measured* mean KL is at most ``δ``;
7. a few epochs of Adam on the value network.

Schulman et al. (2015); the line search's acceptance test and the damping follow their
reference implementation and OpenAI Spinning Up's ``trpo``.

See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import ClassVar

import numpy as np
import torch
from torch.distributions import kl_divergence
from tqdm.auto import tqdm

from rlbook import validate
from rlbook.algos.config import Config, TrainingLog
from rlbook.history import History
from rlbook.losses import explained_variance, value_loss
from rlbook.optim import (
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    get_flat_params,
    set_flat_params,
)
from rlbook.policies import actor_critic
from rlbook.returns import normalize, ppo_advantages
from rlbook.rollout import Evaluator, Rollout, collect, make_envs
from rlbook.utils import device, set_seed


@dataclass
class TRPOConfig(Config):
    """Settings of :func:`train_trpo`.

    The defaults are tuned for CartPole-v1 on seeds 100 to 111 (``benchmarks/trpo_vs_ppo.py``
    uses others): batches of 8 environments x 64 steps and a trust region of 0.03 nats, which
    solved in a median of 7,600 steps where the 0.01 of Schulman et al. (2015) needed about
    twice as many.

    See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
    """

    num_envs: int = 8
    """Environments stepped side by side."""
    num_steps: int = 64
    """Steps per environment per iteration: a batch has ``num_envs * num_steps`` slots."""
    total_steps: int = 100_000
    """Environment steps (real transitions, summed over environments) to train for."""
    max_kl: float = 0.03
    """δ, the trust region's radius: the largest mean KL(π_old ‖ π_new) over the batch."""
    cg_iters: int = 10
    """Conjugate-gradient iterations (Fisher-vector products) per update."""
    cg_damping: float = 0.1
    """Multiple of the identity added to the Fisher matrix in conjugate gradient."""
    backtrack_coef: float = 0.8
    """Each rejected step is shrunk by this factor."""
    max_backtracks: int = 10
    """Steps tried before the update is skipped (the policy stays where it was)."""
    accept_ratio: float = 0.1
    """A step is accepted only if the surrogate improves by at least this fraction of the
    improvement its linear model predicts (and the KL bound holds)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE's lambda: 0 gives TD errors, 1 Monte-Carlo returns minus V."""
    norm_adv: bool = True
    """Normalise advantages to mean 0, std 1 over the batch."""
    vf_lr: float = 3e-3
    """Adam learning rate of the value network."""
    vf_epochs: int = 5
    """Passes over each batch for the value network."""
    vf_minibatches: int = 4
    """Minibatches per value epoch."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden-layer widths of the policy and of the (separate) value network, tanh units."""
    ortho_init: bool = True
    """Orthogonal weights, zero biases, small last layer of the policy (as in PPO)."""
    seed: int = 0
    """Seed for torch, NumPy and the environments."""
    eval_every: int | None = None
    """Evaluate the policy deterministically on 10 episodes each time this many environment
    steps have passed (rlbook.rollout.Evaluator); None: never."""
    stop_at_eval: float | None = None
    """Stop training at the first evaluation whose mean return reaches this; None: never."""
    progress: bool = False
    """Show a tqdm progress bar."""
    handle_truncation: bool = True
    """Bootstrap from V(final observation) where a time limit cut an episode."""

    CHECKS: ClassVar[dict] = {
        **dict.fromkeys(
            (
                "num_envs",
                "num_steps",
                "total_steps",
                "cg_iters",
                "max_backtracks",
                "vf_epochs",
                "vf_minibatches",
            ),
            validate.positive_int,
        ),
        **dict.fromkeys(("max_kl", "vf_lr"), validate.positive),
        "cg_damping": validate.non_negative,
        "backtrack_coef": partial(
            validate.number, low=0.0, high=1.0, low_open=True, high_open=True
        ),
        "accept_ratio": partial(validate.number, low=0.0, high=1.0),
        **dict.fromkeys(("gamma", "gae_lambda"), validate.unit_interval),
        **dict.fromkeys(
            ("norm_adv", "ortho_init", "progress", "handle_truncation"), validate.flag
        ),
        "hidden": validate.layer_sizes,
        "seed": validate.non_negative_int,
    }

    def check(self) -> None:
        if self.vf_minibatches > self.num_envs * self.num_steps:
            raise ValueError(
                f"vf_minibatches must be at most num_envs * num_steps = "
                f"{self.num_envs * self.num_steps}, got {self.vf_minibatches}"
            )


def line_search(
    surrogate: Callable[[torch.Tensor], float],
    kl: Callable[[torch.Tensor], float],
    x: torch.Tensor,
    full_step: torch.Tensor,
    expected_improvement: float,
    max_kl: float,
    backtrack_coef: float = 0.8,
    max_backtracks: int = 10,
    accept_ratio: float = 0.1,
) -> tuple[torch.Tensor, float]:
    """Shrink ``full_step`` until it improves the surrogate and stays inside the KL bound.

    Tries ``x + f · full_step`` for ``f = 1, c, c², ...`` (``c = backtrack_coef``) and accepts
    the first point where ``kl(x_new) <= max_kl`` and the surrogate gained at least
    ``accept_ratio · f · expected_improvement`` (and more than 0): the quadratic model that
    chose the step may be wrong in both directions, so both are measured.

    Parameters
    ----------
    surrogate, kl : callable
        Flat parameters ``↦`` the surrogate objective, and the mean KL from the policy at ``x``.
    x, full_step : torch.Tensor, shape (n,)
    expected_improvement : float
        ``gᵀ full_step``, the surrogate's gain predicted by its gradient ``g``.

    Returns
    -------
    (torch.Tensor, float)
        The accepted parameters and ``f``; ``(x, 0.0)`` if every try was rejected.

    See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
    """
    _check_line_search(
        surrogate, kl, x, full_step, max_kl, backtrack_coef, max_backtracks
    )
    base = surrogate(x)
    fraction = 1.0
    for _ in range(max_backtracks):
        x_new = x + fraction * full_step
        gain = surrogate(x_new) - base
        enough = gain > 0 and gain >= accept_ratio * fraction * expected_improvement
        if enough and kl(x_new) <= max_kl:
            return x_new, fraction
        fraction *= backtrack_coef
    return x, 0.0


def _check_line_search(surrogate, kl, x, full_step, max_kl, backtrack_coef, backtracks):
    """Raise unless :func:`line_search`'s arguments make sense."""
    for name, f in (("surrogate", surrogate), ("kl", kl)):
        if not callable(f):
            raise TypeError(f"{name} must be a function of the flat parameters")
    x = validate.float_tensor("x", x, ndim=1)
    validate.same_shape("full_step", validate.tensor("full_step", full_step), "x", x)
    validate.positive("max_kl", max_kl)
    validate.number(
        "backtrack_coef", backtrack_coef, low=0, high=1, low_open=True, high_open=True
    )
    validate.positive_int("max_backtracks", backtracks)


def trpo_step(
    policy: torch.nn.Module,
    obs: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    cfg: TRPOConfig,
) -> dict[str, float]:
    """One TRPO update of ``policy`` in place, on a flat batch; returns what it measured.

    See the module docstring for the steps, and chapter 5.1 of the book
    (book/05_1_trust_regions.ipynb).
    """
    cfg = validate.instance("cfg", cfg, TRPOConfig)
    params = [p for p in policy.parameters() if p.requires_grad]
    # detached: the fixed policy π_θ of the ratios and of the KL
    with torch.no_grad():
        old_dist = policy.dist(obs)
        old_log_probs = old_dist.log_prob(actions)

    def surrogate_and_kl() -> tuple[torch.Tensor, torch.Tensor]:
        dist = policy.dist(obs)
        ratio = torch.exp(dist.log_prob(actions) - old_log_probs)
        return (ratio * advantages).mean(), kl_divergence(old_dist, dist).mean()

    def evaluate_at(flat: torch.Tensor) -> tuple[float, float]:
        set_flat_params(params, flat)
        with torch.no_grad():
            gain, kl = surrogate_and_kl()
        return gain.item(), kl.item()

    g = flat_grad(surrogate_and_kl()[0], params)

    def fvp(v: torch.Tensor) -> torch.Tensor:
        return fisher_vector_product(
            lambda: surrogate_and_kl()[1], params, v, cfg.cg_damping
        )

    x = conjugate_gradient(fvp, g, iters=cfg.cg_iters)  # x ≈ F⁻¹ g
    quadratic = x @ fvp(x)  # xᵀ F x (damped), the model's curvature along x
    theta = get_flat_params(params)
    if not quadratic > 0:  # a zero gradient: nothing to do
        return dict(step_fraction=0.0, kl=0.0, surrogate_gain=0.0, expected_gain=0.0)
    base = evaluate_at(theta)[0]
    full_step = torch.sqrt(2 * cfg.max_kl / quadratic) * x  # ½ stepᵀ F step = δ
    expected = (g @ full_step).item()
    new_theta, fraction = line_search(
        lambda th: evaluate_at(th)[0],
        lambda th: evaluate_at(th)[1],
        theta,
        full_step,
        expected,
        cfg.max_kl,
        cfg.backtrack_coef,
        cfg.max_backtracks,
        cfg.accept_ratio,
    )
    value, kl = evaluate_at(new_theta)  # also leaves the policy at the accepted point
    return dict(
        step_fraction=fraction,
        kl=kl,
        surrogate_gain=value - base,
        expected_gain=expected,
    )


def train_trpo(env_id: str, cfg: TRPOConfig | None = None) -> History:
    """Train a policy with TRPO and a value function with Adam; return the History.

    Parameters
    ----------
    env_id : str
        A gymnasium id with a one-dimensional Box observation space and a ``Discrete`` or
        one-dimensional ``Box`` action space.
    cfg : TRPOConfig

    Returns
    -------
    History
        One row per iteration: ``iteration``, ``env_steps`` (cumulative real transitions),
        ``mean_return``, ``mean_length``, ``episodes`` of the episodes that finished in the
        rollout (NaN when none did), ``step_fraction`` (the line search's accepted fraction of
        the full step, 0 if it rejected all), ``kl`` (mean KL of the update), ``surrogate_gain``
        and ``expected_gain`` (measured and linearly predicted), ``value_loss``,
        ``explained_variance`` of the values before the update, ``wall_time``, and
        ``eval_steps``, ``eval_mean``, ``eval_std`` where an evaluation ran.
        ``history.meta["policy"]`` and ``history.meta["value_fn"]`` hold the networks.

    Notes
    -----
    Schulman et al. (2015), with GAE (Schulman et al., 2016) and a value network fitted by Adam
    as in OpenAI Spinning Up. Collection, advantages and evaluation are PPO's
    (:func:`rlbook.algos.ppo.train_ppo`); only the policy update differs.
    See chapter 5.1 of the book (book/05_1_trust_regions.ipynb).
    """
    cfg = validate.instance("cfg", cfg or TRPOConfig(), TRPOConfig)
    start = time.perf_counter()
    set_seed(cfg.seed)
    envs = make_envs(env_id, cfg.num_envs)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    policy, value_fn = actor_critic(obs_space, act_space, cfg.hidden, cfg.ortho_init)
    dev = device()
    vf_optimizer = torch.optim.Adam(value_fn.parameters(), lr=cfg.vf_lr, eps=1e-5)
    evaluator = Evaluator(env_id, cfg.eval_every) if cfg.eval_every else None
    history = History(algo="trpo", env_id=env_id, **asdict(cfg))

    env_steps, iteration = 0, 0
    rollout: Rollout | None = None
    bar = tqdm(
        total=cfg.total_steps, disable=not cfg.progress, desc="trpo", unit="step"
    )
    log = TrainingLog(history, cfg, evaluator, bar, start)
    while env_steps < cfg.total_steps:
        rollout = collect(envs, policy, cfg.num_steps, previous=rollout, seed=cfg.seed)
        values, advantages, returns = ppo_advantages(
            rollout, value_fn, cfg.gamma, cfg.gae_lambda, cfg.handle_truncation
        )
        real = rollout.mask  # real transitions only (no reset slots)
        b_obs, b_actions = rollout.obs[real], rollout.actions[real]
        b_advantages, b_returns = advantages[real], returns[real]
        if cfg.norm_adv:
            b_advantages = normalize(b_advantages)

        update = trpo_step(policy, b_obs, b_actions, b_advantages, cfg)

        batch_size = b_obs.shape[0]
        minibatch_size = math.ceil(batch_size / cfg.vf_minibatches)
        v_losses = []
        for _ in range(cfg.vf_epochs):
            order = torch.randperm(batch_size, device=dev)
            for lo in range(0, batch_size, minibatch_size):
                mb = order[lo : lo + minibatch_size]
                v_loss = value_loss(value_fn(b_obs[mb]), b_returns[mb])
                vf_optimizer.zero_grad()
                v_loss.backward()
                vf_optimizer.step()
                v_losses.append(v_loss.item())

        env_steps += rollout.num_steps
        bar.update(rollout.num_steps)
        row = dict(
            iteration=iteration,
            env_steps=env_steps,
            **rollout.episode_stats(),
            **update,
            value_loss=float(np.mean(v_losses)),
            explained_variance=explained_variance(values[real], b_returns),
        )
        iteration += 1
        if log(row, policy, env_steps):
            break
    return log.close(envs, policy=policy, value_fn=value_fn)
