"""Tests of the chapter-6.2 graders (building PPO piece by piece): right answers written the way
a learner would (their own clip objective, ``Tensor.split``, NumPy) pass; typical mistakes are
diagnosed by name."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from rlbook.checks import (
    ExerciseError,
    check_minibatch_advantages,
    check_minibatches,
    check_ppo_update,
    check_train_ppo,
    check_value_loss,
)
from rlbook.policies import ValueNet, make_policy, orthogonal_init
from rlbook.returns import ppo_advantages
from rlbook.rollout import collect, make_envs
from rlbook.utils import set_seed

# ---------------------------------------------------------------------------------------------
# the value loss
# ---------------------------------------------------------------------------------------------


def my_value_loss(new_values, old_values, advantages):
    returns = advantages + old_values
    return ((new_values - returns) ** 2).mean() / 2


def test_check_value_loss_accepts_a_right_answer(capsys):
    assert check_value_loss(my_value_loss, seed=0)
    assert "gradient" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "diagnosis"),
    [
        (
            lambda new_values, old_values, advantages: my_value_loss(
                new_values, 0 * old_values, advantages
            ),
            "advantages are the targets",
        ),
        (
            lambda new_values, old_values, advantages: (
                (new_values - advantages - old_values) ** 2
            ).mean(),
            "factor 1/2",
        ),
        (
            lambda new_values, old_values, advantages: (
                0.5 * ((new_values - advantages - old_values) ** 2).sum()
            ),
            "sum over the samples",
        ),
        (
            lambda new_values, old_values, advantages: my_value_loss(
                new_values,
                old_values,
                (advantages - advantages.mean())
                / (advantages.std(correction=0) + 1e-8),
            ),
            "normalised advantages",
        ),
        (
            lambda new_values, old_values, advantages: (
                -my_value_loss(new_values, old_values, advantages)
            ),
            "sign is flipped",
        ),
        (
            lambda new_values, old_values, advantages: (
                0.5 * (new_values - advantages - old_values) ** 2
            ),
            "one loss per sample",
        ),
    ],
)
def test_check_value_loss_names_the_mistake(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        check_value_loss(wrong, seed=1)


def test_check_value_loss_wants_a_gradient():
    def no_grad(new_values, old_values, advantages):
        return torch.tensor(my_value_loss(new_values, old_values, advantages).item())

    with pytest.raises(ExerciseError, match="no gradient"):
        check_value_loss(no_grad, seed=1)


# ---------------------------------------------------------------------------------------------
# the minibatch and epoch loop
# ---------------------------------------------------------------------------------------------


def my_minibatches(batch_size, num_minibatches, update_epochs, device=None):
    size = math.ceil(batch_size / num_minibatches)
    out = []
    for _ in range(update_epochs):
        out.extend(torch.randperm(batch_size, device=device).split(size))
    return out


def test_check_minibatches_accepts_a_right_answer():
    assert check_minibatches(my_minibatches)


def _shuffled_once(batch_size, num_minibatches, update_epochs):
    perm = torch.randperm(batch_size).split(math.ceil(batch_size / num_minibatches))
    return list(perm) * update_epochs


def _in_order(batch_size, num_minibatches, update_epochs):
    size = math.ceil(batch_size / num_minibatches)
    return [
        torch.from_numpy(chunk)
        for _ in range(update_epochs)
        for chunk in np.array_split(
            np.arange(batch_size), range(size, batch_size, size)
        )
    ]


def _replacement(batch_size, num_minibatches, update_epochs):
    size = math.ceil(batch_size / num_minibatches)
    out = []
    for _ in range(update_epochs):
        out.extend(torch.randint(0, batch_size, (batch_size,)).split(size))
    return out


def _floor(batch_size, num_minibatches, update_epochs):
    out = []
    for _ in range(update_epochs):
        out.extend(torch.randperm(batch_size).split(batch_size // num_minibatches))
    return out


def _one_epoch(batch_size, num_minibatches, update_epochs):
    return my_minibatches(batch_size, num_minibatches, 1)


def _other_order(batch_size, num_minibatches, update_epochs):
    torch.rand(1)  # an extra random call shifts the stream
    return my_minibatches(batch_size, num_minibatches, update_epochs)


@pytest.mark.parametrize(
    ("wrong", "diagnosis"),
    [
        (_shuffled_once, "reuses the first shuffle"),
        (_in_order, "not shuffled"),
        (_replacement, "with replacement"),
        (_floor, "floor division"),
        (_one_epoch, "one epoch only"),
        (_other_order, "another random order"),
    ],
)
def test_check_minibatches_names_the_mistake(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        check_minibatches(wrong)


# ---------------------------------------------------------------------------------------------
# advantage normalisation per minibatch
# ---------------------------------------------------------------------------------------------


def my_minibatch_advantages(b_advantages, mb):
    x = b_advantages[mb]
    return (x - x.mean()) / (x.std(correction=0) + 1e-8)


def numpy_minibatch_advantages(b_advantages, mb):
    x = np.asarray(b_advantages, dtype=np.float64)[np.asarray(mb)]
    return (x - x.mean()) / (x.std() + 1e-8)


@pytest.mark.parametrize("fn", [my_minibatch_advantages, numpy_minibatch_advantages])
def test_check_minibatch_advantages_accepts_right_answers(fn):
    assert check_minibatch_advantages(fn, seed=0)


def _whole(b_advantages, mb):
    x = b_advantages
    return ((x - x.mean()) / (x.std(correction=0) + 1e-8))[mb]


@pytest.mark.parametrize(
    ("wrong", "diagnosis"),
    [
        (_whole, "over the whole batch"),
        (
            lambda b_advantages, mb: (
                (b_advantages[mb] - b_advantages[mb].mean())
                / (b_advantages[mb].std() + 1e-8)
            ),
            "NaN|sample standard deviation",
        ),
        (
            lambda b_advantages, mb: (
                (b_advantages[mb] - b_advantages[mb].mean())
                / b_advantages[mb].std(correction=0)
            ),
            "NaN",
        ),
        (lambda b_advantages, mb: b_advantages[mb], "not normalised"),
        (
            lambda b_advantages, mb: (
                (b_advantages - b_advantages.mean())
                / (b_advantages.std(correction=0) + 1e-8)
            ),
            "whole batch",
        ),
    ],
)
@pytest.mark.filterwarnings("ignore:.*degrees of freedom:UserWarning")
def test_check_minibatch_advantages_names_the_mistake(wrong, diagnosis):
    with pytest.raises(ExerciseError, match=diagnosis):
        check_minibatch_advantages(wrong, seed=2)


def test_the_sample_std_is_named_where_no_nan_hides_it():
    def sample_std(b_advantages, mb):
        x = b_advantages[mb]
        if len(x) < 2 or x.std() == 0:
            return torch.zeros_like(x)
        return (x - x.mean()) / (x.std() + 1e-8)

    with pytest.raises(ExerciseError, match="sample standard deviation"):
        check_minibatch_advantages(sample_std, seed=2)


# ---------------------------------------------------------------------------------------------
# the whole update
# ---------------------------------------------------------------------------------------------


def my_update(policy, value_fn, optimizer, batch, cfg, bug=None):
    """A learner's update from the pieces above, with their own clipped objective."""
    params = [*policy.parameters(), *value_fn.parameters()]
    size = batch["obs"].shape[0]
    eps = cfg.clip_coef
    device = batch["obs"].device
    for mb in my_minibatches(size, cfg.num_minibatches, cfg.update_epochs, device):
        dist = policy.dist(batch["obs"][mb])
        new_log_probs = dist.log_prob(batch["actions"][mb])
        if bug == "undetached":
            old_log_probs = policy.dist(batch["obs"][mb]).log_prob(batch["actions"][mb])
        else:
            old_log_probs = batch["log_probs"][mb]
        if bug == "whole batch":
            adv = _whole(batch["advantages"], mb)
        else:
            adv = my_minibatch_advantages(batch["advantages"], mb)
        ratio = torch.exp(new_log_probs - old_log_probs)
        objective = torch.min(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv).mean()
        pg = objective if bug == "policy sign" else -objective
        v_loss = my_value_loss(
            value_fn(batch["obs"][mb]), batch["values"][mb], batch["advantages"][mb]
        )
        entropy = dist.entropy().mean()
        if bug == "entropy sign":
            loss = pg + cfg.ent_coef * entropy + cfg.vf_coef * v_loss
        elif bug == "no value loss":
            loss = pg - cfg.ent_coef * entropy
        else:
            loss = pg - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
        if bug != "no zero_grad":
            optimizer.zero_grad()
        loss.backward()
        if bug != "no clipping":
            nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()


def test_check_ppo_update_accepts_a_right_answer(capsys):
    assert check_ppo_update(my_update)
    assert "same weights" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("bug", "diagnosis"),
    [
        ("policy sign", "single gradient step.*policy loss has the wrong sign"),
        ("entropy sign", "entropy bonus has the wrong sign"),
        ("no value loss", "value loss is not in the loss"),
        ("no clipping", "not clipped to norm"),
        ("undetached", "single gradient step\\).*ratio is then exactly 1"),
        ("no zero_grad", "zero_grad\\(\\) is missing"),
        ("whole batch", "normalised over the whole batch"),
    ],
)
def test_check_ppo_update_names_the_mistake(bug, diagnosis):
    def buggy(policy, value_fn, optimizer, batch, cfg):
        my_update(policy, value_fn, optimizer, batch, cfg, bug)

    with pytest.raises(ExerciseError, match=f"(?s){diagnosis}"):
        check_ppo_update(buggy)


def test_check_ppo_update_reports_an_update_that_does_nothing():
    with pytest.raises(ExerciseError, match="did not change the networks"):
        check_ppo_update(lambda policy, value_fn, optimizer, batch, cfg: None)


# ---------------------------------------------------------------------------------------------
# the whole train_ppo
# ---------------------------------------------------------------------------------------------


def my_train_ppo(env_id, cfg, record, bug=None, update=my_update):
    set_seed(cfg.seed)
    envs = make_envs(env_id, cfg.num_envs)
    policy = make_policy(
        envs.single_observation_space, envs.single_action_space, cfg.hidden
    )
    value_fn = ValueNet(envs.single_observation_space.shape[0], cfg.hidden)
    if bug != "default init":
        orthogonal_init(policy.net, 0.01)
        orthogonal_init(value_fn.net, 1.0)
    params = [*policy.parameters(), *value_fn.parameters()]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, eps=1e-5)
    env_steps, rollout = 0, None
    while env_steps < cfg.total_steps:
        if bug != "no annealing":
            optimizer.param_groups[0]["lr"] = cfg.lr * (1 - env_steps / cfg.total_steps)
        previous = None if bug == "reset" else rollout
        rollout = collect(envs, policy, cfg.num_steps, previous=previous, seed=cfg.seed)
        values, advantages, _ = ppo_advantages(
            rollout, value_fn, cfg.gamma, cfg.gae_lambda
        )
        real = rollout.mask if bug != "padding" else torch.ones_like(rollout.mask)
        batch = {
            "obs": rollout.obs[real],
            "actions": rollout.actions[real],
            "log_probs": rollout.log_probs[real],
            "advantages": advantages[real],
            "values": values[real],
        }
        update(policy, value_fn, optimizer, batch, cfg)
        env_steps += rollout.num_steps
        record(rollout, advantages, policy, value_fn)
    envs.close()


def test_check_train_ppo_accepts_a_right_answer(capsys):
    assert check_train_ppo(my_train_ppo)
    assert "identical to rlbook's train_ppo" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("bug", "diagnosis"),
    [
        ("reset", "iteration 1 differs first at the rollout.*previous=rollout"),
        ("default init", "iteration 0 differs first at the rollout.*orthogonal_init"),
        ("no annealing", "iteration 1 differs first at the update.*not annealed"),
        ("padding", "iteration 0 differs first at the update.*padding slots"),
    ],
)
def test_check_train_ppo_names_the_mistake(bug, diagnosis):
    def buggy(env_id, cfg, record):
        my_train_ppo(env_id, cfg, record, bug)

    with pytest.raises(ExerciseError, match=f"(?s){diagnosis}"):
        check_train_ppo(buggy)


def test_check_train_ppo_finds_a_broken_update_at_the_update():
    def sign_bug(*args):
        my_update(*args, bug="policy sign")

    def buggy(env_id, cfg, record):
        my_train_ppo(env_id, cfg, record, update=sign_bug)

    with pytest.raises(ExerciseError, match="iteration 0 differs first at the update"):
        check_train_ppo(buggy)


def test_bad_arguments_are_rejected():
    for check in (check_value_loss, check_minibatches, check_ppo_update):
        with pytest.raises(TypeError, match="fn"):
            check("not a function")
    with pytest.raises(ValueError, match="iterations"):
        check_train_ppo(my_train_ppo, iterations=1)
