"""REINFORCE with the usual variance reducers: reward-to-go, baselines, normalisation, discount.

The simplest policy gradient of :mod:`rlbook.algos.vpg` weights every log-probability by the
whole return. REINFORCE as it is run in practice keeps the same loop (a batch of complete
episodes, one gradient step on ``pg_loss``) and changes only the weights:

.. math:: w_t = \\mathrm{norm}\\big(\\hat G_t - b(s_t)\\big), \\qquad
          \\hat G_t = \\sum_{k=t}^{T_\\text{end}} \\gamma^{k-t} r_k

with the reward-to-go (or the whole return) :math:`\\hat G_t`, a baseline :math:`b` (none, the
batch mean, or a learned value network :math:`V_\\phi`) and an optional normalisation of the
batch of weights to mean 0 and standard deviation 1. With ``gamma=1``, no baseline and no
normalisation it is exactly :func:`rlbook.algos.vpg.train_vpg` (a test checks it).

See chapter 4 of the book (book/04_reinforce.ipynb).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import nn
from tqdm.auto import tqdm

from rlbook import validate
from rlbook.algos.config import Config, TrainingLog, choice, optional
from rlbook.algos.vpg import policy_and_optimizer
from rlbook.history import History
from rlbook.losses import pg_loss, value_loss
from rlbook.policies import ValueNet, check_net_fits
from rlbook.returns import discounted_returns, normalize, reward_to_go
from rlbook.rollout import Evaluator, Rollout, collect_episodes, make_envs
from rlbook.utils import device, set_seed

__all__ = ["ReinforceConfig", "reinforce_weights", "fit_value", "train_reinforce"]

BASELINES = (None, "mean", "value")


@dataclass
class ReinforceConfig(Config):
    """Settings of :func:`train_reinforce`; every field is checked when the config is made."""

    gamma: float = 0.99
    """Discount factor in [0, 1] of the weights (not of the objective we report, which is the
    undiscounted return); see :func:`reinforce_weights` for why the weights carry no gamma**t."""
    weights: str = "reward_to_go"
    """'return': every log-prob weighted by the whole (discounted) episode return (chapter 1);
    'reward_to_go': by the rewards from its step on (chapter 3)."""
    baseline: str | None = "value"
    """None: no baseline; 'mean': subtract the batch mean of the weights (one constant);
    'value': subtract a learned state value V(s_t), fitted to the reward-to-go."""
    normalize: bool = True
    """Shift and scale the batch of weights to mean 0, std 1 (after the baseline)."""
    num_envs: int = 8
    """Environments stepped side by side; a batch holds at least this many complete episodes."""
    steps_per_env: int = 1
    """Steps per environment before the batch is closed; then every environment finishes its
    episode (1: exactly one episode per environment). Smaller batches mean more updates per
    environment step, which on CartPole matters more than their extra noise (chapter 4)."""
    iterations: int = 50
    """Policy updates (one per batch); ignored when total_steps is set."""
    total_steps: int | None = None
    """If set, train until this many environment steps were used (the last batch may overshoot)."""
    lr: float = 1e-2
    """Adam learning rate of the policy."""
    hidden: tuple[int, ...] = (32,)
    """Hidden-layer widths of the policy network (and of the value network)."""
    value_lr: float = 1e-2
    """Adam learning rate of the value network (baseline='value' only)."""
    value_steps: int = 10
    """Full-batch gradient steps on value_loss per batch (baseline='value' only)."""
    seed: int = 0
    """Seed for torch and the environments."""
    eval_every: int | None = None
    """Evaluate deterministically on fresh episodes every this many env steps (None: never); adds
    eval_steps, eval_mean and eval_std to the History rows where it ran."""
    eval_episodes: int = 10
    """Episodes per evaluation."""
    stop_at_eval: float | None = None
    """Stop training at the first evaluation whose mean return reaches this (needs eval_every)."""
    progress: bool = False
    """Show a tqdm progress bar."""

    CHECKS: ClassVar[dict] = {
        "gamma": validate.unit_interval,
        "weights": choice("return", "reward_to_go"),
        "baseline": choice(*BASELINES),
        **dict.fromkeys(("normalize", "progress"), validate.flag),
        **dict.fromkeys(
            ("num_envs", "steps_per_env", "iterations", "value_steps", "eval_episodes"),
            validate.positive_int,
        ),
        "total_steps": optional(validate.positive_int),
        **dict.fromkeys(("lr", "value_lr"), validate.positive),
        "hidden": validate.layer_sizes,
        "seed": validate.non_negative_int,
    }


def reinforce_weights(
    batch: Rollout,
    gamma: float = 0.99,
    weights: str = "reward_to_go",
    baseline: str | None = None,
    normalize_weights: bool = False,
    values: torch.Tensor | None = None,
) -> torch.Tensor:
    """The weight of each log π_θ(a_t|s_t) in REINFORCE's gradient, (T, N).

        w_t = norm(G_t - b_t),  G_t = Σ_{k=t}^{end} γ^(k-t) r_k  (or the whole return)

    baseline: None, "mean" (the batch mean of G) or "value" (values, V(s_t), given).
    normalize_weights: rescale to mean 0, std 1 over batch.mask. Like most deep-RL code
    it drops the γ^t of the discounted objective's gradient (Nota and Thomas, 2020), and
    it treats a time limit as the end of the episode.
    See chapter 4 (book/04_reinforce.ipynb).
    """
    check_weights_args(batch, weights, baseline, normalize_weights, values)
    if weights == "reward_to_go":
        w = reward_to_go(batch.rewards, batch.dones, gamma)
    else:
        w = discounted_returns(batch.rewards, batch.dones, gamma, mask=batch.mask)
    return _reduce(w, batch, baseline, normalize_weights, values)


def check_weights_args(batch, weights, baseline, normalize_weights, values) -> None:
    """Check the arguments of :func:`reinforce_weights`; raise TypeError or ValueError
    naming the bad one (the rewards and ``gamma`` are checked where they are summed)."""
    validate.instance("batch", batch, Rollout)
    validate.choice("weights", weights, ("return", "reward_to_go"))
    validate.choice("baseline", baseline, BASELINES)
    validate.flag("normalize_weights", normalize_weights)
    if baseline == "value":
        if values is None:
            shape = tuple(batch.rewards.shape)
            raise ValueError(f"baseline='value' needs values shaped {shape}, got None")
        validate.float_tensor("values", values)
        validate.same_shape("values", values, "batch.rewards", batch.rewards)
        validate.finite("values", values, where=batch.mask)


def _reduce(w, batch, baseline, normalize_weights, values):
    """Subtract the baseline from the returns ``w`` and normalise them (see reinforce_weights)."""
    if baseline == "mean":
        w = w - w[batch.mask].mean()
    elif baseline == "value":
        w = w - values.detach()
    if normalize_weights:
        w = normalize(w, batch.mask)
    return w


def fit_value(
    value_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    obs: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    steps: int,
) -> list[float]:
    """Regress ``value_fn(obs)`` on ``targets`` with ``steps`` full-batch steps of ``value_loss``.

    .. math:: \\min_\\phi \\; \\tfrac12\\, \\mathrm{mean}_{t \\in \\text{mask}}
              \\big(V_\\phi(s_t) - \\hat G_t\\big)^2

    Parameters
    ----------
    value_fn : nn.Module, ``(..., obs_dim) -> (...)``
    optimizer : torch optimizer over ``value_fn``'s parameters
    obs : Tensor, (T, N, obs_dim)
    targets : Tensor, (T, N)
        Regression targets, the reward-to-go.
    mask : bool Tensor, (T, N)
    steps : int

    Returns
    -------
    list of float
        The loss before each step (its first entry is the loss on the batch before fitting).

    Notes
    -----
    See chapter 4 of the book (book/04_reinforce.ipynb).
    """
    steps = validate.positive_int("steps", steps)
    validate.instance("value_fn", value_fn, nn.Module)
    validate.instance("optimizer", optimizer, torch.optim.Optimizer)
    losses = []
    for _ in range(steps):
        loss = value_loss(value_fn(obs), targets, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def train_reinforce(
    env_id: str, cfg: ReinforceConfig | None = None, policy=None, value_fn=None
) -> History:
    """Train a policy with REINFORCE and return its History.

    Each iteration collects complete episodes, computes reinforce_weights (with V_φ as
    it was before the batch), takes one Adam step on pg_loss and, with baseline="value",
    value_steps Adam steps of V_φ towards the reward-to-go. The action space decides the
    policy (make_policy); policy and value_fn, if given, are trained in place.
    Logged: iteration, env_steps, wall_time, mean_return, mean_length, episodes, loss,
    grad_norm, value_loss (before fitting) and, where an evaluation ran, eval_steps,
    eval_mean, eval_std. meta["policy"], meta["value_fn"]: the networks.
    Williams (1992); the value baseline as in Spinning Up's VPG.
    See chapter 4 (book/04_reinforce.ipynb).
    """
    cfg = validate.instance("cfg", cfg or ReinforceConfig(), ReinforceConfig)
    set_seed(cfg.seed)
    envs = make_envs(env_id, cfg.num_envs)
    policy, optimizer = policy_and_optimizer(envs, cfg.hidden, cfg.lr, policy)
    value_optimizer = None
    if cfg.baseline != "value":
        value_fn = None
    else:
        if value_fn is None:
            # made only when used: the other variants draw the same numbers as VPG
            value_fn = ValueNet(envs.single_observation_space.shape[0], cfg.hidden)
        check_net_fits("value_fn", value_fn, envs.single_observation_space)
        value_fn = value_fn.to(device())
        value_optimizer = torch.optim.Adam(value_fn.parameters(), lr=cfg.value_lr)
    evaluator = (
        Evaluator(env_id, cfg.eval_every, cfg.eval_episodes) if cfg.eval_every else None
    )
    history = History(algo="reinforce", env_id=env_id, **asdict(cfg))

    budget = cfg.total_steps if cfg.total_steps is not None else cfg.iterations
    bar = tqdm(total=budget, disable=not cfg.progress, desc=f"reinforce {env_id}")
    log = TrainingLog(history, cfg, evaluator, bar, start=time.perf_counter())
    env_steps, it = 0, 0
    while (env_steps if cfg.total_steps is not None else it) < budget:
        batch = collect_episodes(envs, policy, cfg.steps_per_env, cfg.seed, it)
        values = None
        if value_fn is not None:
            with torch.no_grad():
                values = value_fn(batch.obs)
        to_go = None
        if cfg.weights == "reward_to_go" or value_fn is not None:
            # computed once, used twice
            to_go = reward_to_go(batch.rewards, batch.dones, cfg.gamma)
        if cfg.weights == "reward_to_go":
            weights = _reduce(to_go, batch, cfg.baseline, cfg.normalize, values)
        else:
            weights = reinforce_weights(
                batch, cfg.gamma, cfg.weights, cfg.baseline, cfg.normalize, values
            )
        log_probs = policy.dist(batch.obs).log_prob(batch.actions)
        loss = pg_loss(log_probs, weights, batch.mask)
        optimizer.zero_grad()
        loss.backward()
        grad_norm = torch.sqrt(sum((p.grad**2).sum() for p in policy.parameters()))
        optimizer.step()
        row = {}
        if value_fn is not None:
            losses = fit_value(
                value_fn, value_optimizer, batch.obs, to_go, batch.mask, cfg.value_steps
            )
            row["value_loss"] = losses[0]
        env_steps += batch.num_steps
        row = dict(
            iteration=it,
            env_steps=env_steps,
            **batch.episode_stats(),
            loss=loss.item(),
            grad_norm=grad_norm.item(),
            **row,
        )
        bar.update(batch.num_steps if cfg.total_steps is not None else 1)
        it += 1
        if log(row, policy, env_steps):
            break
    return log.close(envs, policy=policy, value_fn=value_fn)
