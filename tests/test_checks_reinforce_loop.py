"""Tests of ``check_reinforce_loop``: a REINFORCE loop written the way a learner would (its own
masked means, its own value steps) passes; typical bugs are caught at the right stage and
diagnosed by name."""

import pytest
import torch

from rlbook.checks import ExerciseError, check_reinforce_loop
from rlbook.policies import ValueNet, make_policy
from rlbook.returns import discounted_returns, reward_to_go
from rlbook.rollout import collect, make_envs
from rlbook.utils import set_seed


def learner_loop(env_id, cfg, record, bug=None):
    """A learner's REINFORCE, written without pg_loss, value_loss or normalize; ``bug`` plants
    one mistake."""
    set_seed(cfg.seed)
    envs = make_envs(env_id, cfg.num_envs)
    policy = make_policy(
        envs.single_observation_space, envs.single_action_space, cfg.hidden
    )
    value_fn = ValueNet(envs.single_observation_space.shape[0], cfg.hidden)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    value_optimizer = torch.optim.Adam(value_fn.parameters(), lr=cfg.value_lr)
    seed = cfg.seed + 1 if bug == "reset seed" else cfg.seed
    for it in range(cfg.iterations):
        batch = collect(
            envs,
            policy,
            cfg.steps_per_env,
            seed=seed * 10_000 + it,
            complete_episodes=True,
        )
        m = batch.mask
        if bug == "whole return":
            g = discounted_returns(batch.rewards, batch.dones, cfg.gamma, mask=m)
        else:
            g = reward_to_go(batch.rewards, batch.dones, cfg.gamma)
        with torch.no_grad():
            a = g - value_fn(batch.obs)
        if bug == "padding normalised":
            weights = (a - a.mean()) / (a.std(correction=0) + 1e-8)
        else:
            real = a[m]
            weights = (a - real.mean()) / (real.std(correction=0) + 1e-8) * m
        log_probs = policy.dist(batch.obs).log_prob(batch.actions)
        if bug == "loss sign":
            loss = (log_probs * weights)[m].mean()
        elif bug == "mean over time first":
            loss = -((log_probs * weights * m).sum(0) / m.sum(0)).mean()
        else:
            loss = -(log_probs * weights)[m].mean()
        if bug != "no zero_grad":
            optimizer.zero_grad()
        loss.backward()
        if bug != "no step":
            optimizer.step()
        for _ in range(cfg.value_steps):
            target = weights if bug == "value on weights" else g
            v_loss = 0.5 * ((value_fn(batch.obs) - target)[m] ** 2).mean()
            value_optimizer.zero_grad()
            v_loss.backward()
            value_optimizer.step()
        record(batch, weights, loss, policy, value_fn)


def test_a_right_loop_passes(capsys):
    assert check_reinforce_loop(learner_loop)
    assert "identical to train_reinforce" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("bug", "stage", "diagnosis"),
    [
        ("whole return", "iteration 0 differs first at the weights", "whole return"),
        ("padding normalised", "at the weights", "padding included"),
        ("loss sign", "iteration 0 differs first at the loss", "wrong sign"),
        ("mean over time first", "at the loss", "wrong axis"),
        (
            "no zero_grad",
            "iteration 0 matches train_reinforce; iteration 1 differs first at the "
            "policy update",
            "zero_grad\\(\\) is missing",
        ),
        ("no step", "at the policy update", "did not change"),
        ("value on weights", "at the value update", "fitted to the normalised weights"),
        ("reset seed", "at the rollout", "other states"),
    ],
)
def test_a_typical_bug_is_found_at_its_stage_and_named(bug, stage, diagnosis):
    def buggy(env_id, cfg, record):
        learner_loop(env_id, cfg, record, bug)

    with pytest.raises(ExerciseError, match=stage) as info:
        check_reinforce_loop(buggy)
    info.match(diagnosis)


def test_a_loop_that_does_not_record_or_crashes_is_reported():
    def silent(env_id, cfg, record):
        learner_loop(env_id, cfg, lambda *args: None)

    with pytest.raises(ExerciseError, match="called record 0 times"):
        check_reinforce_loop(silent)

    def crashes(env_id, cfg, record):
        raise KeyError("obs")

    with pytest.raises(ExerciseError, match="KeyError"):
        check_reinforce_loop(crashes)

    def stub(env_id, cfg, record):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check_reinforce_loop(stub)


def test_bad_arguments_are_rejected():
    with pytest.raises(TypeError, match="fn"):
        check_reinforce_loop("loop")
    with pytest.raises(ValueError, match="iterations"):
        check_reinforce_loop(learner_loop, iterations=1)
