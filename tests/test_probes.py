"""Tests of the probe environments (rlbook.envs.probes): gymnasium's checker, the stated right
answers, rlbook's PPO learning every probe, and planted bugs failing the probe that should
catch them while the probes before it still pass."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import rlbook.algos.ppo as ppo_module
import rlbook.returns as returns_module
from rlbook.algos.ppo import PPOConfig, train_ppo
from rlbook.envs import PROBES, probe_errors
from rlbook.losses import ppo_clip_loss, value_loss
from rlbook.policies import ValueNet

IDS = list(PROBES)
CONSTANT, OBSERVED, DELAYED, ACTION, BOTH = IDS
# small and fast (about 0.3 s a run); gamma 0.5 makes a missing discount visible in probe 3
PROBE_CONFIG = dict(
    num_envs=8,
    num_steps=16,
    total_steps=2048,
    num_minibatches=2,
    update_epochs=4,
    lr=1e-2,
    hidden=(16,),
    gamma=0.5,
)
VALUE_TOL, PROB_MIN = 0.1, 0.9


def train(env_id, seed=0):
    cfg = PPOConfig(**PROBE_CONFIG, seed=seed)
    history = train_ppo(env_id, cfg)
    return probe_errors(
        env_id, history.meta["policy"], history.meta["value_fn"], cfg.gamma
    )


def passes(errors):
    prob = errors["best_action_prob"]
    return errors["value_error"] < VALUE_TOL and (math.isnan(prob) or prob > PROB_MIN)


@pytest.mark.parametrize("env_id", IDS)
def test_probe_passes_gymnasiums_checker_and_ends_in_a_terminal_state(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    cls = PROBES[env_id]
    for _ in range(cls.horizon):
        assert float(obs[0]) in cls.observations
        obs, reward, terminated, truncated, _ = env.step(1)
    assert terminated and not truncated


def test_probe_answers_match_monte_carlo_returns():
    # the stated value is the mean discounted return from each state under the best (or any)
    # action, measured by playing the probe
    gamma = 0.7
    for env_id, cls in PROBES.items():
        env = gym.make(env_id)
        targets = cls.targets(gamma)
        returns = {s: [] for s in targets}
        for episode in range(40):
            obs, _ = env.reset(seed=episode)
            visited, rewards, done = [], [], False
            while not done:
                s = float(obs[0])
                best = targets[s][1]
                visited.append(s)
                obs, r, terminated, truncated, _ = env.step(1 if best is None else best)
                rewards.append(r)
                done = terminated or truncated
            for t, s in enumerate(visited):
                returns[s].append(sum(gamma**k * r for k, r in enumerate(rewards[t:])))
        for s, (value, best) in targets.items():
            assert returns[s], (env_id, s, "never visited")
            assert np.allclose(returns[s], value), (env_id, s)
            if best is not None:  # the other action is worse
                env.reset(seed=0)
                cls_env = env.unwrapped
                assert cls_env._reward(s, 1 - best) < cls_env._reward(s, best)


def test_probe_errors_rejects_bad_arguments():
    policy = torch.nn.Linear(1, 2)
    with pytest.raises(ValueError, match="env_id"):
        probe_errors("CartPole-v1", policy, ValueNet(1, (4,)), 0.9)
    with pytest.raises(ValueError, match="gamma"):
        probe_errors(CONSTANT, policy, ValueNet(1, (4,)), 1.5)


@pytest.mark.parametrize("env_id", IDS)
def test_rlbooks_ppo_learns_every_probe(env_id):
    for seed in range(3):
        errors = train(env_id, seed)
        assert passes(errors), (env_id, seed, errors)


# ---------------------------------------------------------------------------------------------
# Planted bugs: each fails the probe that names it; the probes before it still pass
# ---------------------------------------------------------------------------------------------


def value_loss_sign(values, returns, mask=None, **kwargs):
    return -value_loss(values, returns, mask, **kwargs)


def no_bootstrap(rewards, values, next_values, *args, **kwargs):
    # the value of the next state is dropped: returns stop at every step
    return ppo_module_gae(
        rewards, values, torch.zeros_like(next_values), *args, **kwargs
    )


def policy_loss_sign(
    new_log_probs, old_log_probs, advantages, clip_coef, mask=None, **kwargs
):
    return -ppo_clip_loss(
        new_log_probs, old_log_probs, advantages, clip_coef, mask, **kwargs
    )


def undetached_old_log_probs(
    new_log_probs, old_log_probs, advantages, clip_coef, **kwargs
):
    # a learner's clip loss whose "old" log-probabilities are recomputed from the policy
    # being optimised, with gradient: the ratio is 1 whatever the policy, its gradient 0
    old_log_probs = new_log_probs
    ratio = torch.exp(new_log_probs - old_log_probs)
    clipped = torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
    return -torch.min(ratio * advantages, clipped * advantages).mean()


def blind_value_net(self, obs):
    return self.net(obs * 0).squeeze(-1)


ppo_module_gae = returns_module.gae
BUGS = {
    # name: (what to patch, replacement, the probe that must fail)
    "value loss sign": ((ppo_module, "value_loss"), value_loss_sign, CONSTANT),
    "critic blind to the state": ((ValueNet, "forward"), blind_value_net, OBSERVED),
    "no bootstrap": ((returns_module, "gae"), no_bootstrap, DELAYED),
    "policy loss sign": ((ppo_module, "ppo_clip_loss"), policy_loss_sign, ACTION),
    "undetached old log-probs": (
        (ppo_module, "ppo_clip_loss"),
        undetached_old_log_probs,
        ACTION,
    ),
}


@pytest.mark.parametrize("bug", list(BUGS))
def test_a_planted_bug_fails_its_probe_and_only_from_there(bug, monkeypatch):
    (owner, name), replacement, failing = BUGS[bug]
    monkeypatch.setattr(owner, name, replacement)
    for env_id in IDS[: IDS.index(failing)]:
        errors = train(env_id)
        assert passes(errors), (bug, "should still pass", env_id, errors)
    errors = train(failing)
    assert not passes(errors), (bug, "should fail", failing, errors)


def test_the_planted_bugs_fail_for_the_reason_stated():
    # the numbers behind the docstrings: no bootstrap gives V(0) = 0 on probe 3 (error gamma);
    # a flipped policy loss learns the wrong action; an undetached ratio does not learn at all
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(returns_module, "gae", no_bootstrap)
        errors = train(DELAYED)
    assert abs(errors["value_error"] - PROBE_CONFIG["gamma"]) < 0.05, errors
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ppo_module, "ppo_clip_loss", policy_loss_sign)
        errors = train(ACTION)
    assert errors["best_action_prob"] < 0.1, errors
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ppo_module, "ppo_clip_loss", undetached_old_log_probs)
        errors = train(ACTION)
    assert abs(errors["best_action_prob"] - 0.5) < 0.05, errors
