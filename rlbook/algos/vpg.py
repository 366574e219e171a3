"""The simplest policy gradient ("vanilla" policy gradient), with whole-return or reward-to-go weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from tqdm.auto import tqdm

from rlbook import validate
from rlbook.algos.config import Config, choice
from rlbook.history import History
from rlbook.losses import pg_loss
from rlbook.policies import check_net_fits, check_policy_fits, make_policy
from rlbook.returns import discounted_returns, reward_to_go
from rlbook.rollout import Rollout, collect_episodes, make_envs
from rlbook.utils import device, set_seed


@dataclass
class VPGConfig(Config):
    """Settings of :func:`train_vpg`."""

    weights: str = "return"
    """'return': weight every log-prob by the whole episode return R(tau) (chapter 1);
    'reward_to_go': by the rewards that follow the action (chapter 3)."""
    num_envs: int = 16
    """Environments stepped side by side."""
    steps_per_env: int = 100
    """Steps per environment before the batch is closed; then every environment finishes its
    episode, so a batch holds only complete episodes."""
    iterations: int = 40
    """Policy updates (one per batch)."""
    lr: float = 1e-2
    """Adam learning rate."""
    hidden: tuple[int, ...] = (32,)
    """Hidden-layer widths of the policy network."""
    seed: int = 0
    """Seed for torch and the environments."""
    progress: bool = False
    """Show a tqdm progress bar."""

    CHECKS: ClassVar[dict] = {
        "weights": choice("return", "reward_to_go"),
        **dict.fromkeys(
            ("num_envs", "steps_per_env", "iterations"), validate.positive_int
        ),
        "lr": validate.positive,
        "hidden": validate.layer_sizes,
        "seed": validate.non_negative_int,
        "progress": validate.flag,
    }


def vpg_weights(rollout: Rollout, kind: str) -> torch.Tensor:
    """The weight of each log-probability: the whole return, or the reward-to-go.

    This is the only line that differs between chapter 1's and chapter 3's algorithm.
    """
    validate.instance("rollout", rollout, Rollout)
    if kind == "return":
        return discounted_returns(rollout.rewards, rollout.dones, mask=rollout.mask)
    if kind == "reward_to_go":
        return reward_to_go(rollout.rewards, rollout.dones)
    raise ValueError(f"kind must be 'return' or 'reward_to_go'; got {kind!r}")


def policy_and_optimizer(envs, hidden, lr, policy=None):
    """``policy`` (by default make_policy's for the spaces of ``envs``) on the device, and
    an Adam optimizer over its parameters."""
    if policy is None:
        policy = make_policy(
            envs.single_observation_space, envs.single_action_space, hidden
        )
    check_net_fits("policy", policy, envs.single_observation_space)
    check_policy_fits(policy, envs.single_action_space)
    policy = policy.to(device())
    return policy, torch.optim.Adam(policy.parameters(), lr=lr)


def train_vpg(env_id: str, cfg: VPGConfig | None = None, policy=None) -> History:
    """Train a policy with the simplest policy gradient and return its History.

    Each iteration collects a batch of complete episodes, weights every log π_θ(a_t|s_t)
    by the return (or the reward-to-go) and takes one Adam step on pg_loss. Logged:
    env_steps, mean_return, mean_length, episodes, loss; meta["policy"] is the policy.
    policy: a policy to train in place (default: make_policy). After Williams (1992) and
    Spinning Up's simplest policy gradient. See chapters 1 and 3
    (book/01_policy_gradient.ipynb, book/03_reward_to_go.ipynb).
    """
    cfg = validate.instance("cfg", cfg or VPGConfig(), VPGConfig)
    set_seed(cfg.seed)
    envs = make_envs(env_id, cfg.num_envs)
    policy, optimizer = policy_and_optimizer(envs, cfg.hidden, cfg.lr, policy)
    history = History(algo="vpg", env_id=env_id, **asdict(cfg))
    env_steps = 0
    for it in tqdm(
        range(cfg.iterations), disable=not cfg.progress, desc=f"vpg {cfg.weights}"
    ):
        batch = collect_episodes(envs, policy, cfg.steps_per_env, cfg.seed, it)
        weights = vpg_weights(batch, cfg.weights)
        log_probs = policy.dist(batch.obs).log_prob(batch.actions)
        loss = pg_loss(log_probs, weights, batch.mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        env_steps += batch.num_steps
        history.log(
            iteration=it,
            env_steps=env_steps,
            **batch.episode_stats(),
            loss=loss.item(),
        )
    envs.close()
    history.meta["policy"] = policy
    return history
