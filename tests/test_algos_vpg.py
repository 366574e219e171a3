"""Tests of rlbook.algos.vpg and rlbook.algos.numpy_pg.

The hand-derived gradient of the linear softmax policy is held against torch's autograd; both
trainers must improve CartPole's return by a margin that holds across seeds; the logged
history must add up (every counted step belongs to a logged episode).
"""

import math

import numpy as np
import pytest
import torch

from rlbook.algos.numpy_pg import (
    NumpyPGConfig,
    features,
    grad_log_softmax_policy,
    log_softmax,
    softmax,
    train_numpy_pg,
)
from rlbook.algos.vpg import VPGConfig, train_vpg, vpg_weights
from rlbook.policies import CategoricalPolicy
from rlbook.returns import discounted_returns, reward_to_go
from rlbook.rollout import collect, make_envs

# ---------------------------------------------------------------------------------------------
# The NumPy building blocks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_grad_log_softmax_policy_matches_autograd(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d, k, b = 2 + seed, 2 + seed % 3, 6
    theta = rng.normal(size=(d, k)) * 2
    x = rng.normal(size=(b, d))
    actions = rng.integers(0, k, size=b)
    got = grad_log_softmax_policy(theta, x, actions)
    assert got.shape == (b, d, k)
    th = torch.tensor(theta, requires_grad=True)
    for i in range(b):
        log_pi = torch.log_softmax(torch.tensor(x[i]) @ th, dim=-1)[actions[i]]
        (expected,) = torch.autograd.grad(log_pi, th)
        assert np.abs(got[i] - expected.numpy()).max() < 1e-6


def test_grad_log_softmax_policy_sums_to_zero_over_actions() -> None:
    # sum_k x_j (1[k = a] - pi_k) = x_j (1 - 1) = 0: shifting every logit changes nothing
    rng = np.random.default_rng(0)
    theta, x = rng.normal(size=(3, 4)), rng.normal(size=(5, 3))
    grads = grad_log_softmax_policy(theta, x, rng.integers(0, 4, size=5))
    np.testing.assert_allclose(grads.sum(axis=2), 0.0, atol=1e-12)


def test_expected_score_is_zero() -> None:
    # E_{a ~ pi}[grad log pi(a|x)] = 0, computed exactly by summing over the actions
    rng = np.random.default_rng(1)
    theta, x = rng.normal(size=(3, 4)), rng.normal(size=(1, 3))
    probs = softmax(x @ theta)[0]
    expected_score = sum(
        probs[a] * grad_log_softmax_policy(theta, x, np.array([a]))[0] for a in range(4)
    )
    np.testing.assert_allclose(expected_score, 0.0, atol=1e-12)


def test_grad_log_softmax_policy_rejects_bad_shapes() -> None:
    theta = np.zeros((3, 2))
    with pytest.raises(ValueError, match="x"):
        grad_log_softmax_policy(theta, np.zeros((4, 2)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="x"):
        grad_log_softmax_policy(theta, np.zeros(3), np.zeros(1, dtype=int))
    with pytest.raises(ValueError, match="actions"):
        grad_log_softmax_policy(theta, np.zeros((4, 3)), np.zeros(3, dtype=int))


def test_log_softmax_matches_torch_and_softmax_sums_to_one() -> None:
    logits = np.random.default_rng(2).normal(size=(6, 5)) * 3
    np.testing.assert_allclose(
        log_softmax(logits),
        torch.log_softmax(torch.tensor(logits), -1).numpy(),
        atol=1e-12,
    )
    np.testing.assert_allclose(softmax(logits).sum(-1), 1.0)


def test_log_softmax_is_finite_for_extreme_logits() -> None:
    logits = np.array([[1000.0, -1000.0], [-1000.0, -1000.0], [1000.0, 1000.0]])
    out = log_softmax(logits)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0], [0.0, -2000.0])
    np.testing.assert_allclose(out[1:], math.log(0.5))
    np.testing.assert_allclose(softmax(logits), [[1.0, 0.0], [0.5, 0.5], [0.5, 0.5]])


def test_features_append_a_constant_one() -> None:
    obs = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(features(obs), [[0, 1, 1], [2, 3, 1], [4, 5, 1]])
    assert features(np.zeros((2, 3, 4))).shape == (2, 3, 5)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_train_numpy_pg_improves_cartpole(seed: int) -> None:
    history = train_numpy_pg("CartPole-v1", NumpyPGConfig(iterations=20, seed=seed))
    returns = history["mean_return"]
    assert len(history) == 20
    assert returns[-3:].mean() > 1.5 * returns[:3].mean()
    assert np.all(np.diff(history["env_steps"]) > 0)
    assert history.meta["theta"].shape == (5, 2)


def test_train_numpy_pg_rejects_continuous_actions() -> None:
    with pytest.raises(TypeError, match="discrete"):
        train_numpy_pg("Pendulum-v1", NumpyPGConfig(num_episodes=2, iterations=1))


SMALL = {"iterations": 15, "num_envs": 16, "steps_per_env": 100}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weights", ["return", "reward_to_go"])
def test_train_vpg_improves_cartpole(weights: str, seed: int) -> None:
    history = train_vpg("CartPole-v1", VPGConfig(weights=weights, seed=seed, **SMALL))
    returns = history["mean_return"]
    assert returns[-3:].mean() > 1.5 * returns[:3].mean(), returns


def test_train_vpg_history_adds_up() -> None:
    cfg = VPGConfig(iterations=4, num_envs=4, steps_per_env=30, seed=3)
    history = train_vpg("CartPole-v1", cfg)
    assert len(history) == 4
    for key in ("iteration", "env_steps", "mean_return", "mean_length", "episodes"):
        assert key in history.keys()
    np.testing.assert_array_equal(history["iteration"], np.arange(4))
    steps = history["env_steps"]
    assert np.all(np.diff(steps) > 0)
    # every counted step belongs to one of the batch's complete episodes
    per_batch = np.diff(steps, prepend=0)
    np.testing.assert_allclose(per_batch, history["mean_length"] * history["episodes"])
    # every environment finishes at least the episode it was in after steps_per_env steps
    assert np.all(history["episodes"] >= cfg.num_envs)
    # CartPole pays 1 per step, so the return of an episode is its length
    np.testing.assert_allclose(history["mean_return"], history["mean_length"])
    assert history.meta["algo"] == "vpg" and history.meta["seed"] == 3
    assert isinstance(history.meta["policy"], CategoricalPolicy)


def test_train_vpg_is_reproducible() -> None:
    cfg = VPGConfig(iterations=3, num_envs=4, steps_per_env=20, seed=5)
    a = train_vpg("CartPole-v1", cfg)
    b = train_vpg("CartPole-v1", cfg)
    np.testing.assert_array_equal(a["mean_return"], b["mean_return"])
    np.testing.assert_array_equal(a["env_steps"], b["env_steps"])
    for p, q in zip(
        a.meta["policy"].parameters(), b.meta["policy"].parameters(), strict=True
    ):
        assert torch.equal(p, q)


def test_train_vpg_trains_a_given_policy_in_place() -> None:
    torch.manual_seed(0)
    policy = CategoricalPolicy(4, 2, hidden=(8,))
    before = [p.detach().clone() for p in policy.parameters()]
    history = train_vpg(
        "CartPole-v1", VPGConfig(iterations=2, num_envs=2, steps_per_env=10), policy
    )
    assert history.meta["policy"] is policy
    assert all(
        not torch.equal(b, p) for b, p in zip(before, policy.parameters(), strict=True)
    )


def test_train_vpg_runs_with_continuous_actions() -> None:
    cfg = VPGConfig(iterations=2, num_envs=2, steps_per_env=5, hidden=(8,))
    history = train_vpg("Pendulum-v1", cfg)
    # Pendulum episodes are cut at 200 steps, and a batch holds only complete episodes
    np.testing.assert_array_equal(history["mean_length"], [200.0, 200.0])
    assert np.all(history["mean_return"] < 0)


# ---------------------------------------------------------------------------------------------
# Weights and configuration
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    envs = make_envs("CartPole-v1", 4)
    rollout = collect(
        envs, CategoricalPolicy(4, 2, hidden=(8,)), 25, seed=0, complete_episodes=True
    )
    envs.close()
    return rollout


def test_vpg_weights(batch) -> None:
    whole = vpg_weights(batch, "return")
    to_go = vpg_weights(batch, "reward_to_go")
    torch.testing.assert_close(
        whole, discounted_returns(batch.rewards, batch.dones, mask=batch.mask)
    )
    torch.testing.assert_close(to_go, reward_to_go(batch.rewards, batch.dones))
    # at the last step of every episode the whole return is the episode's length (CartPole pays
    # 1 per step) and the reward-to-go is the last reward
    assert sorted(whole[batch.dones].tolist()) == sorted(
        map(float, batch.episode_lengths)
    )
    assert torch.all(to_go[batch.dones] == 1.0)
    # on the real steps the whole return is never below the reward-to-go (rewards are positive)
    assert torch.all(whole[batch.mask] >= to_go[batch.mask])


def test_vpg_weights_rejects_an_unknown_kind(batch) -> None:
    # "returns" (a typo for "return") must not silently give reward-to-go weights
    with pytest.raises(ValueError, match="kind"):
        vpg_weights(batch, "returns")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("weights", "rtg"),
        ("num_envs", 0),
        ("num_envs", 2.0),
        ("steps_per_env", -1),
        ("iterations", 0),
        ("iterations", None),
        ("lr", 0.0),
        ("lr", -1e-3),
        ("lr", math.nan),
    ],
)
def test_vpg_config_rejects_bad_values_naming_the_field(field: str, value) -> None:
    with pytest.raises((TypeError, ValueError), match=field):
        VPGConfig(**{field: value})


def test_vpg_config_defaults_are_valid() -> None:
    cfg = VPGConfig()
    assert cfg.weights == "return" and cfg.lr > 0 and cfg.iterations >= 1
