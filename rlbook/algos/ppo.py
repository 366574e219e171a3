"""Proximal policy optimization (PPO): the clipped surrogate objective with GAE advantages.

One iteration of :func:`train_ppo`:

1. collect ``num_steps`` steps in each of ``num_envs`` environments with the current policy;
2. compute advantages with GAE, bootstrapping from the final observation where a time limit
   cut an episode (and nowhere else that an episode ended);
3. run ``update_epochs`` passes over the batch in ``num_minibatches`` shuffled minibatches,
   each an Adam step on clipped surrogate + value loss - entropy bonus.

The layout (one config dataclass, ``b_`` for the flat batch, ``mb_`` for a minibatch) and most
implementation details follow CleanRL's ``ppo.py`` (Huang et al., 2022); the details are listed
with their sources in "The 37 implementation details of PPO" (Huang et al., 2022).

See chapter 6 of the book (book/06_ppo.ipynb).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import ClassVar

import torch
from torch import nn
from tqdm.auto import tqdm

from rlbook import validate
from rlbook.algos.config import Config, TrainingLog, optional
from rlbook.history import History
from rlbook.losses import (
    approx_kl,
    check_batch,
    clip_fraction,
    explained_variance,
    ppo_clip_loss,
    value_loss,
)
from rlbook.policies import actor_critic
from rlbook.returns import normalize, ppo_advantages
from rlbook.rollout import Evaluator, Rollout, collect, make_envs
from rlbook.utils import device, set_seed


@dataclass
class PPOConfig(Config):
    """Settings of :func:`train_ppo`.

    The defaults are tuned for CartPole-v1 and its continuous-action version
    (``benchmarks/ppo_cartpole.py``): many small batches (8 environments x 32 steps), 10 epochs
    of 4 minibatches on each, and a large learning rate that decays to zero.
    :meth:`cartpole` is a cheaper variant for discrete CartPole. For other tasks, start from
    CleanRL's defaults instead
    (``num_envs=4, num_steps=128, lr=2.5e-4, num_minibatches=4, update_epochs=4,
    gae_lambda=0.95, gamma=0.99, ent_coef=0.01``).

    See chapter 6 of the book (book/06_ppo.ipynb).
    """

    num_envs: int = 8
    """Environments stepped side by side."""
    num_steps: int = 32
    """Steps per environment per iteration: a batch has ``num_envs * num_steps`` slots."""
    total_steps: int = 50_000
    """Environment steps (real transitions, summed over environments) to train for."""
    lr: float = 3e-3
    """Adam learning rate (at the start, when annealed)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over ``total_steps``."""
    gamma: float = 0.98
    """Discount factor."""
    gae_lambda: float = 0.9
    """GAE's lambda: 0 gives TD errors, 1 Monte-Carlo returns minus V."""
    num_minibatches: int = 4
    """Minibatches per epoch: the batch is shuffled and split into this many parts."""
    update_epochs: int = 10
    """Passes over each batch (each pass one Adam step per minibatch)."""
    norm_adv: bool = True
    """Normalise advantages to mean 0, std 1 within each minibatch."""
    clip_coef: float = 0.2
    """Epsilon of the clipped objective: ratios outside [1 - eps, 1 + eps] get no gradient."""
    clip_vloss: bool = False
    """Clip the value function's change per update like the ratio (CleanRL's option; found not
    to help by Andrychowicz et al., 2021)."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss in the joint loss."""
    max_grad_norm: float = 0.5
    """Rescale the gradient of policy and value parameters together to at most this norm."""
    target_kl: float | None = None
    """Stop an update's epochs early once the approximate KL from the collecting policy exceeds
    this; None: always run every epoch."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden-layer widths of the policy and of the (separate) value network, tanh units."""
    ortho_init: bool = True
    """Orthogonal weights, zero biases, small last layer of the policy (CleanRL's layer_init)."""
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
    """Bootstrap from V(final observation) where a time limit cut an episode. False treats a
    truncation as a termination, the common bug (ablation switch)."""
    clip: bool = True
    """Use the clipped objective. False: the unclipped surrogate ratio * advantage (ablation
    switch)."""

    @classmethod
    def cartpole(cls, **overrides) -> PPOConfig:
        """The defaults with 20 Adam steps on each whole batch instead of 10 epochs of 4
        minibatches: the cheapest settings found for CartPole-v1.

        On 60 tuning seeds (100-115, 200-223, 300-319; the benchmark uses 0-9), both solved
        CartPole-v1 in a median of 7,600 environment steps (means 7,800 for the defaults,
        9,400 for this), with half the gradient steps per batch, so about half the time.
        On rlbook/ContinuousCartPole-v1 the defaults learn faster. overrides: other fields.
        """
        return cls(**{"num_minibatches": 1, "update_epochs": 20, **overrides})

    CHECKS: ClassVar[dict] = {
        **dict.fromkeys(
            (
                "num_envs",
                "num_steps",
                "total_steps",
                "num_minibatches",
                "update_epochs",
            ),
            validate.positive_int,
        ),
        **dict.fromkeys(("lr", "clip_coef"), validate.positive),
        **dict.fromkeys(("gamma", "gae_lambda"), validate.unit_interval),
        **dict.fromkeys(("ent_coef", "vf_coef"), validate.non_negative),
        "max_grad_norm": partial(validate.positive, allow_inf=True),
        "target_kl": optional(validate.positive),
        **dict.fromkeys(
            ("anneal_lr", "norm_adv", "clip_vloss", "ortho_init", "progress"),
            validate.flag,
        ),
        **dict.fromkeys(("handle_truncation", "clip"), validate.flag),
        "hidden": validate.layer_sizes,
        "seed": validate.non_negative_int,
    }

    def check(self) -> None:
        if self.num_steps < 2:
            # with NEXT_STEP autoreset a one-step rollout may hold only reset steps
            raise ValueError(
                "num_steps must be at least 2, so that every rollout holds a transition "
                f"of each environment; got {self.num_steps}"
            )
        if self.num_minibatches > self.num_envs * self.num_steps:
            raise ValueError(
                f"num_minibatches must be at most num_envs * num_steps = "
                f"{self.num_envs * self.num_steps}, got {self.num_minibatches}"
            )


def train_ppo(env_id: str, cfg: PPOConfig | None = None) -> History:
    """Train a policy and a value function with PPO and return the History.

    env_id: a Box observation space and a Discrete or flat Box action space. One row per
    iteration: iteration, env_steps, mean_return, mean_length, episodes (of the episodes
    that ended in the rollout), policy_loss, value_loss, entropy (minibatch means),
    approx_kl, clipfrac, epochs, explained_variance, lr, wall_time, and eval_steps,
    eval_mean, eval_std where an evaluation ran. meta["policy"], meta["value_fn"]: the
    networks. Schulman et al. (2017) with CleanRL's details (Huang et al., 2022):
    separate networks, orthogonal init, Adam (eps 1e-5, annealed), per-minibatch
    advantage normalisation, global gradient clipping.
    See chapter 6 (book/06_ppo.ipynb).
    """
    cfg = validate.instance("cfg", cfg or PPOConfig(), PPOConfig)
    start = time.perf_counter()
    set_seed(cfg.seed)
    envs = make_envs(env_id, cfg.num_envs)
    obs_space, act_space = envs.single_observation_space, envs.single_action_space
    policy, value_fn = actor_critic(obs_space, act_space, cfg.hidden, cfg.ortho_init)
    dev = device()
    params = [*policy.parameters(), *value_fn.parameters()]
    # the fused kernel updates every parameter in one call: otherwise about a quarter
    # of an update's time on the CPU goes to Adam's per-tensor Python loop
    fused = dev.type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(params, lr=cfg.lr, eps=1e-5, fused=fused)
    evaluator = Evaluator(env_id, cfg.eval_every) if cfg.eval_every else None
    clip_coef = cfg.clip_coef if cfg.clip else math.inf
    history = History(algo="ppo", env_id=env_id, **asdict(cfg))

    env_steps, iteration = 0, 0
    rollout: Rollout | None = None
    bar = tqdm(total=cfg.total_steps, disable=not cfg.progress, desc="ppo", unit="step")
    log = TrainingLog(history, cfg, evaluator, bar, start)
    while env_steps < cfg.total_steps:
        lr = cfg.lr * (1.0 - env_steps / cfg.total_steps) if cfg.anneal_lr else cfg.lr
        for group in optimizer.param_groups:
            group["lr"] = lr

        rollout = collect(envs, policy, cfg.num_steps, previous=rollout, seed=cfg.seed)
        values, advantages, returns = ppo_advantages(
            rollout, value_fn, cfg.gamma, cfg.gae_lambda, cfg.handle_truncation
        )

        # the flat batch holds real transitions only, not NEXT_STEP's reset slots
        real = rollout.mask
        b_obs = rollout.obs[real]
        b_actions = rollout.actions[real]
        b_log_probs = rollout.log_probs[real]
        b_advantages, b_returns, b_values = (
            advantages[real],
            returns[real],
            values[real],
        )
        # checked once here, so the losses of the minibatches need not check again
        check_batch(log_probs=b_log_probs, advantages=b_advantages, returns=b_returns)
        batch_size = b_obs.shape[0]
        minibatch_size = math.ceil(batch_size / cfg.num_minibatches)

        sums = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0}
        updates, epochs = 0, 0
        for _ in range(cfg.update_epochs):
            epochs += 1
            order = torch.randperm(batch_size, device=dev)
            for lo in range(0, batch_size, minibatch_size):
                mb = order[lo : lo + minibatch_size]
                dist = policy.dist(b_obs[mb])
                new_log_probs = dist.log_prob(b_actions[mb])
                # without a bonus the entropy is only logged: keep it out of the graph
                with torch.set_grad_enabled(cfg.ent_coef > 0):
                    entropy = dist.entropy().mean()
                mb_advantages = b_advantages[mb]
                if cfg.norm_adv:
                    mb_advantages = normalize(mb_advantages, check=False)
                pg = ppo_clip_loss(
                    new_log_probs,
                    b_log_probs[mb],
                    mb_advantages,
                    clip_coef,
                    check=False,
                )
                new_values = value_fn(b_obs[mb])
                if cfg.clip_vloss:
                    # CleanRL's value clipping: the larger of the two squared errors
                    old = b_values[mb]
                    clipped = old + torch.clamp(
                        new_values - old, -cfg.clip_coef, cfg.clip_coef
                    )
                    v_loss = (
                        0.5
                        * torch.maximum(
                            (new_values - b_returns[mb]) ** 2,
                            (clipped - b_returns[mb]) ** 2,
                        ).mean()
                    )
                else:
                    v_loss = value_loss(new_values, b_returns[mb], check=False)
                loss = pg - cfg.ent_coef * entropy + cfg.vf_coef * v_loss

                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                sums["policy_loss"] += pg.item()
                sums["value_loss"] += v_loss.item()
                sums["entropy"] += entropy.item()
                updates += 1
            if cfg.target_kl is not None:
                with torch.no_grad():
                    new = policy.dist(b_obs).log_prob(b_actions)
                if approx_kl(new, b_log_probs).item() > cfg.target_kl:
                    break

        with torch.no_grad():
            new_log_probs = policy.dist(b_obs).log_prob(b_actions)
        env_steps += rollout.num_steps
        bar.update(rollout.num_steps)
        row = dict(
            iteration=iteration,
            env_steps=env_steps,
            **rollout.episode_stats(),
            **{key: total / updates for key, total in sums.items()},
            approx_kl=approx_kl(new_log_probs, b_log_probs).item(),
            clipfrac=clip_fraction(new_log_probs, b_log_probs, cfg.clip_coef).item(),
            epochs=epochs,
            explained_variance=explained_variance(b_values, b_returns),
            lr=lr,
        )
        iteration += 1
        if log(row, policy, env_steps):
            break
    return log.close(envs, policy=policy, value_fn=value_fn)
